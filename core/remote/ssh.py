"""SSH for fleetdeck: a pooled asyncssh client, the host-key policy, and remote commands.

* ``Target`` says how to reach one inventory host. Fields the inventory leaves unset
  (address, port, user, key) are left to ``~/.ssh/config`` (HostName, Port, User,
  IdentityFile, ProxyJump), which asyncssh reads.
* ``SSHPool`` opens connections on demand and shares them across runs and fan-outs,
  with keepalive; a jump host is opened once and shared by every host behind it, and
  handshakes through one jump host are limited (below sshd's MaxStartups).
* ``KnownHosts`` is the host-key policy: keys are checked against the user's and the
  system's known_hosts, fleetdeck's own file in the state directory and a per-host
  file. An unknown key fails that host with its fingerprint unless the pool was told
  to trust new keys (written to fleetdeck's own file); a changed key is always refused.
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
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncssh

log = logging.getLogger("fleetdeck.ssh")

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_KEEPALIVE = 30.0
DEFAULT_JUMP_LIMIT = 8  # concurrent handshakes through one jump host (sshd MaxStartups 10)
DEFAULT_KILL_GRACE = 2.0
CHUNK = 65536
KNOWN_HOSTS_FILE = "known_hosts"  # fleetdeck's own, in the state directory

_JUMP_RE = re.compile(r"^(?:(?P<user>[^@\s:]+)@)?(?P<host>[A-Za-z0-9_.-]+)(?::(?P<port>\d+))?$")


class HostClass(StrEnum):
    """How one host's part of a fan-out (or a remote run) ended."""

    OK = "ok"
    FAILED = "failed"  # non-zero exit, a signal, or the connection died mid-command
    TIMED_OUT = "timed_out"
    UNREACHABLE = "unreachable"  # refused, connect timeout, DNS, no route
    AUTH_FAILED = "auth_failed"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    HOST_KEY_CHANGED = "host_key_changed"
    CANCELLED = "cancelled"


CONNECT_CLASSES = (HostClass.UNREACHABLE, HostClass.AUTH_FAILED, HostClass.HOST_KEY_UNKNOWN,
                   HostClass.HOST_KEY_CHANGED)


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
                  known_hosts=getattr(host, "known_hosts", None), jump=jump)


def jump_target(spec: str, hosts: Mapping[str, Any]) -> Target:
    """An inventory host name, or [user@]host[:port]."""
    if spec in hosts:
        inner = target_for(hosts[spec], {})
        return Target(name=spec, host=inner.host, port=inner.port, user=inner.user,
                      identity_file=inner.identity_file, known_hosts=inner.known_hosts)
    m = _JUMP_RE.match(spec)
    if not m:
        raise ValueError(f"invalid jump host {spec!r}")
    port = int(m.group("port")) if m.group("port") else None
    return Target(name=spec, host=m.group("host"), port=port, user=m.group("user"))


# ----------------------------------------------------------------------- known hosts ---
def fingerprint(key: asyncssh.SSHKey) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


class KnownHosts:
    """Host-key verification against known_hosts files; trusting writes to our own."""

    def __init__(self, own_file: Path | None, system_files: list[Path] | None = None) -> None:
        self.own_file = Path(own_file) if own_file else None
        if system_files is None:
            system_files = [Path("~/.ssh/known_hosts").expanduser(),
                            Path("/etc/ssh/ssh_known_hosts")]
        self.system_files = system_files
        self._cache: dict[str, asyncssh.SSHKnownHosts] = {}

    def _load(self, extra: str | None) -> list[asyncssh.SSHKnownHosts]:
        files = [*self.system_files, *([self.own_file] if self.own_file else [])]
        if extra:
            files.append(Path(extra).expanduser())
        out = []
        for path in files:
            key = str(path)
            if key not in self._cache:
                try:
                    text = path.read_text()
                except (FileNotFoundError, NotADirectoryError):
                    text = ""
                except OSError as e:
                    log.warning("cannot read known_hosts %s: %s", path, e.strerror or e)
                    text = ""
                try:
                    self._cache[key] = asyncssh.import_known_hosts(text)
                except (ValueError, asyncssh.Error) as e:
                    log.warning("known_hosts %s does not parse: %s", path, e)
                    self._cache[key] = asyncssh.import_known_hosts("")
            out.append(self._cache[key])
        return out

    def _match(self, host: str, addr: str, port: int | None,
               extra: str | None) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        trusted: list[asyncssh.SSHKey] = []
        revoked: list[asyncssh.SSHKey] = []
        p = None if port in (None, 22) else port
        for kh in self._load(extra):
            res = kh.match(host, addr, p)
            trusted.extend(res[0])
            revoked.extend(res[2])
        return trusted, revoked

    def check(self, host: str, addr: str, port: int | None, key: asyncssh.SSHKey,
              extra: str | None = None) -> str:
        """"ok", "unknown" or "changed" (a revoked key is "changed")."""
        trusted, revoked = self._match(host, addr, port, extra)
        data = key.public_data
        if any(k.public_data == data for k in revoked):
            return "changed"
        if any(k.public_data == data for k in trusted):
            return "ok"
        return "changed" if trusted else "unknown"

    def algorithms(self, host: str, port: int | None, extra: str | None = None) -> list[str]:
        """Host-key algorithms of the keys known for a host, to ask the server for those."""
        trusted, _ = self._match(host, "", port, extra)
        algs: list[str] = []
        for key in trusted:
            for alg in key.sig_algorithms:
                name = alg.decode()
                if name not in algs:
                    algs.append(name)
        return algs

    def trust(self, host: str, port: int | None, key: asyncssh.SSHKey) -> None:
        """Append the key to fleetdeck's own known_hosts (0600)."""
        if self.own_file is None:
            raise RuntimeError("no known_hosts file of fleetdeck's own to write to")
        name = host if port in (None, 22) else f"[{host}]:{port}"
        line = f"{name} {key.export_public_key('openssh').decode().split()[0]} " \
               f"{key.export_public_key('openssh').decode().split()[1]}\n"
        self.own_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.own_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._cache.pop(str(self.own_file), None)


class _Client(asyncssh.SSHClient):
    """Validates the host key with our policy and remembers why it said no."""

    def __init__(self, pool: SSHPool, target: Target) -> None:
        self._pool = pool
        self._target = target
        self.verdict: str | None = None
        self.fingerprint: str | None = None
        self.where: str = ""

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        kh = self._pool.known_hosts
        self.fingerprint = fingerprint(key)
        self.where = host if port in (None, 22) else f"[{host}]:{port}"
        verdict = kh.check(host, addr, port, key, self._target.known_hosts)
        approved = self._pool.approved.get(self._target.name) == self.fingerprint
        if verdict == "unknown" and (self._pool.trust_new_keys or approved) \
                and kh.own_file is not None:
            kh.trust(host, port, key)
            self._pool.trusted.append((self._target.name, self.where, self.fingerprint))
            log.warning("trusted new host key of %s (%s): %s", self._target.name, self.where,
                        self.fingerprint)
            verdict = "ok"
        self.verdict = verdict
        if verdict == "changed":
            log.error("HOST KEY CHANGED for %s (%s): now %s; refusing to connect",
                      self._target.name, self.where, self.fingerprint)
        return verdict == "ok"


# --------------------------------------------------------------------------- errors ---
def classify_connect_error(exc: BaseException, target: Target, client: _Client | None,
                           connect_timeout: float) -> SSHError:
    """One-line, secret-free reason for a failed connection, with its class."""
    if isinstance(exc, SSHError):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable) and client is not None:
        fp = client.fingerprint
        if client.verdict == "changed":
            return SSHError(HostClass.HOST_KEY_CHANGED,
                            f"HOST KEY CHANGED for {client.where}: it now presents {fp}; "
                            "refused (remove the old key from known_hosts if the change "
                            "is expected)", fp)
        return SSHError(HostClass.HOST_KEY_UNKNOWN,
                        f"host key unknown: {client.where} presents {fp} "
                        "(trust it with --trust-new-host-keys)", fp)
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
    if isinstance(exc, OSError):
        return SSHError(HostClass.UNREACHABLE, exc.strerror or str(exc) or type(exc).__name__)
    if isinstance(exc, FileNotFoundError | ValueError):
        return SSHError(HostClass.AUTH_FAILED, f"bad SSH settings: {exc}")
    return SSHError(HostClass.UNREACHABLE, f"{type(exc).__name__}: {exc}")


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
                 idle_timeout: float = 300.0) -> None:
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
        self._closed = False

    # ---- public ----
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
        if entry.opening is None or entry.opening.done() and entry.opening.exception():
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
        client = _Client(self, target)
        options: dict[str, Any] = {
            "known_hosts": ([], [], []),  # every key goes through _Client's policy
            "client_factory": lambda: client,
            "connect_timeout": timeout,
            "keepalive_interval": self.keepalive,
            "keepalive_count_max": 3,
            "config": self.ssh_config,
            "agent_path": self.agent_path,
        }
        if target.port is not None:
            options["port"] = target.port
        if target.user:
            options["username"] = target.user
        if target.identity_file:
            options["client_keys"] = [str(Path(target.identity_file).expanduser())]
        elif self.client_keys != ():
            options["client_keys"] = self.client_keys
        algs = self.known_hosts.algorithms(target.host, target.port, target.known_hosts)
        if algs:
            options["server_host_key_algs"] = algs
        if tunnel is not None:
            options["tunnel"] = tunnel
        try:
            async with limit:
                conn = await asyncio.wait_for(asyncssh.connect(target.host, **options),
                                              timeout + 1)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - classified into one line
            if not isinstance(e, Exception):
                raise
            err = classify_connect_error(e, target, client, timeout)
            log.info("ssh %s (%s): %s: %s", target.name, target.describe(), err.cls.value, err)
            raise err from None
        self.opened += 1
        log.debug("ssh connected to %s (%s)", target.name, target.describe())
        return conn


# ------------------------------------------------------------------------ commands ---
@dataclass
class CommandResult:
    exit_code: int | None
    signal: str | None = None
    timed_out: bool = False
    cancelled: bool = False
    lost: bool = False  # the connection closed before an exit status came
    error: str | None = None


LineSink = Callable[[str, str], None]  # (stream, line)


def env_prefix(env: Mapping[str, str] | None) -> str:
    """`export K='v' ...; ` for the remote shell (sshd refuses most env requests)."""
    if not env:
        return ""
    import shlex

    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + "; "


async def _pump(reader: Any, stream: str, on_line: LineSink) -> None:
    buf = b""
    while True:
        chunk = await reader.read(CHUNK)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            on_line(stream, line.decode("utf-8", "replace").rstrip("\r"))
    if buf:
        on_line(stream, buf.decode("utf-8", "replace").rstrip("\r"))


# The remote side of a command. The command runs in its own session (setsid, where
# there is one) with stdin from /dev/null, while a watchdog reads the channel's stdin:
# when we send EOF, close the channel, or the connection dies, the watchdog sends TERM
# to the command's process group, then KILL after the grace period. This works on any
# sshd, where "signal" channel requests are often refused (OpenSSH only honours them
# in some privilege-separation setups), and it reaches the command's children too.
_WRAPPER = (
    # fd 3: the channel's stdin (a background list's own stdin is /dev/null); fd 4: the
    # channel's stderr for the command, while the wrapper's own notes go nowhere
    'exec 3<&0 4>&2 2>/dev/null; '
    'if command -v setsid >/dev/null; then setsid sh -c "$1" </dev/null 2>&4 3<&- 4>&- & '
    'else sh -c "$1" </dev/null 2>&4 3<&- 4>&- & fi; p=$!; '
    '(while read -r _ <&3; do :; done; kill -TERM -$p || kill -TERM $p; '
    'sleep "$2"; kill -KILL -$p || kill -KILL $p) & w=$!; '
    'wait $p; r=$?; kill $w 2>/dev/null; exit $r'
)


def remote_command(command: str, kill_grace: float = DEFAULT_KILL_GRACE) -> str:
    """The command line sent to sshd for `command` (see _WRAPPER)."""
    import shlex

    grace = max(1, int(kill_grace + 0.999))
    return f"sh -c {shlex.quote(_WRAPPER)} fleetdeck {shlex.quote(command)} {grace}"


async def run_command(conn: asyncssh.SSHClientConnection, command: str, *,
                      on_line: LineSink, timeout: float | None = None,
                      kill_grace: float = DEFAULT_KILL_GRACE,
                      env: Mapping[str, str] | None = None,
                      cancel: asyncio.Event | None = None) -> CommandResult:
    """Run one command; stream lines to on_line; stop it on timeout or cancel.

    Stopping sends EOF on the channel, which makes the remote wrapper TERM the
    command's process group and KILL it after kill_grace; then the channel is closed.
    """
    try:
        proc = await conn.create_process(remote_command(env_prefix(env) + command, kill_grace),
                                         encoding=None)
    except (asyncssh.Error, OSError) as e:
        reason = getattr(e, "reason", None) or str(e) or type(e).__name__
        return CommandResult(None, lost=True, error=f"could not start: {reason}")

    async def finish() -> None:
        await asyncio.gather(_pump(proc.stdout, "stdout", on_line),
                             _pump(proc.stderr, "stderr", on_line))
        await proc.wait_closed()

    work = asyncio.ensure_future(finish())
    waits: set[asyncio.Future[Any]] = {work}
    cancel_wait = None
    if cancel is not None:
        cancel_wait = asyncio.ensure_future(cancel.wait())
        waits.add(cancel_wait)
    timed_out = cancelled = False
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            timed_out = cancel_wait is None or cancel_wait not in done
            cancelled = not timed_out
            await _stop(proc, work, kill_grace)
    except asyncio.CancelledError:
        await _stop(proc, work, kill_grace)
        raise
    finally:
        if cancel_wait is not None:
            cancel_wait.cancel()
    lost = False
    if work.done() and not work.cancelled() and work.exception() is not None:
        lost = True
    sig = proc.exit_signal[0] if proc.exit_signal else None
    code = proc.exit_status if not sig else None
    if code is not None and code < 0:
        code = None
    if code is None and sig is None and not (timed_out or cancelled):
        lost = True
    return CommandResult(code, sig, timed_out, cancelled, lost,
                         "connection closed before the command finished" if lost else None)


async def _stop(proc: asyncssh.SSHClientProcess, work: asyncio.Future[Any],
                grace: float) -> None:
    with contextlib.suppress(Exception):
        proc.stdin.write_eof()  # the wrapper: TERM to the group, KILL after grace
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(work), grace + 2.0)
    if work.done():
        return
    with contextlib.suppress(Exception):
        proc.close()  # sshd hangs up the session; the wrapper's stdin closes
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(work), 2.0)
    if not work.done():
        work.cancel()
        with contextlib.suppress(BaseException):
            await work
