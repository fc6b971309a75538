"""One host's output in a fan-out, as it comes: its digest (hosts with the same output
gather), the first MEMORY_CAP of it in memory, all of it (to LOG_CAP) in the host's log,
and with an out-dir its stdout and stderr in two files of their own (pssh's --outdir
and --errdir in one folder).

Memory per host is bounded: beyond MEMORY_CAP the text is read back from the log when
someone asks for it, so a thousand chatty hosts cost a thousand caps at most.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path
from typing import IO

MEMORY_CAP = 256 * 1024  # output kept in memory per host for gathering; the log has it all
LOG_CAP = 50 * 1024 * 1024  # one host's log file (and each out-dir file) is capped here
_SAFE_RE = re.compile(r"[^A-Za-z0-9._-]")


def file_name(host: str) -> str:
    """A host's name as a file name (a name from a config is not trusted with a path)."""
    return _SAFE_RE.sub("_", host)


def out_paths(out_dir: Path, host: str) -> tuple[Path, Path]:
    """Where an out-dir keeps a host's stdout and stderr: HOST.stdout, HOST.stderr."""
    safe = file_name(host)
    return out_dir / f"{safe}.stdout", out_dir / f"{safe}.stderr"


def _open(path: Path) -> IO[str]:
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    return open(fd, "w", encoding="utf-8", errors="replace")  # noqa: SIM115


class HostOutput:
    """What one host printed. `open` when its command starts (files are truncated, so a
    host that never ran leaves none), `add` per line, `close` at its end."""

    def __init__(self, log_path: Path | None = None, out_dir: Path | None = None,
                 host: str = "") -> None:
        self.log_path = log_path
        self.out_dir = out_dir
        self.host = host
        self.lines = 0
        self.bytes = 0
        self._hasher = hashlib.sha256()
        self._text: list[str] = []
        self._kept = 0
        self.truncated = False
        self._files: dict[str, IO[str]] = {}
        self._written: dict[str, int] = {}
        self.ran = False  # its command started: an out-dir keeps its files, even empty

    def open(self) -> str | None:
        """Open the files; the reason when one cannot be (the host then fails with it)."""
        paths: dict[str, Path] = {}
        if self.log_path is not None:
            paths["log"] = self.log_path
        if self.out_dir is not None:
            paths["stdout"], paths["stderr"] = out_paths(self.out_dir, self.host)
        for key, path in paths.items():
            try:
                self._files[key] = _open(path)
            except OSError as e:
                self.close()
                return f"cannot write {path}: {e.strerror or e}"
            self._written[key] = 0
        return None

    def add(self, stream: str, line: str) -> None:
        text = line + "\n"
        self._hasher.update(text.encode("utf-8", "replace"))
        self.lines += 1
        self.bytes += len(text)
        if self._kept < MEMORY_CAP:
            self._text.append(text)
            self._kept += len(text)
        else:
            self.truncated = True
        for key in ("log", stream):
            f = self._files.get(key)
            if f is not None and self._written[key] < LOG_CAP:
                try:
                    f.write(text)
                except OSError:  # a full disk: the host's result still comes
                    self._files.pop(key, None)
                    with contextlib.suppress(OSError):
                        f.close()
                    continue
                self._written[key] += len(text)

    def close(self) -> None:
        """Close the files; a host whose command never started leaves no out-dir files
        (an earlier run's would otherwise pass for this one's)."""
        for f in self._files.values():
            with contextlib.suppress(OSError):
                f.close()
        self._files.clear()
        if not self.ran and self.out_dir is not None:
            for path in out_paths(self.out_dir, self.host):
                with contextlib.suppress(OSError):
                    path.unlink()

    @property
    def digest(self) -> str:
        return self._hasher.hexdigest()

    def text(self) -> str:
        """All of it (stdout and stderr as they came): from memory, or from the log once
        it outgrew the cap."""
        if self.truncated and self.log_path is not None:
            with contextlib.suppress(OSError):
                return self.log_path.read_text(errors="replace")
        return "".join(self._text)
