"""The console's half of "a preview before any change": a job's next fires and the next
DST change in the Jobs screen's detail, the reload confirmation with the fires a new
config adds and removes, and the missed-run review from the Overview."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.widgets import Static

from tests.conftest import job, make_config
from tests.functional.test_console import ready, until
from tui.app import FleetdeckApp
from tui.screens.jobs import JobsScreen

SPRING = datetime(2027, 3, 27, 12, 0, tzinfo=UTC).timestamp()  # Berlin springs forward the 28th


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def berlin_app(state_dir: Path) -> FleetdeckApp:
    config = make_config(
        job("backup", "true", schedule="30 2 * * *", timezone="Europe/Berlin"),
        job("deploy", "true"),
    )
    return FleetdeckApp(config, state_dir, scheduling=False, clock=lambda: SPRING,
                        theme="dark")


def detail(app: FleetdeckApp) -> str:
    return str(app.screen.query_one("#job-detail", Static).render())


async def test_the_job_detail_shows_next_fires_and_the_dst_change(state_dir) -> None:
    app = berlin_app(state_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        assert isinstance(app.screen, JobsScreen)
        await until(pilot, lambda: "next fires" in detail(app), "the backup job's detail")
        text = detail(app)
        assert "backup · 30 2 * * * · Europe/Berlin" in text and "dst=vixie" in text
        # the night of the change: 02:30 does not exist, vixie fires at the change
        assert "2027-03-28 Sun 03:00 CEST (+02:00)" in text
        for day in ("29 Mon", "30 Tue", "31 Wed"):
            d, wd = day.split()
            assert f"2027-03-{d} {wd} 02:30 CEST (+02:00)" in text
        assert "2027-04-01 Thu 02:30 CEST (+02:00)" in text
        assert "-- 2027-03-28 02:00 CET -> CEST (+1h)" in text
        assert ("next DST change: 2027-03-28 02:00 CET -> CEST (+1h): 02:30 does not exist "
                "that night (vixie fixed time: fires at 03:00 CEST)") in text
        await pilot.press("j")  # an on-demand job has no fires
        await until(pilot, lambda: "deploy" in detail(app), "the deploy job's detail")
        assert "on demand" in detail(app)


def test_the_job_detail_snapshot(snap_compare, tmp_path, utc) -> None:
    app = berlin_app(tmp_path / "state")

    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("2")
        await until(pilot, lambda: "next fires" in detail(app), "the detail")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
