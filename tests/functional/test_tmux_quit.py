"""Quitting in a real terminal (tmux, 80x24 and 160x48): `q` with a run in flight asks,
and each answer does what it says; the history afterwards holds no failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FLEETDECK, ROOT, cli_env
from tests.tmux import TERMINALS, Tmux, look


@pytest.fixture
def console(tmp_path):
    gate = tmp_path / "gate"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[jobs.long]\ncommand = "echo up; while [ ! -e {gate} ]; do sleep 0.05; '
                   'done"\n')
    state = tmp_path / "state"
    made = []

    def start(size: tuple[int, int], name: str) -> Tmux:
        args, extra = look(name)
        env = {k: v for k, v in cli_env(tmp_path).items()
               if k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "PYTHONPATH", "PATH", "HOME")}
        t = Tmux(tmp_path, *size, env={**env, **extra})
        made.append(t)
        t.start([sys.executable, "-m", "tui.cli", "--config", str(cfg), "--state-dir",
                 str(state), *args], cwd=ROOT)
        t.wait_for("Overview", "the console")
        return t

    yield start, gate, cfg, state
    for t in made:
        t.stop()


def history(tmp_path, cfg, state) -> list[dict]:
    out = subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                          "runs", "--json"], capture_output=True, text=True, timeout=60,
                         env=cli_env(tmp_path))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_stuck_console_tells_where_it_is(console, tmp_path):
    """SIGUSR1: every thread's Python stack, written to the state directory."""
    import signal
    import time

    start, _gate, _cfg, state = console
    start((80, 24), "dark")
    [pid] = console_pids(state)
    os.kill(pid, signal.SIGUSR1)
    stacks = state / "console-stacks.txt"
    deadline = time.monotonic() + 60
    # the dump is written thread by thread: wait for it to reach Textual's frames
    while time.monotonic() < deadline and "textual" not in (
            stacks.read_text() if stacks.exists() else ""):
        time.sleep(0.05)
    text = stacks.read_text()
    assert "Thread 0x" in text and "textual" in text, text  # every thread, Textual's too


def console_pids(state: Path) -> list[int]:
    """The consoles on this state directory (not the tmux server whose command line
    names them too). `--` first: the pattern starts with a dash, which pgrep would
    otherwise take for an option (and find nothing)."""
    out = subprocess.run(["pgrep", "-f", "--", f"--state-dir {state} "], capture_output=True,
                         text=True)
    pids = []
    for p in out.stdout.split():
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if b"tui.cli" in argv:
            pids.append(int(p))
    return pids


def run_long(t: Tmux) -> None:
    t.type(":run long")
    t.keys("Enter")
    t.wait_for("1 running", "the run in the status bar")


@pytest.mark.parametrize(("size", "name"), TERMINALS)
def test_quit_then_cancel(console, tmp_path, size, name):
    start, _gate, cfg, state = console
    t = start(size, name)
    run_long(t)
    t.keys("q")
    t.wait_for("1 run in flight", "the question")
    t.keys("c")
    t.wait_for(lambda s: t.exited(), "the console to exit")
    [run] = history(tmp_path, cfg, state)
    assert run["state"] == "cancelled" and run["reason"].endswith("when the console quit")


@pytest.mark.parametrize(("size", "name"), TERMINALS)
def test_quit_then_wait(console, tmp_path, size, name):
    start, gate, cfg, state = console
    t = start(size, name)
    run_long(t)
    t.keys("q")
    t.wait_for("1 run in flight", "the question")
    t.keys("w")
    t.wait_for("waiting for", "the waiting notice")
    assert not t.exited()
    gate.touch()
    t.wait_for(lambda s: t.exited(), "the console to exit once the run ended")
    [run] = history(tmp_path, cfg, state)
    assert run["state"] == "succeeded"


@pytest.mark.parametrize(("size", "name"), TERMINALS)
def test_quit_then_stay(console, tmp_path, size, name):
    start, gate, cfg, state = console
    t = start(size, name)
    run_long(t)
    t.keys("q")
    t.wait_for("1 run in flight", "the question")
    t.keys("Escape")
    t.wait_for(lambda s: "in flight" not in s, "the question gone")
    gate.touch()
    t.wait_for("0 running", "the run ended")
    t.keys("q")
    t.wait_for(lambda s: t.exited(), "quit at once: nothing in flight")
    [run] = history(tmp_path, cfg, state)
    assert run["state"] == "succeeded"


@pytest.mark.parametrize(("size", "name"), TERMINALS)
def test_a_closed_terminal_stops_the_engine_and_leaves_no_run_behind(console, tmp_path, size,
                                                                       name):
    """The terminal goes (an SSH session drops): SIGHUP. Nobody can answer a question, so
    the console stops as a quit does: the run is recorded cancelled, its process gone."""
    import time

    start, _gate, cfg, state = console
    t = start(size, name)
    run_long(t)
    [run] = history(tmp_path, cfg, state)
    t.stop()  # tmux kill-server: the pane's process gets SIGHUP
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        [run] = history(tmp_path, cfg, state)
        if run["state"] != "running":
            break
        time.sleep(0.1)
    assert run["state"] == "cancelled" and run["reason"] == "fleetdeck was stopped while it ran"
    out = subprocess.run(["pgrep", "-f", f"while \\[ ! -e {tmp_path}/gate"], capture_output=True,
                         text=True)
    assert out.stdout.strip() == ""  # no process of the run left

    def console_alive() -> bool:  # the console itself ends too: nothing left behind
        return bool(console_pids(state))

    deadline = time.monotonic() + 60
    while console_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not console_alive()
