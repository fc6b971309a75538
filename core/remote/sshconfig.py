"""A host's SSH settings resolved exactly as OpenSSH's `ssh -G` resolves them (OpenSSH 9.2,
Debian's build): ~/.ssh/config then /etc/ssh/ssh_config, or the files given (as `ssh -F`),
read by core/remote/sshconfig_read.py; then what ssh.c does with the result: HostName's %h,
the host name lowercased (an address canonicalised instead), a second pass for `Match
final`/`canonical`, the defaults, `~`/`%`/`${}` in UserKnownHostsFile. asyncssh's own
ssh_config reader differs from OpenSSH in many places (the differential tests show where);
this one is held to `ssh -G` itself by tests/unit/test_ssh_config_differential.py.

Not quite as ssh: the checks of options fleetdeck does not keep are those of
sshconfig_keywords.py (forwarding specs are only counted, not parsed); a Match exec
command's stderr is dropped rather than shown; and ForkAfterAuthentication without a
RemoteCommand is not refused (`ssh -G host` refuses it for want of a command, but
fleetdeck always has one)."""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.remote.sshconfig_keywords import (
    DEFAULT_HOST_KEY_ALGORITHMS,
    assemble_host_key_algorithms,
)
from core.remote.sshconfig_match import Local, Options, connection_hash, expand_hostname
from core.remote.sshconfig_read import Reader
from core.remote.sshconfig_words import (
    SSHConfigError,
    ascii_lower,
    default_port,
    host_name_problem,
    match_pattern_list,
    parse_ssh_uri,
    percent_expand,
    tilde_expand,
    valid_domain,
)

__all__ = ["DEFAULT_HOST_KEY_ALGORITHMS", "PathExpansion", "SSHConfigError", "SSHSettings",
           "resolve"]

SYSTEM_CONFIG = Path("/etc/ssh/ssh_config")
DEFAULT_IDENTITY_FILES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk",
                          "~/.ssh/id_ed25519", "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss",
                          "~/.ssh/id_dsa")
DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


@dataclass(frozen=True)
class PathExpansion:
    """What ssh expands a file name with once it knows the host: `~` is the passwd
    home, the % tokens of this connection, ${VAR} from the environment."""

    home: str
    tokens: Mapping[str, str]
    env: Mapping[str, str]

    def expand(self, path: str) -> str:
        """path as ssh opens it; SSHConfigError where ssh would die on it."""
        try:
            return percent_expand(tilde_expand(path, self.home), self.tokens, self.env)
        except ValueError as exc:
            raise SSHConfigError(f"cannot expand {path!r}: {exc}") from None


@dataclass(frozen=True)
class SSHSettings:
    """One host's settings, each as `ssh -G` prints it (its line named in the comment).
    ssh -G prints IdentityFile unexpanded; identity_paths() gives them as ssh loads
    them when it connects."""

    host: str  # host: the name asked for, as given
    hostname: str  # hostname: where to connect (lowercased unless an address)
    port: int  # port
    user: str  # user: the config's, the override's, else the local user
    identity_files: tuple[str, ...]  # identityfile lines: as written, tokens unexpanded
    identities_only: bool  # identitiesonly
    proxy_jump: str | None  # proxyjump: None when there is no jump host
    proxy_command: str | None  # proxycommand (only when there is no jump host)
    user_known_hosts_files: tuple[str, ...]  # userknownhostsfile: expanded; () for none
    global_known_hosts_files: tuple[str, ...]  # globalknownhostsfile: as written; ()
    connect_timeout: float | None  # connecttimeout: None for none
    host_key_alias: str | None  # hostkeyalias: lowercased
    strict_host_key_checking: str  # stricthostkeychecking: true, false, ask, accept-new
    server_alive_interval: int  # serveraliveinterval, seconds
    server_alive_count_max: int  # serveralivecountmax
    host_key_algorithms: str | None  # hostkeyalgorithms: None when the default
    expansion: PathExpansion = field(repr=False, compare=False)

    def identity_paths(self) -> tuple[str, ...]:
        """The identity files ssh would try, in order: `none` left out, `~`, % tokens
        and ${VAR} expanded. Raises SSHConfigError where ssh would die (an unknown
        token, an unset variable, an unknown ~user)."""
        return tuple(self.expansion.expand(p) for p in self.identity_files
                     if p.lower() != "none")

    def known_hosts_files(self) -> tuple[str, ...] | None:
        """The known_hosts files ssh reads for this host when the config names its own
        (UserKnownHostsFile, GlobalKnownHostsFile, either "none"); None when both are
        left to the defaults."""
        defaults = tuple(self.expansion.expand(p) for p in DEFAULT_USER_KNOWN_HOSTS)
        if (self.user_known_hosts_files == defaults
                and self.global_known_hosts_files == DEFAULT_GLOBAL_KNOWN_HOSTS):
            return None
        return self.user_known_hosts_files + self.global_known_hosts_files


def resolve(host: str, *, user: str | None = None, port: int | None = None,
            config_files: Sequence[Path | str] | None = None, home: Path | str | None = None,
            local_user: str | None = None, env: Mapping[str, str] | None = None,
            system_config: Path | str = SYSTEM_CONFIG,
            exec_timeout: float | None = None) -> SSHSettings:
    """The settings `ssh -G [-F file] [-l user] [-p port] host` would print, so fleetdeck
    connects where and as ssh would. config_files None reads ~/.ssh/config then the
    system file; a list reads only those files, each as `ssh -F` reads its one (an empty
    list reads none). user and port win over the config, as -l and -p do; `user@host`
    and ssh:// URIs are taken apart as ssh does. home, local_user and env stand in for
    the passwd entry and the environment (tests); exec_timeout bounds a Match exec
    command (ssh waits for ever). It blocks (files, Match exec, DNS when the config asks
    for canonicalisation): call it in a thread from async code. Raises SSHConfigError,
    one line, naming file:line."""
    local = _local(home, local_user, env, exec_timeout)
    host, user, port = _split_destination(host, user, port)
    options = Options(user=user, port=port if port is not None else -1)
    first = Reader(options, local, host=host, original=host, final_pass=False)
    _read_configs(first, config_files, system_config)
    name = host
    if options.hostname is not None:
        name = options.hostname = expand_hostname(options, host)
    if options.canonicalize_max_dots == -1:
        options.canonicalize_max_dots = 1
    if options.canonicalize_fallback_local == -1:
        options.canonicalize_fallback_local = 1
    if options.canonicalize_hostname == -1:
        options.canonicalize_hostname = 0
    was_addr = _is_addr(name, options.address_family)
    if not was_addr:
        name = ascii_lower(name)
    found = False
    if options.canonicalize_hostname != 0 or was_addr:
        name, found = _canonicalize(name, options)
    if not found and _has_cnames(options) and (_direct(options) or
                                                 options.canonicalize_hostname == 2):
        name = _follow_cname(name, options)
    if first.want_final_pass or options.canonicalize_hostname != 0:
        options.hostname = name
        second = Reader(options, local, host=name, original=host, final_pass=True)
        _read_configs(second, config_files, system_config)
    return _settings(options, local, host, name)


def _local(home: Path | str | None, local_user: str | None, env: Mapping[str, str] | None,
           exec_timeout: float | None) -> Local:
    entry = pwd.getpwuid(os.getuid())
    return Local(user=local_user or entry.pw_name, uid=os.getuid(),
                 home=str(home) if home is not None else entry.pw_dir,
                 hostname=socket.gethostname(),
                 env=dict(os.environ) if env is None else dict(env),
                 exec_timeout=exec_timeout)


def _split_destination(host: str, user: str | None,
                       port: int | None) -> tuple[str, str | None, int | None]:
    """ssh.c's reading of its destination argument and the checks it makes of it."""
    uri = parse_ssh_uri(host)
    if uri is None:
        raise SSHConfigError(f"bad ssh:// destination {host!r}")
    if uri is not True:
        tuser, host, tport = uri
        user = user if user is not None else tuser
        port = port if port is not None or tport == -1 else tport
    elif "@" in host:
        at = host.rfind("@")
        if at == 0:
            raise SSHConfigError(f"bad destination {host!r}: empty user name")
        user = user if user is not None else host[:at]
        host = host[at + 1:]
    if not host:
        raise SSHConfigError("no host name given")
    problem = host_name_problem(host)
    if problem:
        raise SSHConfigError(f"{problem}: {host!r}")
    if user is not None and not _valid_ruser(user):
        raise SSHConfigError(f"remote username contains invalid characters: {user!r}")
    if port is not None and not 0 < port <= 65535:
        raise SSHConfigError(f"Bad port '{port}'")
    return host, user, port


def _valid_ruser(user: str) -> bool:
    if user.startswith("-") or user.endswith("\\"):
        return False
    return not any(c in "'`\";&<>|(){}" or ord(c) < 32 or ord(c) == 127
                   or (c in " \t\n\v\f\r" and user[i + 1:i + 2] == "-")
                   for i, c in enumerate(user))


def _read_configs(reader: Reader, config_files: Sequence[Path | str] | None,
                  system_config: Path | str) -> None:
    """ssh.c process_config_files: -F files must open; the default ones need not."""
    if config_files is None:
        for path, user_conf in ((os.path.join(reader.local.home, ".ssh", "config"), True),
                                (str(system_config), False)):
            reader.active = True
            try:
                reader.read_file(path, user_conf=user_conf, check_perm=user_conf)
            except OSError:
                pass
        return
    for given in config_files:
        if str(given).lower() == "none":
            continue
        reader.active = True
        try:
            reader.read_file(str(given), user_conf=True, check_perm=False)
        except OSError as exc:
            raise SSHConfigError(f"Can't open user config file {given}: "
                                 f"{os.strerror(exc.errno or 0)}") from None


def _family(address_family: str | None) -> int:
    return {"inet": socket.AF_INET, "inet6": socket.AF_INET6}.get(address_family or "",
                                                                  socket.AF_UNSPEC)


def _is_addr_fast(name: str) -> bool:
    return "%" in name or ":" in name or all(c in "0123456789." for c in name)


def _numeric(name: str, family: int, port: int) -> list[tuple[Any, ...]]:
    try:
        return socket.getaddrinfo(name, str(port), family, socket.SOCK_STREAM, 0,
                                  socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
    except (OSError, UnicodeError, ValueError):
        return []


def _is_addr(name: str, family: str | None) -> bool:
    """ssh.c is_addr: does name read as one numeric address (then it keeps its case)?"""
    return _is_addr_fast(name) or len(_numeric(name, _family(family), default_port())) == 1


def _direct(o: Options) -> bool:
    """No proxy between us and the host (a "none" jump host counts as one, as in 9.2)."""
    return o.proxy_command in (None, "none") and o.jump_host is None


def _has_cnames(o: Options) -> bool:
    return bool(o.permitted_cnames) and not (
        len(o.permitted_cnames) == 1 and o.permitted_cnames[0][0].lower() == "none"
        and o.permitted_cnames[0][1] == "")


def _canonicalize(name: str, o: Options) -> tuple[str, bool]:
    """ssh.c resolve_canonicalize: an address becomes its canonical text (127.1 is
    127.0.0.1); with CanonicalizeHostname, a short name the first CanonicalDomains
    suffix that resolves (then a permitted CNAME of it). (name, whether resolved)."""
    port = o.port if o.port > 0 else default_port()
    numeric = _numeric(name, _family(o.address_family), port)
    if len(numeric) == 1:
        try:
            text = socket.getnameinfo(numeric[0][4], socket.NI_NUMERICHOST |
                                      socket.NI_NUMERICSERV)[0]
        except OSError:
            return name, False
        return (text if ascii_lower(text) != ascii_lower(name) else name), True
    if _is_addr_fast(name) or o.canonicalize_hostname == 0:
        return name, False
    if not _direct(o) and o.canonicalize_hostname != 2:
        return name, False
    if name.endswith("."):
        candidates = [name]
    elif name.count(".") > o.canonicalize_max_dots:
        return name, False
    else:
        candidates = []
        for domain in o.canonical_domains:
            if domain.lower() == "none":
                break
            candidates.append(f"{name}.{domain}.")
    for full in candidates:
        cname = _lookup(full, o, port)
        if cname is not None:
            return _check_cname(full[:-1], cname, o), True
    if not o.canonicalize_fallback_local:
        raise SSHConfigError(f'Could not resolve host "{name}"')
    return name, False


def _lookup(name: str, o: Options, port: int) -> str | None:
    """getaddrinfo as ssh's resolve_host asks it: None when the name does not resolve,
    else its canonical name ("" when none, or not a valid domain name)."""
    try:
        found = socket.getaddrinfo(name, str(port), _family(o.address_family),
                                   socket.SOCK_STREAM, 0,
                                   socket.AI_CANONNAME)
    except (OSError, UnicodeError, ValueError):
        return None
    cname = found[0][3] if found else ""
    return cname if cname and valid_domain(cname) is None else ""


def _follow_cname(name: str, o: Options) -> str:
    """CanonicalizePermittedCNAMEs without canonicalisation having found the host: ssh
    resolves the name (dying when it does not resolve and no proxy is in the way)."""
    port = o.port if o.port > 0 else default_port()
    cname = _lookup(name, o, port)
    if cname is None:
        if _direct(o):
            raise SSHConfigError(f"Could not resolve hostname {name}: Name or service "
                                 f"not known (CanonicalizePermittedCNAMEs needs it)")
        return name
    return _check_cname(name, cname, o)


def _check_cname(name: str, cname: str, o: Options) -> str:
    """ssh.c check_follow_cname: the CNAME replaces the name when a permitted rule
    matches both."""
    if not cname or not _has_cnames(o) or name == cname or o.canonicalize_hostname == 0:
        return name
    if not _direct(o) and o.canonicalize_hostname != 2:
        return name
    for source, target in o.permitted_cnames:
        if match_pattern_list(name, source, True) == 1 and \
                match_pattern_list(cname, target, True) == 1:
            return cname
    return name


def _settings(o: Options, local: Local, host_arg: str, host: str) -> SSHSettings:
    """fill_default_options and what ssh.c does before dump_client_config."""
    user = o.user if o.user is not None else local.user
    port = o.port if o.port > 0 else default_port()
    jump_host = o.jump_host
    if jump_host == "none" and o.jump_port == 0 and o.jump_user is None:
        jump_host = None
    proxy_command = None if o.proxy_command in (None, "none") else o.proxy_command
    if jump_host is not None:
        jump_port = o.jump_port if o.jump_port > 0 else default_port()
        jump_user = o.jump_user if o.jump_user is not None else user
        if jump_host == host and port == jump_port and user == jump_user:
            raise SSHConfigError(f"{o.origin.get('proxy_jump', 'ProxyJump')}: jumphost "
                                 f"loop via {jump_host}")
    if jump_host is None and proxy_command == "-" and o.proxy_use_fdpass == 1:
        raise SSHConfigError(f"{o.origin['proxy_use_fdpass']}: ProxyCommand=- and "
                             f"ProxyUseFDPass are incompatible")
    if o.connection_attempts == 0:
        raise SSHConfigError(f"{o.origin['connection_attempts']}: Invalid number of "
                             f"ConnectionAttempts")
    alias = ascii_lower(o.host_key_alias) if o.host_key_alias is not None else None
    tokens = {"C": connection_hash(local, host, str(port), user),
              "L": local.hostname.split(".", 1)[0], "i": str(local.uid),
              "k": alias if alias is not None else host_arg, "l": local.hostname,
              "n": host_arg, "p": str(port), "d": local.home, "h": host, "r": user,
              "u": local.user}
    expansion = PathExpansion(local.home, tokens, local.env)
    identity_files = tuple(p for p, _ in o.identity_files) or DEFAULT_IDENTITY_FILES
    user_files = tuple(o.user_hostfiles) or DEFAULT_USER_KNOWN_HOSTS
    system_files = tuple(o.system_hostfiles) or DEFAULT_GLOBAL_KNOWN_HOSTS
    try:
        algorithms = (assemble_host_key_algorithms(o.host_key_algorithms)
                      if o.host_key_algorithms is not None else None)
    except ValueError as exc:
        raise SSHConfigError(f"{o.origin['host_key_algorithms']}: {exc}") from None
    return SSHSettings(
        host=host_arg, hostname=host, port=port, user=user,
        identity_files=identity_files, identities_only=o.identities_only == 1,
        proxy_jump=_jump_text(o, jump_host),
        proxy_command=proxy_command if jump_host is None else None,
        user_known_hosts_files=_known_hosts(user_files, expansion,
                                            o.origin.get("user_hostfiles")),
        global_known_hosts_files=() if system_files[0].lower() == "none" else system_files,
        connect_timeout=None if o.connect_timeout < 0 else float(o.connect_timeout),
        host_key_alias=alias,
        strict_host_key_checking=o.strict_host_key_checking or "ask",
        server_alive_interval=(o.server_alive_interval if o.server_alive_interval >= 0
                               else 300 if o.batch_mode == 1 else 0),  # 300: Debian's
        server_alive_count_max=3 if o.server_alive_count_max < 0 else o.server_alive_count_max,
        host_key_algorithms=algorithms, expansion=expansion)


def _known_hosts(paths: tuple[str, ...], expansion: PathExpansion,
                 origin: str | None) -> tuple[str, ...]:
    """UserKnownHostsFile as ssh.c expands it before -G prints it; "none" is none."""
    if paths[0].lower() == "none":
        return ()
    try:
        return tuple(expansion.expand(p) for p in paths)
    except SSHConfigError as exc:
        raise SSHConfigError(f"{origin or 'UserKnownHostsFile'}: {exc}") from None


def _jump_text(o: Options, jump_host: str | None) -> str | None:
    """The proxyjump line of ssh -G: [extra hops,][user@]host[:port], an address host
    in brackets."""
    if jump_host is None:
        return None
    numeric = ":" in jump_host or all(c in "0123456789." for c in jump_host)
    text = f"[{jump_host}]" if numeric else jump_host
    if o.jump_user is not None:
        text = f"{o.jump_user}@{text}"
    if o.jump_port > 0:
        text = f"{text}:{o.jump_port}"
    return f"{o.jump_extra},{text}" if o.jump_extra is not None else text
