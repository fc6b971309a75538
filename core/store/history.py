"""Run history split into fixed-size segments, one small TinyDB file each.

Segment ``k`` holds run ids ``k*size .. (k+1)*size - 1`` in ``runs/runs-<k:06d>.json``
(table ``runs``, TinyDB doc_id = run id), so a write re-serializes at most ``size``
records, a lookup goes straight to one segment, and retention drops whole files.

The run index travels in the newest segment (the *head*): table ``store`` (document
1: next run id, segment size, run count of every segment) and table ``active`` (one
document per queued or running run, doc_id = run id). Recording a run therefore
rewrites one file, atomically, records and index together.

Crash consistency. A commit writes older segments first and the head last. At open
the head's index is read, and every segment at or after the index's next id (and
any segment file the index does not know) is scanned: runs added after the index
was last made durable are counted and their active ones indexed. An indexed run
found finished (its segment was written, the head was not) leaves the active index
when it is next read. A segment that was the head keeps a stale copy of the index
until it is rewritten after the new head is on disk; only the head's copy is used.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Document, Table

from core.jobs.runs import Run
from core.store.docs import (
    ActiveRuns,
    copy_doc,
    encode_counts,
    open_db,
    put,
    run_doc,
    run_from_doc,
)
from core.store.index import RunIndex
from core.store.index_files import (
    CHUNK_SEGMENTS,
    chunk_file_name,
    encode_chunk,
)
from core.store.reopen import ACTIVE as _ACTIVE
from core.store.reopen import STORE_DOC as _STORE_DOC
from core.store.reopen import Reopening
from core.store.storage import AtomicJSONStorage
from core.store.tables import get_raw, insert_doc, insert_docs, remove_docs, replace_raw

log = logging.getLogger("fleetdeck.store")

DEFAULT_SEGMENT_SIZE = 100
ID_BLOCK = 256  # run ids reserved ahead on disk: a crash skips them, never reuses one
PINNED_MAX = 128  # segments kept past the cache for their queued and running runs
_INDEX_TABLES = ("store", "active")


def segment_file_name(k: int) -> str:
    return f"runs-{k:06d}.json"


def segment_dir_name(k: int) -> str:
    return f"{k:06d}"


@dataclass
class _Segment:
    number: int
    db: TinyDB
    storage: AtomicJSONStorage
    runs: Table
    index_on_disk: bool = False  # its file on disk carries an index

    def has_index(self) -> bool:
        return bool(self.storage.read().keys() & set(_INDEX_TABLES))


class RunHistory(Reopening):
    """Runs in segments; the head segment carries counts, the next id and active runs."""

    def __init__(self, runs_dir: Path, logs_dir: Path, *, retention: int,
                 segment_size: int, read_only: bool, cache_segments: int,
                 chunk_segments: int = CHUNK_SEGMENTS, previous: RunHistory | None = None,
                 ) -> None:
        if segment_size < 1:
            raise ValueError("segment_size must be at least 1")
        self.runs_dir = runs_dir
        self.logs_dir = logs_dir
        self.retention = retention
        self.read_only = read_only
        self.cache_segments = max(2, cache_segments)
        self.segment_size = segment_size
        self.segment_reads = 0  # segment files parsed since open (to check what open touches)
        self._cache: OrderedDict[int, _Segment] = OrderedDict()
        self._head: _Segment | None = None
        self._counts: dict[int, int] = {}
        self._total = 0
        self._active = ActiveRuns(segment_size)  # run id -> job
        self._next_id = 1
        self._reserved = 1  # ids below it may have been handed out: after a crash, not again
        self._deletions: list[Path] = []
        self._counters_changed = False
        self._sealed_ranges: list[list[int]] | None = None  # encoded counts but the head's
        self.chunk_segments = chunk_segments  # segments per index chunk
        self.index = RunIndex()
        self._chunks_on_disk: set[int] = set()
        self._open(previous)

    # ----------------------------------------------------------------- segments ----
    def _load(self, k: int) -> _Segment:
        path = self.runs_dir / segment_file_name(k)
        db, storage = open_db(path, self.read_only)
        seg = _Segment(k, db, storage, db.table("runs"))
        if storage.loaded_from_disk:
            self.segment_reads += 1
            if self.read_only:  # a view: the file may be newer than what it indexed
                for doc in seg.runs:
                    self.index.put(doc)
        seg.index_on_disk = seg.has_index()
        self._cache[k] = seg
        return seg

    def _segment(self, k: int, *, create: bool = False) -> _Segment | None:
        seg = self._cache.get(k)
        if seg is not None:
            self._cache.move_to_end(k)
            return seg
        if k in self._counts:
            seg = self._load(k)
        elif not create:
            return None
        else:
            seg = self._load(k)
            if seg.storage.loaded_from_disk:  # pruned, not deleted yet: it is back
                gone = self.runs_dir / segment_file_name(k)
                self._deletions = [p for p in self._deletions if p != gone]
                self._reconcile(k)
            else:
                seg.db.table("segment").insert(
                    Document({"number": k, "size": self.segment_size}, doc_id=1))
                self._counts[k] = 0
                self._counters_changed = True
            if self._head is None or k > self._head.number:
                prev, self._head = self._head, seg
                self._install_index(seg, prev)
        self._trim_cache(keep=k)
        return seg

    def _install_index(self, seg: _Segment, prev: _Segment | None = None) -> None:
        """Give the head the full index. An old head keeps a stale copy until it is
        rewritten after the new head is on disk (see ``storages``).

        ``prev``, the head before ``seg``, holds the active index in step with
        ``self._active``: its documents are copied as they are (they are never changed
        in place), not rebuilt one by one -- a roll-over with thousands of queued runs
        would otherwise cost a fresh document per active run.
        """
        if self.read_only:
            return
        self._sealed_ranges = None
        docs = None
        if prev is not None and prev is not seg:
            held = prev.storage.read().get("active") or {}
            if len(held) == len(self._active):
                docs = dict(held)
        if docs is None:
            docs = {str(i): {"job": job} for i, job in self._active.items()}
        replace_raw(seg.db.table("active"), docs)
        self._counters_changed = True

    def _trim_cache(self, keep: int | None = None) -> None:
        """Drop the least recently used clean segments beyond the cache's size; never
        ``keep``, the one just handed to a caller (who may be about to change it).

        Segments holding queued or running runs stay, up to ``PINNED_MAX`` more."""
        if len(self._cache) <= self.cache_segments:
            return
        busy = self._active.per_segment
        limit = self.cache_segments + min(PINNED_MAX, len(busy))
        for spare_busy in (False, True):
            for k in list(self._cache):
                if len(self._cache) <= limit:
                    return
                seg = self._cache[k]
                if seg is self._head or seg.storage.dirty or k == keep \
                        or (not spare_busy and k in busy):
                    continue  # dirty ones stay until a commit wrote them
                del self._cache[k]
            limit = self.cache_segments + PINNED_MAX  # more busy than kept: the oldest go

    def segment_of(self, run_id: int) -> int:
        return run_id // self.segment_size

    # --------------------------------------------------------------------- runs ----
    def next_run_id(self) -> int:
        run_id = self._next_id
        self._next_id += 1
        if self._next_id > self._reserved:  # durable with the run's own commit
            self._reserved = self._next_id + ID_BLOCK
        self._counters_changed = True
        return run_id

    def add(self, run: Run) -> dict[str, Any]:
        """Record a new run; returns a copy of its record (``run.to_dict()``)."""
        k = self.segment_of(run.id)
        new_segment = k not in self._counts
        seg = self._segment(k, create=True)
        assert seg is not None
        doc = run_doc(run)
        insert_doc(seg.runs, run.id, doc, copy=False)
        self.index.put(doc)
        self._counted(k, 1)
        self._next_id = max(self._next_id, run.id + 1)
        self._track(run)
        if new_segment:
            self.prune()
        return copy_doc(doc)

    def add_many(self, runs: list[Run], docs: list[dict[str, Any]] | None = None) -> None:
        """``add`` for a batch of new runs, ids ascending: one table change per segment
        instead of two per run (a scheduler tick may queue thousands). ``docs``: the
        runs' fresh ``run_doc``s, stored as they are, when the caller made them already."""
        if docs is None:
            docs = [run_doc(run) for run in runs]
        i = 0
        while i < len(runs):
            k = self.segment_of(runs[i].id)
            j = i
            while j < len(runs) and self.segment_of(runs[j].id) == k:
                j += 1
            group, group_docs = runs[i:j], docs[i:j]
            i = j
            new_segment = k not in self._counts
            seg = self._segment(k, create=True)
            assert seg is not None
            insert_docs(seg.runs, [(run.id, doc)
                                   for run, doc in zip(group, group_docs, strict=True)])
            for doc in group_docs:
                self.index.put(doc)
            self._counted(k, len(group))
            self._next_id = max(self._next_id, group[-1].id + 1)
            active = [(run.id, {"job": run.job}) for run in group
                      if run.state in _ACTIVE and run.id not in self._active]
            if active:
                for run_id, doc in active:
                    self._active[run_id] = doc["job"]
                assert self._head is not None
                insert_docs(self._head.db.table("active"), active)
            if new_segment:
                self.prune()

    def save(self, run: Run) -> None:
        k = self.segment_of(run.id)
        seg = self._segment(k, create=True)
        assert seg is not None
        doc = run_doc(run)
        if put(seg.runs, run.id, doc):
            self._counted(k, 1)
            self._next_id = max(self._next_id, run.id + 1)
        self.index.put(doc)
        self._track(run)

    def get_doc(self, run_id: int) -> dict[str, Any] | None:
        """A copy of run ``run_id``'s record (what ``get(...).to_dict()`` gives), or None."""
        if run_id < 0:
            return None
        seg = self._segment(self.segment_of(run_id))
        doc = None if seg is None else get_raw(seg.runs, run_id)
        return None if doc is None else copy_doc(doc)

    def get(self, run_id: int) -> Run | None:
        if run_id < 0:
            return None
        seg = self._segment(self.segment_of(run_id))
        if seg is None:
            return None
        doc = seg.runs.get(doc_id=run_id)
        return None if doc is None else run_from_doc(doc)

    def _counted(self, k: int, n: int) -> None:
        self._counts[k] = self._counts.get(k, 0) + n
        self._total += n
        self._counters_changed = True
        if self._head is None or k != self._head.number:
            self._sealed_ranges = None

    def _track(self, run: Run) -> None:
        if run.state in _ACTIVE:
            if run.id not in self._active:
                self._active[run.id] = run.job
                assert self._head is not None
                insert_doc(self._head.db.table("active"), run.id, {"job": run.job})
        elif run.id in self._active:
            self._unindex_active(run.id)

    def _unindex_active(self, run_id: int) -> None:
        del self._active[run_id]
        if self._head is not None and not self.read_only:
            remove_docs(self._head.db.table("active"), [run_id])

    def find(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Run documents matching ``filters`` (see ``RunIndex.ids``), newest first: read
        them, never change them."""
        for run_id in self.index.ids(active=self._active, **filters):
            seg = self._segment(self.segment_of(run_id))
            doc = None if seg is None else get_raw(seg.runs, run_id)
            if doc is not None:
                yield doc

    def count_matching(self, **filters: Any) -> int:
        return self.index.count(active=self._active, **filters) if filters \
            else self._total

    def active(self) -> tuple[list[Run], bool]:
        """The active runs (oldest first), and whether stale index entries were dropped."""
        out: list[Run] = []
        healed = False
        for run_id in sorted(self._active):
            run = self.get(run_id)
            if run is None or run.state not in _ACTIVE:
                self._unindex_active(run_id)  # a crash between a segment and the head
                healed = True
                continue
            out.append(run)
        return out, healed

    def next_known_id(self) -> int:
        return self._next_id

    def active_ids(self) -> list[int]:
        return list(self._active)

    def segments(self) -> list[int]:
        return sorted(self._counts)

    # ---------------------------------------------------------------- retention ----
    def prune(self) -> int:
        """Drop whole oldest segments while at least ``retention`` runs remain.

        Never drops the head nor a segment holding an active run. Files and log
        folders go at the next commit, after the index no longer lists them.
        """
        if self.read_only or self._total <= self.retention or len(self._counts) < 2:
            return 0
        busy = self._active.per_segment
        newest = max(self._counts)
        removed = 0
        for k in sorted(self._counts):
            if k == newest or self._total - self._counts[k] < self.retention:
                break
            if k in busy:
                continue
            n = self._counts.pop(k)
            self._total -= n
            removed += n
            self._cache.pop(k, None)  # dropped unwritten: its file is going anyway
            self._deletions.append(self.runs_dir / segment_file_name(k))
            self._deletions.append(self.logs_dir / segment_dir_name(k))
            self.index.drop(k * self.segment_size, (k + 1) * self.segment_size)
        if removed:
            self._counters_changed = True
            self._sealed_ranges = None
            oldest = min(self._counts) // self.chunk_segments
            for c in sorted(self._chunks_on_disk):
                if c < oldest:  # every segment of it is gone
                    self._chunks_on_disk.discard(c)
                    self._deletions.append(self.runs_dir / chunk_file_name(c))
            log.info("retention: dropped %d old runs (%d kept, limit %d)", removed,
                     self._total, self.retention)
        return removed

    # ------------------------------------------------------------------- commit ----
    def storages(self) -> list[AtomicJSONStorage]:
        """Storages to commit, in order: older segments first, the head (index) last."""
        if self.read_only:
            return []
        head = self._head
        if head is not None and self._counters_changed:
            if self._sealed_ranges is None:  # only after a roll-over, a prune, ...
                self._sealed_ranges = encode_counts(
                    {k: n for k, n in self._counts.items() if k != head.number})
            ranges = self._sealed_ranges
            if head.number in self._counts:
                ranges = [*ranges, [head.number, head.number, self._counts[head.number]]]
            put(head.db.table("store"), _STORE_DOC, {
                "next_id": self._next_id,
                "reserved": max(self._reserved, self._next_id),
                "segment_size": self.segment_size,
                "chunk_segments": self.chunk_segments,
                "segments": ranges,
            })
            self._counters_changed = False
        # once the head's file carries an index, older copies are never read again
        head_on_disk = head is not None and (head.index_on_disk
                                             or head.storage.written_version > 0)
        out = []
        for seg in self._cache.values():
            if seg is head:
                continue
            if head_on_disk and seg.storage.dirty and seg.has_index():
                for name in _INDEX_TABLES:  # a stale copy, no longer needed
                    seg.db.drop_table(name)
            out.append(seg.storage)
        if head is not None:
            out.append(head.storage)
        return out

    def sealed_chunks(self) -> list[tuple[int, Path, bytes]]:
        """Index chunks to write after the segments: those whose segments are all sealed
        (none is the head) and which are not on disk yet."""
        if self.read_only or self._head is None or not self._counts:
            return []
        out = []
        runs = self._chunk_runs()
        for c in range(min(self._counts) // self.chunk_segments,
                       self._head.number // self.chunk_segments):
            if c in self._chunks_on_disk:
                continue
            first, stop = c * runs, (c + 1) * runs
            unsettled = [i for i in self._active if first <= i < stop]
            out.append((c, self.runs_dir / chunk_file_name(c),
                        encode_chunk(self.index, first, stop, unsettled)))
        return out

    def chunks_written(self, chunks: Iterable[int]) -> None:
        self._chunks_on_disk.update(chunks)

    def take_deletions(self) -> list[Path]:
        out, self._deletions = self._deletions, []
        return out

    def give_back_deletions(self, paths: Iterable[Path]) -> None:
        self._deletions[:0] = list(paths)

    def after_commit(self) -> None:
        self._trim_cache()

    def log_dir(self, run_id: int) -> Path:
        return self.logs_dir / segment_dir_name(self.segment_of(run_id))

    def release_reserved(self) -> None:
        """A clean close: the next engine goes on from the next id, not past a block."""
        if not self.read_only and self._reserved != self._next_id:
            self._reserved = self._next_id
            self._counters_changed = True

    def close(self) -> None:
        self._cache.clear()
        self._head = None
