"""Alert groups on the alert book, on a real state file and a hand-moved clock: the
same check and cause across hosts is one group, one notification per group
transition, acked as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.alerts.book import AlertBook, AlertError
from core.alerts.config import AlertingConfig, AlertSettings, NotifierConfig
from core.alerts.notifiers import summary
from tests.helpers import NOW

T0 = NOW


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


HOSTS = [f"web{i:02d}" for i in range(1, 12)]


def alerting(window: float = 60.0, repeat: float | None = None) -> AlertingConfig:
    return AlertingConfig(
        settings=AlertSettings(group_window=window, repeat=repeat),
        notifiers={"hook": NotifierConfig("hook", "webhook", url="http://127.0.0.1:1/")})


def book(tmp_path: Path, clock: Clock, cfg: AlertingConfig | None = None) -> AlertBook:
    return AlertBook(tmp_path / "state", cfg or alerting(), clock)


def crit(b: AlertBook, host: str, at: float, cause: str = "cpu ≥ 98%") -> list:
    return b.check_changed("sys", host, "up", "crit", at, f"cpu 100% ≥ 98% on {host}",
                           "crit", cause)


def sent(b: AlertBook) -> list[tuple[str, int]]:
    return [(e["event"], e["alert_id"]) for e in sorted(b.outbox.table.all(),
                                                        key=lambda d: d.doc_id)]


def test_one_group_one_notification_and_the_count_grows(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock)
    (first,) = crit(b, "web01", T0)
    assert first.action == "opened" and first.notified
    for i, host in enumerate(HOSTS[1:], 1):  # the others within the window of the last
        clock.now = T0 + 5 * i
        member, lead = crit(b, host, clock.now)
        assert (member.action, member.notified, member.alert["group"]) == ("joined", False, 1)
        assert lead.alert["id"] == 1 and not lead.notified
    assert sent(b) == [("firing", 1)]  # one page for eleven hosts
    view = b.get(1, clock.now)
    assert view["group_title"] == "check sys: cpu ≥ 98% on 11 hosts"
    assert view["group_hosts"] == HOSTS and view["group_open"] == 11
    assert [a["group"] for a in b.list(clock.now)] == [1] * 11
    assert "joined" in [h["what"] for h in view["history"]]


def test_the_group_resolves_with_its_last_member(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock)
    for i, host in enumerate(HOSTS[:3]):
        crit(b, host, T0 + i)
    (lead_res,) = b.check_changed("sys", "web01", "crit", "up", T0 + 10)  # the lead first
    assert lead_res.action == "resolved" and not lead_res.notified
    (mid,) = b.check_changed("sys", "web02", "crit", "up", T0 + 11)
    assert not mid.notified and sent(b) == [("firing", 1)]
    last, group = b.check_changed("sys", "web03", "crit", "up", T0 + 12, "cpu 12%")
    assert not last.notified
    assert (group.action, group.notified, group.alert["id"]) == ("resolved", True, 1)
    assert sent(b) == [("firing", 1), ("resolved", 1)]
    entry = [e for e in b.outbox.table.all() if e["event"] == "resolved"][0]
    assert summary(entry) == "[fleetdeck] RESOLVED #1 check sys: cpu ≥ 98% on 3 hosts (crit)"
    # what ended the group is its last host's recovery, not the lead's of earlier
    assert entry["alert"]["resolution"] == "the last host, web03 (#3): cpu 12%"
    # the same trouble again: a new group, a new page
    (again,) = crit(b, "web01", T0 + 20)
    assert again.action == "opened" and again.notified and again.alert["group"] == 4


def test_window_cause_and_check_part_groups(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock)
    crit(b, "web01", T0)
    (other_cause,) = crit(b, "web02", T0 + 1, cause="memory ≥ 97%")
    assert other_cause.notified and other_cause.alert["group"] == 2
    (other_check,) = b.check_changed("disk", "web03", "up", "crit", T0 + 2, "d", "crit",
                                     "cpu ≥ 98%")
    assert other_check.notified
    member, _ = crit(b, "web04", T0 + 60)  # 60 s after the last join: still in
    assert member.action == "joined"
    clock.now = T0 + 121
    (late,) = crit(b, "web05", clock.now)  # 61 s after the last join: a group of its own
    assert late.notified and late.alert["group"] == 5
    nobody = book(tmp_path / "off", Clock(), alerting(window=0))
    crit(nobody, "web01", T0)
    (alone,) = crit(nobody, "web02", T0 + 1)
    assert alone.notified and "group" not in alone.alert


def test_ack_the_group_acks_every_member_and_reminders_come_from_the_lead(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock, alerting(repeat=600))
    for i, host in enumerate(HOSTS[:4]):
        crit(b, host, T0 + i)
    clock.now = T0 + 600
    (reminded,) = b.reminders(clock.now)
    assert reminded.alert["id"] == 1
    b.ack(3, "bob")  # one member by hand
    changes = b.ack_group(1, "alice")
    assert sorted(c.alert["id"] for c in changes) == [1, 2, 4]
    assert {a["status"] for a in b.list(clock.now)} == {"acknowledged"}
    with pytest.raises(AlertError, match="nothing firing"):
        b.ack_group(1, "alice")


def test_a_restart_finds_the_open_group(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock)
    crit(b, "web01", T0)
    crit(b, "web02", T0 + 1)
    b.storage.flush()
    b2 = book(tmp_path, clock)  # a new process on the same state
    member, lead = crit(b2, "web03", T0 + 2)
    assert member.action == "joined" and lead.alert["members"] == [1, 2, 3]
    assert sent(b2) == [("firing", 1)]


def test_a_quiet_group_does_not_swallow_an_alert_that_should_page(tmp_path):
    clock = Clock()
    b = book(tmp_path, clock)
    b.silence("web01", "1h", "alice")
    (quiet,) = crit(b, "web01", T0)
    assert not quiet.notified
    (loud,) = crit(b, "web02", T0 + 1)  # not silenced: it pages, leading its own group
    assert loud.notified and loud.alert["group"] == 2
    member, _ = crit(b, "web03", T0 + 2)
    assert member.alert["group"] == 2 and sent(b) == [("firing", 2)]
