"""Remote commands: one command on an open connection, lines streamed as they come, a
command timeout apart from the connect timeout, and TERM then KILL of the command's
whole process group on the host when it times out or is cancelled (see _WRAPPER)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncssh

from core.remote.ssh import ssh_reason

DEFAULT_KILL_GRACE = 2.0
CHUNK = 65536


@dataclass
class CommandResult:
    exit_code: int | None
    signal: str | None = None
    timed_out: bool = False
    cancelled: bool = False
    lost: bool = False  # the connection closed before an exit status came
    error: str | None = None


LineSink = Callable[[str, str], None]  # (stream, line)


def env_prefix(env: Mapping[str, str] | None) -> str:
    """`export K='v' ...; ` for the remote shell (sshd refuses most env requests)."""
    if not env:
        return ""
    import shlex

    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + "; "


async def _pump(reader: Any, stream: str, on_line: LineSink) -> None:
    buf = b""
    while True:
        chunk = await reader.read(CHUNK)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            on_line(stream, line.decode("utf-8", "replace").rstrip("\r"))
    if buf:
        on_line(stream, buf.decode("utf-8", "replace").rstrip("\r"))


# The remote side of a command. The command runs in its own session (setsid, where
# there is one) with stdin from /dev/null, while a watchdog reads the channel's stdin:
# when we send EOF, close the channel, or the connection dies, the watchdog sends TERM
# to the command's process group, then KILL after the grace period. This works on any
# sshd, where "signal" channel requests are often refused (OpenSSH only honours them
# in some privilege-separation setups), and it reaches the command's children too.
_WRAPPER = (
    # fd 3: the channel's stdin (a background list's own stdin is /dev/null); fd 4: the
    # channel's stderr for the command, while the wrapper's own notes go nowhere
    'exec 3<&0 4>&2 2>/dev/null; '
    'if command -v setsid >/dev/null; then setsid sh -c "$1" </dev/null 2>&4 3<&- 4>&- & '
    'else sh -c "$1" </dev/null 2>&4 3<&- 4>&- & fi; p=$!; '
    '(while read -r _ <&3; do :; done; kill -TERM -$p || kill -TERM $p; '
    'sleep "$2"; kill -KILL -$p || kill -KILL $p) & w=$!; '
    'wait $p; r=$?; kill $w 2>/dev/null; exit $r'
)


# The same, fed one line first (a sudo password): the wrapper reads it from the channel
# and gives it to the command's stdin through a pipe (printf is a shell builtin: the
# line is in no process's arguments); the watchdog then reads the rest as before.
_WRAPPER_FED = _WRAPPER.replace(
    'exec 3<&0', 'IFS= read -r l; exec 3<&0', 1).replace(
    'then setsid sh -c "$1" </dev/null', 'then printf "%s\\n" "$l" | setsid sh -c "$1"', 1
).replace('else sh -c "$1" </dev/null', 'else printf "%s\\n" "$l" | sh -c "$1"', 1
          ).replace('p=$!;', 'p=$!; l=;', 1)


def remote_command(command: str, kill_grace: float = DEFAULT_KILL_GRACE, *,
                   fed: bool = False) -> str:
    """The command line sent to sshd for `command` (see _WRAPPER; `fed`: _WRAPPER_FED)."""
    import shlex

    grace = max(1, int(kill_grace + 0.999))
    wrapper = _WRAPPER_FED if fed else _WRAPPER
    return f"sh -c {shlex.quote(wrapper)} fleetdeck {shlex.quote(command)} {grace}"


async def run_command(conn: asyncssh.SSHClientConnection, command: str, *,
                      on_line: LineSink, timeout: float | None = None,
                      kill_grace: float = DEFAULT_KILL_GRACE,
                      env: Mapping[str, str] | None = None,
                      cancel: asyncio.Event | None = None,
                      stdin_line: str | None = None) -> CommandResult:
    """Run one command; stream lines to on_line; stop it on timeout or cancel.

    Stopping sends EOF on the channel, which makes the remote wrapper TERM the
    command's process group and KILL it after kill_grace; then the channel is closed.
    `stdin_line` (a sudo password) is the command's stdin, one line, sent on the channel.
    """
    fed = stdin_line is not None
    try:
        proc = await conn.create_process(
            remote_command(env_prefix(env) + command, kill_grace, fed=fed), encoding=None)
        if fed:
            proc.stdin.write(str(stdin_line).encode("utf-8") + b"\n")
    except (asyncssh.Error, OSError) as e:
        return CommandResult(None, lost=True, error=f"could not start: {ssh_reason(e)}")

    async def finish() -> None:
        await asyncio.gather(_pump(proc.stdout, "stdout", on_line),
                             _pump(proc.stderr, "stderr", on_line))
        await proc.wait_closed()

    work = asyncio.ensure_future(finish())
    waits: set[asyncio.Future[Any]] = {work}
    cancel_wait = None
    if cancel is not None:
        cancel_wait = asyncio.ensure_future(cancel.wait())
        waits.add(cancel_wait)
    timed_out = cancelled = False
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            timed_out = cancel_wait is None or cancel_wait not in done
            cancelled = not timed_out
            await _stop(proc, work, kill_grace)
    except asyncio.CancelledError:
        await _stop(proc, work, kill_grace)
        raise
    finally:
        if cancel_wait is not None:
            cancel_wait.cancel()
    lost = False
    if work.done() and not work.cancelled() and work.exception() is not None:
        lost = True
    sig = proc.exit_signal[0] if proc.exit_signal else None
    code = proc.exit_status if not sig else None
    if code is not None and code < 0:
        code = None
    if code is None and sig is None and not (timed_out or cancelled):
        lost = True
    return CommandResult(code, sig, timed_out, cancelled, lost,
                         "connection closed before the command finished" if lost else None)


async def _stop(proc: asyncssh.SSHClientProcess, work: asyncio.Future[Any],
                grace: float) -> None:
    with contextlib.suppress(Exception):
        proc.stdin.write_eof()  # the wrapper: TERM to the group, KILL after grace
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(work), grace + 2.0)
    if work.done():
        return
    with contextlib.suppress(Exception):
        proc.close()  # sshd hangs up the session; the wrapper's stdin closes
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(work), 2.0)
    if not work.done():
        work.cancel()
        with contextlib.suppress(BaseException):
            await work
