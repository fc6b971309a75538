"""Maintenance windows and silences: when an alert is kept quiet, and why.

A window covers targets (hosts) and/or checks (check, rule or job names) either once
(`start` .. `end`) or on a cron schedule, each occurrence lasting `duration`. A silence
is a person's "not now" for one name until a time. Neither stops an alert from being
recorded: they only keep notifications from being sent. Silences and the windows added
at run time are tables in the alert book's file; configured windows come from the config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from core.alerts.config import AlertingConfig, MaintenanceConfig
from core.jobs.schedule import Schedule, parse_schedule
from core.store.docs import put
from core.store.tables import remove_docs


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


def clock_text(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


class Quiet:
    """The silences and maintenance windows in force: whether an alert's notifications are
    held now, and why. `config` is read at each use, so a reload's windows apply at once."""

    def __init__(self, db: Any, next_id: Callable[[str], int],
                 config: Callable[[], AlertingConfig], clock: Callable[[], float]) -> None:
        self.silences = db.table("silences")
        self.windows = db.table("maintenance")
        self._next_id = next_id
        self._config = config
        self.clock = clock

    def all_windows(self) -> list[MaintenanceConfig]:
        return [*self._config().maintenance.values(),
                *(window_from_record(dict(d)) for d in self.windows.all())]

    def reason(self, alert: dict[str, Any], at: float) -> str:
        """Why notifications for this alert are held now ('' when they are not)."""
        win = active_window(self.all_windows(), alert["source"], alert["target"], at)
        if win is not None:
            return f"maintenance {win[0].name} until {clock_text(win[1])}"
        until = self.silenced_until(alert, at)
        if until is not None:
            return f"silenced until {clock_text(until)}"
        return ""

    def silenced_until(self, alert: dict[str, Any], at: float) -> float | None:
        ends = [s["until"] for s in self.silences.all()
                if s["until"] > at and silence_matches(s["target"], alert)]
        return max(ends) if ends else None

    def in_maintenance(self, source: str, target: str, at: float) -> str | None:
        """The name of the window covering (check, host) at `at`, or None."""
        win = active_window(self.all_windows(), source, target, at)
        return win[0].name if win else None

    def add_silence(self, target: str, seconds: float, who: str, at: float) -> dict[str, Any]:
        """A silence (target and duration checked by the caller); expired ones go here."""
        sid = self._next_id("next_silence")
        record = {"id": sid, "target": target, "until": at + seconds, "by": who, "at": at}
        put(self.silences, sid, record)
        expired = [d.doc_id for d in self.silences.all() if d["until"] <= at]
        if expired:
            remove_docs(self.silences, expired)
        return record

    def silences_in_force(self, at: float) -> list[dict[str, Any]]:
        """The silences holding notifications at `at`, the first to end first."""
        return sorted((dict(s) for s in self.silences.all() if s["until"] > at),
                      key=lambda s: (s["until"], s["id"]))

    def end_silences(self, target: str, at: float) -> list[dict[str, Any]]:
        """End now every silence in force on exactly `target` (as it was silenced)."""
        docs = [d for d in self.silences.all() if d["target"] == target and d["until"] > at]
        if docs:
            remove_docs(self.silences, [d.doc_id for d in docs])
        return [dict(d) for d in docs]

    def add_maintenance(self, name: str, *, targets: str | None = None,
                        hosts: tuple[str, ...] = (), checks: tuple[str, ...] = (),
                        start: float | None = None, end: float | None = None,
                        schedule: str | None = None, duration: float = 0.0,
                        timezone: str | None = None, reason: str = "",
                        who: str = "") -> dict[str, Any]:
        """A runtime window (validated by the caller; see AlertManager.add_maintenance)."""
        wid = self._next_id("next_window")
        rec = {"id": wid, "name": name, "targets": targets, "hosts": list(hosts),
               "checks": list(checks), "start": start, "end": end, "schedule": schedule,
               "duration": duration, "timezone": timezone, "reason": reason, "by": who,
               "added_at": self.clock()}
        put(self.windows, wid, rec)
        return rec
