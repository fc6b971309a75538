"""Marks and bulk actions: space marks a row, `*` every visible row, Esc clears them;
ack, silence, run, pause and cancel apply to the marked set."""

from __future__ import annotations

from tests.helpers import (
    check_down,
    column,
    console_app,
    job,
    make_config,
    pilot_until,
    ready,
)
from tui.screens.alerts import AlertsScreen, SilenceScreen
from tui.screens.dialogs import ConfirmScreen
from tui.screens.queue import QueueScreen


async def test_mark_two_alerts_and_ack_them_at_once(tmp_path):
    cfg = make_config(job("hello", "true"))
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        # three alerts of different checks: no group joins them
        for check, host in (("http", "web1"), ("disk", "db1"), ("ntp", "cache1")):
            app.engine.bus.publish(check_down(check, host, f"{check} failed"))
        manager = app.engine.alerts
        await pilot_until(pilot, lambda: len(manager.list_alerts()) == 3, "three alerts")
        await pilot.press("7")
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertsScreen), "alerts")
        screen = app.screen
        await pilot_until(pilot, lambda: screen.table.row_count == 3, "three rows")
        await pilot.press("space", "space")  # the first two, the cursor moving on
        assert len(screen.marked) == 2
        assert sum(str(c).startswith("◆") for c in column(screen.table, 0)) == 2
        await pilot.press("a")
        await pilot_until(pilot, lambda: sorted(a["status"] for a in manager.list_alerts())
                          == ["acknowledged", "acknowledged", "firing"], "two acked")
        assert not screen.marked  # done: the marks go

        await pilot.press("asterisk")  # every visible row
        assert len(screen.marked) == 3
        await pilot.press("escape")  # Esc clears marks first
        assert not screen.marked and isinstance(app.screen, AlertsScreen)
        await pilot.press("asterisk", "s")
        await pilot_until(pilot, lambda: isinstance(app.screen, SilenceScreen), "asked")


async def test_mark_all_runs_in_the_queue_and_cancel_with_one_question(tmp_path):
    gate = tmp_path / "gate"
    cfg = make_config(job("a", f"while [ ! -e {gate} ]; do sleep 0.05; done"),
                      job("b", f"while [ ! -e {gate} ]; do sleep 0.05; done"),
                      job("c", "true"))
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        for name in ("a", "b"):
            await app.engine.run_job(name, actor=app.actor)
        await pilot_until(pilot, lambda: app.engine.in_flight()["running"] == 2, "running")
        await pilot.press("3")
        await pilot_until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue")
        screen = app.screen
        await pilot_until(pilot, lambda: screen.table.row_count == 2, "two rows")
        await pilot.press("asterisk", "c")
        await pilot_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "one question")
        assert app.screen.question == "Cancel 2 runs?"
        await pilot.press("y")
        await pilot_until(pilot, lambda: not any(app.engine.in_flight().values()),
                          "both cancelled")
        states = sorted(r["state"] for r in app.engine.list_runs(limit=10))
        assert states == ["cancelled", "cancelled"]


async def test_mark_jobs_and_run_them(tmp_path):
    cfg = make_config(job("a", "true"), job("b", "true"), job("c", "true"))
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        screen = app.screen
        await pilot_until(pilot, lambda: screen.table.row_count == 3, "three jobs")
        await pilot.press("space", "j", "space", "r")  # a and c
        await pilot_until(pilot, lambda: len(app.engine.list_runs(limit=10)) == 2, "two runs")
        assert sorted(r["job"] for r in app.engine.list_runs(limit=10)) == ["a", "c"]
