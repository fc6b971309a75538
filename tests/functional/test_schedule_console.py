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
from tests.helpers import pilot_until as until
from tests.helpers import ready
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


async def test_a_schedule_under_a_minute_shows_its_fires_with_seconds(state_dir) -> None:
    config = make_config(job("pulse", "true", schedule="every 30s", timezone="UTC"))
    app = FleetdeckApp(config, state_dir, scheduling=False, clock=lambda: SPRING + 5,
                       theme="dark")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        await until(pilot, lambda: "next fires" in detail(app), "the pulse job's detail")
        text = detail(app)
        # 19:16, 19:16, 19:17 said nothing; the raw text is not said twice either
        assert "pulse · every 30s · UTC\n" in text and text.count("every 30s") == 1
        fires = [line.split()[2] for line in text.splitlines() if line.startswith("  2027")]
        assert fires == ["12:00:30", "12:01:00", "12:01:30", "12:02:00", "12:02:30"]


def test_the_job_detail_snapshot(snap_compare, tmp_path, utc) -> None:
    app = berlin_app(tmp_path / "state")

    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("2")
        await until(pilot, lambda: "next fires" in detail(app), "the detail")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


# ---------------------------------------------------------------------- reload ----
FIRST = '[jobs.hello]\ncommand = "echo hello"\n'
SECOND = FIRST + ('\n[jobs.nightly]\ncommand = "true"\nschedule = "0 3 * * *"\n'
                  'timezone = "UTC"\n')
BROKEN = FIRST + '\n[jobs.bad]\ncommand = "true"\nschedule = "61 * * * *"\n'


def point(link: Path, target: Path) -> None:
    """Swap what the daemon's config path names. The daemon watches the folder of the
    file the link resolved to when it started, so this edit does not reload it by
    itself: only the console's :reload does."""
    tmp = link.with_suffix(".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


async def test_reload_asks_first_with_the_fires_it_adds(tmp_path: Path) -> None:
    from core.control.attached import AttachedEngine
    from core.control.client import call
    from core.fleetconfig import load_config
    from tests.conftest import cli_env
    from tests.helpers import command, notices, start_daemon, stop_daemon
    from tui.screens.dialogs import ConfirmScreen

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second, broken = tmp_path / "a/fleet.toml", tmp_path / "b/fleet.toml", \
        tmp_path / "b/broken.toml"
    first.write_text(FIRST)
    second.write_text(SECOND)
    broken.write_text(BROKEN)
    cfg = tmp_path / "fleet.toml"
    cfg.symlink_to(first)
    state = tmp_path / "state"
    proc = start_daemon(cfg, state, cli_env(tmp_path))

    async def daemon_jobs() -> list[str]:
        return sorted(j["name"] for j in await call(state, "list_jobs", {}))

    try:
        config = load_config(cfg)
        app = FleetdeckApp(config, state, scheduling=False, theme="dark", clock=lambda: SPRING,
                           engine=AttachedEngine(config, state, proc.pid))
        async with app.run_test(size=(120, 36)) as pilot:
            await ready(pilot)
            point(cfg, broken)  # errors: said, nothing asked, nothing sent
            await command(pilot, ":reload")
            await until(pilot, lambda: any("not reloading" in n for n in notices(app)),
                        "the errors notice", timeout=30)
            assert not isinstance(app.screen, ConfirmScreen)
            said = next(n for n in notices(app) if "not reloading" in n)
            assert "1 error" in said and "bad" in said

            point(cfg, second)
            await command(pilot, ":reload")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question",
                        timeout=30)
            dialog = app.screen
            assert dialog.question == f"Reload {cfg}?"
            assert "jobs: 1 added (nightly), 0 removed, 0 changed" in dialog.detail
            assert "+1 fire, -0 fires in the next 24h" in dialog.detail
            assert "+ nightly  2027-03-28 03:00 UTC" in dialog.detail
            await pilot.press("n")
            await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "closed")
            await pilot.pause(0.5)
            assert await daemon_jobs() == ["hello"]

            await command(pilot, ":reload")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked again",
                        timeout=30)
            await pilot.press("y")
            await until(pilot, lambda: any(n.startswith("reloaded:") for n in notices(app)),
                        "the reload", timeout=30)
            assert await daemon_jobs() == ["hello", "nightly"]
    finally:
        stop_daemon(proc)


async def test_a_console_without_a_daemon_cannot_reload(state_dir) -> None:
    from tests.helpers import command, notices
    from tui.screens.dialogs import ConfirmScreen

    app = berlin_app(state_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await command(pilot, ":reload")
        await until(pilot, lambda: any("only a daemon" in n for n in notices(app)),
                    "the refusal")
        assert not isinstance(app.screen, ConfirmScreen)


# ---------------------------------------------------------------------- missed ----
DOWN_NOW = datetime(2027, 3, 27, 12, 0, 30, tzinfo=UTC).timestamp()  # half-way in a minute


def seed_downtime(state_dir: Path) -> None:
    """Down for five minutes before DOWN_NOW: five occurrences of each every-minute job
    missed (as tests/functional/test_engine.py's misfire test seeds it)."""
    from core.store import Store

    last = DOWN_NOW - 30 - 300
    store = Store.open(state_dir)
    for name in ("catchup", "skipper"):
        store.update_job_state(name, first_seen=last, last_occurrence=last)
    store.commit()
    store.close()


async def test_missed_runs_from_the_overview(state_dir, utc) -> None:
    from tests.helpers import column, command
    from tui.screens.missed import MissedScreen
    from tui.screens.overview import OverviewScreen
    from tui.screens.run_log import RunLogScreen

    seed_downtime(state_dir)
    config = make_config(
        job("catchup", "true", schedule="every 1m", misfire="run_once", misfire_grace=1),
        job("skipper", "true", schedule="every 1m", misfire="skip", misfire_grace=1),
    )
    app = FleetdeckApp(config, state_dir, scheduling=True, clock=lambda: DOWN_NOW,
                       theme="dark")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        engine = app.engine

        def settled() -> bool:
            runs = engine.list_runs(limit=None)
            return len(runs) == 10 and not engine.queue()

        await until(pilot, settled, "the misfire policies' runs", timeout=30)
        assert isinstance(app.screen, OverviewScreen)
        app._refresh_screen()  # noqa: SLF001
        hint = app.screen.query_one("#missed-hint", Static)
        await until(pilot, lambda: hint.display and "10 occurrences" in str(hint.render()),
                    "the overview's hint")
        assert "1 ran late, 9 skipped — m to review" in str(hint.render())

        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MissedScreen), "the missed screen")
        table = app.screen.query_one("#table")
        await until(pilot, lambda: table.row_count == 10, "the ten occurrences")
        whats = column(table, 2)
        assert whats.count("ran late") == 1
        assert whats.count("skipped (misfire=run_once)") == 4
        assert whats.count("skipped (misfire=skip)") == 5
        labels = [str(c.label) for c in table.columns.values()]
        assert labels == ["JOB", "OCCURRENCE", "WHAT", "RUN"]
        late = whats.index("ran late")
        row = [str(c) for c in table.get_row_at(late)]
        ran = next(r for r in engine.list_runs(limit=None) if r["trigger"] == "misfire"
                   and r["state"] != "skipped")
        assert row[0] == "catchup"
        assert row[1] == "2027-03-27 12:00:00 UTC"  # run_once: the latest occurrence
        assert row[3] == f"#{ran['id']} ✓ succeeded"
        occurrences = sorted(column(table, 1))
        assert occurrences[0] == "2027-03-27 11:56:00 UTC"

        table.move_cursor(row=late)
        await pilot.press("enter")  # opens the run
        await until(pilot, lambda: isinstance(app.screen, RunLogScreen), "the run's output")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MissedScreen), "back")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview")

        await command(pilot, ":missed")  # the same screen as a command
        await until(pilot, lambda: isinstance(app.screen, MissedScreen), ":missed")
