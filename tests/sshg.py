"""OpenSSH's own answers for the ssh_config tests: `ssh -G` (the settings it resolves) and
`ssh -v` through a proxy that hangs up at once (the identity files it loads), and an
SSHSettings put in -G's terms to compare line by line.

Tests needing ssh skip when it is absent, or is another version than the one the resolver
mirrors (Debian 12's 9.2p1), except in CI (CI=true), where they fail."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from core.remote.sshconfig import DEFAULT_HOST_KEY_ALGORITHMS, SSHSettings
from tests.helpers import missing

MIRRORED = "OpenSSH_9.2p1 Debian"  # the ssh core/remote/sshconfig*.py is held to


@functools.cache
def _ssh_version(path: str) -> str:
    done = subprocess.run([path, "-V"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    return (done.stderr or done.stdout).strip()


def require_ssh() -> str:
    """The ssh client's path; skip when absent (or not the OpenSSH the resolver mirrors),
    but fail loudly in CI (CI=true)."""
    path = shutil.which("ssh")
    problem = None
    if path is None:
        problem = "ssh (openssh-client) is not installed: no `ssh -G` to compare with"
    elif not _ssh_version(path).startswith(MIRRORED):
        problem = (f"ssh is {_ssh_version(path)!r}; the resolver mirrors {MIRRORED} "
                   "(Debian 12's openssh-client)")
    if problem is not None:
        missing(problem)
    assert path is not None
    return path


def _argv(ssh: str, flags: list[str], config: Path | None, host: str, user: str | None,
          port: int | None) -> list[str]:
    argv = [ssh, *flags] + (["-F", str(config)] if config is not None else [])
    if user is not None:
        argv += ["-l", user]
    if port is not None:
        argv += ["-p", str(port)]
    return [*argv, host]


def ssh_g(ssh: str, config: Path | None, host: str, *, user: str | None = None,
          port: int | None = None,
          env: Mapping[str, str] | None = None) -> tuple[int, dict[str, list[str]], str]:
    """(exit status, keyword -> values in order, stderr) of `ssh -G -F config host`
    (config None: no -F, ssh's own default files)."""
    done = subprocess.run(_argv(ssh, ["-G"], config, host, user, port),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=dict(env) if env is not None else None, timeout=120)
    lines: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        lines.setdefault(key, []).append(value)
    return done.returncode, lines, done.stderr


_IDENTITY = re.compile(r"debug1: identity file (.*) type -?\d+$")  # anywhere in a line
_VIS = re.compile(r"\\(\\|[0-7]{3})")


def _unvis(text: str) -> str:
    """ssh's log lines escape a backslash and unprintable bytes (strnvis)."""
    return _VIS.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1), 8)), text)


def ssh_identity_paths(ssh: str, config: Path, host: str, *, user: str | None = None,
                       port: int | None = None,
                       env: Mapping[str, str] | None = None) -> list[str]:
    """The identity files `ssh -v` loads for host (each one's "-cert" companion left
    out): its ProxyCommand exits at once, so nothing is contacted."""
    # ssh itself puts "exec " before a ProxyCommand; "exec true" would make the shell
    # complain on the shared stderr, a piece at a time, in the middle of ssh's own lines
    flags = ["-v", "-o", "ProxyCommand=true", "-o", "ProxyUseFdpass=no", "-o",
             "BatchMode=yes"]
    done = subprocess.run(_argv(ssh, flags, config, host, user, port),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=dict(env) if env is not None else None, timeout=120)
    out: list[str] = []
    for line in done.stderr.splitlines():
        m = _IDENTITY.search(line)
        if m and not (out and _unvis(m.group(1)) == out[-1] + "-cert"):
            out.append(_unvis(m.group(1)))
    return out


def as_g_lines(s: SSHSettings) -> dict[str, list[str]]:
    """The -G lines each SSHSettings field stands for."""
    timeout = "none" if s.connect_timeout is None else str(int(s.connect_timeout))
    return {
        "host": [s.host], "hostname": [s.hostname], "port": [str(s.port)], "user": [s.user],
        "identityfile": list(s.identity_files),
        "identitiesonly": ["yes" if s.identities_only else "no"],
        "proxyjump": [s.proxy_jump] if s.proxy_jump is not None else [],
        "proxycommand": [s.proxy_command] if s.proxy_command is not None else [],
        "userknownhostsfile": [" ".join(s.user_known_hosts_files) or "none"],
        "globalknownhostsfile": [" ".join(s.global_known_hosts_files) or "none"],
        "connecttimeout": [timeout],
        "hostkeyalias": [s.host_key_alias] if s.host_key_alias is not None else [],
        "stricthostkeychecking": [s.strict_host_key_checking],
        "serveraliveinterval": [str(s.server_alive_interval)],
        "serveralivecountmax": [str(s.server_alive_count_max)],
        "hostkeyalgorithms": [s.host_key_algorithms if s.host_key_algorithms is not None
                              else DEFAULT_HOST_KEY_ALGORITHMS],
    }


def mismatches(s: SSHSettings, g: dict[str, list[str]]) -> dict[str, tuple[list[str],
                                                                          list[str]]]:
    """keyword -> (ours, ssh's) for each line that differs."""
    ours = as_g_lines(s)
    return {k: (v, g.get(k, [])) for k, v in ours.items() if g.get(k, []) != v}
