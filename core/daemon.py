"""The daemon: the engine with every service its config asks for, the control socket,
live reload (SIGHUP, `fleetdeck reload`, the file changing) and, when asked, Prometheus
metrics. `fleetdeck daemon` runs one until SIGINT/SIGTERM; what it prints is the CLI's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from core.api import Actor
from core.control.server import ControlServer
from core.jobs.active import EngineError
from core.jobs.engine import Engine
from core.reload import Reloader
from core.services import attach_services


class StartError(Exception):
    """The daemon cannot start as configured; one line for a person."""


def sd_notify(where: str | None, state: str) -> None:
    """Tell systemd (a Type=notify unit's $NOTIFY_SOCKET) how the daemon stands: READY=1
    once it holds the state and serves, so `systemctl start` waits for that and reports
    a start that failed; STOPPING=1 when it stops. Nothing without the socket."""
    if not where or not where.startswith(("/", "@")):
        return
    address = "\0" + where[1:] if where.startswith("@") else where  # @: abstract
    with contextlib.suppress(OSError), \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.sendto(state.encode(), address)


class Daemon:
    def __init__(self, config: Any, state_dir: Path, *, metrics_at: str | None = None,
                 engine: Engine | None = None) -> None:
        """`engine`: one already running with its services (a console handing its runs
        over as it quits); the daemon serves it from then on."""
        self.adopted = engine is not None
        # systemd's, not the runs': a job's own sd_notify must not speak for the daemon
        self.notify_socket = os.environ.pop("NOTIFY_SOCKET", None)
        if engine is None:
            engine = Engine(config, state_dir)
            attach_services(engine)
        self.engine = engine
        self.reloader = Reloader(self.engine, config.path)
        self.engine.reloader = self.reloader
        self.control = ControlServer(self.engine)
        self.approvals: ControlServer | None = None
        shared = config.engine.approvals_socket
        if shared:  # other users approve workflow steps through it
            self.approvals = ControlServer(
                self.engine, path=Path(shared), group=config.engine.approvals_group,
                only=frozenset({"ping", "list_approvals", "approve", "reject"}))
        self.metrics_at = metrics_at
        self.metrics: Any = None
        self.metrics_address: tuple[str, int] | None = None

    async def start(self) -> None:
        """Take the state directory and start serving (OSError: the metrics address)."""
        if not self.adopted:
            await self.engine.start()
        if self.engine.alerts is not None:
            self.engine.alerts.resolve_gone_checks(self.engine.config)
        await self.control.start()
        if self.approvals is not None:
            try:
                await self.approvals.start()
            except OSError as e:
                await self.stop()
                raise StartError(f"[engine] approvals_socket {self.approvals.path}: "
                                 f"{e.strerror or e}") from None
        self.reloader.watch()
        if self.metrics_at:
            from core.metrics import Metrics

            self.metrics = Metrics(self.engine)
            try:
                self.metrics_address = self.metrics.serve(self.metrics_at)
            except OSError:
                self.metrics = None
                await self.stop()
                raise
        sd_notify(self.notify_socket,
                  f"READY=1\nMAINPID={os.getpid()}\nSTATUS=serving {self.control.path}")

    def reload_on_signal(self) -> None:
        """SIGHUP: reload as the daemon's own user; a rejection is already a notice, an
        audit row and a log line."""
        async def reload() -> None:
            with contextlib.suppress(EngineError):
                await self.reloader(Actor.local("SIGHUP"))

        asyncio.ensure_future(reload())

    async def stop(self) -> None:
        sd_notify(self.notify_socket, "STOPPING=1")
        self.reloader.stop()
        if self.metrics is not None:
            self.metrics.stop()
        await self.control.stop()
        if self.approvals is not None:
            await self.approvals.stop()
        await self.engine.stop()
