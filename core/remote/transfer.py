"""File distribution: what a push or pull fan-out does (`Push`, `Pull`), planned once on
this machine before any host is touched.

Paths follow Ansible's `copy`: a file SRC goes to DEST, or into DEST when DEST ends with
`/` or is a folder on the host; a folder SRC goes into DEST as a folder of its name, or
only its contents when SRC ends with `/`. A pull of SRC lands in DESTDIR/HOST/ (one
subfolder per host, named as the inventory names it). A path on the hosts may hold
`{host}`, the host's inventory name (one folder per host on a shared file system).

What happens on a host is `core.remote.sftp`; this module is the plan and the record.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.paths import from_root

CHUNK = 1024 * 1024


class TransferError(ValueError):
    """A push or pull that cannot start: one line naming the path and what is wrong."""


@dataclass(frozen=True)
class LocalFile:
    """One file of a push: where it is here, where it goes under the target, its digest."""

    path: Path
    rel: str  # "" for a single-file push; else a/b/c under the target folder
    size: int
    sha256: str
    mode: int


@dataclass(frozen=True)
class Outcome:
    """How a transfer ended on one host: ok or not, whether anything changed there (or,
    for a pull, here), and a line for a person."""

    ok: bool
    changed: bool = False
    reason: str = ""
    files: int = 0  # files written


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def octal_mode(text: Any) -> int | None:
    if text in (None, ""):
        return None
    s = str(text).strip()  # 644 written as a number still means rw-r--r--
    try:
        value = int(s, 8)
    except ValueError:
        raise TransferError(f"mode {s!r}: give octal digits, e.g. 0644") from None
    if not 0 <= value <= 0o7777:
        raise TransferError(f"mode {text!r}: more than 07777")
    return value


def owner_spec(text: Any) -> str | None:
    if text in (None, ""):
        return None
    s = str(text).strip()
    user, _, group = s.partition(":")
    ok = all(part == "" or part.replace("-", "").replace("_", "").replace(".", "")
             .isalnum() for part in (user, group))
    if not ok or not (user or group) or s.startswith("-"):
        raise TransferError(f"owner {s!r}: give USER, USER:GROUP or :GROUP")
    return s


@dataclass(frozen=True)
class Push:
    """SRC (a file or folder here) to DEST on every host."""

    src: str
    dest: str
    mode: int | None = None
    owner: str | None = None
    backup: bool = False
    folder: bool = False  # SRC is a folder
    files: tuple[LocalFile, ...] = field(default=(), compare=False, repr=False)
    folders: tuple[str, ...] = field(default=(), compare=False, repr=False)  # under it
    kind = "push"

    @property
    def name(self) -> str:
        """The folder (or file) name a push creates under a folder DEST."""
        return "" if self.src.endswith("/") else Path(self.src).name

    def describe(self) -> str:
        return f"push {self.src} -> {self.dest}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "push", "src": self.src, "dest": self.dest,
                "mode": f"{self.mode:04o}" if self.mode is not None else None,
                "owner": self.owner, "backup": self.backup}


@dataclass(frozen=True)
class Pull:
    """SRC on every host to DESTDIR/HOST/ here."""

    src: str
    dest_dir: str
    kind = "pull"

    def describe(self) -> str:
        return f"pull {self.src} -> {self.dest_dir}/HOST/"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "pull", "src": self.src, "dest": self.dest_dir}

    def local_root(self, host: str) -> Path:
        from core.remote.output import file_name

        return Path(self.dest_dir) / file_name(host)


Transfer = Push | Pull


def make_push(src: str, dest: str, *, mode: Any = None, owner: Any = None,
              backup: bool = False) -> Push:
    """A push planned here: every file read and hashed once (not once per host)."""
    problem = check_push({"src": src, "dest": dest, "mode": mode, "owner": owner,
                          "backup": bool(backup)})
    if problem is not None:
        raise TransferError(f"push: {problem}")
    path = Path(src).expanduser()
    m, o = octal_mode(mode), owner_spec(owner)
    try:
        st = path.stat()
    except OSError as e:
        raise TransferError(f"push: {src}: {e.strerror or e}") from None
    if stat.S_ISREG(st.st_mode):
        return Push(str(src), str(dest), m, o, bool(backup), False, (_local(path, "", st),))
    if not stat.S_ISDIR(st.st_mode):
        raise TransferError(f"push: {src}: not a file or folder")
    files, folders = [], []
    try:
        for root, dirs, names in os.walk(path, onerror=_raise):
            dirs.sort()
            here = Path(root)
            rel_root = here.relative_to(path)
            for d in dirs:
                folders.append(str(rel_root / d) if str(rel_root) != "." else d)
            for n in sorted(names):
                p = here / n
                s = p.lstat()
                if not stat.S_ISREG(s.st_mode):
                    continue  # links, sockets: a push carries regular files
                rel = str(rel_root / n) if str(rel_root) != "." else n
                files.append(_local(p, rel, s))
    except OSError as e:
        raise TransferError(f"push: {getattr(e, 'filename', src)}: "
                            f"{e.strerror or e}") from None
    return Push(str(src), str(dest), m, o, bool(backup), True, tuple(files), tuple(folders))


def _raise(e: OSError) -> None:
    raise e


def _local(path: Path, rel: str, st: os.stat_result) -> LocalFile:
    try:
        digest = file_digest(path)
    except OSError as e:
        raise TransferError(f"push: {path}: {e.strerror or e}") from None
    return LocalFile(path, rel, st.st_size, digest, stat.S_IMODE(st.st_mode))


def make_pull(src: str, dest_dir: str) -> Pull:
    if not src or not str(src).startswith("/"):
        raise TransferError(f"pull: {src!r} must be an absolute path on the hosts")
    if str(src).rstrip("/") == "":
        raise TransferError("pull: give a file or folder, not / itself")
    return Pull(str(src).rstrip("/"), str(ready_folder(dest_dir, "pull:")))


def ready_folder(text: str, label: str) -> Path:
    """A folder here that files will be written to, made ready before anything runs:
    absolute (a daemon's working folder is not the caller's), created when missing,
    writable. TransferError "LABEL TEXT: why" otherwise."""
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise TransferError(f"{label} {text!r}: give an absolute path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TransferError(f"{label} {text}: {e.strerror or e}") from None
    if not path.is_dir():
        raise TransferError(f"{label} {text}: not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise TransferError(f"{label} {text}: not writable")
    return path


def check_push(d: dict[str, Any]) -> str | None:
    """What is wrong with a push as written (a job's `push = {src, dest, mode, owner,
    backup}`, the CLI's arguments), before any file is read; None when nothing is."""
    unknown = sorted(set(d) - {"src", "dest", "mode", "owner", "backup"})
    if unknown:
        return f"unknown key {unknown[0]!r}; one of src, dest, mode, owner, backup"
    src, dest = d.get("src"), d.get("dest")
    for key, value in (("src", src), ("dest", dest)):
        if value is None:
            return f"missing {key} (e.g. {{ src = \"/srv/app.conf\", dest = \"/etc/app/\" }})"
        if not isinstance(value, str):
            from core.config import type_name

            return f"{key}: expected a path (a string), got {type_name(value)}"
    if not isinstance(src, str) or not from_root(src):
        return f"source {src!r}: give an absolute path"
    if not isinstance(dest, str) or not dest.startswith("/"):
        return f"destination {dest!r}: give an absolute path on the hosts"
    if not isinstance(d.get("backup", False), bool):
        return "backup: true or false"
    try:
        octal_mode(d.get("mode"))
        owner_spec(d.get("owner"))
    except TransferError as e:
        return str(e)
    return None


def transfer_from_dict(d: dict[str, Any]) -> Transfer:
    """A recorded transfer planned again (a rerun reads the files as they are now)."""
    if d.get("kind") == "pull":
        return make_pull(d["src"], d["dest"])
    return make_push(d["src"], d["dest"], mode=d.get("mode"), owner=d.get("owner"),
                     backup=bool(d.get("backup")))
