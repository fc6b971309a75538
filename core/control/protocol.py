"""Frames on the control socket: one JSON object per line, at most MAX_FRAME bytes.

Request  {"id": 7, "method": "run_job", "params": {"name": "backup"}}
Reply    {"id": 7, "result": ...}   or   {"id": 7, "error": "one line"}
Event    {"event": "run_finished", ...}   (after a "subscribe" request)
"""

from __future__ import annotations

import json
from typing import Any

MAX_FRAME = 1 << 20
SOCKET_NAME = "control.sock"


class ProtocolError(ValueError):
    """A frame that is not a request; the message is one line for the client."""


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), default=str).encode() + b"\n"


def decode_request(line: bytes) -> tuple[Any, str, dict[str, Any]]:
    """(id, method, params) of one request line."""
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a request is a JSON object")
    method = msg.get("method")
    params = msg.get("params", {})
    if not isinstance(method, str) or not method:
        raise ProtocolError("a request needs a 'method' (a string)")
    if not isinstance(params, dict):
        raise ProtocolError("'params' must be an object")
    return msg.get("id"), method, params
