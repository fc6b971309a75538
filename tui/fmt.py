"""Times and states as people read them; shared by the CLI and the console."""

from __future__ import annotations

import time
from typing import Any

from core.durations import format_duration

STATE_STYLES = {
    "queued": "cyan",
    "running": "bold blue",
    "succeeded": "green",
    "failed": "bold red",
    "timed_out": "bold magenta",
    "cancelled": "yellow",
    "skipped": "dim",
    "interrupted": "bold yellow",
}


def fmt_time(ts: float | None, now: float | None = None) -> str:
    """Local wall time: today as HH:MM:SS, other days with the date.

    "Today" is the day of `now`: screens pass their app's clock, so what they show
    depends on that clock and not on the date the process runs on.
    """
    if ts is None:
        return "-"
    lt = time.localtime(ts)
    today = time.localtime(time.time() if now is None else now)
    if time.strftime("%Y-%m-%d", lt) == time.strftime("%Y-%m-%d", today):
        return time.strftime("%H:%M:%S", lt)
    return time.strftime("%Y-%m-%d %H:%M", lt)


def fmt_age(ts: float | None, now: float | None = None) -> str:
    if ts is None:
        return "-"
    now = time.time() if now is None else now
    delta = now - ts
    return f"in {format_duration(-delta)}" if delta < 0 else f"{format_duration(delta)} ago"


def fmt_duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def fmt_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def severity_word(alert: dict[str, Any]) -> str:
    """An alert's severity as every screen says it: `down` for a failed probe, else the
    threshold's (warn, crit)."""
    return "down" if alert.get("condition") == "down" else str(alert["severity"])
