"""What the tests share: waiting on a condition (never a fixed sleep), configs built in
code, an event recorder, the console as Pilot tests build it, a real `fleetdeck daemon`
started and stopped, and a look at what a process has open.

Fixtures live in conftest.py; this module holds plain functions and classes, imported
by name (``from tests.helpers import until``).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from core.events import CheckChanged, Event
from core.fleetconfig import Config
from core.jobs.config import EngineSettings, Job, RetryPolicy
from core.remote.config import Host

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
FLEETDECK = [sys.executable, "-m", "tui.cli"]

# A wait's timeout only catches a hang: a test that works never waits this long, however
# busy the machine is.
WAIT = 60.0

# The fixed clock of the snapshots (and of seeded state shown with them).
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()


# ------------------------------------------------------------------- what is here ---
def missing(problem: str) -> NoReturn:
    """Skip a test this machine cannot run (`problem` says why), but fail it in CI
    (CI=true): .ci/run installs and grants everything the tests need, so there a skip
    would hide a broken set-up."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {problem}")
    pytest.skip(problem)


def require_tool(name: str, package: str) -> str:
    """The path of a program a test runs, from Debian's `package`."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} ({package}) is not installed (.ci/run installs it)")
    return path


# ------------------------------------------------------------------------- waiting ---
def _timed_out(what: str | Callable[[], str], timeout: float, last: object) -> AssertionError:
    text = what() if callable(what) else what
    shown = repr(last)
    if len(shown) > 300:
        shown = shown[:300] + "…"
    return AssertionError(f"timed out after {timeout:g}s waiting for {text} (last: {shown})")


def until(predicate: Callable[[], T], what: str | Callable[[], str], timeout: float = WAIT,
          interval: float = 0.05) -> T:
    """Call ``predicate`` until it returns something true, and return that; fail after
    ``timeout`` seconds, naming ``what`` was awaited (a string, or a function giving one
    that can tell how things stand)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        time.sleep(interval)


async def until_async(predicate: Callable[[], Any], what: str | Callable[[], str],
                      timeout: float = WAIT, interval: float = 0.02,
                      pause: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> Any:
    """``until`` inside an event loop: the loop runs on between looks. The predicate may
    be a coroutine function (e.g. a question to the daemon)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        await pause(interval)


async def pilot_until(pilot: Any, predicate: Callable[[], T], what: str | Callable[[], str],
                      timeout: float = WAIT) -> T:
    """``until_async`` for a Pilot test: between looks the app handles what is pending
    (``pilot.pause``), so screens update as they would for a person."""
    return await until_async(predicate, what, timeout, interval=0.05, pause=pilot.pause)


# ------------------------------------------------------------------ configs, events ---
def make_config(*jobs: Job, max_concurrent_runs: int = 16, **engine: object) -> Config:
    return Config(
        path=None,
        hosts={"local": Host("local")},
        jobs={j.name: j for j in jobs},
        engine=EngineSettings(max_concurrent_runs=max_concurrent_runs, **engine),  # type: ignore[arg-type]
    )


def log_config(path: Path, name: str = "api") -> Config:
    """No jobs, one log source following `path` (made empty)."""
    from core.logs.sources import SourceSpec

    path.write_text("")
    return Config(path=None, hosts={"local": Host("local")}, jobs={}, engine=EngineSettings(),
                  sources={name: SourceSpec(name, path=str(path))})


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

    async def wait_for(self, pred: Callable[[Event], bool], timeout: float = WAIT) -> Event:
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


def cli_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose XDG dirs point into the test's own folder."""
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    env["PYTHONPATH"] = str(ROOT)
    env.pop("NO_COLOR", None)
    env["COLUMNS"] = "200"
    return env


# ------------------------------------------------------------------- the console ---
def console_app(config: Config, state_dir: Path, *, scheduling: bool = False,
                theme: str = "dark", **kw: Any) -> Any:
    """The console as Pilot tests run it: nothing scheduled (a test starts what runs) and
    the dark theme whatever the environment says (over SSH the default would be ansi)."""
    from tui.app import FleetdeckApp

    return FleetdeckApp(config, state_dir, scheduling=scheduling, theme=theme, **kw)


async def ready(pilot: Any) -> Any:
    """The app once its engine runs and the screen has caught up."""
    app = pilot.app
    await pilot_until(pilot, lambda: app.engine_ready, "the engine to start")
    await pilot.pause()
    return app


def notices(app: Any) -> list[str]:
    return [n.message for n in app._notifications]  # noqa: SLF001


def rows(table: Any) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def column(table: Any, index: int) -> list[str]:
    return [r[index] for r in rows(table)]


async def command(pilot: Any, line: str, *, typed: bool = False) -> None:
    """A `:` command line given to the console: `:` opens the prompt, the line goes in,
    Enter runs it. The line is put in the field at once (typing it key by key costs a
    second a line under Pilot); `typed=True` types it, as the prompt's own tests do."""
    from textual.widgets import Input

    from tui.screens.dialogs import CommandLineScreen

    await pilot.press("colon")
    assert isinstance(pilot.app.screen, CommandLineScreen)
    text = line.removeprefix(":")
    if typed:
        await pilot.press(*keys(text))
    else:
        field = pilot.app.screen.query_one(Input)
        field.value = field.value + text
        field.cursor_position = len(field.value)
        await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


def keys(text: str) -> list[str]:
    """Key names that type ``text``."""
    return ["space" if ch == " " else ch for ch in text]


# ------------------------------------------------------------------- the daemon ---
DAEMON_CONFIG = """
[jobs.hello]
command = "echo hello from the daemon"

[jobs.chatty]
command = "seq 1 40000"
"""

_outputs = itertools.count(1)


class DaemonProcess(subprocess.Popen):  # type: ignore[type-arg]
    """A `fleetdeck daemon` process; what it printed is in two files."""

    out_path: Path
    err_path: Path

    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def running(self) -> bool:
        """True once it says it runs (socket, services and file watch set up); an
        AssertionError if it exited first."""
        if f"fleetdeck engine running (pid {self.pid})" in self.out():
            return True
        if self.poll() is not None:
            raise AssertionError(f"the daemon exited ({self.returncode}) before it ran:\n"
                                 f"{self.out()}{self.err()}")
        return False


def start_daemon(cfg: Path, state: Path, env: dict[str, str], *extra: str,
                 quiet: bool = True, options: Sequence[str] = (),
                 wait: bool = True) -> DaemonProcess:
    """``fleetdeck --config CFG --state-dir STATE [options] daemon [--quiet] [extra]``,
    returned once it says it runs (``wait=False``: at once; wait on ``running`` then).
    Its stdout and stderr go to files of their own beside the config, in a folder the
    config's file watch does not look into (a pipe nobody reads would block it)."""
    folder = cfg.parent / "daemon-output"
    folder.mkdir(exist_ok=True)
    n = next(_outputs)
    out_path = folder / f"{state.name}.{n}.out"
    err_path = folder / f"{state.name}.{n}.err"
    args = [*FLEETDECK, "--config", str(cfg), "--state-dir", str(state), *options,
            "daemon", *(["--quiet"] if quiet else []), *extra]
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = DaemonProcess(args, env=env, stdout=out, stderr=err)
    proc.out_path, proc.err_path = out_path, err_path
    if wait:
        try:
            until(proc.running, "the daemon to start")
        except AssertionError:
            stop_daemon(proc)
            raise
    return proc


def stop_daemon(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """SIGTERM, then SIGKILL if it does not stop; harmless if it is gone already. The
    wait only catches a hang: a cluster worker alone may take 10 s for its runs to end
    and 10 s more to report them before the engine stops (systemd's unit allows 90)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------- open files (Linux) ---
def has_open(path: Path, pid: int | str = "self") -> bool:
    """Whether process ``pid`` has ``path`` open (it follows it, reads it)."""
    target = str(path)
    folder = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(folder)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"{folder}/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def opened_anywhere(path: Path) -> bool:
    """Whether any process of this user has ``path`` open (e.g. a `tail -F` that a
    test's SSH server started)."""
    return any(has_open(path, pid) for pid in os.listdir("/proc") if pid.isdigit())


def inotify_watches(pid: int | str = "self") -> set[int]:
    """The inodes that process ``pid`` watches with inotify."""
    inodes: set[int] = set()
    folder = f"/proc/{pid}/fdinfo"
    try:
        fds = os.listdir(folder)
    except OSError:
        return inodes
    for fd in fds:
        try:
            with open(f"{folder}/{fd}") as f:
                for line in f:
                    if line.startswith("inotify wd:"):
                        field = next(p for p in line.split() if p.startswith("ino:"))
                        inodes.add(int(field[4:], 16))
        except (OSError, StopIteration):
            continue
    return inodes


def check_down(check: str, target: str, detail: str = "", severity: str = "crit", *,
               old: str = "up", new: str = "down", cause: str | None = None,
               at: float | None = None) -> CheckChanged:
    """A check's state change as the health monitor publishes it (down by default)."""
    return CheckChanged(check, target, old, new, time.time() if at is None else at, detail,
                        severity, *(() if cause is None else (cause,)))


def issues_of(tmp_path: Path, text: str) -> list[str]:
    """check-config's issues for a config text, without the file's name before the line."""
    from core.fleetconfig import check_config

    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return [str(i).removeprefix(f"{path}:") for i in check_config(path)]
