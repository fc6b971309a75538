"""Alerts: opened by checks going down, log rules firing and jobs failing; resolved when
they recover; acknowledged, silenced or kept quiet by maintenance windows.

`AlertBook` is the state machine over one crash-safe TinyDB file
(`<state>/alerts/alerts.json`: alerts, the notification outbox (core/alerts/outbox.py),
silences and runtime maintenance windows (core/alerts/maintenance.py)). Synchronous,
clock injected, no I/O but its own file: the unit tests drive it with a fixed clock. A
transition that notifies writes its outbox entries into the same in-memory data, so one
atomic commit holds both. The engine service around it is core/alerts/manager.py.

An alert: firing -> acknowledged -> resolved (firing -> resolved too). Notifications
go out on the transitions that matter (opened: a check going down, warn or crit;
resolved: back up), once each: a repeated "down" for an open alert, even after a
restart, finds the alert already open and sends nothing. A check's alert keeps its
`condition` apart: "down" (the probe failed, the detail says why) or "warn"/"crit" (a
threshold crossed on an answering host, the detail says what crossed what), with the
threshold's severity.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.alerts.config import AlertingConfig, NotifierConfig
from core.alerts.groups import AlertGroups
from core.alerts.maintenance import Quiet, silence_matches
from core.alerts.outbox import Outbox
from core.confguard import MAX_DURATION, format_seconds
from core.durations import DurationError, format_duration, parse_duration
from core.store.docs import open_db, put
from core.store.storage import private_dir
from core.store.tables import remove_docs

OPEN_STATES = ("firing", "acknowledged")
HISTORY_CAP = 50  # transitions kept per alert
MAIN_RESOLVED = 50  # resolved alerts kept in the main file; older ones in resolved.json
_META = 1
STOP_GRACE = 5.0  # seconds a stopping engine gives due notifications


class AlertError(ValueError):
    """A request about alerts that cannot be done; one line for a person."""

    code = "engine_error"


class AlertNotFound(AlertError):
    code = "not_found"


@dataclass
class Change:
    action: str
    alert: dict[str, Any]
    notified: bool = False


def describe(alert: dict[str, Any]) -> str:
    """'check http-api on web01', 'job backup on local', 'log rule errors on app'."""
    what = {"check": "check", "gave_up": "watchdog gave up on", "rule": "log rule",
            "job_failed": "job", "job_missed": "job missed schedule:",
            "approval": "approval for workflow"}.get(alert["kind"],
                                                                            alert["kind"])
    return f"{what} {alert['source']} on {alert['target']}"


class AlertBook(AlertGroups):
    """Alerts, outbox, silences and runtime windows in one atomically written file; a
    check's alerts of one cause across hosts in groups (core/alerts/groups.py)."""

    def __init__(self, state_dir: Path, alerting: AlertingConfig | None, clock: Any, *,
                 read_only: bool = False, install: str = "") -> None:
        self.alerting = alerting or AlertingConfig()
        self.clock = clock
        self.read_only = read_only
        self.dir = Path(state_dir) / "alerts"
        if not read_only:
            private_dir(self.dir)
        self.db, self.storage = open_db(self.dir / "alerts.json", read_only)
        self.alerts = self.db.table("alerts")
        # older resolved alerts move to their own file, so a transition's commit stays
        # the size of what is open (see _prune_resolved)
        self.archive_db, self.archive_storage = open_db(self.dir / "resolved.json", read_only)
        self.archive = self.archive_db.table("alerts")
        self.meta = self.db.table("meta")
        self.outbox = Outbox(self.db.table("outbox"), self._next_id, lambda: self.alerting,
                             install)
        self.quiet = Quiet(self.db, self._next_id, lambda: self.alerting, clock)
        self._open: dict[str, int] = {}
        for doc in self.alerts.all():
            if doc["state"] in OPEN_STATES:
                self._open[doc["key"]] = doc.doc_id
        self._index_groups([dict(d) for d in self.alerts.all()])

    # ------------------------------------------------------------------- plumbing ---
    @property
    def notifiers(self) -> dict[str, NotifierConfig]:
        return {n: c for n, c in self.alerting.notifiers.items() if c.enabled}

    def _next_id(self, field: str) -> int:
        meta = dict(self.meta.get(doc_id=_META) or {})  # type: ignore[arg-type]
        value = int(meta.get(field, 1))
        meta[field] = value + 1
        put(self.meta, _META, meta)
        return value

    def _get(self, alert_id: int) -> dict[str, Any] | None:
        doc = self.alerts.get(doc_id=alert_id) or self.archive.get(doc_id=alert_id)
        return dict(doc) if doc is not None else None  # type: ignore[arg-type]

    def _all(self) -> list[dict[str, Any]]:
        """Every alert on record; one both files hold (a crash while moving) counts once."""
        main = {d.doc_id: dict(d) for d in self.alerts.all()}
        return [*main.values(), *(dict(d) for d in self.archive.all() if d.doc_id not in main)]

    def _save(self, alert: dict[str, Any]) -> None:
        alert["history"] = alert["history"][-HISTORY_CAP:]
        put(self.alerts, alert["id"], alert)
        if alert["state"] in OPEN_STATES:
            self._open[alert["key"]] = alert["id"]
        elif self._open.get(alert["key"]) == alert["id"]:
            del self._open[alert["key"]]

    @staticmethod
    def _note(alert: dict[str, Any], at: float, what: str, detail: str = "") -> None:
        alert["history"] = [*alert["history"], {"at": at, "what": what, "detail": detail}]
        alert["updated_at"] = at

    def close(self) -> None:
        if not self.read_only:
            self.archive_storage.flush()
            self.storage.flush()

    async def commit_async(self) -> None:
        """Make every change so far durable (serialized here, written in a thread)."""
        if self.read_only or not self.storage.dirty:
            return
        version = self.storage.version
        data = self.storage.serialize()
        await asyncio.to_thread(self.storage.write_bytes, data, version)

    # ----------------------------------------------------------------- transitions ---
    def _open_alert(self, key: str, kind: str, source: str, target: str, severity: str,
                    detail: str, at: float, condition: str = "",
                    cause: str = "") -> list[Change]:
        alert_id = self._open.get(key)
        if alert_id is not None:  # already open: a repeat (or a restart) sends nothing
            alert = self._get(alert_id)
            assert alert is not None
            if (alert["detail"], alert["severity"], alert.get("condition", "")) != (
                    detail, severity, condition):
                alert["detail"], alert["severity"] = detail, severity
                alert["condition"], alert["cause"] = condition, cause
                self._note(alert, at, condition or "again", detail)
            if not alert["notified_firing"] and not self.quiet.reason(alert, self.clock()):
                # it opened while quiet (maintenance, silence) and is still down after
                self._save(alert)
                return [self._notify(alert, "firing", "notified", at)]
            self._save(alert)
            return [Change("updated", alert)]
        alert = {
            "id": self._next_id("next_alert"), "key": key, "kind": kind, "source": source,
            "target": target, "state": "firing", "severity": severity, "detail": detail,
            "condition": condition, "cause": cause, "opened_at": at, "updated_at": at,
            "resolved_at": None, "acked_by": None, "acked_at": None, "seq": 0,
            "notified_firing": False, "last_sent": {}, "history": [],
        }
        self._note(alert, at, "opened", detail)
        lead = self._join_group(alert, at)
        if lead is not None:  # its group has paged already: recorded, counted, quiet
            self._save(alert)
            self._save(lead)
            return [Change("joined", alert), Change("updated", lead)]
        quiet = self.quiet.reason(alert, self.clock())
        if quiet:
            self._note(alert, at, "not notified", quiet)
            self._save(alert)
            return [Change("opened", alert)]
        self._save(alert)
        return [self._notify(alert, "firing", "opened", at)]

    def _resolve(self, key: str, at: float, detail: str) -> list[Change]:
        alert_id = self._open.get(key)
        if alert_id is None:
            return []
        alert = self._get(alert_id)
        assert alert is not None
        alert["state"] = "resolved"
        alert["resolved_at"] = at
        alert["resolution"] = detail  # what ended it; `detail` stays what went wrong
        self._note(alert, at, "resolved", detail)
        own, group = self._group_resolution(alert, at)  # a group resolves with its last
        # a firing that went out is closed out, quiet or not: a silence or a window mutes
        # news, and a pager whose incident never hears "resolved" keeps it open
        if own and alert["notified_firing"]:
            change = self._notify(alert, "resolved", "resolved", at)
        else:
            self._save(alert)
            change = Change("resolved", alert)
        self._prune_resolved()
        return [change] if group is None else [change, group]

    def _notify(self, alert: dict[str, Any], event: str, action: str, at: float) -> Change:
        """Queue `event` for every notifier that wants it, in the same data as the alert."""
        alert["seq"] += 1
        if event == "firing":
            alert["notified_firing"] = True
        sent = dict(alert["last_sent"])
        at = self.clock()  # the event's own time may be the sampler's; delivery runs on ours
        queued = False
        for name, cfg in self.notifiers.items():
            if event not in cfg.events:
                continue
            self.outbox.queue(alert, name, event, at)
            sent[name] = at
            queued = True
        alert["last_sent"] = sent
        self._save(alert)
        return Change(action, alert, notified=queued)

    def check_changed(self, check: str, target: str, old: str, new: str, at: float,
                      detail: str = "", severity: str = "crit",
                      cause: str = "") -> list[Change]:
        """A check's damped state changed (a CheckChanged event): down, warn and crit
        open (or update) its one alert; up resolves it."""
        key = f"check:{check}@{target}"
        if new in ("down", "warn", "crit"):
            severity = "warn" if new == "warn" else "crit"
            return self._open_alert(key, "check", check, target, severity, detail, at,
                                    new, cause or detail)
        if new == "up":
            return (self._resolve(key, at, detail or f"{old} -> up")
                    + self._resolve(f"gave_up:{check}@{target}", at, detail or "up again"))
        if new == "gave_up":
            why = detail or "the watchdog stopped restarting"
            return self._open_alert(f"gave_up:{check}@{target}", "gave_up", check, target,
                                    "crit", why, at, "down", "the watchdog gave up")
        alert_id = self._open.get(key)  # pending, maintenance: noted, never notified
        if alert_id is not None:
            alert = self._get(alert_id)
            assert alert is not None
            self._note(alert, at, new, detail)
            self._save(alert)
            return [Change("updated", alert)]
        return []

    def rule_changed(self, rule: str, source: str, firing: bool, at: float,
                     detail: str = "") -> list[Change]:
        key = f"rule:{rule}@{source}"
        if firing:
            return self._open_alert(key, "rule", rule, source, "warn", detail, at)
        return self._resolve(key, at, detail or "back under its threshold")

    def run_finished(self, run: dict[str, Any], alert_on: tuple[str, ...]) -> list[Change]:
        """A job's run ended; jobs ask for alerts with `alert_on`."""
        if not alert_on:
            return []
        job, host, state = run["job"], run["host"], run["state"]
        at = run.get("finished_at") or self.clock()
        where = f"{job}@{host}"
        if state in ("failed", "timed_out") and "failed" in alert_on:
            reason = f": {run['reason']}" if run.get("reason") else ""
            return self._open_alert(f"job_failed:{where}", "job_failed", job, host, "crit",
                                    f"run #{run['id']} {state}{reason}", at)
        if (state == "skipped" and "missed" in alert_on
                and (run.get("reason") or "").startswith("missed")):
            return self._open_alert(f"job_missed:{where}", "job_missed", job, host, "warn",
                                    f"run #{run['id']} skipped: {run['reason']}", at)
        if state == "succeeded":
            done = f"run #{run['id']} succeeded"
            return (self._resolve(f"job_failed:{where}", at, done)
                    + self._resolve(f"job_missed:{where}", at, done))
        return []

    # -------------------------------------------------------------- person's acts ---
    def ack(self, alert_id: int, who: str) -> Change:
        alert = self._get(alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert #{alert_id}")
        if alert["state"] == "resolved":
            raise AlertError(f"alert #{alert_id} is already resolved")
        if alert["state"] == "acknowledged":
            raise AlertError(f"alert #{alert_id} is already acknowledged by {alert['acked_by']}")
        at = self.clock()
        alert["state"] = "acknowledged"
        alert["acked_by"], alert["acked_at"] = who, at
        self._note(alert, at, "acknowledged", f"by {who}")
        self._save(alert)
        return Change("acknowledged", alert)

    def ack_group(self, lead_id: int, who: str) -> list[Change]:
        """Acknowledge every firing member of the group `lead_id` leads (or that alert)."""
        lead = self._get(lead_id)
        if lead is None:
            raise AlertNotFound(f"no alert #{lead_id}")
        members = self.members(lead) if lead.get("group") == lead_id else [lead]
        changes = [self.ack(m["id"], who) for m in members if m["state"] == "firing"]
        if not changes:
            raise AlertError(f"alert #{lead_id} and its group have nothing firing to "
                             "acknowledge")
        return changes

    def silence(self, target: str, duration: str | float, who: str) -> tuple[dict[str, Any],
                                                                             list[Change]]:
        """Hold notifications for a check/rule/job, a host, `check@host` or `#id`."""
        target = target.strip()
        if not target or any(ch.isspace() for ch in target):
            raise AlertError(f"bad silence target {target!r}; name a check, a host, "
                             "check@host or an alert like #12")
        if target.lstrip("#").isdigit():
            target = "#" + target.lstrip("#")
            if self._get(int(target[1:])) is None:
                raise AlertError(f"no alert {target}")
        try:
            seconds = parse_duration(duration)
        except DurationError as e:
            raise AlertError(str(e)) from None
        if seconds <= 0:
            raise AlertError("a silence needs a duration above 0, e.g. '2h'")
        if seconds > MAX_DURATION:
            raise AlertError(f"a silence lasts at most {format_seconds(MAX_DURATION)}; "
                             "for longer, use a maintenance window")
        at = self.clock()
        record = self.quiet.add_silence(target, seconds, who, at)
        changes = []
        for alert_id in list(self._open.values()):
            alert = self._get(alert_id)
            assert alert is not None
            if silence_matches(target, alert):
                self._note(alert, at, "silenced",
                           f"by {who} for {format_duration(seconds)}")
                self._save(alert)
                changes.append(Change("silenced", alert))
        return record, changes

    def unsilence(self, target: str, who: str) -> tuple[list[dict[str, Any]], list[Change]]:
        """End the silences on `target` before their time (amtool's `silence expire`):
        a firing alert they held is notified on the next pass, as when one runs out."""
        target = target.strip()
        if target.lstrip("#").isdigit():
            target = "#" + target.lstrip("#")
        at = self.clock()
        ended = self.quiet.end_silences(target, at)
        if not ended:
            held = sorted({s["target"] for s in self.quiet.silences_in_force(at)})
            raise AlertError(f"no silence in force on {target!r}"
                             + (f"; silenced now: {', '.join(held)}" if held else ""))
        changes = []
        for alert_id in list(self._open.values()):
            alert = self._get(alert_id)
            assert alert is not None
            if any(silence_matches(s["target"], alert) for s in ended):
                self._note(alert, at, "unsilenced", f"silence on {target} ended by {who}")
                self._save(alert)
                changes.append(Change("updated", alert))
        return ended, changes

    def silences(self, at: float) -> list[dict[str, Any]]:
        return self.quiet.silences_in_force(at)

    # -------------------------------------------------------------------- reminders ---
    def reminders(self, now: float) -> list[Change]:
        """Remind about firing (unacknowledged, not quiet) alerts every `repeat`."""
        out: list[Change] = []
        for alert_id in list(self._open.values()):
            alert = self._get(alert_id)
            assert alert is not None
            if alert["state"] != "firing" or alert.get("group", alert["id"]) != alert["id"]:
                continue  # (a group's members: the group reminds through its lead)
            if not alert["notified_firing"]:  # opened while quiet, and the quiet is over
                if not self.quiet.reason(alert, now):
                    self._note(alert, now, "quiet period over", "still firing")
                    out.append(self._notify(alert, "firing", "notified", now))
                continue
            due = []
            for name, cfg in self.notifiers.items():
                every = cfg.repeat if cfg.repeat is not None else self.alerting.settings.repeat
                last = alert["last_sent"].get(name)
                if every and "reminder" in cfg.events and last is not None \
                        and now - last >= every:
                    due.append(name)
            if not due or self.quiet.reason(alert, now):
                continue
            out.append(self._remind(alert, due, now))
        return out

    def _remind(self, alert: dict[str, Any], names: list[str], at: float) -> Change:
        alert["seq"] += 1
        sent = dict(alert["last_sent"])
        for name in names:
            self.outbox.queue(alert, name, "reminder", at)
            sent[name] = at
        alert["last_sent"] = sent
        self._note(alert, at, "reminded", ", ".join(names))
        self._save(alert)
        return Change("reminded", alert, notified=True)

    def next_reminder(self, now: float) -> float | None:
        """When the next reminder is due (alerts quiet now are looked at again later)."""
        times = []
        for alert_id in self._open.values():
            alert = self._get(alert_id)
            if alert is None or alert["state"] != "firing" or self.quiet.reason(alert, now) \
                    or alert.get("group", alert["id"]) != alert["id"]:
                continue
            if not alert["notified_firing"]:
                times.append(now + 60)  # looked at again when a quiet period may be over
                continue
            for name, cfg in self.notifiers.items():
                every = cfg.repeat if cfg.repeat is not None else self.alerting.settings.repeat
                last = alert["last_sent"].get(name)
                if every and last is not None and "reminder" in cfg.events:
                    times.append(last + every)
        return min(times) if times else None

    # ------------------------------------------------------------------ retention ---
    def _prune_resolved(self) -> None:
        """Keep at most 2 x MAIN_RESOLVED resolved alerts in the main file: move the oldest
        to resolved.json in batches (that file made durable first, so a crash between
        leaves a copy in both, never none), and apply the retention there."""
        if len(self.alerts) - len(self._open) <= 2 * MAIN_RESOLVED:  # O(1), most times
            return
        resolved = sorted(d.doc_id for d in self.alerts.all() if d["state"] == "resolved")
        moving = resolved[:len(resolved) - MAIN_RESOLVED]
        for alert_id in moving:
            put(self.archive, alert_id, dict(self.alerts.get(doc_id=alert_id)))  # type: ignore[arg-type]
        keep = self.alerting.settings.resolved_retention
        if len(self.archive) > keep:
            ids = sorted(d.doc_id for d in self.archive.all())
            remove_docs(self.archive, ids[:len(ids) - keep])
        self.archive_storage.flush()
        remove_docs(self.alerts, moving)

    # --------------------------------------------------------------------- reading ---
    def view(self, alert: dict[str, Any], now: float) -> dict[str, Any]:
        """An alert as people see it: with `status` (firing, acknowledged, silenced,
        maintenance, resolved), why it is quiet, and its age."""
        out = {k: v for k, v in alert.items() if k not in ("last_sent",)}
        quiet = self.quiet.reason(alert, now) if alert["state"] in OPEN_STATES else ""
        status = alert["state"]
        if quiet and alert["state"] == "firing":
            status = "maintenance" if quiet.startswith("maintenance") else "silenced"
        out.update(status=status, quiet=quiet, what=describe(alert),
                   silenced_until=(self.quiet.silenced_until(alert, now)
                                   if alert["state"] in OPEN_STATES else None),
                   age=(alert["resolved_at"] or now) - alert["opened_at"])
        out.update(self.group_info(alert))
        return out

    def list(self, now: float, *, include_resolved: bool = False,
             limit: int = 200) -> list[dict[str, Any]]:
        """Firing first, then acknowledged, silenced, in maintenance, resolved; newest
        first within each. Every open alert is listed: `limit` cuts resolved ones only (a
        cap on the firing ones hid the oldest, and every count made from the list)."""
        source = self._all() if include_resolved else [dict(d) for d in self.alerts.all()]
        docs = [self.view(d, now) for d in source
                if include_resolved or d["state"] in OPEN_STATES]
        order = {"firing": 0, "acknowledged": 1, "silenced": 2, "maintenance": 3,
                 "resolved": 4}
        docs.sort(key=lambda a: (order[a["status"]], -a["opened_at"], -a["id"]))
        still = sum(1 for a in docs if a["status"] != "resolved")
        return docs[:max(limit, still)]

    def get(self, alert_id: int, now: float) -> dict[str, Any]:
        """One alert with `related`: earlier alerts of the same check on the same target."""
        alert = self._get(alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert #{alert_id}")
        out = self.view(alert, now)
        related = sorted((d for d in self._all()
                          if d["key"] == alert["key"] and d["id"] != alert_id),
                         key=lambda a: -a["id"])
        out["related"] = [self.view(a, now) for a in related[:20]]
        out["notifications"] = self.outbox.of_alert(alert_id)
        return out

