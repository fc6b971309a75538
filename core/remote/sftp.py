"""A push or pull on one host's connection, over SFTP.

A file is written to a temporary name beside its destination and renamed over it
(OpenSSH's posix-rename: atomic), so a reader sees the old file or the new one, never
half of one, and a failure (permission, a full disk, a cancel) leaves nothing behind. A
file whose SHA-256 already matches is not sent: the host reports `unchanged`. What can
go wrong on a host is a line for a person (`Outcome.reason`), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import secrets
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from core.remote.transfer import LocalFile, Outcome, Pull, Push, file_digest

# one line per path, in order: "SHA256 MODE USER:GROUP UID:GID", "d" a folder, "-" none
_PROBE = ('for p in "$@"; do if [ -f "$p" ] && [ ! -L "$p" ]; then '
          'h=$(sha256sum < "$p" 2>/dev/null | cut -d" " -f1); '
          's=$(stat -c "%a %U:%G %u:%g" -- "$p" 2>/dev/null); echo "$h $s"; '
          'elif [ -d "$p" ]; then echo d; else echo -; fi; done')
_PROBE_CHUNK = 200  # paths per probe: a command line stays far below ARG_MAX
# SFTP writes in flight per file: enough to fill a link, while a push to 50 hosts holds
# a few MB per host, not the whole file (asyncssh's default of 128 held ~9 MB each)
PUT_REQUESTS = 16
PUT_BLOCK = 64 * 1024


@dataclass(frozen=True)
class Found:
    """What is at a path on the host."""

    kind: str  # "file", "dir", "none"
    sha256: str = ""  # "" when the host could not say (then the file is sent again)
    mode: int | None = None
    owner: str = ""  # user:group
    ids: tuple[int, int] | None = None  # uid, gid

CANCELLED, TIMED_OUT = "cancelled", "timed_out"


async def bounded(work: Any, cancel: asyncio.Event, timeout: float | None) -> Outcome | str:
    """A push or pull's outcome, or CANCELLED / TIMED_OUT when `cancel` was set or the
    timeout passed first (the work is then stopped: its temporary file removed)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({task, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        return CANCELLED if cancel.is_set() else TIMED_OUT
    return task.result()


class _Failed(Exception):
    """A host's transfer failed for a reason a person can act on."""


def _why(e: Exception, path: str) -> str:
    if isinstance(e, asyncssh.SFTPNoSuchFile):
        return f"no such file or folder: {path}"
    if isinstance(e, asyncssh.SFTPPermissionDenied):
        return f"permission denied: {path}"
    if isinstance(e, asyncssh.SFTPError):
        reason = e.reason or "failure"
        if reason.lower() == "failure":
            reason = "the host refused the write (a full disk or quota?)"
        return f"{path}: {reason}"
    if isinstance(e, OSError):
        return f"{e.filename or path}: {e.strerror or e}"
    return f"{path}: {e}"


async def _probe(conn: Any, sftp: Any, paths: list[str]) -> list[Found]:
    """What is at each remote path: one shell round trip per 200 paths (hashes made on
    the host); a path the shell could not describe (no GNU stat or sha256sum, a probe
    that failed) is looked at over SFTP instead, and counts as changed."""
    out: list[Found] = []
    for i in range(0, len(paths), _PROBE_CHUNK):
        part = paths[i:i + _PROBE_CHUNK]
        cmd = "sh -c " + shlex.quote(_PROBE) + " sh " + " ".join(map(shlex.quote, part))
        res = await conn.run(cmd, check=False)
        lines = str(res.stdout or "").split("\n") if res.exit_status == 0 else []
        for j, path in enumerate(part):
            out.append(_found(lines[j].split() if j < len(lines) else []) or
                       await _stat(sftp, path))
    return out


def _found(words: list[str]) -> Found | None:
    if words == ["d"]:
        return Found("dir")
    if words == ["-"]:
        return Found("none")
    if len(words) == 4 and len(words[0]) == 64:
        try:
            uid, gid = (int(x) for x in words[3].split(":"))
            return Found("file", words[0], int(words[1], 8), words[2], (uid, gid))
        except ValueError:
            return None
    return None


async def _stat(sftp: Any, path: str) -> Found:
    import stat as st

    try:
        attrs = await sftp.stat(path)
    except asyncssh.SFTPNoSuchFile:
        return Found("none")
    except asyncssh.SFTPError as e:
        raise _Failed(_why(e, path)) from None
    if attrs.permissions is not None and st.S_ISDIR(attrs.permissions):
        return Found("dir")
    ids = (attrs.uid, attrs.gid) if attrs.uid is not None and attrs.gid is not None else None
    return Found("file", "", st.S_IMODE(attrs.permissions or 0o644), "", ids)


def _owner_matches(want: str | None, have: str) -> bool:
    if not want:
        return True
    wu, _, wg = want.partition(":")
    hu, _, hg = have.partition(":")
    return (not wu or wu == hu) and (not wg or wg == hg)


# -------------------------------------------------------------------------- push ---
def for_host(path: str, host: str) -> str:
    """A path with `{host}` as this host's inventory name (a shared folder, per host)."""
    return path.replace("{host}", host)


async def push(conn: Any, spec: Push, host: str) -> Outcome:
    dest = for_host(spec.dest, host)
    return await _session(conn, dest, lambda sftp: _push(conn, sftp, spec, dest))


async def _session(conn: Any, path: str, work: Any) -> Outcome:
    """`work(sftp)` on an SFTP session of its own; what goes wrong is the outcome's
    reason, one line naming `path`."""
    try:
        async with conn.start_sftp_client() as sftp:
            return await work(sftp)
    except _Failed as e:
        return Outcome(False, reason=str(e))
    except asyncssh.ChannelOpenError as e:
        return Outcome(False, reason=f"no SFTP on the host: {e.reason}")
    except (asyncssh.SFTPError, OSError) as e:
        return Outcome(False, reason=_why(e, path))


async def _push(conn: Any, sftp: Any, spec: Push, given: str) -> Outcome:
    dest = given.rstrip("/") or "/"
    parent = posixpath.dirname(dest) or "/"
    if not spec.folder:  # one round trip says where it goes and what is there
        inside = posixpath.join(dest, spec.name)
        at, up, within = await _probe(conn, sftp, [dest, parent, inside])
        if given.endswith("/") or at.kind == "dir":
            if at.kind != "dir":
                raise _Failed(f"folder {dest} does not exist on the host")
            return await _files(conn, sftp, spec, [inside], [within])
        if up.kind != "dir":
            raise _Failed(f"folder {parent} does not exist on the host")
        return await _files(conn, sftp, spec, [dest], [at])
    at, up = await _probe(conn, sftp, [dest, parent])  # a folder: made where missing
    if at.kind == "file":
        raise _Failed(f"{dest} on the host is a file, not a folder")
    if at.kind == "none" and up.kind != "dir":
        raise _Failed(f"folder {parent} does not exist on the host")
    base = posixpath.join(dest, spec.name) if spec.name else dest
    for folder in dict.fromkeys((dest, base, *(posixpath.join(base, r)
                                               for r in spec.folders))):
        try:
            if not await sftp.isdir(folder):
                await sftp.mkdir(folder)
        except asyncssh.SFTPError as e:
            raise _Failed(_why(e, folder)) from None
    targets = [posixpath.join(base, f.rel) for f in spec.files]
    return await _files(conn, sftp, spec, targets, await _probe(conn, sftp, targets))


async def _files(conn: Any, sftp: Any, spec: Push, targets: list[str],
                 found: list[Found]) -> Outcome:
    """Each file sent where its content differs (its mode or owner fixed where only
    they do)."""
    changed = 0
    for local, target, have in zip(spec.files, targets, found, strict=True):
        if have.kind == "dir":
            raise _Failed(f"{target} on the host is a folder, not a file")
        if have.kind == "file" and have.sha256 == local.sha256:
            fixed = False
            if not _owner_matches(spec.owner, have.owner):
                await _chown(conn, target, spec.owner)  # first: chown clears setuid
                fixed = True
            if spec.mode is not None and have.mode != spec.mode:
                await _chmod(sftp, target, spec.mode)
                fixed = True
            changed += fixed
            continue
        await _put(conn, sftp, spec, local, target, have)
        changed += 1
    if changed:
        n = len(spec.files)
        return Outcome(True, True, f"changed ({changed} of {n} file{'s' if n != 1 else ''})"
                       if spec.folder else "changed", changed)
    return Outcome(True, False, "unchanged")


async def _put(conn: Any, sftp: Any, spec: Push, local: LocalFile, target: str,
               have: Found) -> None:
    """One file to a temporary name beside `target` (private from its first byte: it may
    be a secret whose mode comes last), its mode and owner set, then renamed over it.
    A replaced file keeps its mode and owner unless told otherwise."""
    folder, name = posixpath.split(target)
    tmp = posixpath.join(folder, f".{name}.fleetdeck-{secrets.token_hex(4)}")
    renamed = False
    try:
        try:
            async with sftp.open(tmp, "wb", asyncssh.SFTPAttrs(permissions=0o600)):
                pass  # created 0600; put below writes into it and keeps that mode
            await sftp.put(str(local.path), tmp, block_size=PUT_BLOCK,
                           max_requests=PUT_REQUESTS)
        except (asyncssh.SFTPError, OSError) as e:
            raise _Failed(_why(e, target)) from None
        if spec.owner:
            await _chown(conn, tmp, spec.owner)
        elif have.ids is not None:  # keep the replaced file's owner, where allowed
            with contextlib.suppress(asyncssh.SFTPError):
                await sftp.chown(tmp, *have.ids)
        mode = spec.mode if spec.mode is not None else (
            have.mode if have.mode is not None else local.mode)
        await _chmod(sftp, tmp, mode)
        if have.kind == "file" and spec.backup:
            stamp = time.strftime("%Y-%m-%d@%H:%M:%S", time.localtime())
            try:
                await sftp.link(target, f"{target}.{stamp}~")
            except asyncssh.SFTPError as e:
                raise _Failed(f"cannot keep a backup of {target}: "
                              f"{_why(e, target)}") from None
        try:
            await sftp.posix_rename(tmp, target)
        except asyncssh.SFTPError as e:
            raise _Failed(_why(e, target)) from None
        renamed = True
    finally:
        if not renamed:
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.wait_for(sftp.remove(tmp), 5))


async def _chmod(sftp: Any, path: str, mode: int) -> None:
    try:
        await sftp.chmod(path, mode)
    except asyncssh.SFTPError as e:
        raise _Failed(f"cannot set mode {mode:04o}: {_why(e, path)}") from None


async def _chown(conn: Any, path: str, owner: str | None) -> None:
    res = await conn.run(f"chown -- {shlex.quote(str(owner))} {shlex.quote(path)}",
                         check=False)
    if res.exit_status != 0:
        said = str(res.stderr or "").strip().splitlines()
        raise _Failed(f"cannot set owner {owner} of {path}: "
                      f"{said[-1] if said else f'chown exited {res.exit_status}'}")


# -------------------------------------------------------------------------- pull ---
async def pull(conn: Any, spec: Pull, host: str) -> Outcome:
    src, root = for_host(spec.src, host), spec.local_root(host)
    return await _session(conn, src, lambda sftp: _pull(conn, sftp, src, root))


async def _pull(conn: Any, sftp: Any, src: str, root: Path) -> Outcome:
    (at,) = await _probe(conn, sftp, [src])
    if at.kind == "none":
        raise _Failed(f"no such file or folder on the host: {src}")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = posixpath.basename(src) or "root"
    target = root / name
    tmp = root / f".{name}.fleetdeck-{secrets.token_hex(4)}"
    if at.kind == "file" and at.sha256 and target.is_file() and \
            await asyncio.to_thread(file_digest, target) == at.sha256:
        return Outcome(True, False, "unchanged")
    try:
        await sftp.get(src, str(tmp), recurse=at.kind == "dir", preserve=True)
        if at.kind != "dir":
            os.replace(tmp, target)
            return Outcome(True, True, "changed", 1)
        return await asyncio.to_thread(_merge, tmp, target)  # hashing: off the loop
    except asyncssh.SFTPError as e:
        raise _Failed(_why(e, src)) from None
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _merge(fetched: Path, target: Path) -> Outcome:
    """A pulled folder into its place here, file by file: only files whose content
    differs are replaced (each by a rename), so `unchanged` means nothing moved."""
    changed = total = 0
    for here, dirs, names in os.walk(fetched):
        rel = Path(here).relative_to(fetched)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for d in dirs:
            (target / rel / d).mkdir(exist_ok=True)
        for n in names:
            total += 1
            src, dst = Path(here) / n, target / rel / n
            if dst.is_file() and file_digest(dst) == file_digest(src):
                continue
            os.replace(src, dst)
            changed += 1
    files = f"{total} file{'s' if total != 1 else ''}"
    if changed:
        return Outcome(True, True, f"changed ({changed} of {files})", changed)
    return Outcome(True, False, "unchanged")
