"""The one place that decides which engine a command talks to: the daemon's, over its
control socket, when one runs on the state directory; otherwise one of this process's
own, started without scheduling (the schedule is a daemon's or a console's)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from core.control.client import DaemonError, call
from core.control.protocol import socket_path
from core.jobs.engine import Engine
from core.services import attach_services
from core.store import StateLocked


async def running_daemon(state_dir: Path) -> int | None:
    """The pid of the daemon answering on this state directory's socket, or None."""
    if not socket_path(state_dir).exists():
        return None
    try:
        return (await call(state_dir, "ping", timeout=5.0))["pid"]
    except (TimeoutError, OSError, DaemonError, ValueError, KeyError, TypeError):
        return None


async def open_engine(config: Any, state_dir: Path, *, services: tuple[str, ...] = ("alerts",),
                      deliver: bool = False) -> Any:
    """An engine API, started: the daemon's if one runs here, else this process's own
    with `services` attached (alerts by default, so a failed run opens its alert;
    `deliver=False` leaves notifications to the next long-lived engine). `stop()` it."""
    pid = await running_daemon(state_dir)
    if pid is None:
        engine = Engine(config, state_dir)
        attach_services(engine, services, deliver=deliver)
        try:
            await engine.start(scheduling=False)
            return engine
        except StateLocked:  # a daemon took the state directory meanwhile
            for _ in range(50):
                pid = await running_daemon(state_dir)
                if pid is not None:
                    break
                await asyncio.sleep(0.1)
            if pid is None:
                raise
    from core.control.attached import AttachedEngine  # only when a daemon runs here

    attached = AttachedEngine(config, state_dir, pid)
    await attached.start()
    return attached
