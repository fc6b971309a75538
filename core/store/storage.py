"""A TinyDB storage that lives in memory and reaches disk only by atomic replacement.

TinyDB's own JSONStorage rewrites its file in place on every write: a crash in the
middle leaves half a file. This storage keeps the data in memory (``write`` only
marks it changed) and makes it durable on ``flush``: the whole file is written to a
temporary file beside it, fsynced, renamed over the old one and the directory is
fsynced. A reader therefore always sees either the old or the new file.

Serializing (``serialize``, cheap, on the caller's thread) is split from writing
the bytes (``write_bytes``, possibly in a worker thread), so an event loop can keep
the file I/O off its thread without sharing mutable data with the worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from core.store import codec

log = logging.getLogger("fleetdeck.store")

FILE_MODE = 0o600
DIR_MODE = 0o700
TMP_SUFFIX = ".tmp"

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it private to the user (0700).
    Each folder made here is 0700, not only the last (mkdir's mode skips the parents:
    `fanouts/` above `fanouts/logs` was 0755, 0777 under umask 000)."""
    missing = []
    at = path
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)  # another process may make it meanwhile
        if (folder.stat().st_mode & 0o777) != DIR_MODE:
            os.chmod(folder, DIR_MODE)
    path.mkdir(mode=DIR_MODE, exist_ok=True)  # a file in the way says so, as before
    if (path.stat().st_mode & 0o777) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_path_for(path: Path) -> Path:
    return path.with_name(path.name + TMP_SUFFIX)


KEEP_CORRUPT = 5  # unreadable files kept aside per state file; older ones are deleted


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically and durably (temporary file, fsync,
    rename, fsync of the directory); the file is private (0600)."""
    tmp = tmp_path_for(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_NOFOLLOW | _O_CLOEXEC,
                     FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # in case a leftover had other bits
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(e, OSError):
            raise named(e, path) from None
        raise
    fsync_dir(path.parent)


def named(e: OSError, path: Path) -> OSError:
    """`e`, naming `path` when it names no file (a write or fsync error: a full disk),
    so the one-line error says which file could not be written."""
    if e.filename is not None:
        return e
    return OSError(e.errno, e.strerror or str(e), str(path))


def quarantine(path: Path, reason: str, keep: int = KEEP_CORRUPT) -> Path:
    """Move a file that cannot be read aside as ``<name>.corrupt-<time>`` (nothing is
    lost), keeping the newest ``keep`` of them; returns where it went."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    os.rename(path, aside)
    log.warning("state file %s cannot be read (%s); moved it aside to %s and started it "
                "empty", path, reason, aside.name)
    older = sorted(path.parent.glob(f"{path.name}.corrupt-*"), key=lambda p: p.stat().st_mtime)
    for old in older[:-keep] if keep else older:
        old.unlink(missing_ok=True)
    return aside


class AtomicJSONStorage(Storage):
    """TinyDB storage: authoritative data in memory, atomic whole-file replacement on flush.

    * ``read()`` returns the in-memory data; ``write()`` replaces it and marks the
      storage dirty; neither touches the disk.
    * ``flush()`` writes atomically (temporary file, fsync, rename, fsync of the
      directory); files are created 0600.
    * Opening: a missing (or empty) file is an empty database; a leftover temporary
      file is removed; a file that does not parse is renamed aside to
      ``<name>.corrupt-<timestamp>`` with a warning, and the database starts empty.
    * ``read_only=True`` never changes anything on disk (no clean-up, no moving
      aside, ``flush`` refuses), for a viewer beside a running engine.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.read_only = read_only
        self.version = 0  # bumped by every write()
        self.written_version = 0  # the version last made durable
        self.loaded_from_disk = False  # True when opening parsed an existing file
        self.unreadable = False  # True when the file was there but could not be read
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = self._load()

    # ------------------------------------------------------------------ TinyDB API ----
    def read(self) -> dict[str, dict[str, Any]]:
        return self._data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        self._data = data
        self.version += 1

    def close(self) -> None:
        if not self.read_only and self.dirty:
            self.flush()

    # ---------------------------------------------------------------- durability ----
    @property
    def dirty(self) -> bool:
        """True while memory holds changes that are not on disk yet."""
        return self.version > self.written_version

    def serialize(self) -> bytes:
        """The current data as compact JSON bytes (call on the thread that mutates)."""
        return codec.dumps(self._data)

    def write_bytes(self, data: bytes, version: int | None = None) -> bool:
        """Atomically replace the file with ``data``; safe to call from a worker thread.

        ``version`` is the value of ``self.version`` when ``data`` was serialized; an
        older snapshot than the one already on disk is skipped (returns False), so
        writers racing each other can never put an older state back.
        """
        if self.read_only:
            raise PermissionError(f"{self.path}: storage opened read-only")
        with self._lock:
            if version is not None and version <= self.written_version:
                return False
            atomic_write(self.path, data)
            if version is not None:
                self.written_version = max(self.written_version, version)
            return True

    def flush(self) -> None:
        """Write the current data now if it changed (synchronous)."""
        if not self.dirty:
            return
        version = self.version
        self.write_bytes(self.serialize(), version)

    # ------------------------------------------------------------------- opening ----
    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.read_only:
            try:
                tmp_path_for(self.path).unlink()
            except FileNotFoundError:
                pass
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        if not raw.strip():
            return {}  # nothing to lose; an atomic writer never leaves this
        try:
            data = codec.loads(raw)
            _check_shape(data)
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self._quarantine(e)
            return {}
        self.loaded_from_disk = True
        if not self.read_only and (os.stat(self.path).st_mode & 0o777) != FILE_MODE:
            os.chmod(self.path, FILE_MODE)
        return data

    def _quarantine(self, error: Exception) -> None:
        self.unreadable = True
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if self.read_only:
            log.warning("state file %s cannot be read (%s); showing it as empty",
                        self.path, reason)
            return
        quarantine(self.path, reason)


def _check_shape(data: Any) -> None:
    """TinyDB data is {table: {doc_id: {field: value}}}; anything else is corrupt."""
    if not isinstance(data, dict):
        raise ValueError("top level is not a JSON object")
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ValueError(f"table {name!r} is not a JSON object")
        for doc_id, doc in table.items():
            if not doc_id.isdigit():
                raise ValueError(f"document id {doc_id!r} of table {name!r} is not a number")
            if not isinstance(doc, dict):
                raise ValueError(f"document {doc_id} of table {name!r} is not a JSON object")
