"""Local execution: one shell command in its own process group, streamed line by line.

The runner knows nothing of jobs or history: it starts a process, hands each output line
to a callback, enforces the timeout on the whole process group (SIGTERM, then SIGKILL
after a grace period) and says how it ended. The engine turns that into run states.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass

from core.jobs.groups import (
    process_create_time,
    spawn_group,
    terminate_group,
    terminate_strays,
)

CHUNK = 16384  # read per wake-up: a job printing flat out must not hold the loop (keys)
MAX_EVENT_LINE = 8192  # longer lines reach the log file whole and events cut
PIPE_DRAIN_AFTER_EXIT = 2.0  # a background grandchild may hold the pipes open


@dataclass
class ProcessOutcome:
    exit_code: int | None  # None when it never started or was killed by a signal
    signal: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None  # could not start: the one-line reason


@dataclass
class ProcessInfo:
    pid: int
    pgid: int
    started: float | None  # psutil create_time, to tell pid reuse apart after a crash


LineSink = Callable[[str, str], None]  # (stream, line)


# Python ignores these; a child must not inherit that (`cmd | head` must end on SIGPIPE)
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)

_PLAIN = re.compile(r"[A-Za-z0-9_./:,+@%=-]+(?: [A-Za-z0-9_./:,+@%=-]+)*")
# words a POSIX shell treats itself: these always go through the shell
_SHELL_WORDS = frozenset(
    "alias bg break cd command continue echo eval exec exit export false fc fg getopts "
    "hash jobs kill printf pwd read readonly return set shift source test times trap "
    "true type ulimit umask unalias unset wait . : [ if then else elif fi case esac for "
    "while until do done in function select time".split())


@functools.lru_cache(maxsize=1024)
def _direct(command: str, path: str | None) -> tuple[str, ...] | None:
    if not _PLAIN.fullmatch(command):
        return None
    words = command.split(" ")
    first = words[0]
    if "=" in first or first in _SHELL_WORDS:
        return None
    exe = shutil.which(first, path=path)
    return (exe, *words[1:]) if exe else None


def argv_for(command: str, path: str | None, shell: str = "/bin/sh") -> tuple[str, ...]:
    """A command with no shell syntax at all runs directly; anything else via the shell.

    The result is the same (`sh -c 'cmd arg'` would exec it too), minus a shell start.
    """
    return _direct(command, path) or (shell, "-c", command)


@functools.cache
def _devnull() -> int:
    """One read-only /dev/null kept open for every child's stdin (not inherited itself)."""
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


def _environ(extra: dict[str, str] | None) -> dict[bytes, bytes]:
    """This process's environment plus ``extra``, as bytes for posix_spawn.

    os.environ decodes every variable on each read; its bytes twin is copied whole.
    """
    data = getattr(os.environ, "_data", None)  # CPython's bytes mapping behind os.environ
    env = dict(data) if isinstance(data, dict) else dict(os.environb)
    if extra:
        env.update((os.fsencode(k), os.fsencode(v)) for k, v in extra.items())
    return env


class LocalProcess:
    """One command on this machine. `start()`, then `wait()`; `cancel()` from anywhere.

    The process is started with ``posix_spawn`` in its own process group (and session,
    see ``core.jobs.groups.spawn_group``), its exit is watched through a pidfd and its
    pipes are read straight from the event loop: no helper thread per child and no
    stream objects, which is most of what a run costs besides the process itself.
    """

    retry_failed_start = False  # a command that cannot start here won't on a retry either
    timeout_note = ""  # added to "timed out after Ns"

    def __init__(
        self,
        command: str,
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        kill_grace: float = 10.0,
        on_line: LineSink,
        shell: str = "/bin/sh",
    ) -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.on_line = on_line
        self.shell = shell
        self.info: ProcessInfo | None = None
        self.returncode: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pidfd = -1
        self._pipes: dict[int, tuple[str, bytearray]] = {}  # fd -> (stream, partial line)
        self._exited: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._stopping: str | None = None  # "timeout" | "cancel"

    async def start(self) -> str | None:
        """Start the process; returns an error line if it could not start."""
        env = _environ(self.env)
        path = env.get(b"PATH")
        argv = argv_for(self.command, None if path is None else os.fsdecode(path), self.shell)
        if self.cwd:
            self.cwd = os.path.expanduser(self.cwd)
            if not os.path.exists(self.cwd):
                return f"cannot start: no such file or directory: {self.cwd}"
            if not os.path.isdir(self.cwd):
                return f"cannot start: cwd is not a directory: {self.cwd}"
            # posix_spawn cannot change directory: a shell does it, then execs the command
            argv = (self.shell, "-c", 'cd -- "$0" && exec "$@"', self.cwd, *argv)
        loop = self._loop = asyncio.get_running_loop()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        null = _devnull()
        try:
            pid = os.posix_spawn(argv[0], list(argv), env, **spawn_group(),
                                 setsigdef=_DEFAULT_SIGNALS, file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ])
        except OSError as e:
            for fd in (out_r, err_r):
                os.close(fd)
            if isinstance(e, FileNotFoundError):
                return f"cannot start: no such file or directory: {e.filename or argv[0]}"
            if isinstance(e, PermissionError):
                return f"cannot start: permission denied: {e.filename or argv[0]}"
            return f"cannot start: {e.strerror or e}"
        finally:
            for fd in (out_w, err_w):
                os.close(fd)
        self._pidfd = os.pidfd_open(pid)
        self._exited = loop.create_future()
        self._drained = loop.create_future()
        self._wake = loop.create_future()
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            os.set_blocking(fd, False)
            self._pipes[fd] = (stream, bytearray())
            loop.add_reader(fd, self._read, fd)
        loop.add_reader(self._pidfd, self._reap, pid)
        self.info = ProcessInfo(pid=pid, pgid=pid, started=process_create_time(pid))
        return None

    def cancel(self) -> None:
        self._stop("cancel")

    def _stop(self, why: str) -> None:
        if self._stopping is None and self.returncode is None:
            self._stopping = why
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        stream, partial = self._pipes[fd]
        if data:
            partial += data
            if b"\n" in data:
                lines = partial.split(b"\n")
                del partial[:]
                partial += lines.pop()
                for raw in lines:
                    self.on_line(stream, raw.decode("utf-8", "replace").rstrip("\r"))
            return
        self._close_pipe(fd)

    def _close_pipe(self, fd: int, *, flush: bool = True) -> None:
        stream, partial = self._pipes.pop(fd)
        assert self._loop is not None
        self._loop.remove_reader(fd)
        os.close(fd)
        if partial and flush:
            self.on_line(stream, partial.decode("utf-8", "replace").rstrip("\r"))
        if not self._pipes and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _reap(self, pid: int) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self._pidfd)
        try:
            _, status = os.waitpid(pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by someone else: the code is lost
            self.returncode = 255
        os.close(self._pidfd)
        self._pidfd = -1
        assert self._exited is not None and self._wake is not None
        self._exited.set_result(None)
        if not self._wake.done():
            self._wake.set_result(None)

    async def wait(self) -> ProcessOutcome:
        assert self.info is not None and self._loop is not None
        assert self._exited is not None and self._wake is not None and self._drained is not None
        pid = self.info.pid
        timer = (self._loop.call_later(self.timeout, self._stop, "timeout")
                 if self.timeout is not None else None)
        try:
            await self._wake
            if not self._exited.done():  # timed out or cancelled
                await terminate_group(pid, self.kill_grace)
                await self._exited
            if self._stopping is not None:  # and what left its group, the leader gone too
                await terminate_strays(self.env, pid, self.kill_grace)
            # the leader is gone; whatever it left in its group is not ours to keep
            # reading from forever, but we give it a moment to flush its pipes
            if self._pipes:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._drained), PIPE_DRAIN_AFTER_EXIT)
                for fd in list(self._pipes):
                    self._close_pipe(fd)
        except asyncio.CancelledError:
            # the engine is going away: do not leave the group behind, nor what left it
            await terminate_group(pid, min(self.kill_grace, 5.0))
            await terminate_strays(self.env, pid, min(self.kill_grace, 5.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exited), 2.0)  # reaped, no zombie
            for fd in list(self._pipes):
                self._close_pipe(fd, flush=False)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        code = self.returncode
        sig = -code if code is not None and code < 0 else None
        return ProcessOutcome(
            exit_code=None if sig else code,
            signal=sig,
            timed_out=self._stopping == "timeout",
            cancelled=self._stopping == "cancel",
        )
