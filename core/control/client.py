"""Talking to a daemon's control socket from the CLI (and tests)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from core.control.protocol import MAX_FRAME, encode, socket_path


class DaemonError(RuntimeError):
    """The daemon refused a request; the message is its one line, `code` its stable code
    (core.control.protocol.CODES)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


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
            line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
            msg = json.loads(line)
            if msg.get("id") == 1 or "event" not in msg:
                break
    finally:
        writer.close()
    if "error" in msg:
        raise DaemonError(str(msg["error"]), msg.get("code"))
    return msg.get("result")


def daemon_pid(state_dir: Path) -> int | None:
    """The pid of the daemon answering on this state directory's socket, or None."""
    if not socket_path(state_dir).exists():
        return None
    try:
        return asyncio.run(call(state_dir, "ping", timeout=5.0))["pid"]
    except (TimeoutError, OSError, DaemonError, ValueError, KeyError):
        return None
