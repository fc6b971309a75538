"""Alert groups from real check results: five hosts whose port refuses connections are
one group with one notification, resolved as one when a listener opens on it; and the
Alerts screen through Pilot: a group is one row, Enter and `+` show its members, `a`
acknowledges them all."""

from __future__ import annotations

import socket
import time
from typing import Any

from textual.widgets import Input

from core.alerts.config import AlertingConfig, NotifierConfig
from core.events import CheckChanged
from core.fleetconfig import Config
from core.health.config import CheckSpec
from core.jobs.config import EngineSettings
from core.remote.config import Host
from tests.helpers import (
    check_down,
    column,
    console_app,
    job,
    make_config,
    notices,
    pilot_until,
    ready,
    until_async,
)
from tui.screens.alerts import AlertDetailScreen, AlertsScreen, SilenceScreen

HOSTS = [f"app{i}" for i in range(1, 6)]
HOOK = AlertingConfig(notifiers={"hook": NotifierConfig("hook", "webhook",
                                                        url="http://127.0.0.1:1/")})


class Bells:
    """Counts the console's bell."""

    def __init__(self, app: Any, monkeypatch: Any) -> None:
        self.count = 0
        monkeypatch.setattr(app, "bell", self.ring)

    def ring(self) -> None:
        self.count += 1


def config(alerting: AlertingConfig) -> Config:
    base = make_config(job("hello", "echo hello"))
    return Config(path=None, hosts=base.hosts, jobs=base.jobs, engine=base.engine,
                  alerting=alerting)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_hosts_refusing_together_are_one_group_and_one_notification(start_engine):
    from core.services import attach_alerts, attach_health

    port = closed_port()
    spec = CheckSpec("app", "tcp", targets="app*", port=port, interval=0.2, timeout=2.0,
                     fail=(2, 2), recover=(1, 1))
    hosts = {"local": Host("local"), **{h: Host(h, address="127.0.0.1") for h in HOSTS}}
    cfg = Config(path=None, hosts=hosts, jobs={}, engine=EngineSettings(),
                 checks={"app": spec}, alerting=HOOK)
    engine, _ = await start_engine(cfg, scheduling=False, before_start=lambda e: (
        attach_alerts(e, deliver=False), attach_health(e)))
    book = engine.alerts.book

    await until_async(lambda: len(engine.alerts.list_alerts()) == 5, "five alerts")
    alerts = engine.alerts.list_alerts()
    lead = min(a["id"] for a in alerts)
    assert {a["group"] for a in alerts} == {lead}
    assert {a["cause"] for a in alerts} == {"connection refused"}
    assert [(e["event"], e["alert_id"]) for e in book.outbox.pending()] == [("firing", lead)]
    group = engine.alerts.get_alert(lead)
    assert group["group_title"] == "check app: connection refused on 5 hosts"
    assert sorted(group["group_hosts"]) == HOSTS

    with socket.socket() as listener:  # the service comes back on every host at once
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        await until_async(lambda: not engine.alerts.list_alerts(), "every alert to resolve")
        assert [(e["event"], e["alert_id"]) for e in book.outbox.pending()] == [
            ("firing", lead), ("resolved", lead)]


def down(target: str) -> CheckChanged:
    return check_down("system", target, "cpu 100% ≥ 98%", new="crit", cause="cpu ≥ 98%")


async def test_alerts_screen_expands_and_acks_a_group(tmp_path, monkeypatch):
    app = console_app(config(HOOK), tmp_path / "state")
    bells = Bells(app, monkeypatch)
    async with app.run_test(size=(140, 36)) as pilot:
        await ready(pilot)
        manager = app.engine.alerts
        app.engine.bus.publish(down("web01"))  # the group opens: the bell
        await pilot_until(pilot, lambda: bells.count == 1, "the bell")
        app.engine.bus.publish(down("web02"))
        app.engine.bus.publish(down("web03"))
        await pilot_until(pilot, lambda: len(manager.list_alerts()) == 3, "the members")
        await pilot.press("7")
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertsScreen), "the screen")
        screen = app.screen
        await pilot_until(pilot, lambda: screen.table.row_count == 1, "one row: the group")
        app.engine.bus.publish(CheckChanged("http", "db1", "up", "down", time.time(),
                                            "tcp 10.0.0.9:80: connection refused", "crit",
                                            "connection refused"))
        await pilot_until(pilot, lambda: screen.table.row_count == 2, "a group and an alert")
        assert bells.count == 2  # the group's opening and db1: members joining ring nothing
        whats = column(screen.table, 2)
        assert "check system: cpu ≥ 98% on 3 hosts" in whats
        row = whats.index("check system: cpu ≥ 98% on 3 hosts")
        assert column(screen.table, 0)[row] == "▸ #1"
        assert column(screen.table, 5)[row] == "web01, web02, web03"

        screen.table.move_cursor(row=row)
        await pilot.press("enter")  # Enter on a group shows its members
        await pilot_until(pilot, lambda: screen.table.row_count == 5, "the members")
        ids = column(screen.table, 0)
        assert ids[row:row + 4] == ["▾ #1", "  └ #1", "  └ #2", "  └ #3"]
        await pilot.press("plus")  # and `+` hides them again
        await pilot_until(pilot, lambda: screen.table.row_count == 2, "the group folded")
        await pilot.press("plus")
        await pilot_until(pilot, lambda: screen.table.row_count == 5, "unfolded")

        screen.table.move_cursor(row=column(screen.table, 0).index("▾ #1"))
        await pilot.press("a")  # ack the group: every member
        await pilot_until(pilot, lambda: sum(a["status"] == "acknowledged"
                                             for a in manager.list_alerts()) == 3, "the ack")
        assert "alert group #1: 3 alerts acknowledged" in notices(app)
        assert {a["target"]: a["status"] for a in manager.list_alerts()}["db1"] == "firing"
        await pilot_until(pilot, lambda: column(screen.table, 1).count("◐ acknowledged") == 4,
                          "the group and its members shown acknowledged")

        screen.table.move_cursor(row=column(screen.table, 0).index("  └ #2"))
        await pilot.press("enter")  # Enter on a member shows that alert
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "detail")
        assert app.screen.alert["target"] == "web02" and app.screen.alert["group"] == 1

        await pilot.press("escape")
        await pilot_until(pilot, lambda: app.screen is screen, "back on the list")
        screen.table.move_cursor(row=column(screen.table, 0).index("▾ #1"))
        await pilot.press("s")  # silence the group: its members (it did nothing)
        await pilot_until(pilot, lambda: isinstance(app.screen, SilenceScreen), "the dialog")
        assert app.screen.query_one("#duration", Input).value == "2h"  # a real default
        assert app.screen.target == "system@web01, system@web02, system@web03"
        await pilot.press("enter")
        await pilot_until(pilot, lambda: app.screen is screen,
                          lambda: f"the dialog to close: {app.screen.query_one('#error').render()}")
        await pilot_until(pilot, lambda: all(f"silenced system@web0{i} for 2h" in
                                             " ".join(notices(app)) for i in (1, 2, 3)),
                          "the three members silenced")
