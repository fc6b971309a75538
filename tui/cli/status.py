"""`fleetdeck status`: is a daemon running for the state directory, and how is it doing.

    fleetdeck status [--json]

Its exit code is an init script's status (LSB): 0 a daemon runs, 3 nothing does, and 1
when the state directory is in use by a fleetdeck that is no daemon (a console with its
own engine, a `run`): a monitoring check or a deploy script can ask without parsing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from core.jobs.runs import FAILED_STATES, FAILING_WINDOW
from tui.cli.common import state_dir_of

EXIT_HELD = 1
EXIT_STOPPED = 3  # LSB: "program is not running"


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("status", help="whether a daemon runs for the state directory, and "
                                      "how it is doing (exit 0 running, 3 not running)")
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    s.set_defaults(func=cmd_status, needs_config=False)


def cmd_status(args: argparse.Namespace) -> int:
    import asyncio

    state_dir = state_dir_of(args)
    now = time.time()
    status = asyncio.run(_ask(state_dir, now))
    if status is None:
        from core.store.lock import lock_holder

        held_by = lock_holder(state_dir)
        status = {"running": False, "state_dir": str(state_dir), "held_by": held_by,
                  "held_by_command": command_of(held_by)}
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(_text(status, now))
    if status["running"]:
        return 0
    return EXIT_HELD if status["held_by"] is not None else EXIT_STOPPED


async def _ask(state_dir: Path, now: float) -> dict[str, Any] | None:
    """What the daemon answering on the state directory's socket says, or None."""
    from core.control.client import DaemonError, call
    from core.control.protocol import socket_path

    if not socket_path(state_dir).exists():
        return None
    try:
        pong = await call(state_dir, "ping", timeout=5.0)
        queue = await call(state_dir, "queue")
        jobs = await call(state_dir, "list_jobs")
        alerts = await call(state_dir, "list_alerts")
        failed = await call(state_dir, "count_runs",
                            {"states": list(FAILED_STATES),
                             "since": now - FAILING_WINDOW})
    except (TimeoutError, OSError, DaemonError):
        return None  # a socket left by a daemon that died: not running
    fires = [(j["next_fire"], j["name"]) for j in jobs if j.get("next_fire")]
    nxt = min(fires) if fires else None
    return {
        "running": True, "pid": pong["pid"], "since": _started(pong["pid"]),
        "state_dir": pong["state_dir"], "config": pong["config"],
        "jobs": {"total": len(jobs), "paused": sum(1 for j in jobs if j["paused"]),
                 "next": {"job": nxt[1], "at": nxt[0]} if nxt else None},
        "runs": {"running": sum(1 for r in queue if r["state"] == "running"),
                 "queued": sum(1 for r in queue if r["state"] != "running"),
                 "failed_6h": failed},
        "alerts": {"firing": sum(1 for a in alerts if a["status"] == "firing"),
                   "quiet": sum(1 for a in alerts if a["status"] != "firing")},
    }


def _started(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def command_of(pid: int | None) -> str | None:
    """The command line of process `pid`, or None (gone, not ours to read)."""
    if not pid:
        return None
    import psutil

    try:
        return " ".join(psutil.Process(pid).cmdline()) or None
    except (psutil.Error, OSError):
        return None


def _text(s: dict[str, Any], now: float) -> str:
    from core.durations import format_duration
    from tui.fmt import fmt_time

    def when(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))

    if not s["running"]:
        line = f"fleetdeck daemon: not running (state {s['state_dir']})"
        if s["held_by"] is not None:
            who = f"pid {s['held_by']}" if s["held_by"] else "a process"
            what = f": {s['held_by_command']}" if s["held_by_command"] else ""
            line += f"\n  the state is in use by {who}{what}"
        return line
    up = (f", up {format_duration(now - s['since'])} (since {when(s['since'])})"
          if s["since"] else "")
    jobs, runs, alerts = s["jobs"], s["runs"], s["alerts"]
    nxt = jobs["next"]
    lines = [f"fleetdeck daemon: running, pid {s['pid']}{up}",
             f"  state   {s['state_dir']}",
             f"  config  {s['config'] or 'the built-in config'}",
             f"  jobs    {jobs['total']}" + (f", {jobs['paused']} paused" if jobs["paused"]
                                             else "")
             + (f"; next {nxt['job']} at {fmt_time(nxt['at'], now)} (in "
                f"{format_duration(max(0.0, nxt['at'] - now))})" if nxt else ""),
             f"  runs    {runs['running']} running, {runs['queued']} queued; "
             f"{runs['failed_6h']} failed in the last 6 h",
             f"  alerts  {alerts['firing']} firing, {alerts['quiet']} acknowledged or quiet"]
    return "\n".join(lines)
