"""Opening a run history: the index from the head segment and its chunks, reconciled
with whatever a crash left on disk ahead of them (a mixin of ``RunHistory``).

The head's index (next id, run counts) and the index chunks say what is known; every
segment at or after the index's next id, unknown to it, past the last chunk, or holding
a run a chunk calls unsettled is read and counted again, its active runs indexed.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from tinydb.table import Document

from core.jobs.runs import ACTIVE_STATES
from core.store.docs import ActiveRuns, decode_counts
from core.store.index import RunIndex
from core.store.index_files import Loaded, list_chunks, load_chunks

log = logging.getLogger("fleetdeck.store")

ACTIVE = frozenset(s.value for s in ACTIVE_STATES)  # the states of queued and running runs
_SEGMENT_RE = re.compile(r"^runs-(\d{6,})\.json$")
STORE_DOC = 1  # the head's document holding the index (next id, counts)


class Reopening:
    """The opening half of RunHistory (its state is made in RunHistory.__init__)."""

    def _open(self, previous: Any = None) -> None:
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
            store_doc = seg.db.table("store").get(doc_id=STORE_DOC)
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

        chunk = stored.get("chunk_segments")
        if isinstance(chunk, int) and chunk > 0:
            self.chunk_segments = chunk  # the index chunks on disk are cut this way
        self._next_id = max(1, int(stored.get("next_id") or 1))
        if not self.read_only:  # ids up to the reservation may have been handed out
            self._next_id = max(self._next_id, int(stored.get("reserved") or 0))
        if self._head.storage.unreadable:  # set aside with the ids it held: none again
            self._next_id = max(self._next_id, (newest + 1) * self.segment_size)
        self._reserved = self._next_id
        counts = decode_counts(stored.get("segments") or [])
        self._counts = {k: n for k, n in counts.items() if k in on_disk}
        self._active = ActiveRuns(self.segment_size,
                                  ((doc.doc_id, doc.get("job")) for doc in active))
        self._counters_changed = not stored or len(self._counts) != len(counts)
        scan_from = int(stored.get("next_id") or 0) // self.segment_size
        loaded = self._load_index(on_disk, previous)
        again = {self.segment_of(i) for i in loaded.unsettled}
        first_unchunked = loaded.stop // self.segment_size
        for k in sorted(on_disk):
            if k >= scan_from or k not in self._counts or k >= first_unchunked or k in again:
                self._reconcile(k)
                self._trim_cache()
        self._total = sum(self._counts.values())
        if not self._head.has_index() or self._counters_changed:
            self._install_index(self._head)
        if not self.read_only:
            self._sweep_orphan_logs()

    def _load_index(self, on_disk: set[int], previous: Any = None) -> Loaded:
        """The index from its chunks (or from ``previous``, an earlier view of the same
        history, up to where it had read), less the segments retention dropped since."""
        chunks = list_chunks(self.runs_dir)
        size = self.segment_size
        if previous is not None and previous.segment_size == size and len(previous.index):
            self.index = previous.index  # the older view is let go: its index moves here
            loaded = Loaded(start=self.index.base // size * size,
                            stop=previous.next_known_id() // size * size,
                            unsettled=list(previous.active_ids()))
        elif chunks:
            loaded = load_chunks(self.index, self.runs_dir, self._chunk_runs())
        else:
            loaded = Loaded()
        if loaded.chunks and min(on_disk) * self.segment_size < loaded.start:
            self.index, loaded = RunIndex(), Loaded()  # runs older than the chunks: read all
        self._chunks_on_disk = set(chunks)
        k, stop = loaded.start // size, loaded.stop // size
        while k < stop:  # segments dropped after their chunk was written
            if k in on_disk:
                k += 1
                continue
            j = k
            while j < stop and j not in on_disk:
                j += 1
            self.index.drop(k * size, j * size)
            k = j
        return loaded

    def _chunk_runs(self) -> int:
        return self.chunk_segments * self.segment_size

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
        put = self.index.put
        for doc in seg.runs:
            n += 1
            put(doc)
            self._next_id = max(self._next_id, doc.doc_id + 1)
            if doc.get("state") in ACTIVE and doc.doc_id not in self._active:
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

