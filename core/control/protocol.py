"""Frames on the control socket: one JSON object per line, at most MAX_FRAME bytes.

Request  {"id": 7, "method": "run_job", "params": {"name": "backup"}}
Reply    {"id": 7, "result": ...}
         {"id": 7, "error": "one line for a person", "code": "not_found"}
Event    {"event": "run_finished", ...}   (after a "subscribe" request)

An error's `code` is one of CODES and never changes meaning, so a client can act on it;
its message is written for a person and never carries Python's own exception text.
A reply to a frame whose id could not be read has "id": null.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_FRAME = 1 << 20
SOCKET_NAME = "control.sock"
MAX_ID = 200  # characters of a string id

# every code an error reply can carry
BAD_REQUEST = "bad_request"  # not a request: oversize, not JSON, no id or method
UNKNOWN_METHOD = "unknown_method"
BAD_PARAMS = "bad_params"  # a parameter unknown, missing or of the wrong type
NOT_FOUND = "not_found"  # no such job, run, alert, fan-out, log source
ENGINE_ERROR = "engine_error"  # the engine refused (its message says why)
TOO_MANY_REQUESTS = "too_many_requests"  # over this connection's request rate
TOO_MANY_CLIENTS = "too_many_clients"  # the daemon serves no more connections now
FORBIDDEN = "forbidden"  # another user's process
INTERNAL = "internal"  # a fault of the daemon's; the details are in its log
CODES = frozenset({BAD_REQUEST, UNKNOWN_METHOD, BAD_PARAMS, NOT_FOUND, ENGINE_ERROR,
                   TOO_MANY_REQUESTS, TOO_MANY_CLIENTS, FORBIDDEN, INTERNAL})


class RequestError(ValueError):
    """A request refused before (or instead of) the engine's answer: a code from CODES and
    one line for the client."""

    def __init__(self, code: str, message: str, rid: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.rid = rid  # the request's id, when it could be read


class ProtocolError(RequestError):
    """A frame that is not a request."""

    def __init__(self, message: str, rid: Any = None) -> None:
        super().__init__(BAD_REQUEST, message, rid)


def encode(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), default=str).encode() + b"\n"


def error_reply(rid: Any, code: str, message: str, details: list[str] | None = None) -> bytes:
    """A refusal: one line, and the lines under it (`details`) when it has them."""
    reply: dict[str, Any] = {"id": rid, "error": message, "code": code}
    if details:
        reply["details"] = [str(d)[:1000] for d in details[:200]]
    return encode(reply)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python reads them, JSON has none


def valid_id(rid: Any) -> bool:
    """An id is echoed back: an integer or a short string, nothing a reply could choke on."""
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return abs(rid) < 1 << 63
    return isinstance(rid, str) and 0 < len(rid) <= MAX_ID


def decode_request(line: bytes) -> tuple[Any, str, dict[str, Any]]:
    """(id, method, params) of one request line; a ProtocolError when it is not one."""
    try:
        msg = json.loads(line, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("not JSON (one JSON object per line, UTF-8)") from None
    except RecursionError:
        raise ProtocolError("not JSON: nested too deeply") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a request is a JSON object")
    rid = msg.get("id")
    if not valid_id(rid):
        raise ProtocolError(f"a request needs an 'id' (an integer or a string of at most "
                            f"{MAX_ID} characters)")
    method = msg.get("method")
    params = msg.get("params", {})
    if not isinstance(method, str) or not method or len(method) > MAX_ID:
        raise ProtocolError("a request needs a 'method' (a string)", rid)
    if not isinstance(params, dict):
        raise ProtocolError("'params' must be an object", rid)
    return rid, method, params


def socket_path(state_dir: Path) -> Path:
    """Where a daemon on this state directory listens (kept beside the frames, so a
    client finds it without loading the server)."""
    return Path(state_dir) / SOCKET_NAME
