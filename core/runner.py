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

import psutil

CHUNK = 65536
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


def process_create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def group_alive(pgid: int, leader_started: float | None) -> bool:
    """Is the process group we started still there (and not a stranger reusing the pid)?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # somebody else's group now
    if leader_started is None:
        return True
    started = process_create_time(pgid)
    # leader gone but members left: the pgid cannot be reused while the group exists
    return started is None or abs(started - leader_started) < 0.05


async def terminate_group(pgid: int, grace: float) -> bool:
    """SIGTERM the group, SIGKILL it after `grace` seconds. True if it had to be killed."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    return True


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


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Says when the process itself has exited, whatever holds its pipes."""

    def __init__(self, exited: asyncio.Event, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._exited_event = exited

    def process_exited(self) -> None:
        super().process_exited()
        self._exited_event.set()


class LocalProcess:
    """One command on this machine. `start()`, then `wait()`; `cancel()` from anywhere."""

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
        self._proc: asyncio.subprocess.Process | None = None
        self._cancel = asyncio.Event()
        self._exited = asyncio.Event()
        self._stopping: str | None = None  # "timeout" | "cancel"

    async def start(self) -> str | None:
        """Start the process; returns an error line if it could not start."""
        full_env = dict(os.environ)
        if self.env:
            full_env.update(self.env)
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _ExitAwareProtocol(self._exited, limit=CHUNK, loop=loop),
                *argv_for(self.command, full_env.get("PATH"), self.shell),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd or None,
                env=full_env,
                start_new_session=True,
            )
            self._proc = asyncio.subprocess.Process(transport, protocol, loop)
        except FileNotFoundError as e:
            missing = self.cwd if self.cwd and not os.path.isdir(self.cwd) else e.filename
            return f"cannot start: no such file or directory: {missing}"
        except NotADirectoryError:
            return f"cannot start: cwd is not a directory: {self.cwd}"
        except PermissionError as e:
            return f"cannot start: permission denied: {e.filename or self.cwd}"
        except OSError as e:
            return f"cannot start: {e.strerror or e}"
        pid = self._proc.pid
        self.info = ProcessInfo(pid=pid, pgid=pid, started=process_create_time(pid))
        return None

    def cancel(self) -> None:
        self._cancel.set()

    async def _pump(self, reader: asyncio.StreamReader, stream: str) -> None:
        partial = b""
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk:
                break
            data = partial + chunk
            lines = data.split(b"\n")
            partial = lines.pop()
            for raw in lines:
                self.on_line(stream, raw.decode("utf-8", "replace").rstrip("\r"))
        if partial:
            self.on_line(stream, partial.decode("utf-8", "replace").rstrip("\r"))

    async def wait(self) -> ProcessOutcome:
        proc = self._proc
        assert proc is not None and proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.gather(self._pump(proc.stdout, "stdout"), self._pump(proc.stderr, "stderr"))
        # not proc.wait(): it also waits for the pipes, which a background child may hold
        waiter = asyncio.ensure_future(self._exited.wait())
        canceller = asyncio.ensure_future(self._cancel.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, canceller}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter not in done:
                self._stopping = "cancel" if canceller in done else "timeout"
                await terminate_group(proc.pid, self.kill_grace)
                await waiter
            else:
                # the leader is gone; whatever it left in its group is not ours to keep
                # reading from forever, but we give it a moment to flush its pipes
                pass
            try:
                await asyncio.wait_for(asyncio.shield(pumps), PIPE_DRAIN_AFTER_EXIT)
            except TimeoutError:
                for pipe in (proc.stdout, proc.stderr):
                    transport = getattr(pipe, "_transport", None)
                    if transport is not None:
                        transport.close()
                pumps.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pumps
        except asyncio.CancelledError:
            # the engine is going away: do not leave the group behind
            await terminate_group(proc.pid, min(self.kill_grace, 5.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited.wait(), 2.0)  # reaped, not a zombie
            pumps.cancel()
            raise
        finally:
            canceller.cancel()
        code = proc.returncode
        sig = -code if code is not None and code < 0 else None
        return ProcessOutcome(
            exit_code=None if sig else code,
            signal=sig,
            timed_out=self._stopping == "timeout",
            cancelled=self._stopping == "cancel",
        )
