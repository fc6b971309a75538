"""Follow files as `tail -F` does: survive rotation by rename and by truncation, wait
for files that do not exist yet, and (for a glob) pick up files as they appear.

``Follower`` reads one path; ``GlobFollower`` keeps a Follower per matching file. Both
hand complete lines (bytes, without the newline) to a callback in batches: a busy log is
read in large chunks, a quiet one is looked at every ``poll`` seconds (tail -F's own
fallback). A new file is read from its start; the file that is there when following
begins is read from its end (``from_start=False``), as `tail -F -n0` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob as globmod
import os
from collections.abc import Callable

CHUNK = 1 << 20
MAX_LINE = 1 << 20  # a line longer than this is cut (the rest is dropped, not kept in memory)

# (path, complete lines, each ending in b"\n"): whole reads cut at their last newline,
# unsplit, so a busy log is handled a megabyte at a time
BlockSink = Callable[[str, bytes], None]


class Follower:
    def __init__(self, path: str, sink: BlockSink, *, poll: float = 0.25,
                 from_start: bool = False) -> None:
        self.path = path
        self.sink = sink
        self.poll = poll
        self.from_start = from_start
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._pos = 0
        self._partial = b""
        self.rotations = 0
        self.truncations = 0

    async def run(self) -> None:
        first = True
        try:
            while True:
                if self._fd is None:
                    self._open(at_end=first and not self.from_start)
                    first = False
                got = self._read_available() if self._fd is not None else 0
                if got:
                    await asyncio.sleep(0)  # a busy file: read on, but let others run
                    continue
                self._check_rotation()
                await asyncio.sleep(self.poll)
        finally:
            self._close()

    # -- internals ----------------------------------------------------------------------
    def _open(self, *, at_end: bool) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return  # not there (yet): looked for again at the next poll
        st = os.fstat(fd)
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)
        self._pos = st.st_size if at_end else 0
        self._partial = b""

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None

    def _read_available(self) -> int:
        assert self._fd is not None
        try:
            data = os.pread(self._fd, CHUNK, self._pos)
        except OSError:
            return 0
        if not data:
            return 0
        self._pos += len(data)
        buf = self._partial + data if self._partial else data
        cut = buf.rfind(b"\n") + 1
        block, self._partial = buf[:cut], buf[cut:]
        if len(self._partial) > MAX_LINE:
            block += self._partial[:MAX_LINE] + b"\n"
            self._partial = b""
        if block:
            self.sink(self.path, block)
        return len(data)

    def _check_rotation(self) -> None:
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            if self._fd is not None and self._flush_partial_if_gone():
                self._close()
            return
        if self._fd is None:
            self._open(at_end=False)  # appeared: a new file is read from its start
            return
        if (st.st_dev, st.st_ino) != self._ino:  # renamed away, a new file in its place
            while self._read_available():
                pass  # what the old file still had
            self._flush_partial()
            self._close()
            self.rotations += 1
            self._open(at_end=False)
        elif st.st_size < self._pos:  # truncated in place (copytruncate, `> file`)
            self.truncations += 1
            self._partial = b""
            self._pos = 0

    def _flush_partial(self) -> None:
        if self._partial:
            self.sink(self.path, self._partial + b"\n")
            self._partial = b""

    def _flush_partial_if_gone(self) -> bool:
        while self._fd is not None and self._read_available():
            pass
        self._flush_partial()
        self.rotations += 1
        return True


class GlobFollower:
    """A Follower for every file a glob matches, now and later (looked for every
    ``rescan`` seconds); files that vanish are dropped once their follower saw them go."""

    def __init__(self, pattern: str, sink: BlockSink, *, poll: float = 0.25,
                 rescan: float = 1.0) -> None:
        self.pattern = pattern
        self.sink = sink
        self.poll = poll
        self.rescan = rescan
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        first = True
        try:
            while True:
                for path in sorted(globmod.glob(self.pattern)):
                    if path not in self.tasks and os.path.isfile(path):
                        f = Follower(path, self.sink, poll=self.poll, from_start=not first)
                        self.tasks[path] = asyncio.ensure_future(f.run())
                first = False
                await asyncio.sleep(self.rescan)
        finally:
            for task in self.tasks.values():
                task.cancel()
            for task in self.tasks.values():
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def has_magic(path: str) -> bool:
    return globmod.has_magic(path)
