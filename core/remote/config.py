"""The [hosts] section: the inventory's hosts as typed `Host` records."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.confguard import clip
from core.config import Checker, check_references, section
from core.remote.become import valid_user
from core.remote.sshconfig_words import host_name_problem
from core.schema import Key, Section
from core.secrets import REF_RE

LOCAL_HOST = "local"
MAX_FORKS = 100_000  # hosts at once: a fan-out's --forks, a group's forks


@dataclass(frozen=True)
class Host:
    name: str
    address: str = ""
    port: int = 22
    user: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    # SSH: unset fields are left to ~/.ssh/config (HostName, User, Port, IdentityFile,
    # ProxyJump); `explicit` names the keys the inventory wrote itself
    identity_file: str | None = None  # private key path (~ expanded)
    jump_host: str | None = None  # an inventory host name, or [user@]host[:port]
    known_hosts: str | None = None  # an extra known_hosts file trusted for this host
    # secrets, as references (${NAME}, ${file:PATH}); filled in at connect time only
    password: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    become: str | None = None  # run commands as this user through sudo (host's or group's)
    explicit: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL_HOST


HOST = Section("hosts", "hosts to run on over SSH; `local` (this machine) is built in", (
    Key("address", "string", "where to connect; default: the host name, resolved by SSH "
        "(and ~/.ssh/config)"),
    Key("port", "integer", "SSH port; default: ~/.ssh/config's, else 22", minimum=1,
        maximum=65535, example=22),
    Key("user", "string", "SSH user; default: ~/.ssh/config's, else yours"),
    Key("tags", "string-map", "labels: target them as 'role=web'"),
    Key("groups", "strings", "groups: target them as '@web'"),
    Key("identity_file", "path", "private key file (~ expanded)", max_length=4096),
    Key("jump_host", "string", "an inventory host or [user@]host[:port] to connect through"),
    Key("known_hosts", "path", "an extra known_hosts file trusted for this host",
        max_length=4096),
    Key("password", "string", "SSH password, as a reference only: ${NAME} (an environment "
        "variable) or ${file:PATH} (a 0600 file of yours); filled in when connecting, "
        "never recorded"),
    Key("passphrase", "string", "passphrase of identity_file, as a reference only: "
        "${NAME} or ${file:PATH}"),
    Key("become", "string", "run fan-out commands as this user through sudo, e.g. "
        "\"root\" (default: the host's first group's `become`, else none)"),
), named=True)

GROUP = Section("groups", "settings shared by the hosts of a group (`groups = [...]` of a "
                "host names them)", (
    Key("become", "string", "run its hosts' fan-out commands as this user through sudo, "
        "e.g. \"root\""),
    Key("forks", "integer", "at most this many of its hosts at once in a fan-out (beside "
        "the fan-out's own --forks)", minimum=1, maximum=MAX_FORKS, example=10),
), named=True)


def read_hosts(c: Checker, doc: dict[str, Any]) -> dict[str, Host]:
    hosts: dict[str, Host] = {LOCAL_HOST: Host(LOCAL_HOST)}
    for name, value in section(c, doc, "hosts").items():
        p = ("hosts", name)
        if name == LOCAL_HOST:
            c.add(p, "local is built in; it needs no [hosts.local] table")
            continue
        ok = c.name_ok(name, "host", p)
        t = c.table(value, p)
        if t is None:
            continue
        c.known_keys(t, HOST.names(), p)
        host = Host(
            name=name,
            address=_address(c, t, p, name),
            port=c.read(t, HOST["port"], p, 22),
            user=c.string(t, "user", p, None, line=True),
            tags=c.str_map(t, "tags", p),
            groups=c.str_list(t, "groups", p, names="group"),
            identity_file=c.read(t, HOST["identity_file"], p),
            jump_host=c.string(t, "jump_host", p, None, line=True),
            known_hosts=c.read(t, HOST["known_hosts"], p),
            password=_secret_ref(c, t, "password", p),
            passphrase=_secret_ref(c, t, "passphrase", p),
            become=_user(c, t, p),
            explicit=tuple(k for k in HOST.names() if k in t),
        )
        if ok:
            hosts[name] = host
    _check_jump_hosts(c, hosts)
    return hosts


def _user(c: Checker, t: dict[str, Any], p: tuple[str, ...]) -> str | None:
    user = c.string(t, "become", p, None, line=True)
    if user is not None and not valid_user(user):
        c.add(p + ("become",), f"invalid user name {clip(user)}; e.g. \"root\"")
        return None
    return user


@dataclass(frozen=True)
class Group:
    """What a [groups.NAME] table sets for the hosts of a group."""

    name: str
    become: str | None = None
    forks: int | None = None  # at most this many of its hosts at once in a fan-out


def read_groups(c: Checker, doc: dict[str, Any],
                hosts: dict[str, Host]) -> tuple[dict[str, Host], dict[str, Group]]:
    """The [groups] tables; a host without its own `become` takes its first group's."""
    from dataclasses import replace

    groups: dict[str, Group] = {}
    known = {g for h in hosts.values() for g in h.groups}
    for name, value in section(c, doc, "groups").items():
        p = ("groups", name)
        t = c.table(value, p)
        if t is None:
            continue
        c.known_keys(t, GROUP.names(), p)
        if name not in known:
            c.add(p, f"no host is in group {clip(name)}")
            continue
        groups[name] = Group(name, _user(c, t, p), c.read(t, GROUP["forks"], p, None))
    become = {g.name: g.become for g in groups.values() if g.become}
    if become:
        hosts = {n: h if h.become or not h.groups else replace(
            h, become=next((become[g] for g in h.groups if g in become), None))
            for n, h in hosts.items()}
    return hosts, groups


def _address(c: Checker, t: dict[str, Any], p: tuple[str, ...], name: str) -> str:
    """Where to connect, checked as ssh checks it, with what was probably meant."""
    address = c.string(t, "address", p, name, line=True)
    if "address" not in t or address is None:
        return address
    if "://" in address:
        c.add(p + ("address",), f"{clip(address)}: a host name or an IP address, not a URL")
    elif re.fullmatch(r"[^:\[\]]+:\d+", address):
        c.add(p + ("address",), f"{clip(address)}: put the port in 'port', not in the "
                                f"address")
    elif problem := host_name_problem(address):
        c.add(p + ("address",), f"{clip(address)}: {problem} (as ssh says)")
    return address


def _secret_ref(c: Checker, t: dict[str, Any], key: str, p: tuple[str, ...]) -> str | None:
    """A secret's reference. The value itself is refused, and never quoted back: the
    config is read by editors, backups and `check-config`, not a secret store."""
    value = t.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not REF_RE.fullmatch(value.strip()):
        c.add(p + (key,), f"write a reference, ${{NAME}} or ${{file:PATH}}, not the {key} "
                          "itself (the config is not a secret store)")
        return None
    check_references(c, p + (key,), value)
    return value.strip()


_JUMP_RE = re.compile(r"(?:[^@\s:]+@)?[A-Za-z0-9_.-]+(?::\d{1,5})?")


def _check_jump_hosts(c: Checker, hosts: dict[str, Host]) -> None:
    """A jump host is an inventory host or [user@]host[:port]; no loops through hosts."""
    for host in hosts.values():
        jump = host.jump_host
        if jump is None:
            continue
        p = ("hosts", host.name, "jump_host")
        if jump == host.name:
            c.add(p, "a host cannot be its own jump host")
        elif jump in hosts:
            if jump == LOCAL_HOST:
                c.add(p, "local cannot be a jump host")
            elif hosts[jump].jump_host is not None:
                c.add(p, f"jump host '{jump}' has a jump host itself; chains are not "
                         "supported")
        elif not _JUMP_RE.fullmatch(jump):
            c.add(p, f"invalid jump host {clip(jump)}; use an inventory host name or "
                     "[user@]host[:port]")

