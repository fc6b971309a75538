"""Fan-out records: a small segmented TinyDB table beside the run history.

Layout inside the state directory::

    fanouts/index.json              table "meta": {"next_id"}
    fanouts/fanouts-000000.json     table "fanouts": ids 0..size-1 (doc_id = fan-out id)
    fanouts/logs/<id>/<host>.log    each host's output
    fanouts/.lock                   flock held around every read-modify-write

A fan-out from the CLI runs beside a daemon that owns the engine lock, so this store
takes its own short file lock for each change and re-reads the file it changes:
writers in several processes never lose each other's records. Retention drops whole
segments (and their logs) once more than ``retention`` fan-outs are on record.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.remote.output import file_name
from core.store.docs import open_db, put
from core.store.storage import private_dir

SEGMENT_SIZE = 100
DEFAULT_RETENTION = 2000
_SEG_RE = re.compile(r"^fanouts-(\d{6,})\.json$")


@functools.cache
def _started() -> float | None:
    from core.jobs.groups import process_create_time

    return process_create_time(os.getpid())


def owner() -> list[Any]:
    """This process as the owner a fan-out record names: pid and start time (a pid
    alone may be another process's by the time someone reads the record)."""
    return [os.getpid(), _started()]


def _owner_gone(who: Any) -> bool:
    """Has the process that wrote an unfinished record ended? (False when unknown)"""
    from core.jobs.groups import started_otherwise

    if not isinstance(who, list) or len(who) != 2 or not isinstance(who[0], int):
        return False
    pid, started = who
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's: not the fleetdeck that wrote it
        return True
    return isinstance(started, float) and started_otherwise(pid, started)


class FanOutStore:
    def __init__(self, state_dir: Path, *, retention: int = DEFAULT_RETENTION,
                 read_only: bool = False) -> None:
        self.dir = Path(state_dir) / "fanouts"
        self.logs = self.dir / "logs"
        self.retention = retention
        self.read_only = read_only
        if not read_only:
            private_dir(self.logs)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _segment_path(self, fanout_id: int) -> Path:
        return self.dir / f"fanouts-{fanout_id // SEGMENT_SIZE:06d}.json"

    def log_dir(self, fanout_id: int) -> Path:
        path = self.logs / str(fanout_id)
        if not self.read_only:
            private_dir(path)
        return path

    @staticmethod
    def log_name(host: str) -> str:
        return file_name(host) + ".log"

    def log_path(self, fanout_id: int, host: str) -> Path:
        return self.logs / str(fanout_id) / self.log_name(host)

    # ---------------------------------------------------------------- writing ----
    def allocate(self) -> int:
        """A new fan-out id (and its log folder); applies retention."""
        with self._locked():
            db, storage = open_db(self.dir / "index.json", False)
            meta = db.table("meta")
            doc = meta.get(doc_id=1)
            next_id = int(doc["next_id"]) if doc else 1  # type: ignore[index]
            put(meta, 1, {"next_id": next_id + 1})
            storage.flush()
            self._prune(next_id)
        self.log_dir(next_id)
        return next_id

    def save(self, record: dict[str, Any]) -> None:
        """Write (insert or replace) one fan-out record."""
        fid = int(record["id"])
        with self._locked():
            db, storage = open_db(self._segment_path(fid), False)
            put(db.table("fanouts"), fid, record)
            storage.flush()

    def _prune(self, newest: int) -> None:
        keep_from = newest - self.retention
        if keep_from <= 0:
            return
        for path in self.dir.iterdir():
            m = _SEG_RE.match(path.name)
            if m and (int(m.group(1)) + 1) * SEGMENT_SIZE <= keep_from:
                first = int(m.group(1)) * SEGMENT_SIZE
                path.unlink(missing_ok=True)
                for fid in range(first, first + SEGMENT_SIZE):
                    shutil.rmtree(self.logs / str(fid), ignore_errors=True)

    def _settled(self, rec: dict[str, Any]) -> dict[str, Any]:
        """The record as it ended: one whose process died before it could write its end
        ends here, its unfinished hosts `cancelled` (written back, unless read-only)."""
        if rec.get("finished_at") or not _owner_gone(rec.get("owner")):
            return rec
        from core.remote.results import abandoned

        settled = abandoned(rec, f"not finished: fleetdeck (pid {rec['owner'][0]}) died "
                            "while it ran", time.time())
        if not self.read_only:
            fid = int(rec["id"])
            with self._locked():
                db, storage = open_db(self._segment_path(fid), False)
                current = db.table("fanouts").get(doc_id=fid)
                if current is not None and not current.get("finished_at"):
                    put(db.table("fanouts"), fid, settled)
                    storage.flush()
        return settled

    # ---------------------------------------------------------------- reading ----
    def get(self, fanout_id: int) -> dict[str, Any] | None:
        path = self._segment_path(fanout_id)
        if not path.exists():
            return None
        db, _ = open_db(path, True)
        doc = db.table("fanouts").get(doc_id=fanout_id)
        return self._settled(dict(doc)) if doc is not None else None  # type: ignore[arg-type]

    def list(self, limit: int = 30) -> list[dict[str, Any]]:
        """Newest first."""
        if not self.dir.exists():
            return []
        segs = sorted((int(m.group(1)) for p in self.dir.iterdir()
                       if (m := _SEG_RE.match(p.name))), reverse=True)
        out: list[dict[str, Any]] = []
        for k in segs:
            db, _ = open_db(self.dir / f"fanouts-{k:06d}.json", True)
            docs = sorted(db.table("fanouts").all(), key=lambda d: d.doc_id, reverse=True)
            for doc in docs:
                out.append(self._settled(dict(doc)))
                if len(out) >= limit:
                    return out
        return out
