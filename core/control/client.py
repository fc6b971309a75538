"""Talking to a daemon's control socket from the CLI (and tests)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from core.control.protocol import MAX_FRAME, encode, socket_path


class DaemonError(RuntimeError):
    """The daemon refused a request; the message is its one line, `code` its stable code
    (core.control.protocol.CODES; None when no daemon's answer came: a timeout, a broken
    frame, something else listening)."""

    def __init__(self, message: str, code: str | None = None,
                 details: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or []  # the lines under it (a refused reload's errors)


async def call(state_dir: Path, method: str, params: dict[str, Any] | None = None, *,
               timeout: float = 30.0, path: Path | None = None) -> Any:
    """One request; `path`: a socket other than the state directory's (approvals)."""
    where = socket_path(state_dir) if path is None else path
    reader, writer = await asyncio.wait_for(
        asyncio.open_unix_connection(str(where), limit=MAX_FRAME), 5.0)
    try:
        writer.write(encode({"id": 1, "method": method, "params": params or {}}))
        await writer.drain()
        while True:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
            except TimeoutError:
                raise DaemonError(f"{where}: no answer to {method} in {timeout:g}s") from None
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ConnectionError) as e:
                raise DaemonError(f"{where}: the daemon closed the connection or sent a "
                                  f"broken answer ({_why(e)})") from None
            msg = _answer(line, where)
            if msg.get("id") == 1 or "error" in msg:  # a refusal may come before the id
                break
            if "event" not in msg:
                raise DaemonError(f"{where}: not a fleetdeck daemon (an answer without "
                                  f"the request's id)")
    finally:
        writer.close()
    if "error" in msg:
        details = msg.get("details")
        raise DaemonError(str(msg["error"]), msg.get("code"),
                          [str(d) for d in details] if isinstance(details, list) else None)
    return msg.get("result")


def _answer(line: bytes, where: Path) -> dict[str, Any]:
    """One frame as the protocol has it (a JSON object), or a DaemonError: whatever
    listens there is not a fleetdeck daemon."""
    try:
        msg = json.loads(line)
    except ValueError:
        msg = None
    if not isinstance(msg, dict):
        raise DaemonError(f"{where}: not a fleetdeck daemon (its answer is not a JSON "
                          f"object)")
    return msg


def _why(e: BaseException) -> str:
    if isinstance(e, asyncio.IncompleteReadError):
        return "it ended mid-answer"
    if isinstance(e, asyncio.LimitOverrunError):
        return f"a frame over {MAX_FRAME // 1024 // 1024} MB"
    return type(e).__name__


def daemon_pid(state_dir: Path) -> int | None:
    """The pid of the daemon answering on this state directory's socket, or None."""
    if not socket_path(state_dir).exists():
        return None
    try:
        return asyncio.run(call(state_dir, "ping", timeout=5.0))["pid"]
    except (TimeoutError, OSError, DaemonError, ValueError, KeyError):
        return None
