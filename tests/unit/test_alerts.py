"""The alert state machine on a real state file, driven by a fixed, hand-moved clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.alerts.book import AlertBook, AlertError
from core.alerts.config import AlertingConfig, AlertSettings, MaintenanceConfig, NotifierConfig

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def alerting(repeat: float | None = None, **windows: MaintenanceConfig) -> AlertingConfig:
    return AlertingConfig(
        settings=AlertSettings(repeat=repeat, retry_backoff=2.0, retry_backoff_max=10.0),
        notifiers={"hook": NotifierConfig("hook", "webhook", url="http://127.0.0.1:1/"),
                   "pager": NotifierConfig("pager", "command", command="true",
                                           events=("firing",))},
        maintenance=windows)


def book(tmp_path: Path, clock: Clock, cfg: AlertingConfig | None = None) -> AlertBook:
    return AlertBook(tmp_path / "state", cfg or alerting(), clock)


def events(b: AlertBook) -> list[tuple[str, str, int]]:
    return [(e["notifier"], e["event"], e["alert_id"]) for e in b.outbox.pending()]


def test_notifies_on_the_transitions_that_matter_only(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock)
    assert b.check_changed("http", "web1", "up", "pending", T0) == []
    (ch,) = b.check_changed("http", "web1", "pending", "down", T0, "HTTP 500")
    assert ch.action == "opened" and ch.notified
    assert events(b) == [("hook", "firing", 1), ("pager", "firing", 1)]
    # down again (a repeat, or the monitor restarting): nothing new is sent
    (again,) = b.check_changed("http", "web1", "pending", "down", T0 + 5, "HTTP 500")
    assert again.action == "updated" and not again.notified
    # entering maintenance or pending on the way: noted, never sent
    b.check_changed("http", "web1", "down", "maintenance", T0 + 6)
    assert len(events(b)) == 2
    (res,) = b.check_changed("http", "web1", "down", "up", T0 + 60, "HTTP 200 in 9 ms")
    assert res.action == "resolved" and res.notified
    # the pager wants only "firing"; the hook gets the resolution
    assert events(b)[-1] == ("hook", "resolved", 1)
    from core.alerts.notifiers import summary

    # what ended it, then what was wrong: the failure alone read like another failure
    assert [summary(e) for e in b.outbox.pending()][-1] == (
        "[fleetdeck] RESOLVED #1 check http on web1 (down): HTTP 200 in 9 ms (was: HTTP 500)")
    assert len(events(b)) == 3
    # up again while nothing is open: nothing
    assert b.check_changed("http", "web1", "pending", "up", T0 + 70) == []
    # up -> down opens a new alert
    (second,) = b.check_changed("http", "web1", "up", "down", T0 + 80)
    assert second.alert["id"] == 2 and second.notified


def test_restart_finds_the_open_alert_and_sends_nothing_twice(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock)
    b.check_changed("disk", "db1", "up", "down", T0, "/ 96%")
    b.storage.flush()
    b2 = book(tmp_path, clock)  # a new process on the same state
    assert len(b2.outbox.pending()) == 2
    (ch,) = b2.check_changed("disk", "db1", "pending", "down", T0 + 1, "/ 96%")
    assert not ch.notified and len(b2.outbox.pending()) == 2
    assert [a["id"] for a in b2.list(T0)] == [1]


def test_ack_stops_reminders_and_resolution_still_notifies(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock, alerting(repeat=1800))
    b.check_changed("http", "web1", "up", "down", T0)
    clock.now = T0 + 1799
    assert b.reminders(clock.now) == []
    clock.now = T0 + 1800
    (rem,) = b.reminders(clock.now)
    assert rem.action == "reminded"
    assert events(b)[-1] == ("hook", "reminder", 1)  # the pager does not want reminders
    assert b.next_reminder(clock.now) == T0 + 3600
    b.ack(1, "alice")
    with pytest.raises(AlertError, match="already acknowledged by alice"):
        b.ack(1, "bob")
    clock.now = T0 + 7200
    assert b.reminders(clock.now) == []
    (res,) = b.check_changed("http", "web1", "down", "up", clock.now)
    assert res.notified and res.alert["state"] == "resolved"
    with pytest.raises(AlertError, match="already resolved"):
        b.ack(1, "bob")
    with pytest.raises(AlertError, match="no alert #9"):
        b.ack(9, "bob")


def test_silence_holds_notifications_until_it_ends(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock, alerting(repeat=600))
    b.check_changed("http", "web1", "up", "down", T0)
    record, changes = b.silence("web1", "1h", "alice")
    assert record["until"] == T0 + 3600 and [c.alert["id"] for c in changes] == [1]
    assert b.list(T0)[0]["status"] == "silenced"
    clock.now = T0 + 1200
    assert b.reminders(clock.now) == []  # silenced: no reminder
    # another check on the silenced host opens, recorded but not sent
    (ch,) = b.check_changed("disk", "web1", "up", "down", clock.now)
    assert ch.action == "opened" and not ch.notified
    assert "not notified" in [h["what"] for h in ch.alert["history"]]
    # a silence by check@host leaves other hosts alone
    b.silence("disk@web2", "1h", "alice")
    (other,) = b.check_changed("disk", "web2", "up", "down", clock.now)
    assert not other.notified
    (web3,) = b.check_changed("disk", "web3", "up", "down", clock.now)
    assert web3.notified
    clock.now = T0 + 3600  # web1's silence is over: reminders resume, and the alert that
    # opened while it held (disk@web1) and is still firing is announced now
    changes = b.reminders(clock.now)
    assert sorted((c.alert["id"], c.action) for c in changes) == [
        (1, "reminded"), (2, "notified"), (4, "reminded")]
    assert b.reminders(clock.now) == []
    assert b.quiet.silenced_until(other.alert, clock.now) == T0 + 1200 + 3600


def test_unsilence_ends_a_silence_early_and_what_it_held_is_sent(tmp_path):
    """amtool's `silence expire`: the fix is in after 10 minutes of a 4 h silence, and
    the person wants the pager back; an alert that opened under it is announced then."""
    clock = Clock()
    b = book(tmp_path, clock, alerting(repeat=600))
    b.silence("web1", "4h", "alice")
    b.silence("disk@db1", "1h", "alice")
    (held,) = b.check_changed("http", "web1", "up", "down", T0 + 60)
    assert not held.notified and b.list(T0 + 60)[0]["status"] == "silenced"
    with pytest.raises(AlertError, match=r"no silence in force on 'web2'; silenced now: "
                                         r"disk@db1, web1"):
        b.unsilence("web2", "bob")
    clock.now = T0 + 600
    ended, changes = b.unsilence(" web1 ", "bob")
    assert [s["target"] for s in ended] == ["web1"]
    assert [(c.action, c.alert["id"]) for c in changes] == [("updated", 1)]
    assert changes[0].alert["history"][-1]["what"] == "unsilenced"
    assert [s["target"] for s in b.silences(clock.now)] == ["disk@db1"]
    assert b.list(clock.now)[0]["status"] == "firing"
    (sent,) = b.reminders(clock.now)  # the next pass announces what it held
    assert (sent.action, sent.alert["id"]) == ("notified", 1)
    assert events(b)[-2:] == [("hook", "firing", 1), ("pager", "firing", 1)]
    with pytest.raises(AlertError, match="no silence in force on 'web1'"):
        b.unsilence("web1", "bob")  # ended already
    b.storage.flush()
    assert [s["target"] for s in book(tmp_path, clock).silences(clock.now)] == ["disk@db1"]
    clock.now = T0 + 3600  # a silence that ran out is not in force either
    assert b.silences(clock.now) == []
    with pytest.raises(AlertError, match="no silence in force on 'disk@db1'$"):
        b.unsilence("disk@db1", "bob")


@pytest.mark.parametrize("bad, message", [
    ("web1", "bad duration"),
    ("", "bad silence target"),
])
def test_silence_mistakes_are_one_line(tmp_path, bad, message):
    b = book(tmp_path, Clock())
    with pytest.raises(AlertError, match=message):
        b.silence(bad, "soon" if bad else "1h", "alice")
    with pytest.raises(AlertError, match="no alert #4"):
        b.silence("#4", "1h", "alice")
    with pytest.raises(AlertError, match="above 0"):
        b.silence("web1", "0s", "alice")


def test_alert_opened_in_maintenance_notifies_when_still_down_after_it(tmp_path):
    window = MaintenanceConfig("patch", targets="web1", hosts=("web1",), start=T0,
                               end=T0 + 3600)
    clock = Clock(T0 + 60)
    b = book(tmp_path, clock, alerting(patch=window))
    (ch,) = b.check_changed("http", "web1", "up", "down", clock.now)
    assert not ch.notified and b.outbox.pending() == []
    assert b.list(clock.now)[0]["status"] == "maintenance"
    # resolved inside the window: never announced, so no "resolved" either
    (res,) = b.check_changed("http", "web1", "down", "up", clock.now + 10)
    assert not res.notified and b.outbox.pending() == []
    # down during the window, still down after it: the monitor says maintenance -> down
    b.check_changed("http", "web1", "up", "down", clock.now + 20)
    clock.now = T0 + 3600
    (after,) = b.check_changed("http", "web1", "maintenance", "down", clock.now)
    assert after.action == "notified" and after.notified
    assert b.quiet.in_maintenance("http", "web1", T0 + 100) == "patch"
    assert b.quiet.in_maintenance("http", "web2", T0 + 100) is None


def test_job_alerts_open_on_failure_and_missed_runs_and_resolve_on_success(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock)
    run = {"id": 7, "job": "backup", "host": "local", "state": "failed",
           "reason": "exit code 3", "finished_at": T0}
    assert b.run_finished(run, ()) == []  # the job did not ask
    (ch,) = b.run_finished(run, ("failed",))
    assert ch.alert["kind"] == "job_failed" and ch.alert["detail"] == "run #7 failed: exit code 3"
    (again,) = b.run_finished({**run, "id": 8, "state": "timed_out"}, ("failed",))
    assert again.action == "updated" and not again.notified
    missed = {"id": 9, "job": "backup", "host": "local", "state": "skipped",
              "reason": "missed while fleetdeck was down or busy (misfire=skip)",
              "finished_at": T0}
    assert b.run_finished(missed, ("failed",)) == []
    (m,) = b.run_finished(missed, ("failed", "missed"))
    assert m.alert["kind"] == "job_missed" and m.alert["severity"] == "warn"
    overlap = {**missed, "reason": "run #3 still active (overlap=skip)"}
    assert b.run_finished(overlap, ("missed",)) == []
    ok = {"id": 10, "job": "backup", "host": "local", "state": "succeeded", "finished_at": T0}
    assert sorted(c.alert["kind"] for c in b.run_finished(ok, ("failed", "missed"))) == [
        "job_failed", "job_missed"]
    assert b.list(T0) == []


def test_rules_and_gave_up_open_their_own_alerts(tmp_path):
    b = book(tmp_path, Clock())
    (r,) = b.rule_changed("errors", "app", True, T0, "12 matches in 5m")
    assert r.alert["kind"] == "rule" and r.notified
    (r2,) = b.rule_changed("errors", "app", False, T0 + 300)
    assert r2.action == "resolved"
    b.check_changed("nginx", "web1", "up", "down", T0)
    (g,) = b.check_changed("nginx", "web1", "down", "gave_up", T0 + 30)
    assert g.alert["kind"] == "gave_up" and g.notified
    assert len(b.list(T0)) == 2
    resolved = b.check_changed("nginx", "web1", "gave_up", "up", T0 + 60)
    assert sorted(c.alert["kind"] for c in resolved) == ["check", "gave_up"]


def test_outbox_backoff_doubles_and_delivered_entries_leave_the_queue(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock)
    b.check_changed("http", "web1", "up", "down", T0)
    hook = [e for e in b.outbox.due(T0) if e["notifier"] == "hook"][0]
    assert b.outbox.failed(hook, "HTTP 500", T0) == 2.0
    hook = [e for e in b.outbox.pending() if e["notifier"] == "hook"][0]
    assert hook["next_at"] == T0 + 2 and [e["notifier"] for e in b.outbox.due(T0 + 1)] == ["pager"]
    assert b.outbox.failed(hook, "HTTP 500", T0 + 2) == 4.0
    hook = [e for e in b.outbox.pending() if e["notifier"] == "hook"][0]
    for _ in range(5):
        b.outbox.failed(hook, "HTTP 500", T0)
        hook = [e for e in b.outbox.pending() if e["notifier"] == "hook"][0]
    assert hook["next_at"] == T0 + 10  # capped at retry_backoff_max
    b.outbox.delivered(hook, T0 + 10)
    assert [e["notifier"] for e in b.outbox.pending()] == ["pager"]
    detail = b.get(1, T0 + 10)
    assert [(n["notifier"], n["state"], n["attempts"]) for n in detail["notifications"]] == [
        ("hook", "delivered", 8), ("pager", "pending", 0)]


def test_undeliverable_entries_are_dropped_after_give_up_after(tmp_path):
    b = book(tmp_path, Clock())
    b.check_changed("http", "web1", "up", "down", T0)
    assert len(b.outbox.due(T0 + 86400)) == 2
    assert b.outbox.due(T0 + 86401) == [] and b.outbox.pending() == []


def test_state_file_is_private(tmp_path):
    b = book(tmp_path, Clock())
    b.check_changed("http", "web1", "up", "down", T0)
    b.close()
    path = tmp_path / "state" / "alerts" / "alerts.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_old_resolved_alerts_move_to_their_own_file_and_retention_applies(tmp_path):
    import json

    from core.alerts.book import MAIN_RESOLVED

    clock = Clock()
    cfg = AlertingConfig(settings=AlertSettings(resolved_retention=150))
    b = book(tmp_path, clock, cfg)
    for i in range(260):  # one check flapping 260 times
        clock.now = T0 + 2 * i
        b.check_changed("http", "web1", "up", "down", clock.now, f"flap {i}")
        b.check_changed("http", "web1", "down", "up", clock.now + 1)
    b.check_changed("http", "web1", "up", "down", clock.now + 5, "down again")
    b.close()
    main = json.loads((tmp_path / "state" / "alerts" / "alerts.json").read_text())
    assert len(main["alerts"]) <= 2 * MAIN_RESOLVED + 1
    b2 = book(tmp_path, clock, cfg)  # a new process reads both files
    every = b2.list(clock.now, include_resolved=True, limit=10_000)
    assert every[0]["id"] == 261 and every[0]["status"] == "firing"
    resolved = [a["id"] for a in every if a["status"] == "resolved"]
    assert len(resolved) >= 150 and min(resolved) > 260 - 150 - 2 * MAIN_RESOLVED
    detail = b2.get(261, clock.now)
    assert [r["id"] for r in detail["related"]][:3] == [260, 259, 258]  # across both files
    # a crash between the two writes leaves a copy in both: it counts once
    oldest = b2.archive.all()[0]
    put_back = dict(oldest)
    from core.store.docs import put

    put(b2.alerts, oldest.doc_id, put_back)
    ids = [a["id"] for a in b2.list(clock.now, include_resolved=True, limit=10_000)]
    assert len(ids) == len(set(ids))


def test_a_check_alert_keeps_down_apart_from_its_thresholds(tmp_path):
    b = book(tmp_path, Clock())
    (w,) = b.check_changed("sys", "web1", "up", "warn", T0, "cpu 93% ≥ 90%", "warn",
                           "cpu ≥ 90%")
    assert (w.action, w.notified) == ("opened", True)
    assert (w.alert["condition"], w.alert["severity"], w.alert["cause"]) == (
        "warn", "warn", "cpu ≥ 90%")
    # worse, then unreachable: the same alert, its condition and severity follow
    (c,) = b.check_changed("sys", "web1", "warn", "crit", T0 + 10, "cpu 100% ≥ 98%", "crit",
                           "cpu ≥ 98%")
    assert (c.action, c.alert["condition"], c.alert["severity"]) == ("updated", "crit", "crit")
    (d,) = b.check_changed("sys", "web1", "crit", "down", T0 + 20,
                           "unreachable over SSH: connection refused")
    assert (d.alert["condition"], d.alert["severity"], d.alert["detail"]) == (
        "down", "crit", "unreachable over SSH: connection refused")
    assert [h["what"] for h in d.alert["history"]] == ["opened", "crit", "down"]
    assert len(events(b)) == 2  # one firing per notifier, nothing more
    (r,) = b.check_changed("sys", "web1", "down", "up", T0 + 30)
    assert r.action == "resolved" and r.notified


def test_alerts_written_before_conditions_still_read(tmp_path):
    """An alert book from before `condition` and `cause`: listed, updated, notified."""
    clock = Clock()
    b = book(tmp_path, clock)
    b.check_changed("http", "web1", "up", "down", T0, "HTTP 500")
    doc = dict(b.alerts.get(doc_id=1))
    for key in ("condition", "cause"):
        del doc[key]
    from core.store.docs import put

    put(b.alerts, 1, doc)
    b.storage.flush()
    b2 = book(tmp_path, clock)
    assert b2.list(T0)[0]["detail"] == "HTTP 500"
    (again,) = b2.check_changed("http", "web1", "up", "down", T0 + 5, "HTTP 503")
    assert again.alert["condition"] == "down"
    (res,) = b2.check_changed("http", "web1", "down", "up", T0 + 9)
    assert res.notified


def test_every_open_alert_is_listed_the_limit_cuts_resolved_ones(tmp_path):
    """301 hosts down: 301 alerts firing, not the newest 200 (the status bar and the
    Alerts screen counted the list and said 200)."""
    clock = Clock()
    b = book(tmp_path, clock)
    for i in range(301):
        b.check_changed("tcp", f"h{i}", "up", "down", T0 + i, "connection refused")
    for i in range(5):
        b.check_changed("tcp", f"h{i}", "down", "up", T0 + 400 + i)
    listed = b.list(T0 + 500, include_resolved=True, limit=200)
    assert sum(a["status"] == "firing" for a in listed) == 296
    assert len(listed) == 296  # no room left for the resolved ones
    assert len(b.list(T0 + 500, include_resolved=True, limit=300)) == 300
    assert len(b.list(T0 + 500)) == 296


def test_a_firing_that_went_out_is_resolved_out_even_under_a_silence(tmp_path):
    """A pager told "firing" must hear "resolved", or its incident stays open: a silence
    mutes news, not the close of what was sent. One never sent is never resolved out."""
    clock = Clock()
    b = book(tmp_path, clock)
    b.check_changed("http", "web1", "up", "down", T0, "HTTP 500")  # sent
    b.silence("web1", "1h", "alice")
    b.check_changed("disk", "web1", "up", "down", T0 + 5)  # opened silenced: not sent
    (res,) = b.check_changed("http", "web1", "down", "up", T0 + 60)
    assert res.action == "resolved" and res.notified
    assert events(b)[-1] == ("hook", "resolved", 1)
    (quiet,) = b.check_changed("disk", "web1", "down", "up", T0 + 70)
    assert quiet.action == "resolved" and not quiet.notified
