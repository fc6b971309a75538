"""One engine per state directory: an exclusive flock on ``state_dir/engine.lock``."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from core.store.storage import FILE_MODE, named, private_dir

LOCK_NAME = "engine.lock"

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class StateLocked(Exception):
    """Another live process holds the state directory."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"state directory {state_dir} is in use by fleetdeck ({who})")
        self.state_dir = state_dir
        self.pid = pid


class StateLock:
    """Exclusive, non-blocking ownership of a state directory.

    The kernel drops a flock when its holder dies, so a lock file left behind by a
    dead process is simply taken over. The file is never unlinked (unlinking would
    let two processes lock two different inodes of the same name). The descriptor is
    close-on-exec, so the run processes an engine spawns never inherit the lock.
    """

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        private_dir(self.state_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC, FILE_MODE)
        try:
            _lock_exclusive(fd)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StateLocked(self.state_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.fchmod(fd, FILE_MODE)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException as e:
            os.close(fd)  # closing releases the flock
            if isinstance(e, OSError):
                raise named(e, self.path) from None  # a full disk: which file, in words
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # no stale pid for the next reader
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the flock

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _lock_exclusive(fd: int) -> None:
    """LOCK_EX, tried again for up to 200 ms: `lock_holder` (a `fleetdeck status` a
    monitor runs every few seconds) holds a shared lock for microseconds, and an engine
    starting just then must not be refused for it. A real holder is still refused."""
    for _ in range(40):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.005)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def lock_holder(state_dir: Path | str) -> int | None:
    """The pid holding the state directory (0 when its pid cannot be read), or None when
    no process does: a shared lock tried and let go at once, as `flock -n` probes."""
    try:
        fd = os.open(Path(state_dir) / LOCK_NAME, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError:
        return None  # never locked (or not a state directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or 0
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    """The holder's pid; it may still be writing it, so look again briefly."""
    for _ in range(20):
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return None
