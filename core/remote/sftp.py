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
from pathlib import Path
from typing import Any

import asyncssh

from core.remote.transfer import LocalFile, Outcome, Pull, Push, file_digest

# one line per path, in order: "SHA256 MODE USER:GROUP", or "-" when it is not a file
_PROBE = ('for p in "$@"; do if [ -f "$p" ] && [ ! -L "$p" ]; then '
          'h=$(sha256sum < "$p" 2>/dev/null | cut -d" " -f1); '
          's=$(stat -c "%a %U:%G" -- "$p" 2>/dev/null); echo "$h $s"; '
          'elif [ -d "$p" ]; then echo d; else echo -; fi; done')


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


async def _probe(conn: Any, paths: list[str]) -> list[tuple[str, int, str] | str]:
    """For each remote path: (sha256, mode, "user:group") when a file, "d" a folder,
    "-" nothing there ("" when the host could not say)."""
    if not paths:
        return []
    cmd = "sh -c " + shlex.quote(_PROBE) + " sh " + " ".join(map(shlex.quote, paths))
    res = await conn.run(cmd, check=False)
    lines = str(res.stdout or "").split("\n")
    out: list[tuple[str, int, str] | str] = []
    for i in range(len(paths)):
        line = lines[i].split() if i < len(lines) else []
        if len(line) == 3 and len(line[0]) == 64:
            try:
                out.append((line[0], int(line[1], 8), line[2]))
            except ValueError:
                out.append("")
        elif line in (["d"], ["-"]):
            out.append(line[0])
        else:
            out.append("")
    return out


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
    try:
        async with conn.start_sftp_client() as sftp:
            return await _push(conn, sftp, spec, for_host(spec.dest, host))
    except _Failed as e:
        return Outcome(False, reason=str(e))
    except asyncssh.ChannelOpenError as e:
        return Outcome(False, reason=f"no SFTP on the host: {e.reason}")
    except (asyncssh.SFTPError, OSError) as e:
        return Outcome(False, reason=_why(e, spec.dest))


async def _push(conn: Any, sftp: Any, spec: Push, given: str) -> Outcome:
    dest = given.rstrip("/") or "/"
    (kind,) = await _probe(conn, [dest])
    if not spec.folder:
        if given.endswith("/") or kind == "d":
            if kind != "d":
                raise _Failed(f"folder {dest} does not exist on the host")
            base, targets = dest, [posixpath.join(dest, spec.name)]
        else:
            base, targets = posixpath.dirname(dest) or "/", [dest]
            (parent,) = await _probe(conn, [base])
            if parent != "d":
                raise _Failed(f"folder {base} does not exist on the host")
    else:
        if kind not in ("d", "-"):
            raise _Failed(f"{dest} on the host is a file, not a folder")
        if kind == "-":
            parent = posixpath.dirname(dest) or "/"
            (up,) = await _probe(conn, [parent])
            if up != "d":
                raise _Failed(f"folder {parent} does not exist on the host")
        base = posixpath.join(dest, spec.name) if spec.name else dest
        for rel in ("", *spec.folders):
            folder = posixpath.join(base, rel) if rel else base
            try:
                if not await sftp.isdir(folder):
                    await sftp.mkdir(folder)
            except asyncssh.SFTPError as e:
                raise _Failed(_why(e, folder)) from None
        targets = [posixpath.join(base, f.rel) for f in spec.files]
    found = await _probe(conn, targets)
    changed = 0
    for local, target, have in zip(spec.files, targets, found, strict=True):
        if have == "d":
            raise _Failed(f"{target} on the host is a folder, not a file")
        if isinstance(have, tuple) and have[0] == local.sha256:
            if spec.mode is not None and have[1] != spec.mode:
                await _chmod(sftp, target, spec.mode)
                changed += 1
            elif not _owner_matches(spec.owner, have[2]):
                await _chown(conn, target, spec.owner)
                changed += 1
            continue
        keep = have[1] if isinstance(have, tuple) else None
        await _put(conn, sftp, spec, local, target, keep, backup=isinstance(have, tuple))
        changed += 1
    if changed:
        n = len(spec.files)
        return Outcome(True, True, f"changed ({changed} of {n} file{'s' if n != 1 else ''})"
                       if spec.folder else "changed", changed)
    return Outcome(True, False, "unchanged")


async def _put(conn: Any, sftp: Any, spec: Push, local: LocalFile, target: str,
               keep_mode: int | None, *, backup: bool) -> None:
    folder, name = posixpath.split(target)
    tmp = posixpath.join(folder, f".{name}.fleetdeck-{secrets.token_hex(4)}")
    renamed = False
    try:
        try:
            await sftp.put(str(local.path), tmp)
        except (asyncssh.SFTPError, OSError) as e:
            raise _Failed(_why(e, target)) from None
        mode = spec.mode if spec.mode is not None else (
            keep_mode if keep_mode is not None else local.mode)
        await _chmod(sftp, tmp, mode)
        if spec.owner:
            await _chown(conn, tmp, spec.owner)
        if backup and spec.backup:
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
    root = spec.local_root(host)
    try:
        async with conn.start_sftp_client() as sftp:
            return await _pull(conn, sftp, for_host(spec.src, host), root)
    except _Failed as e:
        return Outcome(False, reason=str(e))
    except asyncssh.ChannelOpenError as e:
        return Outcome(False, reason=f"no SFTP on the host: {e.reason}")
    except (asyncssh.SFTPError, OSError) as e:
        return Outcome(False, reason=_why(e, spec.src))


async def _pull(conn: Any, sftp: Any, src: str, root: Path) -> Outcome:
    (kind,) = await _probe(conn, [src])
    if kind == "-":
        raise _Failed(f"no such file or folder on the host: {src}")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = posixpath.basename(src) or "root"
    target = root / name
    tmp = root / f".{name}.fleetdeck-{secrets.token_hex(4)}"
    if isinstance(kind, tuple) and target.is_file() and file_digest(target) == kind[0]:
        return Outcome(True, False, "unchanged")
    try:
        await sftp.get(src, str(tmp), recurse=kind == "d", preserve=True)
        if kind != "d":
            os.replace(tmp, target)
            return Outcome(True, True, "changed", 1)
        return _merge(tmp, target)
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
