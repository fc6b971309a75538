"""`fleetdeck reload` and `fleetdeck audit`: talking to a running daemon.

    fleetdeck reload                      the daemon re-reads its config (or says why not)
    fleetdeck audit [--since 2h] [--json] who did what, when, through what
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any


def add_daemon_parsers(sub: Any) -> None:
    sub.add_parser("reload", help="make the running daemon re-read its config")
    a = sub.add_parser("audit", help="the audit trail: every action a person took")
    a.add_argument("--since", default=None, help="e.g. 2h, 30m (default: everything)")
    a.add_argument("--json", action="store_true")


def cmd_reload(args: argparse.Namespace, config: Any, state_dir: Path,
               error: type[Exception]) -> int:
    from core.control.client import DaemonError, call, daemon_pid

    if daemon_pid(state_dir) is None:
        raise error(f"no daemon is running for {state_dir}; start one with: fleetdeck daemon")
    try:
        summary = asyncio.run(call(state_dir, "reload"))
    except DaemonError as e:
        raise error(str(e)) from None
    changed = ", ".join(f"{len(v)} {k} ({' '.join(v)})" for k, v in summary.items() if v)
    print(f"reloaded: {changed or 'nothing changed'}")
    return 0


def cmd_audit(args: argparse.Namespace, config: Any, state_dir: Path,
              error: type[Exception]) -> int:
    from rich.markup import escape
    from rich.table import Table

    from core.audit import AuditLog
    from core.durations import DurationError, parse_duration
    from tui.cli import _console
    from tui.fmt import fmt_time

    since = None
    if args.since:
        try:
            since = time.time() - parse_duration(args.since)
        except DurationError as e:
            raise error(f"--since: {e}") from None
    records = AuditLog(state_dir).read(since=since)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    table = Table(box=None, header_style="bold")
    for col in ("WHEN", "WHO", "VIA", "ACTION", "TARGETS", "DETAIL"):
        table.add_column(col)
    for r in records:
        table.add_row(fmt_time(r["ts"]), escape(r["user"]), escape(r["via"]),
                      escape(r["action"]), escape(", ".join(r["targets"])),
                      escape(r.get("detail", "")))
    _console().print(table)
    return 0
