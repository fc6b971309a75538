"""The audit trail: every action a person takes, appended to `audit.jsonl` (0600).

One JSON object per line: when, who (the OS user; over the control socket from the
peer's credentials, never from what the client says), through what (`console`, `cli`,
`socket pid N`), the action, its targets and a short detail. Appended with O_APPEND
and fsync; fleetdeck never rewrites it. No secret goes in: callers pass names and ids.
"""

from __future__ import annotations

import json
import os
import pwd
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

AUDIT_FILE = "audit.jsonl"


@dataclass(frozen=True)
class AuditRecord:
    ts: float
    user: str
    uid: int
    via: str
    action: str
    targets: list[str]
    detail: str = ""


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class AuditLog:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / AUDIT_FILE

    def record(self, action: str, targets: list[str] | tuple[str, ...] = (), *,
               detail: str = "", uid: int | None = None, via: str = "cli",
               clock: Any = time.time) -> AuditRecord:
        uid = os.getuid() if uid is None else uid
        rec = AuditRecord(clock(), user_name(uid), uid, via, action, list(targets), detail)
        line = json.dumps(asdict(rec), separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return rec

    def read(self, since: float | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Records oldest first (a damaged line is skipped, not fatal)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if since is None or rec.get("ts", 0) >= since:
                out.append(rec)
        return out[-limit:] if limit else out
