"""Shared fixtures: real state directories, configs built in code, engines that stop."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from core.events import Event
from core.fleetconfig import Config
from core.jobs.config import EngineSettings, Job, RetryPolicy
from core.jobs.engine import Engine
from core.remote.config import Host

ROOT = Path(__file__).resolve().parent.parent
FLEETDECK = [sys.executable, "-m", "tui.cli"]


def make_config(*jobs: Job, max_concurrent_runs: int = 16, **engine: object) -> Config:
    return Config(
        path=None,
        hosts={"local": Host("local")},
        jobs={j.name: j for j in jobs},
        engine=EngineSettings(max_concurrent_runs=max_concurrent_runs, **engine),  # type: ignore[arg-type]
    )


def job(name: str, command: str, **kw: object) -> Job:
    retries = kw.pop("retries", 0)
    backoff = kw.pop("backoff", 0.05)
    kw.setdefault("kill_grace", 1.0)
    return Job(name=name, command=command,
               retry=RetryPolicy(retries=retries, backoff=backoff, jitter=0.0),  # type: ignore[arg-type]
               **kw)  # type: ignore[arg-type]


class Recorder:
    """Collects events from a bus; waits for the one a test needs."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    async def wait_for(self, pred: Callable[[Event], bool], timeout: float = 30) -> Event:
        async def scan() -> Event:
            seen = 0
            while True:
                for e in self.events[seen:]:
                    if pred(e):
                        return e
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def start_engine(state_dir: Path) -> AsyncIterator[Callable[..., object]]:
    engines: list[Engine] = []

    async def start(config: Config, *, scheduling: bool = True, directory: Path | None = None,
                    before_start: Callable[[Engine], object] | None = None,
                    **kw: object) -> tuple[Engine, Recorder]:
        engine = Engine(config, directory or state_dir, **kw)  # type: ignore[arg-type]
        rec = Recorder()
        engine.bus.subscribe(rec)
        if before_start is not None:
            before_start(engine)  # attach services, subscribe: before anything happens
        await engine.start(scheduling=scheduling)
        engines.append(engine)
        return engine, rec

    yield start
    for e in engines:
        await e.stop()


def cli_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose XDG dirs point into the test's own folder."""
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    env["PYTHONPATH"] = str(ROOT)
    env.pop("NO_COLOR", None)
    env["COLUMNS"] = "200"
    return env
