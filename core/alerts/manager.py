"""The alerts engine service: events in, alerts and notifications out (the state
machine itself is `core.alerts.book.AlertBook`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from core.alerts.approvals import approval_alert, link_remediation
from core.alerts.book import STOP_GRACE, AlertBook, AlertError, Change, describe
from core.alerts.config import AlertingConfig
from core.alerts.maintenance import clock_text
from core.api import current_user
from core.durations import DurationError, parse_duration
from core.events import AlertChanged, Event

log = logging.getLogger("fleetdeck.alerts")


# --------------------------------------------------------------------------- service ---
class AlertManager:
    """The engine service: events in, alerts and notifications out.

    Public methods take plain arguments and return plain data, like the Engine's, so
    the console, the CLI and later a socket client call the same ones.
    """

    service_name = "alerts"

    def __init__(self, *, deliver: bool = True) -> None:
        self.deliver = deliver
        self.engine: Any = None
        self.book: AlertBook | None = None
        self._unsubscribe: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._sending = asyncio.Lock()
        self._commit_task: asyncio.Task[None] | None = None
        self._unannounced: list[AlertChanged] = []  # published after the book's commit
        self._stopping = False  # the loop ends by it too: 3.11's wait_for can lose a cancel
        self._notifiers: dict[str, Any] = {}
        self._http: Any = None  # the webhooks' keep-alive client (core.httpclient.SharedClient)

    async def start(self, engine: Any) -> None:
        from core.alerts.notifiers import make_notifiers
        from core.httpclient import SharedClient

        self._stopping = False
        self._http = SharedClient()
        self.engine = engine
        alerting = getattr(engine.config, "alerting", None) or AlertingConfig()
        store = getattr(engine, "store", None)
        self.book = AlertBook(engine.state_dir, alerting, engine.clock,
                              install=store.install_id if store is not None else "")
        self._notifiers = make_notifiers(self.book.notifiers, self._http)
        self._unsubscribe = engine.bus.subscribe(self._on_event)
        if self.deliver:
            self._task = asyncio.create_task(self._deliver_loop())

    def resolve_gone_checks(self, config: Any) -> None:
        """An open alert of a check (on a target) the config no longer has, removed or
        disabled while no daemon ran, resolves, as a reload resolves it: nothing would
        sample that check again, and it stayed firing for good. A daemon's start: the
        config it runs is the fleet's."""
        from core.events import CheckChanged
        from core.remote.inventory import TargetError, resolve_targets

        if self.book is None or self.book.read_only:
            return
        now = self.engine.clock()
        wanted: set[tuple[str, str]] = set()
        for spec in (getattr(config, "checks", None) or {}).values():
            if not spec.enabled:
                continue
            try:
                wanted.update((spec.name, t) for t in resolve_targets(spec.targets,
                                                                       config.hosts))
            except TargetError:  # the monitor says why; its alerts stand
                wanted.update((spec.name, a["target"]) for a in self.book.list(now)
                              if a["source"] == spec.name)
        for a in self.book.list(now):
            if a["kind"] == "check" and (a["source"], a["target"]) not in wanted:
                self._on_event(CheckChanged(a["source"], a["target"],
                                            a.get("condition") or "down", "up", now,
                                            "the check is no longer in the config"))

    def reconfigure(self, config: Any) -> list[str]:
        """A reloaded config: notifiers, routes, maintenance and settings as they are now;
        open alerts and the outbox stay."""
        from core.alerts.notifiers import make_notifiers

        new = getattr(config, "alerting", None) or AlertingConfig()
        if self.book is None or new == self.book.alerting:
            return []
        self.book.alerting = new
        self._notifiers = make_notifiers(self.book.notifiers, self._http)
        self._wake.set()
        return ["alerting"]

    async def stop(self) -> None:
        """Deliver what is due one last time (bounded), then stop."""
        self._stopping = True
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            try:
                await asyncio.wait_for(self._final_pass(), STOP_GRACE)
            except TimeoutError:
                log.warning("notifications still pending at stop; sent at the next start")
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # what changed last (an alert a run that just failed opened) is written, not
        # dropped with its commit: a brief CLI engine stops right after its run
        if self._commit_task is not None and not self._commit_task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._commit_task), STOP_GRACE)
        if self.book is not None and not self.book.read_only:
            try:
                await self.book.commit_async()
            except Exception:
                log.exception("writing alerts at stop failed")
        if self._http is not None:
            await self._http.aclose()
        if self.book is not None:
            self.book.close()

    # ------------------------------------------------------------------- events in ---
    def _on_event(self, event: Event) -> None:
        book = self.book
        if book is None:
            return
        kind = event.kind
        changes: list[Change]
        if kind == "check_changed":
            e: Any = event
            changes = book.check_changed(e.check, e.target, e.old, e.new, e.at, e.detail,
                                         e.severity, e.cause)
        elif kind == "rule_changed":
            e = event
            changes = book.rule_changed(e.rule, e.source, e.firing, e.at, e.detail)
        elif kind == "approval_changed":
            changes = approval_alert(book, event, self.engine.clock())
        elif kind == "run_finished":
            run = event.run  # type: ignore[attr-defined]
            if run.get("origin"):  # another node's run: that node alerts on it
                return
            job = self.engine.config.jobs.get(run["job"])
            changes = book.run_finished(run, job.alert_on if job else ())
        else:
            return
        self._publish(changes)

    def _publish(self, changes: list[Change]) -> None:
        if not changes:
            return
        book = self.book
        assert book is not None
        now = self.engine.clock()
        for ch in changes:
            if ch.action == "opened":
                log.warning("alert #%d opened: %s: %s", ch.alert["id"], describe(ch.alert),
                            ch.alert["detail"])
            elif ch.action == "resolved":
                log.info("alert #%d resolved: %s", ch.alert["id"], describe(ch.alert))
            elif ch.action == "joined":
                log.warning("alert #%d opened in group #%d: %s: %s", ch.alert["id"],
                            ch.alert["group"], describe(ch.alert), ch.alert["detail"])
            self._unannounced.append(AlertChanged(book.view(ch.alert, now), ch.action,
                                                  ch.notified))
        self._dirty()

    def _dirty(self) -> None:
        if self._commit_task is None or self._commit_task.done():
            self._commit_task = asyncio.ensure_future(self._commit_then_wake())

    async def _commit_then_wake(self) -> None:
        """Commit the book, then announce the changes it holds (never before)."""
        await asyncio.sleep(0)
        assert self.book is not None
        events, self._unannounced = self._unannounced, []
        try:
            await self.book.commit_async()
        except Exception:
            log.exception("writing alerts failed")
            self._unannounced[:0] = events  # told once a later commit holds them
            return
        for event in events:
            self.engine.bus.publish(event)
        self._wake.set()

    # ---------------------------------------------------------------- delivery -------
    async def _final_pass(self) -> None:
        async with self._sending:  # never beside a pass of the loop: no double send
            assert self._task is not None
            self._task.cancel()
            await self._deliver_due()

    async def _deliver_due(self) -> None:
        from core.alerts.notifiers import deliver

        book = self.book
        assert book is not None
        await book.commit_async()  # an entry is on disk before it is sent
        due = book.outbox.due(self.engine.clock())
        if due:
            await deliver(book.outbox, self._notifiers, due, self.engine.clock)
            await book.commit_async()

    async def _deliver_loop(self) -> None:
        book = self.book
        assert book is not None
        while not self._stopping:
            self._wake.clear()
            now = self.engine.clock()
            reminded = book.reminders(now)
            if reminded:
                self._publish(reminded)
            async with self._sending:
                await self._deliver_due()
            waits = [t for t in (book.outbox.next_due(), book.next_reminder(now)) if t is not None]
            delay = min(waits) - self.engine.clock() if waits else 60.0
            delay = min(max(delay, 0.05), 60.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    # ------------------------------------------------------------------ public API ---
    def _book(self) -> AlertBook:
        if self.book is None:
            raise AlertError("alerts are not running")
        return self.book

    def list_alerts(self, *, include_resolved: bool = False,
                    limit: int = 200) -> list[dict[str, Any]]:
        return self._book().list(self.engine.clock(), include_resolved=include_resolved,
                                 limit=limit)

    def get_alert(self, alert_id: int) -> dict[str, Any]:
        return self._book().get(alert_id, self.engine.clock())

    def in_maintenance(self, check: str, target: str, at: float | None = None) -> str | None:
        """For the health monitor: the window keeping (check, host) in maintenance."""
        at = self.engine.clock() if at is None else at
        return self._book().quiet.in_maintenance(check, target, at)

    async def ack_alert(self, alert_id: int, *, requested_by: str | None = None) -> dict[
            str, Any]:
        who = requested_by or current_user()
        change = self._book().ack(alert_id, who)
        log.info("alert #%d acknowledged by %s", alert_id, who)
        self._publish([change])
        await self._book().commit_async()
        return self._book().view(change.alert, self.engine.clock())

    async def ack_alert_group(self, alert_id: int, *, requested_by: str | None = None
                              ) -> dict[str, Any]:
        """Acknowledge a group: every firing member of the group `alert_id` leads."""
        who = requested_by or current_user()
        changes = self._book().ack_group(alert_id, who)
        log.info("alert group #%d acknowledged by %s (%d alerts)", alert_id, who, len(changes))
        self._publish(changes)
        await self._book().commit_async()
        return {**self._book().get(alert_id, self.engine.clock()),
                "acknowledged": [c.alert["id"] for c in changes]}

    async def link_run(self, alert_id: int, run_id: int, who: str) -> dict[str, Any]:
        """A remediation run started from an alert, recorded on the alert."""
        change = link_remediation(self._book(), alert_id, run_id, who, self.engine.clock())
        self._publish([change])
        await self._book().commit_async()
        return self._book().view(change.alert, self.engine.clock())

    async def silence(self, target: str, duration: str | float, *,
                      requested_by: str | None = None) -> dict[str, Any]:
        who = requested_by or current_user()
        self._check_silence_target(target)
        record, changes = self._book().silence(target, duration, who)
        log.info("silenced %s until %s by %s", record["target"], clock_text(record["until"]),
                 who)
        self._publish(changes)
        await self._book().commit_async()
        return {**record, "alerts": [c.alert["id"] for c in changes]}

    async def unsilence(self, target: str, *, requested_by: str | None = None
                        ) -> dict[str, Any]:
        who = requested_by or current_user()
        ended, changes = self._book().unsilence(target, who)
        log.info("silence on %s ended by %s", ended[0]["target"], who)
        self._publish(changes)
        await self._book().commit_async()
        self._wake.set()  # a firing alert it held is notified now, not at the next look
        return {"target": ended[0]["target"], "silences": [s["id"] for s in ended],
                "alerts": [c.alert["id"] for c in changes]}

    def list_silences(self) -> list[dict[str, Any]]:
        return self._book().silences(self.engine.clock())

    def _check_silence_target(self, target: str) -> None:
        """A silence must name something that can alert: a typo silences nothing, and
        the person believes the pager quiet. Known: the config's checks, rules, jobs,
        log sources and hosts, and what any alert on record names."""
        t = target.strip()
        if not t or t.lstrip("#").isdigit() or any(ch.isspace() for ch in t):
            return  # an alert id, or a malformed target: the book's own errors
        config = self.engine.config
        known = {"local", *config.checks, *config.rules, *config.jobs, *config.sources,
                 *config.hosts}
        for alert in self._book().list(self.engine.clock(), include_resolved=True,
                                       limit=100_000):
            known.update((alert["source"], alert["target"]))
        parts = t.split("@", 1) if "@" in t else [t]
        unknown = [p for p in parts if p not in known]
        if unknown:
            raise AlertError(f"bad silence target {t!r}: no check, rule, job or host "
                             f"named {unknown[0]!r}")

    async def add_maintenance(self, name: str, *, targets: str | None = None,
                              checks: list[str] | None = None, start: float | None = None,
                              end: float | None = None, duration: str | float | None = None,
                              schedule: str | None = None, reason: str = "",
                              requested_by: str | None = None) -> dict[str, Any]:
        """A window from now (or `start`) for `duration`, until `end`, or recurring on a
        cron `schedule` for `duration`."""
        from core.config import NAME_RE
        from core.jobs.schedule import ScheduleError, parse_schedule
        from core.remote.inventory import TargetError, resolve_targets

        if not NAME_RE.fullmatch(name or ""):
            raise AlertError(f"bad maintenance window name {name!r}")
        if targets is None and not checks:
            raise AlertError("a maintenance window needs targets, checks or both")
        hosts: tuple[str, ...] = ()
        if targets is not None:
            try:
                hosts = tuple(resolve_targets(targets, self.engine.config.hosts))
            except TargetError as e:
                raise AlertError(f"targets: {e}") from None
        seconds = 0.0
        if duration is not None:
            try:
                seconds = parse_duration(duration)
            except DurationError as e:
                raise AlertError(str(e)) from None
        now = self.engine.clock()
        if schedule is not None:
            try:
                parse_schedule(schedule)
            except ScheduleError as e:
                raise AlertError(str(e)) from None
            if seconds <= 0:
                raise AlertError("a recurring window needs a duration, e.g. '2h'")
            start = end = None
        else:
            start = now if start is None else start
            end = end if end is not None else start + seconds
            if end <= start:
                raise AlertError("a maintenance window must end after it starts")
        rec = self._book().quiet.add_maintenance(
            name, targets=targets, hosts=hosts, checks=tuple(checks or ()), start=start,
            end=end, schedule=schedule, duration=seconds, reason=reason,
            who=requested_by or current_user())
        await self._book().commit_async()
        return rec


def read_silences(state_dir: Path, now: float) -> list[dict[str, Any]]:
    """The silences in force, read without the engine lock (beside a daemon)."""
    book = AlertBook(state_dir, None, lambda: now, read_only=True)
    return book.silences(now)


def read_alerts(state_dir: Path, alerting: AlertingConfig | None, now: float, *,
                include_resolved: bool = False) -> list[dict[str, Any]]:
    """Alerts read without the engine lock, for listings beside a running daemon."""
    book = AlertBook(state_dir, alerting, lambda: now, read_only=True)
    return book.list(now, include_resolved=include_resolved)
