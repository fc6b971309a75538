"""Frames for the control socket, valid and hostile, as Hypothesis strategies; and what
a reply must look like whatever was sent.

`frames()` draws one chunk of bytes to write to the socket (every line of it ends in a
newline, so the daemon owes one reply a line) with the id the reply must carry when the
chunk is one request whose id is readable. The requests are made from the engine API's
own signatures (core.control.params.SIGNATURES): every method, with well-typed
parameters, wrong types, unknown and missing ones; beside them random bytes, frames over
the size limit, deep nesting, huge numbers, NaN, lone surrogates and wrong ids.
A fan-out's command is always `true`: a well-typed fan-out does run.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from core.control.params import SIGNATURES
from core.control.protocol import CODES, MAX_FRAME

NO_ID = object()  # the reply's id is not known ahead (several lines, or none readable)

# names the daemon knows (so that well-typed requests also go past the lookups)
KNOWN = ["hello", "local", "*", "!local", "@web", "role=cache", "1s", "2h", "failed",
         "succeeded", "stdout", "run_finished", ""]

# what Python says when it fails, never a client's business
PYTHON_TEXT = ("Traceback", "object has no attribute", "not supported between",
               "invalid literal", "KeyError", "TypeError", "ValueError", "AttributeError",
               "unexpected keyword", "positional argument", "NoneType", "Expecting value",
               "recursion", "JSONDecodeError", "object is not")

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                      st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)

names = st.one_of(st.sampled_from(KNOWN), st.text(max_size=40))
GOOD = {
    str: names,
    int: st.one_of(st.integers(-5, 50), st.integers(-(2 ** 63) + 1, 2 ** 63 - 1)),
    float: st.one_of(st.integers(-5, 2 ** 40), st.floats(allow_nan=False,
                                                         allow_infinity=False)),
    bool: st.booleans(),
    list: st.lists(names, max_size=5),
}
METHOD_NAMES = sorted(SIGNATURES)


def _safe(method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "fanout_start" and "command" in params:
        params["command"] = "true"
    return params


@st.composite
def well_typed(draw: Any) -> tuple[dict[str, Any], bool]:
    method = draw(st.sampled_from(METHOD_NAMES))
    spec = SIGNATURES[method]
    params = {}
    for name, p in spec.items():
        if p.required or draw(st.booleans()):
            params[name] = None if p.optional and draw(st.booleans()) else draw(GOOD[p.kind])
    return {"id": draw(st.integers(0, 2 ** 40)), "method": method,
            "params": _safe(method, params)}, True


@st.composite
def wrong_typed(draw: Any) -> tuple[dict[str, Any], bool]:
    """Any JSON value for any of a method's parameters, names it does not have, some of
    its required ones left out."""
    method = draw(st.sampled_from(METHOD_NAMES))
    keys = [*SIGNATURES[method], "actor", "self", "__class__", "params"]
    params = draw(st.dictionaries(st.sampled_from(keys) | st.text(max_size=10), json_value,
                                  max_size=4))
    rid = draw(st.one_of(st.integers(0, 2 ** 40), st.text(min_size=1, max_size=20)))
    return {"id": rid, "method": method, "params": _safe(method, params)}, True


@st.composite
def misshapen(draw: Any) -> tuple[Any, bool]:
    """Not a request: ids and methods of the wrong type, params not an object, a JSON
    value that is no object."""
    msg = draw(st.dictionaries(st.sampled_from(["id", "method", "params", "jsonrpc"]),
                               json_value, max_size=4))
    if draw(st.booleans()):
        msg["method"] = draw(st.sampled_from(METHOD_NAMES) | st.text(max_size=20))
    return draw(st.one_of(st.just(msg), json_value)), False


def _line(msg: Any) -> bytes:
    return json.dumps(msg, ensure_ascii=True).encode() + b"\n"


@st.composite
def request_frames(draw: Any) -> tuple[bytes, Any]:
    msg, valid_id = draw(st.one_of(well_typed(), wrong_typed(), misshapen()))
    return _line(msg), msg["id"] if valid_id else NO_ID


@st.composite
def raw_frames(draw: Any) -> tuple[bytes, Any]:
    """Bytes that no JSON encoder writes."""
    kind = draw(st.sampled_from(["bytes", "deep", "number", "constant", "surrogate",
                                 "utf8", "blank", "long_string"]))
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif kind == "deep":
        depth = draw(st.integers(10, 200_000))
        inner = b"[" * depth + b"]" * depth
        body = b'{"id":1,"method":"list_runs","params":{"job":' + inner + b"}}" \
            if draw(st.booleans()) else inner
    elif kind == "number":
        digits = draw(st.integers(1, 20_000))
        num = draw(st.sampled_from([b"1", b"-9", b"1e", b"0."])) + b"9" * digits
        body = b'{"id":' + num + b',"method":"get_run","params":{"run_id":' + num + b"}}"
    elif kind == "constant":
        const = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400"]))
        body = b'{"id":2,"method":"list_runs","params":{"since":' + const + b"}}"
    elif kind == "surrogate":
        body = b'{"id":3,"method":"run_job","params":{"name":"\\ud800x\\udfff"}}'
    elif kind == "utf8":
        junk = draw(st.sampled_from([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
        body = b'{"id":4,"method":"get_job","params":{"name":"' + junk + b'"}}'
    elif kind == "long_string":
        n = draw(st.integers(60_000, 200_000))
        body = b'{"id":5,"method":"get_job","params":{"name":"' + b"a" * n + b'"}}'
    else:
        body = draw(st.sampled_from([b"", b" ", b"\r", b"\t{}"]))
    return body + b"\n", NO_ID


@st.composite
def huge_frames(draw: Any) -> tuple[bytes, Any]:
    """Around and past the frame limit: a line of it, or a string param of it."""
    size = draw(st.sampled_from([MAX_FRAME - 64, MAX_FRAME, MAX_FRAME + 1, 3 * MAX_FRAME]))
    if draw(st.booleans()):
        return b"x" * size + b"\n", NO_ID
    return (b'{"id":6,"method":"get_job","params":{"name":"' + b"n" * size + b'"}}\n',
            NO_ID)


def frames() -> st.SearchStrategy[tuple[bytes, Any]]:
    """One chunk to send and the id its reply must carry (NO_ID: not known); huge frames
    are drawn rarely (1 in 60): each is megabytes on the wire."""
    pick = st.integers(0, 59)
    return pick.flatmap(lambda n: huge_frames() if n == 0 else
                        raw_frames() if n < 20 else request_frames())


def reply_problem(msg: Any) -> str | None:
    """Why a reply is not well-formed, or None. An event is well-formed too."""
    if not isinstance(msg, dict):
        return f"not an object: {msg!r:.200}"
    if "event" in msg:
        return None
    if set(msg) == {"id", "result"}:
        return None
    if set(msg) != {"id", "error", "code"}:
        return f"keys {sorted(msg)}"
    if msg["code"] not in CODES:
        return f"unknown code {msg['code']!r}"
    error = msg["error"]
    if not isinstance(error, str) or not error or "\n" in error:
        return f"error is not one line: {error!r:.200}"
    leaked = [t for t in PYTHON_TEXT if t in error]
    if leaked:
        return f"Python's text in {error!r:.300}"
    return None
