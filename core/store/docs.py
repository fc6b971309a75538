"""Run records as TinyDB documents (plain copies, made fast), and the small helpers for
opening a state file and the segment index's counts."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Table

from core.jobs.runs import Run
from core.store import codec
from core.store.storage import AtomicJSONStorage
from core.store.tables import put_doc

log = logging.getLogger("fleetdeck.store")


_RUN_FIELDS = tuple(f.name for f in fields(Run))
_RUN_FIELD_SET = frozenset(_RUN_FIELDS)


def open_db(path: Path, read_only: bool) -> tuple[TinyDB, AtomicJSONStorage]:
    storage = AtomicJSONStorage(path, read_only=read_only)
    return TinyDB(storage=lambda: storage), storage


def put(table: Table, doc_id: int, doc: dict[str, Any]) -> bool:
    """Replace document ``doc_id`` by ``doc`` (insert it if missing); True if inserted."""
    return put_doc(table, doc_id, doc)


_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)  # exact types: a set lookup before isinstance


def plain_copy(value: Any, where: str = "") -> Any:
    """A deep copy of JSON-shaped data; TypeError (naming the field) for anything else,
    now rather than at every later commit."""
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return value
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(f"{where or 'value'}: key {k!r} is not a string")
            out[k] = v if type(v) in _SCALAR_TYPES else plain_copy(v, f"{where}.{k}")
        return out
    if kind is list or kind is tuple:
        return [v if type(v) in _SCALAR_TYPES else plain_copy(v, f"{where}[{i}]")
                for i, v in enumerate(value)]
    if isinstance(value, _SCALARS):
        return value
    raise TypeError(f"{where or 'value'}: {kind.__name__} is not storable as JSON")


def json_copy(value: Any, where: str) -> Any:
    """A deep copy of a large JSON-shaped value (a workflow run's record: thousands of
    small dicts) through the C encoder and decoder, several times faster than
    ``plain_copy``; TypeError (naming the field) for anything else."""
    try:
        return codec.loads(codec.dumps(value))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where}: {e}") from None


def run_doc(run: Run) -> dict[str, Any]:
    """``run.to_dict()``, without ``asdict``'s cost for the plain data a Run holds."""
    attempts = run.attempts
    if not all(type(a) is dict for a in attempts):
        return run.to_dict()  # e.g. Attempt dataclasses: let asdict convert them
    doc = dict(vars(run))  # the fields, in their order (set by __init__ in that order)
    if doc.keys() != _RUN_FIELD_SET:  # something else lives on the instance
        doc = {name: getattr(run, name) for name in _RUN_FIELDS}
    doc["attempts"] = None
    workflow = doc["workflow"]
    if workflow is not None:
        doc["workflow"] = None
    if not _SCALAR_TYPES.issuperset(map(type, doc.values())):  # one C pass; details below
        for name, value in doc.items():
            if type(value) not in _SCALAR_TYPES and not isinstance(value, _SCALARS):
                raise TypeError(f"run {run.id}: field {name}: {type(value).__name__} is "
                                "not storable as JSON")
    doc["attempts"] = plain_copy(attempts, f"run {run.id}: attempts") if attempts else []
    if workflow is not None:
        doc["workflow"] = json_copy(workflow, f"run {run.id}: workflow")
    return doc


def copy_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of a run document that shares nothing changeable with it."""
    out = dict(doc)
    attempts = doc.get("attempts")
    out["attempts"] = plain_copy(attempts) if attempts else []
    if doc.get("workflow") is not None:
        out["workflow"] = json_copy(doc["workflow"], f"run {doc.get('id')}: workflow")
    return out


def run_from_doc(doc: dict[str, Any]) -> Run:
    data = dict(doc)
    data["attempts"] = plain_copy(list(data.get("attempts") or ()))
    if data.get("workflow") is not None:
        data["workflow"] = json_copy(data["workflow"], f"run {data.get('id')}: workflow")
    return Run.from_dict(data)


def encode_counts(counts: dict[int, int]) -> list[list[int]]:
    """{segment: runs} as ``[[first, last, runs each], ...]``: a few ranges, not one
    entry per segment, so the index stays small however long the history."""
    ranges: list[list[int]] = []
    for k in sorted(counts):
        n = counts[k]
        if ranges and ranges[-1][1] == k - 1 and ranges[-1][2] == n:
            ranges[-1][1] = k
        else:
            ranges.append([k, k, n])
    return ranges


def decode_counts(ranges: Any) -> dict[int, int]:
    counts: dict[int, int] = {}
    if not isinstance(ranges, list):
        return counts
    for item in ranges:
        if isinstance(item, list) and len(item) == 3 and all(type(x) is int for x in item):
            first, last, n = item
            for k in range(first, last + 1):
                counts[k] = n
    return counts


def delete_paths(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


class ActiveRuns(dict[int, Any]):
    """Queued and running run ids -> job, counted per segment: a segment holding any is
    kept in memory past the cache's size, since each of its runs is saved again soon (a
    burst of thousands queued would otherwise read every segment back from disk).
    Change it with ``[]``, ``del``, ``pop`` or ``clear``: they keep the counts."""

    def __init__(self, segment_size: int, items: Iterable[tuple[int, Any]] = ()) -> None:
        super().__init__()
        self.segment_size = segment_size
        self.per_segment: dict[int, int] = {}
        for run_id, job in items:
            self[run_id] = job

    def __setitem__(self, run_id: int, job: Any) -> None:
        if run_id not in self:
            k = run_id // self.segment_size
            self.per_segment[k] = self.per_segment.get(k, 0) + 1
        super().__setitem__(run_id, job)

    def __delitem__(self, run_id: int) -> None:
        super().__delitem__(run_id)
        k = run_id // self.segment_size
        left = self.per_segment[k] - 1
        if left:
            self.per_segment[k] = left
        else:
            del self.per_segment[k]

    def pop(self, run_id: int, *default: Any) -> Any:
        if run_id not in self:
            if default:
                return default[0]
            raise KeyError(run_id)
        job = self[run_id]
        del self[run_id]
        return job

    def clear(self) -> None:
        super().clear()
        self.per_segment.clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("ActiveRuns: set runs one by one (the counts follow [] and del)")

    setdefault = popitem = update  # type: ignore[assignment]
