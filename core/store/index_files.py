"""The run index on disk, in sealed chunks, so an engine starts in bounded time.

A chunk holds the index's columns and posting lists for one range of run ids (a fixed
number of segments), written once, when every segment of its range is no longer the
head, in the same commit as those segments and after them: it never says more than
the segments on disk. Runs still queued or running when it was written are listed
as *unsettled*: at open their segments are read again, as are the segments after
the last chunk. A finished run never changes, so a chunk stays true.

File ``runs/index-<chunk:06d>.bin``: ``MAGIC``, an 8-byte little-endian header
length, the header (JSON: range, name tables, unsettled ids, the arrays' layout and
the per-job aggregates), then the arrays' bytes. Anything unreadable is skipped with
a warning and its segments read instead.
"""

from __future__ import annotations

import logging
import re
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.store import codec
from core.store.index import RunIndex

log = logging.getLogger("fleetdeck.store")

MAGIC = b"FDIDX1\n"
CHUNK_SEGMENTS = 100  # segments per chunk (10,000 runs at the default segment size)
_CHUNK_RE = re.compile(r"^index-(\d{6,})\.bin$")
_COLUMNS = ("state", "job", "host", "trigger", "queued")
_POSTINGS = ("by_job", "by_host", "by_trigger", "by_state")


def chunk_file_name(c: int) -> str:
    return f"index-{c:06d}.bin"


def list_chunks(runs_dir: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    try:
        entries = list(runs_dir.iterdir())
    except FileNotFoundError:
        return out
    for path in entries:
        m = _CHUNK_RE.match(path.name)
        if m:
            out[int(m.group(1))] = path
    return out


def encode_chunk(index: RunIndex, first: int, stop: int, unsettled: list[int]) -> bytes:
    """The chunk for run ids ``first .. stop-1`` as the index holds them now."""
    lo, hi = max(first, index.base), min(stop, index.end())
    a, b = max(0, lo - index.base), max(0, hi - index.base)
    layout: list[list[Any]] = []
    parts: list[bytes] = []
    for name in _COLUMNS:
        col = getattr(index, name)[a:b]
        layout.append([name, None, col.typecode, len(col)])
        parts.append(col.tobytes())
    holes = any(x < hi and y > lo for x, y in index.holes)
    for name in _POSTINGS:
        for code, ids in sorted(getattr(index, name).items()):
            part = ids[bisect_left(ids, lo):bisect_left(ids, hi)]
            if holes:  # a dropped segment inside: list only runs still on record
                part = array(part.typecode, [i for i in part if index.state[i - index.base]])
            if part:
                layout.append([name, code, part.typecode, len(part)])
                parts.append(part.tobytes())
    header = {
        "version": 1, "first": lo, "stop": max(lo, hi),
        "jobs": index.jobs.names, "hosts": index.hosts.names,
        "unsettled": sorted(unsettled), "arrays": layout,
        "last_occurrence": [[j, o] for j, o in index.last_occurrence.items()],
        "last_by_job_host": [[j, h, r] for (j, h), r in index.last_by_job_host.items()],
    }
    head = codec.dumps(header)
    return b"".join([MAGIC, len(head).to_bytes(8, "little"), head, *parts])


@dataclass
class Loaded:
    """What the chunks gave: the first run id they do not cover, and the runs to read
    again from their segments."""

    start: int = 0
    stop: int = 0
    chunks: set[int] = field(default_factory=set)
    unsettled: list[int] = field(default_factory=list)


def load_chunks(index: RunIndex, runs_dir: Path, chunk_runs: int) -> Loaded:
    """Fill an empty index from the chunk files, oldest first, while they join up."""
    out = Loaded()
    for c, path in sorted(list_chunks(runs_dir).items()):
        try:
            data = path.read_bytes()
            header, arrays = _decode(data)
        except (OSError, ValueError) as e:
            log.warning("%s: unreadable run index chunk (%s); reading its runs instead",
                        path, e)
            break
        first, stop = header["first"], header["stop"]
        if not c * chunk_runs <= first <= stop <= (c + 1) * chunk_runs:
            log.warning("%s: run index chunk out of its range; reading its runs instead",
                        path)
            break
        if out.chunks and c != max(out.chunks) + 1:
            break  # a chunk is missing: its segments are read instead
        if not _names_extend(index, header):
            break  # names numbered differently (never written so): read the segments
        if not out.chunks:
            index.base, out.start = first, c * chunk_runs
        _pad(index, first)
        for (kind, code, _t, _n), arr in zip(header["arrays"], arrays, strict=True):
            if code is None:
                getattr(index, kind).extend(arr)
            else:
                getattr(index, kind).setdefault(code, array(arr.typecode)).extend(arr)
        for j, occ in header["last_occurrence"]:
            if occ > index.last_occurrence.get(j, float("-inf")):
                index.last_occurrence[j] = occ
        for j, h, r in header["last_by_job_host"]:
            if r > index.last_by_job_host.get((j, h), 0):
                index.last_by_job_host[(j, h)] = r
        out.unsettled.extend(header["unsettled"])
        out.chunks.add(c)
        out.stop = (c + 1) * chunk_runs
        _pad(index, stop)
    return out


def _decode(data: bytes) -> tuple[dict[str, Any], list[array]]:
    if not data.startswith(MAGIC):
        raise ValueError("not a run index chunk")
    pos = len(MAGIC)
    size = int.from_bytes(data[pos:pos + 8], "little")
    pos += 8
    header = codec.loads(data[pos:pos + size])
    pos += size
    if not isinstance(header, dict) or header.get("version") != 1:
        raise ValueError("unknown version")
    arrays = []
    for kind, _code, typecode, count in header["arrays"]:
        if kind not in _COLUMNS and kind not in _POSTINGS:
            raise ValueError(f"unknown array {kind!r}")
        arr = array(typecode)
        end = pos + count * arr.itemsize
        if end > len(data):
            raise ValueError("truncated")
        arr.frombytes(data[pos:end])
        arrays.append(arr)
        pos = end
    if pos != len(data):
        raise ValueError("trailing bytes")
    return header, arrays


def _names_extend(index: RunIndex, header: dict[str, Any]) -> bool:
    for names, new in ((index.jobs, header["jobs"]), (index.hosts, header["hosts"])):
        if new[:len(names.names)] != names.names:
            return False
        for name in new[len(names.names):]:
            names.code(name)
    return True


def _pad(index: RunIndex, stop: int) -> None:
    """Slots up to ``stop`` exist (empty ones for ids no run took)."""
    if stop > index.end():
        index.grow(stop - 1)
