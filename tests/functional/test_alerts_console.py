"""The Alerts screen through Pilot over a real engine, and its snapshots (fixed clock)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Input, Label

from core.alerts.book import AlertBook
from core.alerts.config import AlertingConfig, MaintenanceConfig
from core.events import CheckChanged
from core.fleetconfig import Config
from tests.helpers import (
    NOW,
    check_down,
    column,
    console_app,
    job,
    make_config,
    notices,
    pilot_until,
    ready,
)
from tui.app import FleetdeckApp
from tui.screens.alerts import AlertDetailScreen, AlertsScreen, SilenceScreen

PATCH = MaintenanceConfig("patch-db", targets="db2", hosts=("db2",), start=NOW - 600,
                          end=NOW + 3000, reason="kernel update")


def config(alerting: AlertingConfig | None = None) -> Config:
    base = make_config(job("hello", "echo hello"))
    return Config(path=None, hosts=base.hosts, jobs=base.jobs, engine=base.engine,
                  alerting=alerting or AlertingConfig())


class Bells:
    def __init__(self, app: FleetdeckApp, monkeypatch: Any) -> None:
        self.count = 0
        monkeypatch.setattr(app, "bell", self.ring)

    def ring(self) -> None:
        self.count += 1


async def test_alerts_screen_ack_silence_detail_and_bell(tmp_path, monkeypatch):
    app = console_app(config(), tmp_path / "state")
    bells = Bells(app, monkeypatch)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        app.engine.bus.publish(check_down("http", "web1", "HTTP 500 in 31 ms"))
        await pilot_until(pilot, lambda: bells.count == 1, "the bell")
        firing = app.screen.query_one("#firing")
        await pilot_until(pilot, lambda: firing.display and firing.row_count == 1,
                          "the overview's firing alerts")
        assert "check http on web1" in column(firing, 1)

        await pilot.press("7")
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertsScreen), "the alerts screen")
        screen = app.screen
        await pilot_until(pilot, lambda: screen.table.row_count == 1, "the alert row")
        await pilot.press("a")
        manager = app.engine.alerts
        await pilot_until(pilot, lambda: manager.list_alerts()[0]["status"] == "acknowledged",
                          "the ack")
        await pilot_until(pilot, lambda: "◐ acknowledged" in column(screen.table, 1),
                          "the row to show it")

        app.engine.bus.publish(CheckChanged("disk", "web2", "up", "warn", time.time(),
                                            "disk 96% ≥ 95%", "warn", "disk ≥ 95%"))
        await pilot_until(pilot, lambda: screen.table.row_count == 2, "the second alert")
        assert bells.count == 2
        assert column(screen.table, 0) == ["#2", "#1"]  # firing before acknowledged
        screen.table.move_cursor(row=0)
        await pilot.press("s")
        await pilot_until(pilot, lambda: isinstance(app.screen, SilenceScreen), "the prompt")
        prompt = app.screen
        assert prompt.query_one("#target", Input).value == "disk@web2"
        await pilot.press("s", "o", "o", "n", "enter")
        await pilot.pause()
        assert isinstance(app.screen, SilenceScreen)  # a bad duration keeps the prompt
        assert "bad duration 'soon'" in str(prompt.query_one("#error", Label).render())
        prompt.query_one("#duration", Input).value = ""
        await pilot.press("2", "h", "enter")
        await pilot_until(pilot, lambda: app.screen is screen, "the prompt to close")
        await pilot_until(pilot, lambda: manager.get_alert(2)["status"] == "silenced",
                          "the silence")
        await pilot_until(pilot, lambda: "○ silenced" in column(screen.table, 1), "the row")

        # a new alert on the silenced check@host: recorded, shown, but no bell
        app.engine.bus.publish(CheckChanged("disk", "web2", "down", "up", time.time()))
        app.engine.bus.publish(check_down("disk", "web2", "again"))
        await pilot_until(pilot, lambda: any(a["id"] == 3 for a in manager.list_alerts()),
                          "alert 3")
        # on screen: the batch of events that had it went by the bell (which kept still)
        await pilot_until(pilot, lambda: "#3" in column(screen.table, 0), "alert 3's row")
        assert bells.count == 2

        screen.table.move_cursor(row=column(screen.table, 0).index("#1"))
        await pilot.press("enter")
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the detail")
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(app.screen._body())  # noqa: SLF001
        body = console.export_text()
        assert "check http on web1" in body and "History" in body
        assert "acknowledged" in body
        await pilot.press("escape")
        assert app.screen is screen

        await pilot.press("colon", *"ack 9", "enter")
        await pilot_until(pilot, lambda: "no alert #9" in notices(app), "the :ack error")

        # the disk on web2 is fixed early: the silence ends, alert 3 rings as it notifies
        await pilot.press("colon", *"unsilence disk@web2", "enter")
        await pilot_until(pilot, lambda: "silence on disk@web2 ended" in notices(app),
                          "the :unsilence notice")
        await pilot_until(pilot, lambda: manager.get_alert(3)["status"] == "firing",
                          "alert 3 firing again")
        await pilot_until(pilot, lambda: bells.count == 3, "the bell for what it held")
        assert manager.list_silences() == []


def seed_down(state: Path, clock: Callable[[], float]) -> None:
    """One firing alert, as a failed http probe of web1 left it before the console."""
    book = AlertBook(state, None, clock)
    book.check_changed("http", "web1", "up", "down", clock(), "HTTP 500")
    book.close()


async def test_read_only_console_cannot_ack_or_silence(tmp_path):
    state = tmp_path / "state"
    seed_down(state, time.time)
    app = console_app(config(), state, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await pilot.press("7")
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertsScreen)
                          and app.screen.table.row_count == 1, "the alert row")
        await pilot.press("a")
        await pilot.press("s")
        await pilot.pause()
        assert not isinstance(app.screen, SilenceScreen)
        assert "read-only console: cannot acknowledge alerts" in notices(app)
        assert "read-only console: cannot silence alerts" in notices(app)
        assert app.engine.alerts.list_alerts()[0]["status"] == "firing"


# ------------------------------------------------------------------------ snapshots ---
def seeded(tmp_path: Path) -> FleetdeckApp:
    alerting = AlertingConfig(maintenance={"patch-db": PATCH})
    state = tmp_path / "state"
    clock = {"now": NOW - 3 * 3600}
    book = AlertBook(state, alerting, lambda: clock["now"])

    def at(minutes_ago: float) -> float:
        clock["now"] = NOW - minutes_ago * 60
        return clock["now"]

    book.check_changed("http-api", "web01", "up", "down", at(95), "HTTP 503 in 12 ms")
    book.check_changed("http-api", "web01", "down", "up", at(80), "HTTP 200 in 9 ms")
    book.check_changed("http-api", "web01", "up", "down", at(42), "HTTP 500 in 31 ms")
    book.check_changed("disk", "db1", "pending", "warn", at(30), "disk 96% ≥ 95%", "warn",
                       "disk ≥ 95%")
    book.ack(3, "alice")  # #1 was http-api's first alert (resolved), #2 its second
    book.rule_changed("oom-killer", "app-logs", True, at(12), "4 matches in 5m")
    book.check_changed("mysql", "db2", "up", "down", at(8), "tcp 10.0.0.2:3306: connection refused")
    book.check_changed("ssh", "web07", "up", "down", at(3), "timed out after 10s")
    book.silence("web07", "2h", "bob")
    book.run_finished({"id": 41, "job": "backup-db", "host": "local", "state": "failed",
                       "reason": "exit code 23", "finished_at": at(1)}, ("failed",))
    book.close()
    return console_app(config(alerting), state, clock=lambda: NOW)


def before(shown: Any, *keys: str):
    async def run_before(pilot) -> None:
        app = await ready(pilot)
        app._refresh_screen()  # noqa: SLF001
        if keys:
            await pilot.press(*keys)
        await pilot_until(pilot, lambda: shown(app.screen), "the screen to show the alerts")
        await pilot.pause()

    return run_before


def table_filled(cls: type, table: str) -> Any:
    return lambda screen: isinstance(screen, cls) and screen.query_one(table).row_count > 0


@pytest.mark.parametrize("screen, keys", [
    ("alerts", ("7",)),
    ("detail", ("7", "j", "j", "enter")),  # #2: http-api, opened once before
    ("overview", ()),
])
def test_alerts_snapshot(snap_compare, tmp_path, utc, screen, keys):
    from tui.screens.overview import OverviewScreen

    shown = {"alerts": table_filled(AlertsScreen, "#table"),
             "detail": lambda s: isinstance(s, AlertDetailScreen),
             "overview": table_filled(OverviewScreen, "#firing")}[screen]
    assert snap_compare(seeded(tmp_path), terminal_size=(100, 30),
                        run_before=before(shown, *keys))


async def test_every_screen_counts_firing_alerts_in_its_status_bar(tmp_path):
    from tui.widgets.common import StatusBar

    app = console_app(config(), tmp_path / "state")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await pilot.press("2")  # the Jobs screen knows nothing of alerts itself
        await pilot.pause()
        bar = app.screen.query_one(StatusBar)
        assert "firing" not in str(bar.render())
        app.engine.bus.publish(check_down("http", "web1"))
        await pilot_until(pilot, lambda: "1 alert firing" in str(bar.render()), "the count")
        app.engine.bus.publish(CheckChanged("http", "web1", "down", "up", time.time()))
        await pilot_until(pilot, lambda: "firing" not in str(bar.render()), "the count to go")


async def test_a_console_that_runs_the_fleet_resolves_alerts_of_checks_gone(tmp_path):
    """A check removed from the config while nothing ran: its alert stayed firing for good
    when the console (not a daemon) was the next engine; it resolves there too."""
    state = tmp_path / "state"
    seed_down(state, time.time)
    app = console_app(config(), state, scheduling=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await pilot_until(pilot, lambda: app.engine.list_alerts() == [], "the alert resolved")
        (alert,) = app.engine.list_alerts(include_resolved=True)
        assert alert["history"][-1]["detail"] == "the check is no longer in the config"


async def test_a_young_alerts_age_moves_on_by_the_second(tmp_path):
    """OPENED reads "5.0s ago", then "8.0s ago" three seconds later, with nothing else
    happening (it stood still for 30 s); an old one is redrawn every 30 s."""
    state = tmp_path / "state"
    clock = [1_900_000_000.0]
    seed_down(state, lambda: clock[0])
    clock[0] += 5
    app = console_app(config(), state, clock=lambda: clock[0])
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await pilot.press("7")
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertsScreen)
                          and app.screen.table.row_count == 1, "the alert row")

        def opened() -> str:
            return str(app.screen.table.get_row_at(0)[4])

        await pilot_until(pilot, lambda: opened() == "5.0s ago", "the first age")
        clock[0] += 3
        # by the next second's tick: well within 20 s however busy (the old redraw: 30 s)
        await pilot_until(pilot, lambda: opened() == "8.0s ago", "three seconds later",
                          timeout=20)
