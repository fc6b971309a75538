"""A workflow run's journal: one line per step that ended through its runs, written
before anything that needs the step starts. The runs' own records reach the disk with
the next group commit (fsync'd, ~20 ms later); a fleetdeck killed in between would make
a finished step look unfinished, so the next engine reads the journal and gives those
runs and steps the end they had: a step that ended is never run again by a retry.

The line is written, not fsync'd: the kernel keeps what a killed process wrote (kill -9,
a crash of fleetdeck), at a few microseconds a step; an fdatasync per step cost ~1 ms
a step on this machine beside the group commit's own fsyncs. Only a power loss inside
those ~20 ms can lose a step's end, and then that step runs again on a retry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

NAME = "journal"


class Journal:
    def __init__(self, folder: Path | str) -> None:
        self._fd = os.open(Path(folder) / NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                           0o600)

    def ended(self, entry: dict[str, Any]) -> None:
        """Append one step's end (in the kernel's hands) before what follows it starts."""
        if self._fd < 0:
            return
        os.write(self._fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_journal(folder: Path) -> list[dict[str, Any]]:
    """The steps a workflow run's journal holds (a torn last line is left out)."""
    try:
        data = (Path(folder) / NAME).read_bytes()
    except OSError:
        return []
    out = []
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), str):
            out.append(entry)
    return out


def journaled_runs(entries: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """run id -> {state, exit_code, finished_at, reason} of the runs the journal ended."""
    out: dict[int, dict[str, Any]] = {}
    for entry in entries:
        for rid, info in (entry.get("runs") or {}).items():
            if str(rid).isdigit() and isinstance(info, dict):
                out[int(rid)] = info
    return out
