"""SSH for fleetdeck: a pooled asyncssh client (the host-key policy is in
core.remote.knownhosts, remote commands in core.remote.commands).

* ``Target`` says how to reach one inventory host. Fields the inventory leaves unset
  (address, port, user, key) are left to ``~/.ssh/config`` (HostName, Port, User,
  IdentityFile, ProxyJump), read as ``ssh -G`` reads it (core.remote.sshconfig).
* ``SSHPool`` opens connections on demand and shares them across runs and fan-outs,
  with keepalive; a jump host is opened once and shared by every host behind it, and
  handshakes through one jump host are limited (below sshd's MaxStartups).
* ``KnownHosts`` is the host-key policy: keys are checked against the user's and the
  system's known_hosts (or the files ssh_config names for the host), fleetdeck's own
  file in the state directory and a per-host file. An unknown key fails that host with
  its fingerprint unless the pool was told to trust new keys (written to fleetdeck's own
  file); a changed key is always refused.
* ``run_command`` runs one command on a connection, streaming lines, with a command
  timeout separate from the connect timeout; a command that times out or is cancelled
  gets TERM (its whole process group, on the host), then KILL after a grace period,
  then its channel is closed (see ``_WRAPPER``).
* ``SSHError`` carries the per-host class (``HostClass``) and a one-line reason that
  never holds passwords, passphrases or key material.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncssh

from core.remote.classes import HostClass
from core.remote.knownhosts import (
    CHANGED,
    KNOWN_HOSTS_FILE,
    OK,
    REVOKED_KEY,
    UNKNOWN,
    KnownHosts,
    fingerprint,
)
from core.remote.sshconfig import SSHConfigError
from core.remote.sshconfig import resolve as resolve_ssh_config
from core.secrets import SecretError, resolve

log = logging.getLogger("fleetdeck.ssh")

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_KEEPALIVE = 30.0
MAX_CONFIG_HOPS = 4  # ProxyJump hops followed from ssh_config
DEFAULT_JUMP_LIMIT = 8  # concurrent handshakes through one jump host (sshd MaxStartups 10)
# Concurrent handshakes in all: a fan-out to 1,000 hosts connects in a ramp of this many
# at a time, each timed from its own start (not from its turn in a queue of 1,000 key
# exchanges on a few cores), and no firewall or bastion sees a burst of a thousand.
DEFAULT_MAX_STARTUPS = 100

_JUMP_RE = re.compile(r"^(?:(?P<user>[^@\s:]+)@)?(?P<host>[A-Za-z0-9_.-]+)(?::(?P<port>\d+))?$")


class SSHError(Exception):
    """Could not get a usable connection to a host; str() is one line for a person."""

    def __init__(self, cls: HostClass, message: str, fingerprint: str | None = None) -> None:
        super().__init__(message)
        self.cls = cls
        self.fingerprint = fingerprint


# --------------------------------------------------------------------------- targets ---
@dataclass(frozen=True)
class Target:
    """How to reach one host. ``None`` fields are left to ~/.ssh/config and defaults."""

    name: str  # the inventory name (for messages)
    host: str  # address, or the name as an ~/.ssh/config alias
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    jump: Target | None = None
    # references (${NAME}, ${file:PATH}), filled in at connect time (core.secrets)
    password: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    hops: int = field(default=0, compare=False)  # jump hosts taken from ssh_config so far

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.host, self.port, self.user, self.identity_file,
                self.jump.key if self.jump else None)

    def describe(self) -> str:
        where = self.host + (f":{self.port}" if self.port else "")
        return f"{self.user}@{where}" if self.user else where


def target_for(host: Any, hosts: Mapping[str, Any] | None = None) -> Target:
    """The Target of an inventory Host (core.config.Host); its jump host resolved too."""
    explicit = set(getattr(host, "explicit", ()) or ())
    address = host.address if ("address" in explicit or not explicit) and host.address \
        else host.name
    port = host.port if "port" in explicit or (not explicit and host.port != 22) else None
    jump = None
    if getattr(host, "jump_host", None):
        jump = jump_target(host.jump_host, hosts or {})
    return Target(name=host.name, host=address, port=port, user=host.user,
                  identity_file=getattr(host, "identity_file", None),
                  known_hosts=getattr(host, "known_hosts", None), jump=jump,
                  password=getattr(host, "password", None),
                  passphrase=getattr(host, "passphrase", None))


def jump_target(spec: str, hosts: Mapping[str, Any]) -> Target:
    """An inventory host name, or [user@]host[:port]."""
    if spec in hosts:
        inner = target_for(hosts[spec], {})
        return Target(name=spec, host=inner.host, port=inner.port, user=inner.user,
                      identity_file=inner.identity_file, known_hosts=inner.known_hosts,
                      password=inner.password, passphrase=inner.passphrase)
    m = _JUMP_RE.match(spec)
    if not m:
        raise ValueError(f"invalid jump host {spec!r}")
    port = int(m.group("port")) if m.group("port") else None
    return Target(name=spec, host=m.group("host"), port=port, user=m.group("user"))


class _Client(asyncssh.SSHClient):
    """Validates the host key with our policy and remembers why it said no."""

    def __init__(self, pool: SSHPool, target: Target, after_certificate: str | None,
                 *, hostname: str, alias: str | None, port: int | None,
                 known_hosts: KnownHosts) -> None:  # known_hosts: as ssh_config names them
        self._pool, self._known_hosts = pool, known_hosts
        self._target = target
        self._hostname = hostname  # the HostName connected to (asyncssh names the alias)
        self._alias = alias  # ssh_config's HostKeyAlias: known_hosts looks this up
        # the second handshake after a certificate no authority vouched for: the
        # verdict under [host]:port on that certificate's authority
        self._after_certificate = after_certificate
        self.verdict: str | None = None
        self.fingerprint: str | None = None
        self.where = self._place(hostname or target.host, port)  # before any key is seen
        self.ca: str | None = None  # the fingerprint of a certificate's authority
        self.ca_at_port: str | None = None

    def _place(self, host: str, port: int | None) -> str:  # as ssh names it in messages
        return self._alias or (host if port in (None, 22) else f"[{host}]:{port}")

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        kh = self._known_hosts
        self.fingerprint = fingerprint(key)
        host = self._hostname or host
        self.where = self._place(host, port)
        verdict = kh.check(host, port, key, self._target.known_hosts, self._alias,
                           bare_first=self._after_certificate == UNKNOWN)
        approved = self._pool.approved.get(self._target.name) == self.fingerprint
        if verdict == UNKNOWN and (self._pool.trust_new_keys or approved) \
                and kh.own_file is not None:
            kh.trust(host, port, key, self._alias)
            self._pool.trusted.append((self._target.name, self.where, self.fingerprint))
            log.warning("trusted new host key of %s (%s): %s", self._target.name, self.where,
                        self.fingerprint)
            verdict = OK
        self.verdict = verdict
        if verdict == CHANGED:
            log.error("HOST KEY CHANGED for %s (%s): now %s; refusing to connect",
                      self._target.name, self.where, self.fingerprint)
        elif verdict == REVOKED_KEY:
            log.error("REVOKED HOST KEY for %s (%s): %s; refusing to connect",
                      self._target.name, self.where, self.fingerprint)
        return verdict == OK

    def validate_host_ca_key(self, host: str, addr: str, port: int,
                             key: asyncssh.SSHKey) -> bool:
        """A host certificate's authority: trusted only through an @cert-authority
        line for this host (asyncssh then checks the principals and the dates)."""
        self.ca = fingerprint(key)
        host = self._hostname or host
        self.where = self._place(host, port)
        self.verdict, self.ca_at_port = self._known_hosts.check_ca(
            host, port, key, self._target.known_hosts, self._alias)
        return self.verdict == OK


# --------------------------------------------------------------------------- errors ---
def classify_connect_error(exc: BaseException, target: Target, client: _Client | None,
                           connect_timeout: float) -> SSHError:
    """One-line, secret-free reason for a failed connection, with its class."""
    if isinstance(exc, SSHError):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable) and client is not None:
        return _host_key_error(str(exc), client)
    if isinstance(exc, asyncssh.PermissionDenied):
        return SSHError(HostClass.AUTH_FAILED, "authentication failed"
                        + (f" as {target.user}" if target.user else ""))
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        return SSHError(HostClass.AUTH_FAILED, f"cannot load the private key "
                        f"{target.identity_file or ''}: {type(exc).__name__}".replace(" :", ":"))
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return SSHError(HostClass.UNREACHABLE, f"connect timed out after {connect_timeout:g}s")
    if isinstance(exc, ConnectionRefusedError):
        return SSHError(HostClass.UNREACHABLE, "connection refused")
    if isinstance(exc, socket.gaierror):
        return SSHError(HostClass.UNREACHABLE, f"cannot resolve {target.host}: "
                        f"{exc.strerror or exc}")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return SSHError(HostClass.UNREACHABLE, f"jump host could not open a tunnel: "
                        f"{exc.reason}")
    if isinstance(exc, asyncssh.DisconnectError):
        return SSHError(HostClass.UNREACHABLE, f"disconnected: {exc.reason}")
    if isinstance(exc, OSError) and exc.filename is not None:  # a file here: a key
        return SSHError(HostClass.AUTH_FAILED, f"cannot read the private key "
                        f"{exc.filename}: {(exc.strerror or str(exc)).lower()}")
    if isinstance(exc, OSError):
        return SSHError(HostClass.UNREACHABLE, exc.strerror or str(exc) or type(exc).__name__)
    if isinstance(exc, ValueError):
        return SSHError(HostClass.AUTH_FAILED, f"bad SSH settings: {exc}")
    return SSHError(HostClass.UNREACHABLE, ssh_reason(exc))


def ssh_reason(exc: BaseException) -> str:
    """What went wrong on an SSH connection, in words (asyncssh's class names mean
    nothing to a person: "ChannelOpenError: SSH connection closed")."""
    if isinstance(exc, asyncssh.ChannelOpenError):
        why = (exc.reason or "").rstrip(".")
        if "connection closed" in why.lower():
            return "the SSH connection closed under it"
        return f"the host refused a session ({why})" if why else "the host refused a session"
    if isinstance(exc, asyncssh.ConnectionLost):
        return "the SSH connection was lost"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"the host disconnected: {exc.reason}" if exc.reason else \
            "the host disconnected"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or "a network error"
    return str(getattr(exc, "reason", "") or exc) or "an unexpected SSH error"


def _host_key_error(reason: str, client: _Client) -> SSHError:
    """OpenSSH's verdicts, in one line each."""
    fp = client.fingerprint
    if client.verdict == REVOKED_KEY or " is revoked" in reason:
        what = f"certificate authority {client.ca}" if client.ca and client.verdict \
            else f"key {fp}" if fp else "key (its certificate's key or authority)"
        return SSHError(HostClass.HOST_KEY_REVOKED,
                        f"REVOKED HOST KEY: {client.where} presents a {what} marked "
                        "@revoked in known_hosts; refused", fp)
    if client.verdict == CHANGED:
        return SSHError(HostClass.HOST_KEY_CHANGED,
                        f"HOST KEY CHANGED for {client.where}: it now presents {fp}; "
                        "refused (remove the old key from known_hosts if the change "
                        "is expected)", fp)
    if client.ca is not None and client.verdict == OK:
        # the authority is trusted but the certificate is not for this host or date
        why = reason.split(" for host ")[0]
        return SSHError(HostClass.HOST_KEY_UNKNOWN,
                        f"host certificate of {client.where} not accepted: {why}")
    if client.ca is not None:
        return SSHError(HostClass.HOST_KEY_UNKNOWN,
                        f"host key unknown: {client.where} presents a certificate signed "
                        f"by {client.ca}, which no @cert-authority line trusts for it "
                        "(`fleetdeck trust-ca` trusts a CA)")
    return SSHError(HostClass.HOST_KEY_UNKNOWN,
                    f"host key unknown: {client.where} presents {fp} "
                    "(trust it with --trust-new-host-keys)", fp)


def _secrets(target: Target) -> dict[str, str]:
    """The password and key passphrase, filled in now; a reference that cannot be
    filled in fails this host as auth_failed, naming the reference, never a value."""
    out: dict[str, str] = {}
    for option, ref in (("password", target.password), ("passphrase", target.passphrase)):
        if ref:
            try:
                out[option] = resolve(ref, [])
            except SecretError as e:
                raise SSHError(HostClass.AUTH_FAILED, f"cannot fill in the {option}: {e}"
                               ) from None
    return out


# ----------------------------------------------------------------------------- pool ---
@dataclass
class _Entry:
    conn: asyncssh.SSHClientConnection | None = None
    opening: asyncio.Future[asyncssh.SSHClientConnection] | None = None
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)


class SSHPool:
    """Shared SSH connections, opened on demand, reused while alive.

    ``ssh_config``: ``()`` reads ~/.ssh/config (asyncssh's default), ``None`` or ``[]``
    reads none, a list names files. ``client_keys``/``agent_path`` default to asyncssh's
    (~/.ssh/id_* and $SSH_AUTH_SOCK); a host's identity_file replaces the defaults.
    """

    def __init__(self, *, known_hosts: KnownHosts | None = None, state_dir: Path | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 keepalive: float = DEFAULT_KEEPALIVE, trust_new_keys: bool = False,
                 jump_limit: int = DEFAULT_JUMP_LIMIT, ssh_config: Any = (),
                 client_keys: Any = (), agent_path: Any = (),
                 idle_timeout: float = 300.0,
                 max_startups: int = DEFAULT_MAX_STARTUPS) -> None:
        if known_hosts is None:
            own = Path(state_dir) / KNOWN_HOSTS_FILE if state_dir else None
            known_hosts = KnownHosts(own)
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.trust_new_keys = trust_new_keys
        self.jump_limit = jump_limit
        self.ssh_config = [] if ssh_config is None else ssh_config
        self.client_keys = client_keys
        self.agent_path = agent_path
        self.idle_timeout = idle_timeout
        self.trusted: list[tuple[str, str, str]] = []  # (host, known_hosts name, fingerprint)
        # host name -> the one fingerprint a person approved after seeing it: that key, and
        # no other, is trusted at the next connection (see approve())
        self.approved: dict[str, str] = {}
        self.opened = 0  # connections opened (for tests and the console)
        self._entries: dict[tuple[Any, ...], _Entry] = {}
        self._jump_limits: dict[tuple[Any, ...], asyncio.Semaphore] = {}
        self.max_startups = max_startups
        self._startups = asyncio.Semaphore(max_startups)
        self._closed = False

    # ---- public ----
    def trusting(self) -> SSHPool:
        """A pool of its own with the same settings that trusts new host keys (written
        to fleetdeck's own known_hosts; a changed key is still refused): for one
        fan-out that a person started with --trust-new-host-keys."""
        return SSHPool(known_hosts=self.known_hosts, connect_timeout=self.connect_timeout,
                       keepalive=self.keepalive, trust_new_keys=True,
                       jump_limit=self.jump_limit, ssh_config=self.ssh_config,
                       client_keys=self.client_keys, agent_path=self.agent_path,
                       idle_timeout=self.idle_timeout, max_startups=self.max_startups)

    def approve(self, host: str, fingerprint: str) -> None:
        """A person saw `fingerprint` for `host` and trusts it: written to our own
        known_hosts at the next connection if the host still presents exactly that key."""
        self.approved[host] = fingerprint

    async def connect(self, target: Target, *,
                      connect_timeout: float | None = None) -> asyncssh.SSHClientConnection:
        """A live connection to target (shared); SSHError with the host's class if not."""
        if self._closed:
            raise SSHError(HostClass.CANCELLED, "the SSH pool is closed")
        entry = self._entries.setdefault(target.key, _Entry())
        entry.last_used = time.monotonic()
        if entry.conn is not None and not entry.conn.is_closed():
            return entry.conn
        # none yet, or the one opened is gone (the host dropped it, sshd restarted, the
        # keepalive gave up): open anew; an opening under way is shared
        if entry.opening is None or entry.opening.done():
            entry.opening = asyncio.ensure_future(self._open(target, connect_timeout))
        try:
            conn = await asyncio.shield(entry.opening)
        except SSHError:
            entry.opening = None  # the next run tries again
            raise
        entry.conn = conn
        return conn

    async def close(self) -> None:
        self._closed = True
        conns = []
        for entry in self._entries.values():
            if entry.opening is not None and not entry.opening.done():
                entry.opening.cancel()
            if entry.conn is not None:
                conns.append(entry.conn)
        self._entries.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)

    def close_idle(self) -> int:
        """Close connections unused for idle_timeout; returns how many."""
        now = time.monotonic()
        n = 0
        for key, entry in list(self._entries.items()):
            if entry.conn is not None and now - entry.last_used > self.idle_timeout:
                entry.conn.close()
                del self._entries[key]
                n += 1
        return n

    def touch(self, target: Target) -> None:
        entry = self._entries.get(target.key)
        if entry is not None:
            entry.last_used = time.monotonic()

    # ---- internals ----
    async def _open(self, target: Target,
                    connect_timeout: float | None) -> asyncssh.SSHClientConnection:
        timeout = connect_timeout or self.connect_timeout
        tunnel = None
        limit: asyncio.Semaphore | contextlib.AbstractAsyncContextManager[Any]
        limit = contextlib.nullcontext()
        if target.jump is not None:
            try:
                tunnel = await self.connect(target.jump, connect_timeout=timeout)
            except SSHError as e:
                raise SSHError(e.cls if e.cls not in (HostClass.CANCELLED,)
                               else HostClass.UNREACHABLE,
                               f"jump host {target.jump.name}: {e}", e.fingerprint) from None
            limit = self._jump_limits.setdefault(target.jump.key,
                                                 asyncio.Semaphore(self.jump_limit))
        try:
            ssh = await asyncio.to_thread(
                resolve_ssh_config, target.host, user=target.user, port=target.port,
                config_files=None if self.ssh_config == () else list(self.ssh_config))
        except SSHConfigError as e:
            raise SSHError(HostClass.AUTH_FAILED, f"bad SSH settings: {e}") from None
        if ssh.proxy_jump and target.jump is None and target.hops < MAX_CONFIG_HOPS:
            # ssh_config's ProxyJump: its first hop (a jump host's own ProxyJump is
            # followed in turn, a few deep: two hosts naming each other would loop)
            try:
                hop = jump_target(ssh.proxy_jump.split(",")[0].removeprefix("ssh://"), {})
            except ValueError:
                raise SSHError(HostClass.UNREACHABLE, f"ssh_config's ProxyJump "
                               f"{ssh.proxy_jump!r} is not [user@]host[:port]") from None
            return await self._open(replace(target, jump=replace(hop, hops=target.hops + 1)),
                                    connect_timeout)
        host, port, alias = ssh.hostname, ssh.port, ssh.host_key_alias
        kh = self.known_hosts.looking_in(ssh.known_hosts_files())
        options: dict[str, Any] = {
            # every key goes through _Client's policy; asyncssh gets the revoked keys
            # only, to check the key inside a host certificate
            "known_hosts": lambda _h, _a, _p: ([], [], kh.revoked(
                host, port, target.known_hosts, alias)),
            "connect_timeout": timeout,
            "keepalive_interval": self.keepalive,
            "keepalive_count_max": 3,
            "config": [],  # read above, as ssh -G reads it (asyncssh's reader differs)
            "agent_path": self.agent_path,
            "port": port,
            "username": ssh.user,
        }
        if target.identity_file:
            options["client_keys"] = [str(Path(target.identity_file).expanduser())]
        elif self.client_keys != ():
            options["client_keys"] = self.client_keys
        else:
            try:
                found = [p for p in ssh.identity_paths() if Path(p).is_file()]
            except SSHConfigError as e:
                raise SSHError(HostClass.AUTH_FAILED, f"bad SSH settings: {e}") from None
            if found:
                options["client_keys"] = found
        if tunnel is not None:
            options["tunnel"] = tunnel
        options.update(_secrets(target))
        algs = kh.algorithms(host, port, target.known_hosts, alias)
        after_certificate = None
        while True:
            client = _Client(self, target, after_certificate, hostname=host, alias=alias,
                             port=port, known_hosts=kh)
            try:
                async with limit, self._startups:
                    conn = await asyncio.wait_for(asyncssh.connect(
                        host, client_factory=lambda c=client: c, server_host_key_algs=algs,
                        **options), timeout + 1)
                break
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # noqa: BLE001 - classified into one line
                if not isinstance(e, Exception):
                    raise
                err = classify_connect_error(e, target, client, timeout)
                if err.cls == HostClass.HOST_KEY_UNKNOWN and client.ca is not None \
                        and after_certificate is None:
                    # ssh's fallback: a certificate no authority vouches for here is
                    # judged again as the plain key inside it (a second handshake,
                    # offering plain keys only)
                    after_certificate = client.ca_at_port
                    algs = kh.algorithms(host, port, target.known_hosts, alias,
                                         certificates=False)
                    continue
                log.info("ssh %s (%s): %s: %s", target.name, target.describe(),
                         err.cls.value, err)
                raise err from None
        self.opened += 1
        log.debug("ssh connected to %s (%s)", target.name, target.describe())
        return conn


# ------------------------------------------------------------------------ commands ---
