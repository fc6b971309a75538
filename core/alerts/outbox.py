"""The notification outbox: entries waiting to go out, their retries and what became of
them.

It is a table in the alert book's file, so a transition and the notifications it
queues are one atomic commit; an entry is on disk before it is sent (see
core/alerts/notifiers.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from core.alerts.config import AlertingConfig
from core.durations import format_duration
from core.store.docs import put
from core.store.tables import remove_docs

log = logging.getLogger("fleetdeck.alerts")

OUTBOX_KEEP = 200  # delivered or dropped entries kept for `alerts --json` and tests


class Outbox:
    """Pending, delivered and dropped notifications; `config` is read at each use, so a
    reload's notifiers and settings apply to what is already queued."""

    def __init__(self, table: Any, next_id: Callable[[str], int],
                 config: Callable[[], AlertingConfig], install: str = "") -> None:
        self.table = table
        self._next_id = next_id
        self._config = config
        # in every idempotency key: two installations' alert #1 are different alerts
        # to a receiver that de-duplicates
        self._install = install[:12]

    def queue(self, alert: dict[str, Any], notifier: str, event: str, at: float) -> None:
        entry_id = self._next_id("next_outbox")
        put(self.table, entry_id, {
            "id": entry_id, "key": "-".join(
                p for p in ("fleetdeck", self._install, str(alert["id"]), str(alert["seq"]),
                            notifier) if p),
            "notifier": notifier, "event": event, "alert_id": alert["id"],
            "alert": _snapshot(alert), "created_at": at, "next_at": at, "attempts": 0,
            "state": "pending", "last_error": "", "delivered_at": None,
        })

    def pending(self) -> list[dict[str, Any]]:
        return sorted((dict(d) for d in self.table.all() if d["state"] == "pending"),
                      key=lambda e: e["id"])

    def due(self, now: float) -> list[dict[str, Any]]:
        """Pending entries whose time has come; entries of removed notifiers or too old
        are dropped here."""
        config = self._config()
        live = {n for n, c in config.notifiers.items() if c.enabled}
        out = []
        for e in self.pending():
            if e["notifier"] not in live:
                self._drop(e, "notifier no longer configured")
            elif now - e["created_at"] > config.settings.give_up_after:
                self._drop(e, f"undelivered for {format_duration(now - e['created_at'])}; "
                              f"last error: {e['last_error']}")
            elif e["next_at"] <= now:
                out.append(e)
        return out

    def next_due(self) -> float | None:
        times = [e["next_at"] for e in self.pending()]
        return min(times) if times else None

    def delivered(self, entry: dict[str, Any], at: float) -> None:
        entry = {**entry, "state": "delivered", "delivered_at": at,
                 "attempts": entry["attempts"] + 1}
        put(self.table, entry["id"], entry)
        self._prune()

    def failed(self, entry: dict[str, Any], error: str, at: float,
               wait: float | str | None = None) -> float:
        """Record a failed attempt; returns the delay before the next one: the backoff,
        or what the receiver asked (Retry-After, within a day), or the longest backoff
        for a request it refused as such (a 4xx: a person fixes the config, a reload
        and the next try delivers; hammering it would not)."""
        attempts = entry["attempts"] + 1
        s = self._config().settings
        delay = min(s.retry_backoff_max, s.retry_backoff * 2 ** (attempts - 1))
        if wait == "refused":
            delay = s.retry_backoff_max
        elif isinstance(wait, int | float):
            delay = max(delay, min(float(wait), 86400.0))
        put(self.table, entry["id"], {**entry, "attempts": attempts, "last_error": error,
                                      "next_at": at + delay})
        return delay

    def of_alert(self, alert_id: int) -> list[dict[str, Any]]:
        """One alert's notifications, oldest first, without the alert copy they carry."""
        return [
            {k: e[k] for k in ("id", "notifier", "event", "state", "attempts", "last_error",
                               "created_at", "delivered_at")}
            for e in sorted(self.table.all(), key=lambda d: d.doc_id)
            if e["alert_id"] == alert_id]

    def _drop(self, entry: dict[str, Any], why: str) -> None:
        log.warning("notification %s via %s dropped: %s", entry["key"], entry["notifier"], why)
        put(self.table, entry["id"], {**entry, "state": "dropped", "last_error": why})

    def _prune(self) -> None:
        done = sorted(d.doc_id for d in self.table.all() if d["state"] != "pending")
        if len(done) > OUTBOX_KEEP:
            remove_docs(self.table, done[:len(done) - OUTBOX_KEEP])


def _snapshot(alert: dict[str, Any]) -> dict[str, Any]:
    """What a notification carries about its alert (no history, no bookkeeping)."""
    keys = ("id", "kind", "source", "target", "state", "severity", "detail", "opened_at",
            "resolved_at", "acked_by")
    out = {k: alert[k] for k in keys}
    out.update(condition=alert.get("condition", ""), cause=alert.get("cause", ""),
               group_size=len(alert.get("members") or ()),
               resolution=alert.get("resolution", ""))
    return out
