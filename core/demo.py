"""A simulated fleet on loopback, so that a new user can try fleetdeck with no set-up.

`fleetdeck demo` starts a dozen SSH servers (asyncssh, in a child process) on 127.0.0.1,
one per demo host, and writes an inventory pointing at them. Each server runs the
commands it is given as real local processes, so `uptime`, `df -h` or `ps` give real
output; `hostname` answers the demo host's name. A few hosts are deliberately slow,
one is flaky (some commands fail, some connections drop) and two are down (nothing
listens on their port), so every result class of a fan-out shows up.

Host keys are generated once per demo folder and written to a known_hosts file the
inventory names: host-key verification stays on, as everywhere else. The client key
is the demo folder's own; nothing touches ~/.ssh.

    python -m core.demo serve --dir DIR   # prints "ready CONFIG_PATH", serves until
                                          # stdin closes or SIGINT/SIGTERM
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import random
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from core.demo_live import DemoLive
from core.jobs.groups import popen_group
from core.paths import default_state_dir

READY = "ready"


@dataclass(frozen=True)
class DemoHost:
    name: str
    groups: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    behaviour: str = "ok"  # "ok" | "slow" | "flaky" | "down"
    delay: float = 0.0  # seconds before each command starts (slow hosts)


FLEET: tuple[DemoHost, ...] = (
    DemoHost("web01", ("web",), {"role": "web", "dc": "eu"}),
    DemoHost("web02", ("web",), {"role": "web", "dc": "eu"}),
    DemoHost("web03", ("web",), {"role": "web", "dc": "us"}),
    DemoHost("web04", ("web",), {"role": "web", "dc": "us"}),
    DemoHost("web05", ("web",), {"role": "web", "dc": "us"}, "slow", 2.0),
    DemoHost("db1", ("db",), {"role": "db", "dc": "eu"}),
    DemoHost("db2", ("db",), {"role": "db", "dc": "eu"}, "slow", 4.0),
    DemoHost("db3", ("db",), {"role": "db", "dc": "us"}, "down"),
    DemoHost("cache1", ("cache",), {"role": "cache", "dc": "eu"}),
    DemoHost("cache2", ("cache",), {"role": "cache", "dc": "us"}, "flaky"),
    DemoHost("batch1", ("batch",), {"role": "batch", "dc": "eu"}),
    DemoHost("batch2", ("batch",), {"role": "batch", "dc": "us"}, "down"),
)

FLAKY_FAIL = 0.35  # share of a flaky host's commands that fail or drop


def default_demo_dir() -> Path:
    return default_state_dir() / "demo"


# ------------------------------------------------------------------------ the server ---
class _Session(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    """One exec request: the command runs as a real local process in its own group."""

    def __init__(self, fleet: DemoFleet, host: DemoHost) -> None:
        self._fleet = fleet
        self._host = host
        self._chan: Any = None
        self._command = ""
        self._proc: asyncio.subprocess.Process | None = None
        # what the client sent while a slow host waited to start the command: as sshd,
        # the command gets it (a sudo password; the EOF that is fleetdeck's cancel)
        self._early = bytearray()
        self._early_eof = self._gone = False

    def connection_made(self, chan: Any) -> None:
        self._chan = chan

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def shell_requested(self) -> bool:
        return False

    def session_started(self) -> None:
        self._fleet.spawn(self._run())

    async def _run(self) -> None:
        chan, host = self._chan, self._host
        if host.delay:
            await asyncio.sleep(host.delay)
        if self._gone:  # the client hung up while the host was slow to start
            return
        flaky = host.behaviour == "flaky" and self._fleet.rng.random() < FLAKY_FAIL
        if flaky and self._fleet.rng.random() < 0.5:
            chan.get_connection().abort()  # the host went away mid-command
            return
        self._proc = await asyncio.create_subprocess_shell(
            self._command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, **popen_group(),
            env=self._fleet.env_for(host))
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
        except Exception:  # the channel went away: the process is killed on close
            return
        with contextlib.suppress(Exception):
            if flaky:
                chan.write_stderr(b"demo: flaky host lost the command's result\n")
                chan.exit(1)
            elif code < 0:
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

    def signal_received(self, signame: str) -> None:
        self._kill(getattr(signal, f"SIG{signame}", signal.SIGTERM))

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        self._close_stdin()  # as sshd: stdin closes; fleetdeck's remote wrapper then ends
        self._kill(signal.SIGHUP)

    def _close_stdin(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(Exception):
                self._proc.stdin.close()

    def _kill(self, sig: int) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)


class _Server(asyncssh.SSHServer):
    def __init__(self, fleet: DemoFleet, host: DemoHost) -> None:
        self._fleet, self._host = fleet, host

    def session_requested(self) -> Any:
        return _Session(self._fleet, self._host)


class DemoFleet:
    """The demo hosts' SSH servers and the inventory that points at them."""

    def __init__(self, folder: Path, hosts: tuple[DemoHost, ...] = FLEET,
                 seed: int | None = None) -> None:
        self.folder = Path(folder)
        self.hosts = hosts
        self.rng = random.Random(seed)
        self.ports: dict[str, int] = {}
        self.config_path = self.folder / "config.toml"
        self._servers: list[Any] = []
        self._refusing: list[socket.socket] = []  # the down hosts' ports
        self._tasks: set[asyncio.Task[Any]] = set()
        self._user = getpass.getuser()
        self.live = DemoLive(self.folder, self.rng)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def env_for(self, host: DemoHost) -> dict[str, str]:
        bin_dir = str(self.folder / "bin")
        return {**os.environ, "FLEETDECK_DEMO_HOST": host.name, "HOSTNAME": host.name,
                "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    async def start(self) -> Path:
        """Start every server (down hosts get a port where nothing listens); returns the
        path of the inventory written for them."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        client = self._key("client_ed25519")
        authorized = self.folder / "authorized_keys"
        authorized.write_bytes(client.export_public_key("openssh"))
        self._write_bin()
        known: list[str] = []
        for host in self.hosts:
            if host.behaviour == "down":
                held = _refusing_socket()  # kept: the port is never handed to another
                self._refusing.append(held)
                self.ports[host.name] = held.getsockname()[1]
                continue
            key = self._key(f"host_{host.name}")
            server = await asyncssh.create_server(
                lambda h=host: _Server(self, h), "127.0.0.1", 0, server_host_keys=[key],
                authorized_client_keys=str(authorized), allow_scp=False,
                keepalive_interval=0, encoding=None)
            port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
            self.ports[host.name] = port
            known.append(f"[127.0.0.1]:{port} "
                         f"{key.export_public_key('openssh').decode().strip()}\n")
        _write_private(self.folder / "known_hosts", "".join(known))
        await self.live.start(self.spawn)
        _write_private(self.config_path, self.config_text())
        return self.config_path

    async def stop(self) -> None:
        await self.live.stop()
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []
        for held in self._refusing:
            held.close()
        self._refusing = []
        for task in list(self._tasks):
            task.cancel()

    def _key(self, name: str) -> asyncssh.SSHKey:
        path = self.folder / name
        if path.exists():
            return asyncssh.read_private_key(str(path))
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(str(path))
        os.chmod(path, 0o600)
        return key

    def _write_bin(self) -> None:
        bin_dir = self.folder / "bin"
        bin_dir.mkdir(exist_ok=True)
        script = bin_dir / "hostname"
        script.write_text('#!/bin/sh\necho "${FLEETDECK_DEMO_HOST:-demo}"\n')
        os.chmod(script, 0o755)

    def config_text(self) -> str:
        """The demo inventory and a few jobs that use it, as a commented TOML file."""
        out = [
            "# fleetdeck demo: a simulated fleet of SSH servers on 127.0.0.1, written by",
            "# `fleetdeck demo` (ports change at each start). Slow: web05, db2; flaky:",
            "# cache2; down: db3, batch2. Try a fan-out: `:fanout @web -- uptime`.",
            "",
            "[engine]",
            "max_concurrent_runs = 16",
            "",
            "[defaults]",
            'timeout = "5m"',
            'misfire = "skip"',
            "",
        ]
        key = self.folder / "client_ed25519"
        known = self.folder / "known_hosts"
        for host in self.hosts:
            tags = ", ".join(f'{k} = "{v}"' for k, v in host.tags.items())
            groups = ", ".join(f'"{g}"' for g in host.groups)
            out += [
                f"[hosts.{host.name}]",
                'address = "127.0.0.1"',
                f"port = {self.ports[host.name]}",
                f'user = "{self._user}"',
                f"groups = [{groups}]",
                f"tags = {{ {tags} }}",
                f'identity_file = "{key}"',
                f'known_hosts = "{known}"',
                "",
            ]
        out += [
            "[checks.system]",
            'description = "Metrics of every demo host, read over SSH (/proc and df)."',
            'kind = "metrics"',
            'targets = "*"',
            'interval = "10s"',
            'timeout = "8s"',
            "",
            "[checks.web-ssh]",
            'description = "Is sshd answering on the web tier?"',
            'kind = "ssh"',
            'targets = "@web"',
            'interval = "15s"',
            "",
            "[jobs.heartbeat]",
            'description = "Proves fleetdeck is alive: one line every 30 seconds."',
            "command = 'echo \"heartbeat from $(uname -n) at $(date +%H:%M:%S)\"'",
            'schedule = "every 30s"',
            'timeout = "10s"',
            "",
            "[jobs.web-uptime]",
            'description = "Load of the web tier, every minute, one run per host."',
            'command = "uptime"',
            'targets = "@web"',
            'schedule = "every 1m"',
            'timeout = "30s"',
            "",
            "[jobs.db-disk]",
            'description = "Disk usage on the databases (db3 is down: its run fails)."',
            'command = "df -h /"',
            'targets = "@db"',
            'schedule = "every 5m"',
            'timeout = "30s"',
            "",
            "[jobs.cache-check]",
            'description = "Talks to the flaky cache host: failures and retries."',
            'command = "hostname && echo cache ok"',
            'targets = "role=cache"',
            'schedule = "every 2m"',
            'timeout = "20s"',
            "retries = 2",
            'retry_backoff = "5s"',
            "",
        ]
        alive = {h.name for h in self.hosts if h.behaviour != "down"}
        return "\n".join(out + self.live.config_lines(alive))


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _refusing_socket() -> socket.socket:
    """A loopback port where nothing listens, held for the fleet's life: a bound socket
    that does not listen refuses every connection (a released port went, under load,
    to one of the demo's own servers, and the "down" host answered)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


# ---------------------------------------------------------------------- the process ---
async def serve(folder: Path, *, seed: int | None = None) -> None:
    """Run the fleet until stdin closes (the parent is gone) or SIGINT/SIGTERM."""
    fleet = DemoFleet(folder, seed=seed)
    config = await fleet.start()
    print(f"{READY} {config}", flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    if not sys.stdin.isatty():  # a parent's pipe: its end closing means stop
        loop.add_reader(sys.stdin.fileno(), lambda: done.set() if not os.read(
            sys.stdin.fileno(), 4096) else None)
    try:
        await done.wait()
    finally:
        await fleet.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.demo")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the demo fleet")
    s.add_argument("--dir", type=Path, default=None, help="demo folder (keys, config)")
    s.add_argument("--seed", type=int, default=None, help="seed for the flaky host")
    args = p.parse_args(argv)
    asyncio.run(serve(args.dir or default_demo_dir(), seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
