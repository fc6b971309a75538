"""Host and Match blocks of ssh_config as OpenSSH 9.2's readconf.c decides them, with what
they read: the options so far (Options, filled by core/remote/sshconfig_read.py) and this
side of the connection (Local). Match exec runs its command through the shell with the %
tokens ssh gives it; `ssh -G` runs it too, so resolving a host here runs it."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.remote.sshconfig_words import (
    SSHConfigError,
    default_port,
    match_hostname,
    match_pattern,
    match_pattern_list,
    percent_expand,
    strdelim,
)


@dataclass(frozen=True)
class Local:
    """This side of the connection, as ssh sees it: the passwd entry (not $HOME) for
    `~` in paths and %d/%u, $HOME from env for Include's glob, env for Match exec."""

    user: str
    uid: int
    home: str
    hostname: str
    env: Mapping[str, str]
    exec_timeout: float | None = None


@dataclass
class Options:
    """The options fleetdeck keeps, unset as ssh's initialize_options leaves them
    (None, -1); `origin` names the file:line that set each one, for later errors."""

    user: str | None = None
    hostname: str | None = None
    port: int = -1
    identity_files: list[tuple[str, bool]] = field(default_factory=list)
    identities_only: int = -1
    jump_host: str | None = None
    jump_user: str | None = None
    jump_port: int = -1
    jump_extra: str | None = None
    proxy_command: str | None = None
    user_hostfiles: list[str] = field(default_factory=list)
    system_hostfiles: list[str] = field(default_factory=list)
    connect_timeout: int = -1
    host_key_alias: str | None = None
    strict_host_key_checking: str | None = None
    server_alive_interval: int = -1
    server_alive_count_max: int = -1
    host_key_algorithms: str | None = None
    address_family: str | None = None
    canonicalize_hostname: int = -1
    canonical_domains: list[str] = field(default_factory=list)
    canonicalize_max_dots: int = -1
    canonicalize_fallback_local: int = -1
    permitted_cnames: list[tuple[str, str]] = field(default_factory=list)
    batch_mode: int = -1
    proxy_use_fdpass: int = -1
    connection_attempts: int = -1
    ignored_unknown: str | None = None
    origin: dict[str, str] = field(default_factory=dict)


def connection_hash(local: Local, host: str, port: str, user: str) -> str:
    """%C: sha1 of local host name, host, port and user, as ssh_connection_hash."""
    text = local.hostname + host + port + user
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def match_condition(o: Options, local: Local, cond: str, original: str, final_pass: bool,
                    where: str) -> tuple[bool, str | None, bool]:
    """readconf.c match_cfg_line: all criteria must hold; exec runs only while the
    ones before it held. Returns (matched, what was left unread, whether `final` was
    named: a second pass is then due)."""
    port = o.port if o.port > 0 else default_port()
    ruser = o.user if o.user is not None else local.user
    if final_pass:
        host = o.hostname or ""
    elif o.hostname is not None:
        host = expand_hostname(o, original)
    else:
        host = original
    result, attributes, want_final = True, 0, False
    cp: str | None = cond
    while True:
        attrib, cp = strdelim(cp)
        if not attrib:
            break
        if attrib[0] == "#":
            cp = None
            break
        negate = attrib[0] == "!"
        name = attrib[1:] if negate else attrib
        lname = name.lower()
        if lname == "all":
            if attributes > 1:
                raise ValueError(f"'{attrib}' cannot be combined with other Match "
                                 f"attributes")
            arg, cp = strdelim(cp)
            if arg and arg[0] != "#":
                raise ValueError(f"'{attrib}' cannot be combined with other Match "
                                 f"attributes")
            if arg and arg[0] == "#":
                cp = None
            if result:
                result = not negate
            return result, cp, want_final
        attributes += 1
        if lname in ("canonical", "final"):
            want_final = want_final or lname == "final"
            if final_pass == negate:
                result = False
            continue
        arg, cp = strdelim(cp)
        if not arg or arg[0] == "#":
            raise ValueError(f"Missing Match criteria for {name}")
        if lname == "host":
            hit = match_hostname(host, arg) == 1
        elif lname == "originalhost":
            hit = match_hostname(original, arg) == 1
        elif lname == "user":
            hit = match_pattern_list(ruser, arg, False) == 1
        elif lname == "localuser":
            hit = match_pattern_list(local.user, arg, False) == 1
        elif lname == "exec":
            cmd = percent_expand(arg, exec_tokens(o, local, host, original, port,
                                                  ruser))
            if not result:
                continue
            hit = run_exec(cmd, local, where) == 0
        else:
            raise ValueError(f"Unsupported Match attribute {name}")
        if hit == negate:
            result = False
    if attributes == 0:
        raise ValueError("One or more attributes required for Match")
    return result, cp, want_final


def expand_hostname(o: Options, host: str) -> str:
    """HostName with %h (and %%) expanded, as ssh does before each use of it."""
    assert o.hostname is not None
    try:
        return percent_expand(o.hostname, {"h": host})
    except ValueError as exc:
        raise SSHConfigError(f"{o.origin.get('hostname', 'HostName')}: HostName "
                             f"{o.hostname!r}: {exc}") from None


def exec_tokens(o: Options, local: Local, host: str, original: str, port: int,
                ruser: str) -> dict[str, str]:
    """The % tokens of Match exec, as match_cfg_line fills them at that line."""
    return {"C": connection_hash(local, host, str(port), ruser),
            "L": local.hostname.split(".", 1)[0], "d": local.home, "h": host,
            "k": o.host_key_alias if o.host_key_alias is not None else host,
            "l": local.hostname, "n": original, "p": str(port), "r": ruser,
            "u": local.user, "i": str(local.uid)}


def run_exec(cmd: str, local: Local, where: str) -> int:
    """Run a Match exec command as ssh does: `$SHELL -c cmd` (else /bin/sh), stdin and
    stdout on /dev/null; the exit status. Its stderr is dropped rather than shown
    (ssh lets it through to the terminal; here a console owns the screen)."""
    shell = local.env.get("SHELL", "/bin/sh")
    if not os.access(shell, os.X_OK):
        raise SSHConfigError(f'{where}: Shell "{shell}" is not executable')
    try:
        done = subprocess.run([shell, "-c", cmd], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=dict(local.env), timeout=local.exec_timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SSHConfigError(f"{where}: match exec '{cmd}' did not finish in "
                             f"{local.exec_timeout} s") from None
    except OSError as exc:
        raise SSHConfigError(f"{where}: match exec '{cmd}' error ({exc.strerror})") from None
    if done.returncode < 0:
        raise SSHConfigError(f"{where}: match exec '{cmd}' error (killed by signal "
                             f"{-done.returncode})")
    return done.returncode


def host_matches(host: str, patterns: list[str]) -> bool:
    """A Host line: on when a pattern matches the host (case kept, no comma lists) and no
    negated one does; a matching negated pattern ends the line at once."""
    active = False
    for arg in patterns:
        if arg == "":
            raise ValueError("keyword host empty argument")
        negated = arg.startswith("!")
        if match_pattern(host, arg[1:] if negated else arg):
            if negated:
                return False
            active = True
    return active
