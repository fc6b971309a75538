"""StateLock: one engine per state directory, a clear error naming the holder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.store import StateLock, StateLocked

ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent("""
    import sys, time
    from core.store import StateLock
    lock = StateLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(120)  # holds the lock until the test kills it (or gives up on its own)
""")


def start_holder(state_dir: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_dir)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_engine_gets_an_error_naming_the_holder(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    child = start_holder(state_dir)
    try:
        with pytest.raises(StateLocked) as err:
            StateLock(state_dir).acquire()
        assert err.value.pid == child.pid
        assert str(err.value) == (f"state directory {state_dir} is in use by fleetdeck "
                                  f"(pid {child.pid})")
        assert "\n" not in str(err.value)
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    # the kernel released the dead holder's flock: the file it left is taken over
    with StateLock(state_dir) as lock:
        assert lock.held
        assert (state_dir / "engine.lock").read_text().strip() == str(os.getpid())
    assert not lock.held


def test_lock_file_and_directory_are_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "a" / "state"
    with StateLock(state_dir):
        assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(state_dir / "engine.lock").st_mode) == 0o600


def test_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    first = StateLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(StateLocked) as err:
            StateLock(tmp_path).acquire()
        assert err.value.pid == os.getpid()
    finally:
        first.release()
    with StateLock(tmp_path):  # released: free again
        pass


def test_stale_pid_in_the_file_does_not_block(tmp_path: Path) -> None:
    (tmp_path / "engine.lock").write_text("999999\n")
    lock = StateLock(tmp_path)
    lock.acquire()
    assert (tmp_path / "engine.lock").read_text() == f"{os.getpid()}\n"
    lock.release()
    assert (tmp_path / "engine.lock").read_text() == ""  # no stale pid left behind
    lock.release()  # twice is harmless


def test_a_status_probe_never_makes_a_starting_engine_fail(tmp_path: Path) -> None:
    """`fleetdeck status` probes the lock with a shared lock held for microseconds; an
    engine taking the state at that moment was refused ("pid unknown"). It tries again
    for a moment; a real holder is still refused."""
    from core.store.lock import LOCK_NAME, lock_holder

    first = StateLock(tmp_path)
    first.acquire()  # the lock file exists; then it is free
    first.release()
    # a probe caught in the act: a shared lock let go 5 ms later (a process, not a
    # thread: a timed thread wait can hang under faketime)
    probe = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(tmp_path / LOCK_NAME)!r}, os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)\n"
        "print('held', flush=True)\n"
        "time.sleep(0.005)\n"
        "fcntl.flock(fd, fcntl.LOCK_UN)\n")], stdout=subprocess.PIPE, text=True)
    lock = StateLock(tmp_path)
    try:
        assert probe.stdout is not None and probe.stdout.readline() == "held\n"
        lock.acquire()  # refused at once before
        assert lock_holder(tmp_path) == os.getpid()
    finally:
        probe.wait(60)
        lock.release()
