"""Shared fixtures: real state directories, engines that stop, a real daemon, the
process in UTC. The helpers they use (and tests import) are in tests/helpers.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from core.fleetconfig import Config
from core.jobs.engine import Engine
from tests.fanout_console import console_fleet, fanout_app  # noqa: F401 - fixtures

# FLEETDECK, ROOT, cli_env, job and make_config are re-exported: tests imported them from
# here before tests/helpers.py held them
from tests.helpers import (  # noqa: F401
    DAEMON_CONFIG,
    FLEETDECK,
    ROOT,
    DaemonProcess,
    Recorder,
    cli_env,
    job,
    make_config,
    missing,
    start_daemon,
    stop_daemon,
)


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


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A folder on its own 256 KiB tmpfs: a disk a test can fill (mounting needs root,
    which CI has: there, not being root fails the test instead of skipping it)."""
    import os
    import subprocess

    if os.geteuid() != 0:
        missing("a full-disk test needs root to mount a tmpfs")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(small)],
                   check=True)
    try:
        yield small
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[DaemonProcess, Path, Path, dict[str, str]]]:
    """A real `fleetdeck daemon` on DAEMON_CONFIG (jobs hello and chatty), running:
    (process, config path, state dir, environment)."""
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(DAEMON_CONFIG)
    state = tmp_path / "state"
    env = cli_env(tmp_path)
    proc = start_daemon(cfg, state, env)
    yield proc, cfg, state, env
    stop_daemon(proc)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process in UTC (snapshots show times of day)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
