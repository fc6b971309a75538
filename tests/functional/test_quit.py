"""Quitting never fails runs: with runs in flight the console asks (wait for them,
cancel them as the person, or stay); with none, or attached to a daemon, it quits at
once. Stopping on purpose records `cancelled`, never a failure."""

from __future__ import annotations

from core.store import Store
from tests.helpers import console_app, job, make_config, pilot_until, ready
from tui.quit import QuitScreen


def config(tmp_path):
    gate = tmp_path / "gate"
    return make_config(
        job("long", f"echo up; while [ ! -e {gate} ]; do sleep 0.05; done; echo done"),
        job("quick", "true")), gate


async def start_long(pilot, app) -> int:
    (run,) = await app.engine.run_job("long", actor=app.actor)
    await pilot_until(pilot, lambda: app.engine.in_flight()["running"] == 1, "it runs")
    return run["id"]


def final(state_dir, run_id):
    store = Store.open(state_dir, read_only=True)
    try:
        run = store.get_run(run_id)
        return run.state, run.reason
    finally:
        store.close()


async def test_q_with_nothing_in_flight_quits_at_once(state_dir, tmp_path):
    cfg, _gate = config(tmp_path)
    app = console_app(cfg, state_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await pilot_until(pilot, lambda: not app.engine_ready, "the engine stopped")
    assert app.return_code == 0


async def test_q_on_a_drill_down_goes_back_and_the_bar_still_says_how_to_quit(
        state_dir, tmp_path):
    """A run's output is a pager: `q` leaves it, as in less and tig, and does not end the
    console; on one of the nine lists `q` quits."""
    from tui.screens.jobs import JobsScreen
    from tui.screens.run_log import RunLogScreen
    from tui.widgets.keybar import KeyBar

    cfg, _gate = config(tmp_path)
    app = console_app(cfg, state_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        (run,) = await app.engine.run_job("quick", actor=app.actor)
        await pilot.press("2")
        app.open_run(run["id"])

        def bar() -> str:
            return " ".join(str(b.render()) for b in app.screen.query(KeyBar))

        await pilot_until(pilot, lambda: isinstance(app.screen, RunLogScreen)
                          and "esc Back" in bar(), "the output, its key bar drawn")
        assert "^q Quit" in bar()
        await pilot.press("q")
        await pilot_until(pilot, lambda: isinstance(app.screen, JobsScreen), "back on Jobs")
        assert app.engine_ready and app.return_code is None
        await pilot_until(pilot, lambda: " q Quit" in bar(), "q quits from the list")
        await pilot.press("q")
        await pilot_until(pilot, lambda: not app.engine_ready, "the engine stopped")
    assert app.return_code == 0


async def test_cancel_records_the_person_and_quits(state_dir, tmp_path):
    cfg, _gate = config(tmp_path)
    app = console_app(cfg, state_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        run_id = await start_long(pilot, app)
        await pilot.press("q")
        await pilot_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the question")
        assert app.engine.in_flight() == {"running": 1, "queued": 0}
        # no hand-off without the fork at launch (tui/handoff.py): `d` is not offered
        offered = " ".join(str(label.render()) for label in app.screen.query("Label"))
        assert "cancel them now" in offered and "background daemon" not in offered
        await pilot.press("d")
        assert isinstance(app.screen, QuitScreen) and app.engine_ready
        await pilot.press("c")
        await pilot_until(pilot, lambda: not app.engine_ready, "the engine stopped")
    assert app.return_code == 0
    state, reason = final(state_dir, run_id)
    assert state == "cancelled" and reason.startswith("cancelled by ")
    assert reason.endswith("when the console quit")


async def test_wait_lets_the_run_finish_then_quits(state_dir, tmp_path):
    cfg, gate = config(tmp_path)
    app = console_app(cfg, state_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        run_id = await start_long(pilot, app)
        await pilot.press("q")
        await pilot_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the question")
        await pilot.press("w")
        await pilot_until(pilot, lambda: not isinstance(app.screen, QuitScreen), "closed")
        assert app.engine_ready  # still waiting: the run goes on
        # q again asks again, saying it is waiting; Esc goes on waiting
        await pilot.press("q")
        await pilot_until(pilot, lambda: isinstance(app.screen, QuitScreen), "asked again")
        assert app.screen.waiting
        await pilot.press("escape")
        gate.touch()
        await pilot_until(pilot, lambda: not app.engine_ready, "quit once the run ended")
    assert final(state_dir, run_id) == ("succeeded", "")


async def test_escape_stays_and_the_run_goes_on(state_dir, tmp_path):
    cfg, gate = config(tmp_path)
    app = console_app(cfg, state_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        run_id = await start_long(pilot, app)
        await pilot.press("q")
        await pilot_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the question")
        await pilot.press("escape")
        await pilot_until(pilot, lambda: not isinstance(app.screen, QuitScreen), "closed")
        gate.touch()
        await pilot_until(pilot, lambda: not any(app.engine.in_flight().values()),
                          "the run ended")
        assert app.engine_ready
        await pilot.press("q")  # nothing in flight now: quits at once
        await pilot_until(pilot, lambda: not app.engine_ready, "the engine stopped")
    assert final(state_dir, run_id)[0] == "succeeded"
