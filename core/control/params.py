"""A socket request's parameters, checked before the engine sees them.

The types come from the engine API's own signatures (`core.api.EngineAPI`, one per
method of `METHODS`): a client that sends a string for a run id, a float for a limit or
a parameter no method has gets `bad_params` with a line naming it, instead of whatever
the engine would have raised deep inside (Python's own words, useless to a client).
"""

from __future__ import annotations

import inspect
import math
import typing
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Any

from core.api import METHODS, EngineAPI
from core.control.protocol import BAD_PARAMS, UNKNOWN_METHOD, RequestError

MAX_STRING = 1 << 16  # characters of one string parameter
MAX_LIST = 10_000  # items of one list parameter
MAX_INT = 1 << 63  # an integer past this is no run id, limit or count

_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
          list: "a list of strings"}


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # str, int, float, bool or list (of strings)
    required: bool
    optional: bool  # None is accepted (and means the default)


def _kind(annotation: Any) -> tuple[type, bool]:
    """(kind, None allowed) of a parameter's annotation."""
    optional = False
    if isinstance(annotation, UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not NoneType]
        optional = len(args) < len(typing.get_args(annotation))
        (annotation,) = args
    origin = typing.get_origin(annotation) or annotation
    if origin is list:
        assert typing.get_args(annotation) in ((str,), ()), annotation
    if origin not in _KINDS:
        raise TypeError(f"no socket type for {annotation!r}")
    return origin, optional


def _signature(name: str) -> dict[str, Param]:
    func = getattr(EngineAPI, name)
    hints = typing.get_type_hints(func)
    out = {}
    for p in inspect.signature(func).parameters.values():
        if p.name in ("self", "actor"):
            continue
        kind, optional = _kind(hints[p.name])
        out[p.name] = Param(p.name, kind, p.default is inspect.Parameter.empty, optional)
    return out


def _table() -> dict[str, dict[str, Param]]:
    table = {m.name: _signature(m.name) for m in METHODS}
    for m in METHODS:
        assert tuple(table[m.name]) == m.params, (m.name, tuple(table[m.name]), m.params)
    # the socket's own methods
    table["subscribe"] = {"kinds": Param("kinds", list, False, True)}
    table["ping"] = {}
    return table


SIGNATURES: dict[str, dict[str, Param]] = _table()


def _fits(p: Param, value: Any) -> bool:
    if p.kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # JSON true is no number
    if p.kind is int:
        return isinstance(value, int) and abs(value) < MAX_INT
    if p.kind is float:
        return (isinstance(value, int) and abs(value) < MAX_INT) or \
            (isinstance(value, float) and math.isfinite(value))
    if p.kind is str:
        return _text(value)
    return isinstance(value, list) and len(value) <= MAX_LIST and all(map(_text, value))


def _text(value: Any) -> bool:
    """A string the engine can write to its files: bounded, valid Unicode (a lone
    surrogate, which JSON can carry as an escape, is not)."""
    if not isinstance(value, str) or len(value) > MAX_STRING:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for ``method``: every parameter known and of its type, every
    required one there; a None for an optional one means its default. RequestError
    (unknown_method, bad_params) otherwise."""
    spec = SIGNATURES.get(method)
    if spec is None:
        raise RequestError(UNKNOWN_METHOD, f"unknown method {method[:80]!r}")
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        p = spec.get(key)
        if p is None:
            raise RequestError(BAD_PARAMS, f"{method}: unknown parameter {key[:80]!r}")
        if value is None and p.optional:
            continue
        if not _fits(p, value):
            none = " (or null)" if p.optional else ""
            raise RequestError(BAD_PARAMS, f"{method}: '{key}' must be {_KINDS[p.kind]}{none}")
        kwargs[key] = float(value) if p.kind is float else value
    missing = [n for n, p in spec.items() if p.required and n not in kwargs]
    if missing:
        raise RequestError(BAD_PARAMS, f"{method}: missing parameter '{missing[0]}'")
    return kwargs
