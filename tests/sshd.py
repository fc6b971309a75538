"""SSH servers on loopback for the tests: an in-process asyncssh server and real sshd.

* ``ExecServer``: an asyncssh server in the test's own event loop that runs each
  requested command as a real local subprocess (its own process group), so output and
  exit codes are real; ``$TEST_SERVER_PORT`` tells a command which server runs it.
  Channel stdin reaches the process and EOF closes it, as with sshd; a "signal" request
  signals the process group. With ``drop`` set (or ``#drop`` in the command) the server
  prints the command's output, then drops the connection (a host dying mid-output).
* ``Sshd``: Debian's OpenSSH ``sshd`` run as the current user on a free loopback port
  with its own host key and authorized_keys file.
* ``hang_server``: accepts TCP connections and never says a word (a host that hangs at
  connect). ``closed_port``: a port where nothing listens (connection refused).

sshd tests skip when sshd is absent, except in CI (CI=true), where they fail loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from core.remote.config import Host
from core.remote.knownhosts import KnownHosts
from core.remote.ssh import SSHPool
from tests.helpers import missing, until

USER = getpass.getuser()


# ------------------------------------------------------------------------------ keys ---
@dataclass
class Keys:
    """A client key (authorized everywhere) and a host key, written to a folder."""

    folder: Path
    client: asyncssh.SSHKey
    client_path: Path
    authorized: Path
    host: asyncssh.SSHKey
    host_path: Path


def make_keys(folder: Path) -> Keys:
    folder.mkdir(parents=True, exist_ok=True)
    client = asyncssh.generate_private_key("ssh-ed25519")
    client_path = folder / "id_ed25519"
    client.write_private_key(str(client_path))
    os.chmod(client_path, 0o600)
    authorized = folder / "authorized_keys"
    client.write_public_key(str(authorized))
    host = asyncssh.generate_private_key("ssh-ed25519")
    host_path = folder / "host_ed25519"
    host.write_private_key(str(host_path))
    os.chmod(host_path, 0o600)
    return Keys(folder, client, client_path, authorized, host, host_path)


def known_line(port: int, key: asyncssh.SSHKey) -> str:
    return f"[127.0.0.1]:{port} {key.export_public_key('openssh').decode().strip()}\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host(name: str, port: int, **kw: Any) -> Host:
    explicit = ("address", "port", "user", *kw.keys())
    return Host(name, address="127.0.0.1", port=port, user=USER, explicit=explicit, **kw)


def make_pool(keys: Keys, known: Path, **kw: Any) -> SSHPool:
    kw.setdefault("connect_timeout", 5.0)
    return SSHPool(known_hosts=KnownHosts(known, system_files=[]), ssh_config=None,
                   client_keys=[str(keys.client_path)], agent_path=None, **kw)


# ---------------------------------------------------------------- in-process server ---
class _Session(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    def __init__(self, server: ExecServer) -> None:
        self._server = server
        self._chan: Any = None
        self._command = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._early = bytearray()  # stdin that came before the process (sshd buffers it)
        self._early_eof = False

    def connection_made(self, chan: Any) -> None:
        self._chan = chan

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def shell_requested(self) -> bool:
        return False

    def session_started(self) -> None:
        self._task = asyncio.ensure_future(self._run())
        self._server.sessions.add(self._task)
        self._task.add_done_callback(self._server.sessions.discard)

    async def _run(self) -> None:
        chan = self._chan
        drop = self._server.drop or "#drop" in self._command
        self._server.commands.append(self._command)
        self._proc = await asyncio.create_subprocess_shell(
            self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
            env={**os.environ, "TEST_SERVER_PORT": str(self._server.port)})
        if self._early and self._proc.stdin is not None:
            self._proc.stdin.write(bytes(self._early))
        if self._early_eof:
            self._close_stdin()

        async def copy(reader: Any, write: Any) -> None:
            while chunk := await reader.read(65536):
                write(chunk)

        try:
            await asyncio.gather(copy(self._proc.stdout, chan.write),
                                 copy(self._proc.stderr, chan.write_stderr))
            code = await self._proc.wait()
        except Exception:
            return
        finally:  # closed now, not by the garbage collector after the test's loop ended
            self._proc._transport.close()  # type: ignore[attr-defined]
        if drop:
            chan.get_connection().abort()
            return
        with contextlib.suppress(Exception):
            if code < 0:
                chan.exit_with_signal(signal.Signals(-code).name.removeprefix("SIG"))
            else:
                chan.exit(code)

    def data_received(self, data: bytes, datatype: Any) -> None:
        if self._proc is None:
            self._early += data
        elif self._proc.stdin is not None:
            with contextlib.suppress(Exception):
                self._proc.stdin.write(data)

    def eof_received(self) -> bool:
        self._early_eof = self._proc is None
        self._close_stdin()
        return True

    def _close_stdin(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(Exception):
                self._proc.stdin.close()

    def _kill(self, sig: int) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)

    def signal_received(self, signame: str) -> None:
        self._server.signals.append(signame)
        self._kill(getattr(signal, f"SIG{signame}", signal.SIGTERM))

    def connection_lost(self, exc: Exception | None) -> None:
        self._close_stdin()  # as sshd does: the command's stdin closes


class _Server(asyncssh.SSHServer):
    def __init__(self, server: ExecServer) -> None:
        self._server = server

    def connection_made(self, conn: Any) -> None:
        self._server.connections += 1

    def session_requested(self) -> Any:
        return _Session(self._server)

    def password_auth_supported(self) -> bool:
        return self._server.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        return password == self._server.password

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> bool:
        self._server.tunnels += 1
        return True  # a jump host: direct-tcpip to the next hop


@dataclass
class ExecServer:
    keys: Keys
    host_key: asyncssh.SSHKey
    port: int = 0
    connections: int = 0
    tunnels: int = 0
    drop: bool = False  # drop the connection after each command's output
    password: str | None = None  # also accept this password (any user)
    commands: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    sessions: set[asyncio.Task[None]] = field(default_factory=set)  # commands running
    _acceptor: Any = None

    async def start(self) -> ExecServer:
        self._acceptor = await asyncssh.create_server(
            lambda: _Server(self), "127.0.0.1", self.port,
            server_host_keys=[self.host_key],
            authorized_client_keys=str(self.keys.authorized),
            allow_scp=False, keepalive_interval=0, encoding=None)
        self.port = self._acceptor.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._acceptor.wait_closed(), 5)
        for task in list(self.sessions):  # a command still running ends with its server
            task.cancel()
        if self.sessions:
            await asyncio.wait(list(self.sessions), timeout=5)


async def start_servers(keys: Keys, n: int, known: Path,
                        host_key: asyncssh.SSHKey | None = None) -> list[ExecServer]:
    """n in-process servers sharing one host key, all trusted in `known`."""
    key = host_key or keys.host
    servers = [await ExecServer(keys, key).start() for _ in range(n)]
    with open(known, "a") as f:
        for s in servers:
            f.write(known_line(s.port, key))
    return servers


@contextlib.asynccontextmanager
async def exec_servers(folder: Path, n: int) -> AsyncIterator[tuple[Keys, Path,
                                                                    list[ExecServer]]]:
    """n in-process servers with fresh keys in `folder`, trusted in `folder`/known:
    (keys, known_hosts, servers), stopped after."""
    keys = make_keys(folder / "keys")
    known = folder / "known"
    servers = await start_servers(keys, n, known)
    try:
        yield keys, known, servers
    finally:
        for s in servers:
            await s.stop()


async def hang_server() -> tuple[asyncio.AbstractServer, int]:
    """Accepts connections and never answers (a host that hangs at connect)."""
    held: list[Any] = []

    async def handle(reader: Any, writer: Any) -> None:
        held.append(writer)
        await asyncio.sleep(3600)  # silent on purpose: the client must time out

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


# --------------------------------------------------------------------- real sshd ---
def sshd_binary() -> str | None:
    found = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd")
                                     else None)
    return found


def require_sshd() -> str:
    """The sshd path; skip when absent, but fail loudly in CI (CI=true)."""
    path = sshd_binary()
    if path is None:
        missing("sshd (openssh-server) is not installed (.ci/run installs it)")
    return path


class Sshd:
    """A real OpenSSH sshd on a loopback port, as the current user."""

    def __init__(self, binary: str, folder: Path, keys: Keys, host_key_path: Path,
                 *, rexec: bool = True, extra_config: str = "",
                 addresses: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.extra_config = extra_config  # more sshd_config lines (e.g. HostCertificate)
        self.rexec = rexec  # False: `sshd -r`, no re-exec per connection (cheaper, benches)
        self.addresses = addresses  # loopback addresses it listens on (sshd takes 16 at most)
        self.binary = binary
        self.folder = folder
        self.keys = keys
        self.host_key_path = host_key_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        self.folder.mkdir(parents=True, exist_ok=True)
        cfg = self.folder / f"sshd_config.{self.port}"
        cfg.write_text(
            f"Port {self.port}\n"
            + "".join(f"ListenAddress {a}\n" for a in self.addresses)
            + f"HostKey {self.host_key_path}\n"
            f"AuthorizedKeysFile {self.keys.authorized}\nStrictModes no\nUsePAM no\n"
            "PidFile none\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nMaxStartups 100:30:200\nMaxSessions 100\n"
            "LogLevel ERROR\nUseDNS no\nSubsystem sftp internal-sftp\n" + self.extra_config)
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        flags = ["-D", "-e"] if self.rexec else ["-D", "-e", "-r"]
        self.proc = subprocess.Popen([self.binary, *flags, "-f", str(cfg)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / f"sshd.{self.port}.log", "wb"))
        proc = self.proc

        def listening() -> bool:
            if proc.poll() is not None:
                log = (self.folder / f"sshd.{self.port}.log").read_text()
                raise RuntimeError(f"sshd exited {proc.returncode}: {log}")
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.addresses[0], self.port), timeout=1) as s:
                return s.recv(4).startswith(b"SSH-")
            return False

        until(listening, "sshd to listen")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
