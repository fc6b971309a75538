"""Maintenance windows and silences: when an alert is kept quiet, and why.

A window covers targets (hosts) and/or checks (check, rule or job names) either once
(`start` .. `end`) or on a cron schedule, each occurrence lasting `duration`. A silence
is a person's "not now" for one name until a time. Neither stops an alert from being
recorded: they only keep notifications from being sent.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from core.alerts.config import MaintenanceConfig
from core.jobs.schedule import Schedule, parse_schedule


@lru_cache(maxsize=256)
def _schedule(text: str, timezone: str | None) -> Schedule:
    return parse_schedule(text, timezone)


def occurrence(window: MaintenanceConfig, at: float) -> tuple[float, float] | None:
    """The (start, end) of the window's occurrence that covers `at`, or None.

    A cron window is active at `at` when one of its starts lies in (at - duration, at]:
    that start is the first fire time after at - duration, if it is not later than at.
    """
    if window.schedule is not None:
        if window.duration <= 0:
            return None
        start = _schedule(window.schedule, window.timezone).next_after(at - window.duration)
        if start is not None and start <= at:
            return start, start + window.duration
        return None
    if window.start is not None and window.end is not None and window.start <= at < window.end:
        return window.start, window.end
    return None


def covers(window: MaintenanceConfig, source: str, target: str) -> bool:
    """Does the window name this check/rule/job (`source`) on this host (`target`)?"""
    if window.targets is not None and target not in window.hosts:
        return False
    return not window.checks or source in window.checks


def active_window(windows: list[MaintenanceConfig], source: str, target: str,
                  at: float) -> tuple[MaintenanceConfig, float] | None:
    """The first window that covers (source, target) at `at`, with the time it ends."""
    for w in windows:
        if covers(w, source, target):
            occ = occurrence(w, at)
            if occ is not None:
                return w, occ[1]
    return None


def window_from_record(rec: dict[str, Any]) -> MaintenanceConfig:
    """A runtime window (added with `add_maintenance`, stored as plain data)."""
    return MaintenanceConfig(
        name=rec["name"], targets=rec.get("targets"), hosts=tuple(rec.get("hosts") or ()),
        checks=tuple(rec.get("checks") or ()), start=rec.get("start"), end=rec.get("end"),
        schedule=rec.get("schedule"), duration=float(rec.get("duration") or 0.0),
        timezone=rec.get("timezone"), reason=rec.get("reason") or "")


def silence_matches(silence_target: str, alert: dict[str, Any]) -> bool:
    """A silence names a check/rule/job, a host, `check@host`, or an alert (`#12`)."""
    t = silence_target
    if t.startswith("#"):
        return t[1:] == str(alert["id"])
    return t in (alert["source"], alert["target"], f"{alert['source']}@{alert['target']}")
