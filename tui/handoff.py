"""Handing a console's runs to a background daemon when it quits.

A run is a child of the process that started it, its output on pipes to that process:
no other process can take it over and still learn how it ended. So the process that
runs the engine must be the one that goes on, and the shell must still get its prompt
back, which it does only when the process it started ends. A console that runs its own
engine therefore forks once at launch, before any thread exists: the parent only waits
(it forwards the signals people send it, stops when the console stops, and ends with
the console's exit status); the child is the console. When the person picks "hand
them to a daemon", the child leaves the terminal (stdio to /dev/null, a session of its
own), tells the parent in one line over a pipe, and goes on as the daemon: control
socket, schedule, reload, everything `fleetdeck daemon` does. The parent prints that
line and ends: the prompt is back, the runs go on, and the next launch attaches."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from dataclasses import dataclass

HAND_OFF = "hand-off"  # the app's return value when the person chose it

# signals the parent passes on when a process sent them (`kill PID`); the same signal
# from the terminal reaches the console anyway, as it is in the same process group
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
# passed on whoever sent it: the kernel tells only the session leader, which the parent
# is, that the terminal hung up (the console's handler takes a second one as the first)
HANGUP = signal.SIGHUP
WATCHED = {signal.SIGCHLD, HANGUP, *FORWARDED}


@dataclass
class Handoff:
    """The console's end of the pipe to the waiting parent."""
    fd: int

    def detach(self, line: str) -> None:
        """Leave the terminal for good, then let the parent say `line` and end."""
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        with contextlib.suppress(OSError):  # already a session leader: nothing to leave
            os.setsid()
        with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
            os.write(self.fd, line.encode() + b"\n")
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def split() -> Handoff | None:
    """Fork: returns in the child (the console) with its end of the pipe, or None when
    the fork is impossible (the console then runs without the choice). The parent waits
    and never returns: it exits with the console's status, or 0 after a hand-off."""
    try:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:
        os.close(read_fd)
        return Handoff(write_fd)
    os.close(write_fd)
    code, line = wait_for_console(pid, read_fd)
    if line is not None:
        print(line, flush=True)
        os._exit(0)  # nothing of this process's own to clean: the console owns it all
    raise SystemExit(code)


def wait_for_console(child: int, read_fd: int) -> tuple[int, str | None]:
    """(exit status, None) once the console ends, or (0, its line) once it detached."""
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    os.set_blocking(read_fd, False)
    said = b""
    while True:
        try:
            pid, status = os.waitpid(child, os.WNOHANG | os.WUNTRACED)
        except ChildProcessError:
            return 1, None
        if pid and os.WIFSTOPPED(status):
            # the console suspended itself (ctrl+z): so does this process, which is the
            # one the shell watches; `fg` continues the whole process group
            os.kill(os.getpid(), signal.SIGSTOP)
            continue
        if pid:
            code = os.waitstatus_to_exitcode(status)
            return (128 - code if code < 0 else code), None
        with contextlib.suppress(BlockingIOError):
            chunk = os.read(read_fd, 4096)
            said += chunk
            if b"\n" in said:
                return 0, said.split(b"\n", 1)[0].decode(errors="replace")
        info = signal.sigtimedwait(WATCHED, 0.2)
        # si_code <= 0: sent by a process (kill, sigqueue, tgkill); the terminal's own
        # signals (> 0) reached the console too. This process outlives a hangup: it
        # reports the console's end
        if info is not None and (info.si_signo == HANGUP or (
                info.si_signo in FORWARDED and info.si_code <= 0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, info.si_signo)
