"""Quitting in a real terminal (tmux, 80x24 and 160x48): `q` with a run in flight asks,
and each answer does what it says; the history afterwards holds no failure. A console
that runs its own engine is two processes (tui/handoff.py): the one the shell started,
which waits, and the console itself."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FLEETDECK, ROOT, cli_env, until
from tests.tmux import TERMINALS, Tmux, look


@pytest.fixture
def console(tmp_path):
    gate = tmp_path / "gate"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[jobs.long]\ncommand = "echo up; while [ ! -e {gate} ]; do sleep 0.05; '
                   'done"\n')
    state = tmp_path / "state"
    made = []

    def start(size: tuple[int, int], name: str, keep_status: bool = False) -> Tmux:
        """`keep_status`: the exit status is written to <tmp>/status (tmux 3.3a's own
        #{pane_dead_status} is at times never set)."""
        args, extra = look(name)
        env = {k: v for k, v in cli_env(tmp_path).items()
               if k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "PYTHONPATH", "PATH", "HOME")}
        t = Tmux(tmp_path, *size, env={**env, **extra})
        made.append(t)
        argv = [sys.executable, "-m", "tui.cli", "--config", str(cfg), "--state-dir",
                str(state), *args]
        if keep_status:
            argv = ["sh", "-c", f'"$@"; echo $? > {tmp_path / "status"}', "sh", *argv]
        t.start(argv, cwd=ROOT)
        # the engine ready (the status bar counts runs): a `:run` typed before it is
        # refused with a notice, which a test waiting for the run would miss
        t.wait_for("queued", "the console with its engine ready")
        return t

    yield start, gate, cfg, state
    for t in made:
        t.stop()
    left = console_pids(state)  # a daemon a console handed its runs to
    for pid in left:  # SIGTERM: its runs are ended with it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if left:
        until(lambda: not console_pids(state), "the daemon to stop")


def history(tmp_path, cfg, state) -> list[dict]:
    out = subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                          "runs", "--json"], capture_output=True, text=True, timeout=60,
                         env=cli_env(tmp_path))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_stuck_console_tells_where_it_is(console, tmp_path):
    """SIGUSR1: every thread's Python stack, written to the state directory. Sent to
    the process the shell started, which passes it on to the console."""
    import stat
    import time

    start, _gate, _cfg, state = console
    start((80, 24), "dark")
    pids = console_pids(state)
    [waiting] = [p for p in pids if parent_of(p) not in pids]
    os.kill(waiting, signal.SIGUSR1)
    stacks = state / "console-stacks.txt"
    deadline = time.monotonic() + 60
    # the dump is written thread by thread: wait for it to reach Textual's frames
    while time.monotonic() < deadline and "textual" not in (
            stacks.read_text() if stacks.exists() else ""):
        time.sleep(0.05)
    text = stacks.read_text()
    assert "Thread 0x" in text and "textual" in text, text  # every thread, Textual's too
    assert stat.S_IMODE(stacks.stat().st_mode) == 0o600
    assert sorted(console_pids(state)) == sorted(pids)  # both alive: nothing ended


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


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


@pytest.mark.parametrize(("size", "name"), TERMINALS)
def test_quit_then_hand_to_a_daemon(console, tmp_path, size, name):
    """`d`: the shell gets its prompt back, the run goes on in a daemon that the next
    launch attaches to, and it ends as it would have: succeeded, its output kept."""
    import re

    start, gate, cfg, state = console
    t = start(size, name, keep_status=True)
    run_long(t)
    t.keys("q")
    t.wait_for("hand them to a background daemon", "the hand-off choice")
    t.keys("d")
    t.wait_for(lambda s: t.exited(), "the console to give the terminal back")
    shown = t.scrollback()
    assert (tmp_path / "status").read_text().strip() == "0"
    flat = " ".join(shown.split())
    assert "1 run in flight (1 running) handed to a background daemon" in flat, shown
    daemon = int(re.search(r"\(pid (\d+)\)", flat).group(1))
    assert console_pids(state) == [daemon]  # the shell's process ended, the daemon goes on
    [run] = history(tmp_path, cfg, state)
    assert run["state"] == "running"

    again = start(size, name)  # the next launch attaches
    again.wait_for(f"attached to pid {daemon}", "the console attached to the daemon")
    gate.touch()
    [run] = until(lambda: [r for r in history(tmp_path, cfg, state) if r["state"] != "running"],
                  "the run to end")
    assert run["state"] == "succeeded" and run["exit_code"] == 0, run
    out = subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state), "logs",
                          str(run["id"])], capture_output=True, text=True, timeout=60,
                         env=cli_env(tmp_path))
    assert out.stdout.splitlines()[:1] == ["up"], out
    again.keys("q")  # attached: quits at once, the daemon stays
    again.wait_for(lambda s: again.exited(), "the attached console to quit")
    assert console_pids(state) == [daemon]

    os.kill(daemon, signal.SIGTERM)  # `kill PID` stops it, as the line said
    until(lambda: not console_pids(state), "the daemon to stop")
