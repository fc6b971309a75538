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
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Document, Table

from core.jobs.runs import ACTIVE_STATES, Run
from core.store.docs import (
    copy_doc,
    decode_counts,
    encode_counts,
    open_db,
    put,
    run_doc,
    run_from_doc,
)
from core.store.storage import AtomicJSONStorage
from core.store.tables import get_raw, insert_doc, insert_docs, remove_docs, replace_raw

log = logging.getLogger("fleetdeck.store")

DEFAULT_SEGMENT_SIZE = 100
_SEGMENT_RE = re.compile(r"^runs-(\d{6,})\.json$")
_ACTIVE = frozenset(s.value for s in ACTIVE_STATES)
_STORE_DOC = 1
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


class RunHistory:
    """Runs in segments; the head segment carries counts, the next id and active runs."""

    def __init__(self, runs_dir: Path, logs_dir: Path, *, retention: int,
                 segment_size: int, read_only: bool, cache_segments: int) -> None:
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
        self._active: dict[int, Any] = {}  # run id -> job
        self._next_id = 1
        self._deletions: list[Path] = []
        self._counters_changed = False
        self._sealed_ranges: list[list[int]] | None = None  # encoded counts but the head's
        self._open()

    # ------------------------------------------------------------------ opening ----
    def _open(self) -> None:
        on_disk, leftovers = self._list_dir()
        if not self.read_only:
            for path in leftovers:
                path.unlink(missing_ok=True)
        if not on_disk:
            return
        newest = max(on_disk)
        self._head = self._load(newest)
        # the index lives in the head; after a crash at a roll-over it may be one back
        stored: dict[str, Any] = {}
        active: list[Document] = []
        for k in sorted(on_disk, reverse=True)[:2]:
            seg = self._cache.get(k) or self._load(k)
            store_doc = seg.db.table("store").get(doc_id=_STORE_DOC)
            if store_doc is not None:
                stored = dict(store_doc)
                active = list(seg.db.table("active"))
                break
        if not stored and len(on_disk) > 1:
            log.warning("%s: no run index found; rebuilding it from every segment",
                        self.runs_dir)
        size = stored.get("segment_size")
        if size is None:
            header = self._head.db.table("segment").get(doc_id=1) or {}
            size = header.get("size")
        if size is not None and int(size) != self.segment_size:
            log.info("%s: keeping the segment size %d it was created with (asked %d)",
                     self.runs_dir, int(size), self.segment_size)
            self.segment_size = int(size)

        self._next_id = max(1, int(stored.get("next_id") or 1))
        counts = decode_counts(stored.get("segments") or [])
        self._counts = {k: n for k, n in counts.items() if k in on_disk}
        self._active = {doc.doc_id: doc.get("job") for doc in active}
        self._counters_changed = not stored or len(self._counts) != len(counts)
        scan_from = int(stored.get("next_id") or 0) // self.segment_size
        for k in sorted(on_disk):
            if k >= scan_from or k not in self._counts:
                self._reconcile(k)
                self._trim_cache()
        self._total = sum(self._counts.values())
        if not self._head.has_index() or self._counters_changed:
            self._install_index(self._head)
        if not self.read_only:
            self._sweep_orphan_logs()

    def _list_dir(self) -> tuple[set[int], list[Path]]:
        on_disk: set[int] = set()
        leftovers: list[Path] = []
        try:
            entries = list(self.runs_dir.iterdir())
        except FileNotFoundError:
            return on_disk, leftovers
        for path in entries:
            m = _SEGMENT_RE.match(path.name)
            if m:
                on_disk.add(int(m.group(1)))
            elif path.name.endswith(".tmp"):
                leftovers.append(path)
        return on_disk, leftovers

    def _reconcile(self, k: int) -> None:
        """Count segment ``k`` and index its active runs (runs the index may not know)."""
        seg = self._cache.get(k) or self._load(k)
        n = 0
        for doc in seg.runs:
            n += 1
            self._next_id = max(self._next_id, doc.doc_id + 1)
            if doc.get("state") in _ACTIVE and doc.doc_id not in self._active:
                self._active[doc.doc_id] = doc.get("job")
                self._counters_changed = True
        if self._counts.get(k) != n:
            self._counts[k] = n
            self._counters_changed = True
            self._sealed_ranges = None

    def _sweep_orphan_logs(self) -> None:
        """Log folders of vanished segments older than the head were pruned (a crash
        came between the commit and the deletion)."""
        if not self._counts:
            return
        newest = max(self._counts)
        try:
            entries = list(self.logs_dir.iterdir())
        except FileNotFoundError:
            return
        for path in entries:
            name = path.name
            if name.isdigit() and int(name) < newest and int(name) not in self._counts:
                self._deletions.append(path)

    # ----------------------------------------------------------------- segments ----
    def _load(self, k: int) -> _Segment:
        path = self.runs_dir / segment_file_name(k)
        db, storage = open_db(path, self.read_only)
        if storage.loaded_from_disk:
            self.segment_reads += 1
        seg = _Segment(k, db, storage, db.table("runs"))
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
        self._trim_cache()
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

    def _trim_cache(self) -> None:
        if len(self._cache) <= self.cache_segments:
            return
        for k in list(self._cache):
            if len(self._cache) <= self.cache_segments:
                break
            seg = self._cache[k]
            if seg is self._head or seg.storage.dirty:
                continue  # dirty ones stay until a commit wrote them
            del self._cache[k]

    def segment_of(self, run_id: int) -> int:
        return run_id // self.segment_size

    # --------------------------------------------------------------------- runs ----
    def next_run_id(self) -> int:
        run_id = self._next_id
        self._next_id += 1
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
        if put(seg.runs, run.id, run_doc(run)):
            self._counted(k, 1)
            self._next_id = max(self._next_id, run.id + 1)
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

    def iter_newest_first(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        """Run documents, newest id first, one segment at a time.

        With ``since``, stops after a segment whose runs were all queued before it
        (ids are handed out in queue order, so older segments are older still).
        """
        for k in sorted(self._counts, reverse=True):
            seg = self._segment(k)
            if seg is None:
                continue
            docs = sorted(seg.runs, key=lambda d: d.doc_id, reverse=True)
            yield from docs
            if since is not None and docs and all(
                    (d.get("queued_at") or 0.0) < since for d in docs):
                return

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

    def count(self) -> int:
        return self._total

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
        busy = {self.segment_of(i) for i in self._active}
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
        if removed:
            self._counters_changed = True
            self._sealed_ranges = None
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
                "segment_size": self.segment_size,
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

    def take_deletions(self) -> list[Path]:
        out, self._deletions = self._deletions, []
        return out

    def give_back_deletions(self, paths: Iterable[Path]) -> None:
        self._deletions[:0] = list(paths)

    def after_commit(self) -> None:
        self._trim_cache()

    def log_dir(self, run_id: int) -> Path:
        return self.logs_dir / segment_dir_name(self.segment_of(run_id))

    def close(self) -> None:
        self._cache.clear()
        self._head = None
