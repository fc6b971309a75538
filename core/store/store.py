"""The Store: runs, job state and engine facts in small TinyDB files, durable on commit.

Memory is authoritative; every method is synchronous and cheap. ``commit`` (or
``commit_async`` from an event loop) makes all changes durable, one atomic file
replacement per changed file, in an order that a crash at any point can only leave
recoverable states (see ``core.store.history``).

Layout of a state directory (0700, files 0600)::

    engine.lock                 the StateLock (holder's pid)
    jobs.json                   table "jobs": one document per job: {"job", "state"}
    meta.json                   table "meta": document 1 holds the engine's key/values
    runs/runs-000042.json       table "runs": the runs 42*size .. 43*size-1 (doc_id = run id),
                                table "segment": {"number", "size"}; the newest segment
                                also holds the run index: tables "store" (next id, segment
                                size, run count per segment) and "active" (queued/running ids)
    logs/000042/<run_id>.log    the output of each run of that segment
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from tinydb.table import Document

from core.jobs.runs import Run
from core.store import codec
from core.store.docs import copy_doc, delete_paths, open_db, plain_copy, run_from_doc
from core.store.history import DEFAULT_SEGMENT_SIZE, RunHistory
from core.store.index_files import CHUNK_SEGMENTS
from core.store.storage import AtomicJSONStorage, atomic_write, private_dir
from core.store.tables import changed, get_raw, insert_doc, next_doc_id, raw_docs, update_doc

log = logging.getLogger("fleetdeck.store")

DEFAULT_RETENTION = 50_000
_META_DOC = 1

_Batch = tuple[list[tuple[AtomicJSONStorage, int, bytes]], list[Path],
               list[tuple[int, Path, bytes]]]


SUMMARY_INTERVAL = 1.0  # seconds between writes of job summaries alone


class StoreReadOnly(RuntimeError):
    """A change was asked of a store opened read-only."""


_EXACT_SCALARS = frozenset((str, int, float, bool, type(None)))


def _plain(value: Any) -> Any:
    """A deep copy as it will read back from disk; fails now, not at commit, if not JSON."""
    if type(value) is dict and all(type(k) is str and type(v) in _EXACT_SCALARS
                                   for k, v in value.items()):
        return dict(value)  # what the JSON round trip gives for plain scalars, only cheaper
    try:
        return plain_copy(value)  # the same for JSON-shaped data (str keys, no tuples)
    except TypeError:
        pass
    try:
        return codec.loads(codec.dumps(value))
    except (TypeError, ValueError) as e:
        raise TypeError(f"not storable as JSON: {e}") from None


class Store:
    """Synchronous, in-memory-authoritative state of one state directory."""

    def __init__(self, state_dir: Path, *, retention: int = DEFAULT_RETENTION,
                 segment_size: int = DEFAULT_SEGMENT_SIZE, read_only: bool = False,
                 cache_segments: int = 8, index_chunk: int = CHUNK_SEGMENTS,
                 previous: Store | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.runs_dir = self.state_dir / "runs"
        self.logs_dir = self.state_dir / "logs"
        self.read_only = read_only
        if not read_only:
            for d in (self.state_dir, self.runs_dir, self.logs_dir):
                private_dir(d)
            for leftover in self.state_dir.glob("*.tmp"):
                leftover.unlink(missing_ok=True)
        self._history = RunHistory(self.runs_dir, self.logs_dir, retention=retention,
                                   segment_size=segment_size, read_only=read_only,
                                   cache_segments=cache_segments,
                                   chunk_segments=index_chunk,
                                   previous=None if previous is None else previous._history)
        self._jobs_db, self._jobs_storage = open_db(self.state_dir / "jobs.json", read_only)
        self._jobs = self._jobs_db.table("jobs")
        self._job_ids: dict[str, int] = {doc["job"]: doc.doc_id for doc in self._jobs
                                         if isinstance(doc.get("job"), str)}
        self._next_job_doc = next_doc_id(self._jobs)  # as TinyDB's insert would number it
        self._meta_db, self._meta_storage = open_db(self.state_dir / "meta.json", read_only)
        self._meta = self._meta_db.table("meta")
        self._log_dirs: set[Path] = set()
        self._io_lock = threading.Lock()  # one batch of file writes at a time
        self._seq = 0  # bumped by every change
        self._durable_seq = 0  # the last change known to be on disk
        self._inflight: asyncio.Future[None] | None = None
        self._closed = False
        self._closing = False
        self._jobs_must_write = False  # a durable job-state change waits for a commit
        self._jobs_written_at = 0.0  # monotonic time jobs.json was last written
        self.commits_written = 0  # batches of files written (group commit shares them)
        self._on_durable: deque[tuple[int, Callable[[], None]]] = deque()

    @classmethod
    def open(cls, state_dir: Path, *, retention: int = DEFAULT_RETENTION,
             segment_size: int = DEFAULT_SEGMENT_SIZE, read_only: bool = False,
             cache_segments: int = 8, index_chunk: int = CHUNK_SEGMENTS,
             previous: Store | None = None) -> Store:
        """Open (creating if needed, 0700) the state in ``state_dir``.

        The caller owns the directory's StateLock. ``read_only`` opens without the
        lock beside a running engine: nothing on disk changes and changes raise.
        ``segment_size`` only applies to a new store; an existing one keeps its own.
        ``index_chunk``: segments per run-index chunk (see ``core.store.index_files``).
        ``previous``: a read-only view of the same state opened before, let go now: its
        index is taken over and only what changed since is read (a console attached to
        a daemon reopens its view many times a second).
        """
        if previous is not None and not (read_only and previous.read_only):
            raise ValueError("only a read-only view reopens from a previous one")
        return cls(Path(state_dir), retention=retention, segment_size=segment_size,
                   read_only=read_only, cache_segments=cache_segments,
                   index_chunk=index_chunk, previous=previous)

    # ------------------------------------------------------------------ helpers ----
    def _change(self) -> None:
        if self.read_only:
            raise StoreReadOnly(f"state in {self.state_dir} is open read-only")
        if self._closed:
            raise RuntimeError(f"state in {self.state_dir} is closed")
        self._seq += 1

    @property
    def segment_size(self) -> int:
        return self._history.segment_size

    @property
    def retention(self) -> int:
        return self._history.retention

    @property
    def segment_reads(self) -> int:
        """How many run segment files were parsed since open (open reads the newest)."""
        return self._history.segment_reads

    # --------------------------------------------------------------------- runs ----
    def next_run_id(self) -> int:
        self._change()
        return self._history.next_run_id()

    def add_run(self, run: Run) -> dict[str, Any]:
        """Record a new run (its id from ``next_run_id``); ValueError if the id exists.
        Returns a copy of the record, the same as ``run.to_dict()``."""
        self._change()
        return self._history.add(run)

    def add_runs(self, runs: list[Run], docs: list[dict[str, Any]] | None = None) -> None:
        """Record a batch of new runs, ids ascending (``add_run`` for each, cheaper).
        ``docs``: their ``run_doc``s if made already (fresh dicts, kept as they are)."""
        if runs:
            self._change()
            self._history.add_many(runs, docs)

    def save_run(self, run: Run) -> None:
        """Replace the stored record of ``run.id`` (recording it if it is new)."""
        self._change()
        self._history.save(run)

    def get_run(self, run_id: int) -> Run | None:
        return self._history.get(run_id)

    def get_run_record(self, run_id: int) -> dict[str, Any] | None:
        """``get_run(run_id).to_dict()`` without making the Run."""
        return self._history.get_doc(run_id)

    def list_runs(self, *, job: str | None = None, states: Iterable[str] | None = None,
                  since: float | None = None, limit: int | None = 50,
                  host: str | None = None, triggers: Iterable[str] | None = None,
                  ) -> list[Run]:
        """Runs newest first, filtered (``since``: queued at or after), from the index:
        only the runs returned are read from their segments."""
        return [run_from_doc(doc) for doc in self.find_runs(
            job=job, states=states, since=since, limit=limit, host=host, triggers=triggers)]

    def find_runs(self, *, limit: int | None = 50, **filters: Any) -> list[dict[str, Any]]:
        """``list_runs`` as stored documents (copies), without making Runs."""
        if limit is not None and limit <= 0:
            return []
        out = []
        for doc in self._history.find(**filters):
            out.append(copy_doc(doc))
            if limit is not None and len(out) >= limit:
                break
        return out

    def count_runs(self, **filters: Any) -> int:
        """How many runs match (``list_runs``'s filters); with none, all on record."""
        return self._history.count_matching(
            **{k: v for k, v in filters.items() if v is not None})

    def latest_occurrence(self, job: str) -> float | None:
        """The latest occurrence of ``job`` any run on record fulfils (or skipped)."""
        return self._history.index.latest_occurrence(job)

    def active_runs(self) -> list[Run]:
        """Queued and running runs, oldest first, from the active index (no scan)."""
        runs, healed = self._history.active()
        if healed and not self.read_only:
            self._seq += 1  # the index dropped runs a crash left in it; next commit writes it
        return runs

    def segments(self) -> list[int]:
        """The numbers of the run segments on record, oldest first."""
        return self._history.segments()

    def prune(self) -> int:
        """Apply retention now; returns the number of runs dropped."""
        if self.read_only:
            return 0
        removed = self._history.prune()
        if removed:
            self._seq += 1
        return removed

    def log_path(self, run_id: int) -> Path:
        """``logs/<segment>/<run_id>.log``; the segment folder is created (0700) lazily."""
        folder = self._history.log_dir(run_id)
        if not self.read_only and folder not in self._log_dirs:
            private_dir(folder)
            self._log_dirs.add(folder)
        return folder / f"{run_id}.log"

    # --------------------------------------------------------------------- jobs ----
    def job_state(self, job: str) -> dict[str, Any]:
        doc_id = self._job_ids.get(job)
        if doc_id is None:
            return {}
        doc = self._jobs.get(doc_id=doc_id)
        return copy.deepcopy(doc.get("state") or {}) if doc is not None else {}

    def job_state_view(self, job: str) -> Mapping[str, Any]:
        """The job's state without a copy: for reading only (the engine's hot path)."""
        doc_id = self._job_ids.get(job)
        doc = None if doc_id is None else get_raw(self._jobs, doc_id)
        return MappingProxyType((doc or {}).get("state") or {})

    def update_job_summary(self, job: str, **fields: Any) -> None:
        """Like update_job_state, for a cache (last result, success rate).

        Written with the next commit at most once every SUMMARY_INTERVAL seconds (and at
        close), so recording a run replaces one file, not two. After a crash the last
        moments of summaries may be stale; the runs themselves are not.
        """
        self.update_job_state(job, _summary=True, **fields)

    def update_job_state(self, job: str, _summary: bool = False, **fields: Any) -> None:
        self._change()
        if not _summary:
            self._jobs_must_write = True
        fields = _plain(fields)
        doc_id = self._job_ids.get(job)
        if doc_id is None:
            doc_id = self._next_job_doc
            insert_doc(self._jobs, doc_id, {"job": job, "state": fields})
            self._job_ids[job] = doc_id
            self._next_job_doc = doc_id + 1
            return

        def merge(doc: dict[str, Any]) -> None:
            state = doc.setdefault("state", {})
            state.update(fields)

        update_doc(self._jobs, doc_id, merge)

    def claim_occurrence(self, job: str, occurrence: float) -> bool:
        """True (and recorded) the first time an occurrence later than the last is claimed."""
        doc_id = self._job_ids.get(job)
        doc = None if doc_id is None else get_raw(self._jobs, doc_id)  # read only: no copy
        last = ((doc.get("state") or {}) if doc is not None else {}).get("last_occurrence")
        if last is not None and occurrence <= last:
            return False
        self.update_job_state(job, last_occurrence=occurrence)
        return True

    def claim_occurrences(self, claims: dict[str, float]) -> None:
        """``claim_occurrence`` for many jobs at once (an occurrence not later than the
        one already claimed is ignored).

        Written lazily, like summaries: the runs (and skips) recorded for these
        occurrences carry them durably in their own commit, and an engine resumes after
        the latest occurrence on record (``latest_occurrence``), so re-serializing
        jobs.json on every tick is not needed. A crash can lose the last second of
        claims that no run records (occurrences skipped beyond the recorded ones, a job
        whose targets did not resolve): those are looked at again, never run twice."""
        if not claims:
            return
        self._change()
        tables, raw = raw_docs(self._jobs)
        for job, occurrence in claims.items():
            doc_id = self._job_ids.get(job)
            doc = None if doc_id is None else raw.get(str(doc_id))
            if doc is None:
                self.update_job_state(job, last_occurrence=occurrence)
                tables, raw = raw_docs(self._jobs)
                continue
            state = doc.get("state")
            if state is None:
                state = doc["state"] = {}
            last = state.get("last_occurrence")
            if last is None or occurrence > last:
                state["last_occurrence"] = occurrence
        changed(self._jobs, tables)

    # --------------------------------------------------------------------- meta ----
    def meta(self) -> dict[str, Any]:
        doc = self._meta.get(doc_id=_META_DOC)
        return copy.deepcopy(dict(doc)) if doc is not None else {}

    def set_meta(self, key: str, value: Any) -> None:
        self._change()
        current = self._meta.get(doc_id=_META_DOC)
        if current is None:
            self._meta.insert(Document({key: _plain(value)}, doc_id=_META_DOC))
        else:
            value = _plain(value)
            self._meta.update(lambda d: d.__setitem__(key, value), doc_ids=[_META_DOC])

    @property
    def install_id(self) -> str:
        """A random id of this state directory, made once: tells this installation's run
        processes (and notifications) from any other's."""
        value = (self._meta.get(doc_id=_META_DOC) or {}).get("install_id")
        if not isinstance(value, str) or not value:
            if self.read_only:
                return ""
            value = uuid.uuid4().hex
            self.set_meta("install_id", value)
        return value

    # ------------------------------------------------------------------- commit ----
    def _storages(self) -> list[AtomicJSONStorage]:
        """Commit order: older run segments, the head segment (with the index), jobs, meta."""
        return self._history.storages() + [self._jobs_storage, self._meta_storage]

    def _prepare(self) -> _Batch:
        """Serialize everything not yet on disk (on the caller's thread)."""
        jobs_lazy = (not self._jobs_must_write and not self._closing
                     and time.monotonic() - self._jobs_written_at < SUMMARY_INTERVAL)
        items = [(s, s.version, s.serialize()) for s in self._storages()
                 if s.dirty and not (s is self._jobs_storage and jobs_lazy)]
        if any(s is self._jobs_storage for s, _v, _d in items):
            self._jobs_must_write = False
            self._jobs_written_at = time.monotonic()
        return items, self._history.take_deletions(), self._history.sealed_chunks()

    def _write(self, batch: _Batch) -> None:
        """Write a prepared batch; any thread. Deletions come after the index."""
        items, deletions, chunks = batch
        if not items and not deletions and not chunks:
            return
        with self._io_lock:
            for storage, version, data in items:
                storage.write_bytes(data, version)
            for _c, path, data in chunks:  # after the segments they index
                atomic_write(path, data)
            delete_paths(deletions)
            self.commits_written += 1
        self._history.chunks_written(c for c, _p, _d in chunks)

    def when_durable(self, announce: Callable[[], None]) -> None:
        """Call ``announce`` once every change made so far is on disk (after the commit
        that covers it, in the order asked): what is announced survives a crash."""
        if self.read_only or self._durable_seq >= self._seq:
            announce()
        else:
            self._on_durable.append((self._seq, announce))

    def _announce_durable(self) -> None:
        waiting = self._on_durable
        while waiting and waiting[0][0] <= self._durable_seq:
            _seq, announce = waiting.popleft()
            try:
                announce()
            except Exception:  # one listener's bug must not stop the others
                log.exception("announcing a durable change failed")

    @property
    def dirty(self) -> bool:
        """Changes not durable yet that a commit would write (none once closed)."""
        return self._durable_seq < self._seq and not (self.read_only or self._closed)

    def commit(self) -> None:
        """Make every change so far durable (blocking)."""
        if self.read_only or self._closed:
            return
        seq = self._seq
        batch = self._prepare()
        try:
            self._write(batch)
        except BaseException:
            self._history.give_back_deletions(batch[1])
            raise
        self._durable_seq = max(self._durable_seq, seq)
        self._history.after_commit()
        self._announce_durable()

    async def commit_async(self) -> None:
        """Group commit: returns once every change made before the call is durable.

        Serializes on the loop's thread and writes in a worker thread. If a commit
        is already writing, waits for it and then, if it did not cover this
        caller's changes, one more commit does (shared by everyone waiting).
        """
        if self.read_only or self._closed:
            return
        target = self._seq
        while self._durable_seq < target:
            if self._inflight is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._inflight)
                continue
            seq = self._seq
            batch = self._prepare()
            task = asyncio.ensure_future(self._write_async(batch, seq))
            task.add_done_callback(_consume)
            self._inflight = task
            await asyncio.shield(task)

    async def _write_async(self, batch: _Batch, seq: int) -> None:
        try:
            await asyncio.to_thread(self._write, batch)
            self._durable_seq = max(self._durable_seq, seq)
            self._history.after_commit()
            self._announce_durable()
        except BaseException:
            self._history.give_back_deletions(batch[1])
            raise
        finally:
            self._inflight = None

    def close(self) -> None:
        """Commit and let go of the files."""
        if self._closed:
            return
        self._closing = True  # summaries too: everything reaches the disk
        if not self.read_only:
            self._history.release_reserved()
            self._seq += 1
        try:
            self.commit()
        finally:  # a disk that refused the last commit still lets go of the files
            self._closed = True
            self._history.close()
            self._jobs_db.close()
            self._meta_db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _consume(task: asyncio.Future[None]) -> None:
    """A write whose caller was cancelled must not log 'exception never retrieved'."""
    if not task.cancelled():
        task.exception()


__all__ = ["DEFAULT_RETENTION", "Store", "StoreReadOnly"]
