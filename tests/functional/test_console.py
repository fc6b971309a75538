"""The console through Pilot: a real app over a real engine running real local jobs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from core.fleetconfig import Config
from tests.helpers import (
    WAIT,
    column,
    command,
    console_app,
    job,
    keys,
    make_config,
    notices,
    pilot_until,
    ready,
    rows,
)
from tui.app import FleetdeckApp
from tui.screens.dialogs import CommandLineScreen, ConfirmScreen, HelpScreen
from tui.screens.jobs import JobsScreen
from tui.screens.overview import OverviewScreen
from tui.screens.queue import QueueScreen
from tui.screens.run_log import RunLogScreen
from tui.screens.runs import RunsScreen
from tui.widgets.keybar import KeyBar


def console_config(**keys: str) -> Config:
    cfg = make_config(
        job("hello", "echo hello world; echo 'ERROR: something odd'"),
        job("fail", "echo about to fail; exit 3"),
        job("slow", "echo slow start; sleep 30", timeout=0.5),
        job("wait", "echo waiting; sleep 60"),
        job("tick", "true", schedule="*/5 * * * *"),
    )
    if keys:
        cfg = Config(path=cfg.path, hosts=cfg.hosts, jobs=cfg.jobs, defaults=cfg.defaults,
                     engine=cfg.engine, keys=keys)
    return cfg


def palette_offers(app: FleetdeckApp, title: str) -> bool:
    """The command palette is open, done searching, with `title` first and highlighted."""
    from textual.command import CommandList, CommandPalette

    palette = app.screen
    if not isinstance(palette, CommandPalette):
        return False
    if any(w.node is palette and not w.is_finished for w in app.workers):
        return False  # still searching
    options = palette.query_one(CommandList)
    return (options.option_count > 0 and options.highlighted == 0
            and str(options.get_option_at_index(0).prompt).startswith(title))


def run_states(app: FleetdeckApp, name: str) -> list[str]:
    return [r["state"] for r in app.engine.list_runs(job=name)]


@pytest.fixture
def make_app(state_dir: Path):
    def make(**kw: Any) -> FleetdeckApp:
        return console_app(kw.pop("config", None) or console_config(), state_dir, **kw)

    return make


async def test_number_keys_switch_screens(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert isinstance(app.screen, OverviewScreen)
        for key, cls in (("2", JobsScreen), ("3", QueueScreen), ("4", RunsScreen),
                         ("1", OverviewScreen)):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, cls)
        from tui.screens.alerts import AlertsScreen
        from tui.screens.fanout import FanOutScreen
        from tui.screens.hosts import HostsScreen

        for key, cls in (("5", HostsScreen), ("6", FanOutScreen), ("7", AlertsScreen)):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, cls)
        status = str(app.screen.query_one("#status", Static).render())
        assert "standalone" in status and "0 running" in status


async def test_jobs_screen_run_pause_resume_and_cancel_with_confirmation(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert column(table, 0) == ["hello", "fail", "slow", "wait", "tick"]
        assert "every 5 minutes" in rows(table)[4][1]
        # r: run now the selected job (the first: hello)
        await pilot.press("r")
        await pilot_until(pilot, lambda: run_states(app, "hello") == ["succeeded"], "hello ran")
        await pilot_until(pilot, lambda: "✓ succeeded" in rows(table)[0][4], "last result shown")
        # p: pause the schedule of tick, then resume it
        await pilot.press("j", "j", "j", "j")
        await pilot.press("p")
        await pilot_until(pilot, lambda: "paused" in rows(table)[4][7], "paused shown")
        assert app.engine.get_job("tick")["paused"]
        await pilot.press("p")
        await pilot_until(pilot, lambda: "enabled" in rows(table)[4][7], "resumed shown")
        # c: cancel the running run of `wait`, after saying yes
        await pilot.press("k")
        await pilot.press("r")
        await pilot_until(pilot, lambda: run_states(app, "wait") == ["running"], "wait running")
        await pilot_until(pilot, lambda: "running" in rows(table)[3][7], "running shown")
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert run_states(app, "wait") == ["running"]
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("y")
        await pilot_until(pilot, lambda: run_states(app, "wait") == ["cancelled"], "cancelled")


async def test_failures_and_timeouts_reach_the_overview(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await command(pilot, ":run fail")
        await command(pilot, ":run slow")
        await pilot_until(pilot, lambda: run_states(app, "fail") == ["failed"], "fail failed")
        await pilot_until(pilot, lambda: run_states(app, "slow") == ["timed_out"], "slow timed out")
        await pilot.press("1")
        failing = app.screen.query_one("#failing", DataTable)
        await pilot_until(pilot, lambda: len(rows(failing)) == 2, "two failing rows")
        text = " ".join(" ".join(r) for r in rows(failing))
        assert "exit code 3" in text and "timed out after 0.5s" in text
        bad_jobs = app.screen.query_one("#bad-jobs", DataTable)
        assert sorted(column(bad_jobs, 0)) == ["fail", "slow"]
        status = str(app.screen.query_one("#status", Static).render())
        assert "2 failed" in status
        # Enter on a failing run opens its output
        failing.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RunLogScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_colon_commands(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await command(pilot, ":jobs")
        assert isinstance(app.screen, JobsScreen)
        await command(pilot, ":queue")
        assert isinstance(app.screen, QueueScreen)
        await command(pilot, ":run hello")
        await pilot_until(pilot, lambda: run_states(app, "hello") == ["succeeded"], "hello ran")
        from core.audit import AuditLog

        (rec,) = AuditLog(app.engine.state_dir).read()  # a person's action, on the record
        assert (rec["action"], rec["targets"], rec["via"]) == ("run", ["hello"], "console")
        await command(pilot, ":pause tick")
        await pilot_until(pilot, lambda: app.engine.get_job("tick")["paused"], "tick paused")
        await command(pilot, ":resume tick")
        await pilot_until(pilot, lambda: not app.engine.get_job("tick")["paused"], "tick resumed")
        await command(pilot, ":runs hello")
        assert isinstance(app.screen, RunsScreen) and app.screen.job == "hello"
        await command(pilot, ":log 1")
        assert isinstance(app.screen, RunLogScreen) and app.screen.run["id"] == 1
        await pilot.press("escape")
        await command(pilot, ":theme high-contrast")
        assert app.theme == "high-contrast"
        await command(pilot, ":overview")
        assert isinstance(app.screen, OverviewScreen)
        await command(pilot, ":run wait")
        await pilot_until(pilot, lambda: run_states(app, "wait") == ["running"], "wait running")
        run_id = app.engine.list_runs(job="wait")[0]["id"]
        await command(pilot, f":cancel {run_id}")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot_until(pilot, lambda: run_states(app, "wait") == ["cancelled"], "cancelled")
        for bad, message in ((":theme nope", "no theme 'nope'"),
                             (":frobnicate", "unknown command :frobnicate"),
                             (":run", "usage: :run JOB"),
                             (":run nope", "no job named 'nope'"),
                             (":log x", "not a run id: 'x'"),
                             (":cancel 1", "run #1 is not active (it is succeeded)")):
            await command(pilot, bad)
            if isinstance(app.screen, CommandLineScreen):  # said in the prompt line
                shown = str(app.screen.query_one(".prompt--status", Static).render())
                await pilot.press("escape")
            else:  # found out by running it: a notice
                shown = " ".join(notices(app))
            assert message in shown, bad
        from tui.screens.alerts import AlertsScreen
        from tui.screens.fanout import FanOutScreen
        from tui.screens.hosts import HostsScreen

        await command(pilot, ":hosts")
        assert isinstance(app.screen, HostsScreen)
        await command(pilot, ":alerts")
        assert isinstance(app.screen, AlertsScreen)
        await command(pilot, ":fanout local -- echo 'a  b' | wc -c")
        assert isinstance(app.screen, FanOutScreen)
        await pilot.pause()
        assert app.screen.query_one("#pattern").value == "local"
        assert app.screen.query_one("#command").value == "echo 'a  b' | wc -c"
        await pilot.press("escape")  # out of the form: number keys switch screens again
        await command(pilot, ":help")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await command(pilot, ":q")
        await pilot_until(pilot, lambda: not app.engine_ready, "engine stopped by :q")
    assert app.return_code == 0


async def test_runs_screen_filters_and_opens_output(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        for name in ("hello", "fail", "hello"):
            await command(pilot, f":run {name}")
            await pilot_until(pilot, lambda: not app.engine.queue(), "run done")
        await pilot.press("4")
        table = app.screen.query_one(DataTable)
        await pilot_until(pilot, lambda: table.row_count == 3, "three runs")
        await pilot.press("slash", *list("state=failed"))
        await pilot_until(pilot, lambda: column(table, 1) == ["fail"], "only failed")
        await pilot.press("escape")  # clears the filter
        await pilot_until(pilot, lambda: table.row_count == 3, "filter cleared")
        await pilot.press("slash", *list("host=elsewhere"))  # from history, by host
        await pilot_until(pilot, lambda: table.row_count == 0, "none on that host")
        await pilot.press("escape")
        await pilot.press("slash", *list("host=local"))
        await pilot_until(pilot, lambda: table.row_count == 3, "all three on local")
        await pilot.press("escape")
        from tui.screens.runs import _matches  # what a live run event is held against

        run = {"job": "hello", "host": "web1", "state": "running", "queued_at": 1.0}
        assert not _matches(run, {"host": "db1"}) and _matches(run, {"host": "web1"})
        from tui.widgets.common import FilterBar

        bar = app.screen.query_one(FilterBar)
        for typed, says in (("since=abc", "since=abc: bad duration 'abc'"),
                            ("state=done", "state=done: not a run state")):
            await pilot.press("slash", *list(typed))  # read as if absent, it said nothing
            await pilot_until(pilot, lambda s=says: str(bar._status.render()).startswith(s),
                              f"the line to say {says!r}")
            await pilot.press("escape")
        await pilot.press("slash", *list("!hel+o"), "enter")
        await pilot_until(pilot, lambda: column(table, 1) == ["fail"], "inverted regex")
        await pilot.press("escape", "escape")
        await pilot_until(pilot, lambda: table.row_count == 3, "filter cleared again")
        table.focus()
        await pilot.press("G", "enter")  # the oldest: the first hello
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunLogScreen) and screen.run["id"] == 1
        header = str(screen.query_one("#run-header", Static).render())
        assert "hello@local" in header and "succeeded" in header and "exit 0" in header


async def test_help_lists_every_binding_with_its_id(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        ids = column(app.screen.query_one(DataTable), 2)
        for ident in ("jobs.run", "jobs.pause", "jobs.cancel", "table.filter", "table.down",
                      "app.command", "app.help", "app.overview", "jobs.open",
                      "app.quit_ctrl_c"):
            assert ident in ids
        # what a key does here, not what a widget would: Enter opens the job's runs (the
        # table's Select leads there) and ctrl+c quits unless text is selected to copy
        said = {(r[0], r[1]) for r in rows(app.screen.query_one(DataTable))}
        assert ("⏎", "Runs") in said and ("⏎", "Select") not in said
        assert ("^c", "Quit") in said
        keys = app.screen.query_one(DataTable)
        start = keys.cursor_row
        await pilot.press("j", "j")  # the list moves as every table does
        assert keys.cursor_row == start + 2
        await pilot.press("k")
        assert keys.cursor_row == start + 1
        await pilot.press("G")
        assert keys.cursor_row == keys.row_count - 1
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)


async def test_read_only_console_looks_but_does_not_act(make_app):
    app = make_app(read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("2", "r")
        await pilot.pause()
        await command(pilot, ":run hello")
        refusals = ("read-only console: cannot run jobs",
                    ":run is not allowed in a read-only console")
        await pilot_until(pilot, lambda: all(r in " ".join(notices(app)) for r in refusals),
                          "both refusals on screen")
        # had either gone on to run the job, its worker would have queued the run by now
        await asyncio.wait_for(app.workers.wait_for_complete(), WAIT)
        assert app.engine.list_runs() == []
        text = " ".join(notices(app))
        assert "read-only console: cannot run jobs" in text
        assert ":run is not allowed in a read-only console" in text
        assert "read-only" in str(app.screen.query_one("#status", Static).render())
        bar = str(app.screen.query_one(KeyBar).render())
        assert "Filter" in bar and not any(word in bar for word in ("Run now", "Pause",
                                                                     "Cancel run"))
        # nor do the palette and `:help` offer what it would refuse
        from tui.command_palette import entries

        titles = [t for t, _h, _cb in entries(app)]
        assert ":runs hello" in titles and ":jobs" in titles
        assert not [t for t in titles if t.split()[0] in (":run", ":pause", ":resume",
                                                          ":ack", ":reload")]
        await command(pilot, ":help")
        await pilot_until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        listed = column(app.screen.query_one(DataTable), 0)
        assert ":runs" in listed and ":log" in listed
        assert not {":run", ":pause", ":cancel", ":ack"} & set(listed)


async def test_jobs_rows_follow_their_job_and_the_theme(make_app):
    """The Jobs screen keeps a job's cells while the job is unchanged (500 countdowns a
    second); a pause, a run and a theme switch still show at once."""
    from tui.palette import style

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        table = app.screen.query_one(DataTable)
        await pilot_until(pilot, lambda: table.row_count == 5, "the jobs")

        def cell(column: int) -> Any:
            return table.get_row("tick")[column]

        assert str(cell(7)) == "enabled" and str(cell(4)).strip() == "-"
        await command(pilot, ":pause tick")
        await pilot_until(pilot, lambda: str(cell(7)) == "‖ paused", "tick paused")
        await command(pilot, ":run tick")
        await pilot_until(pilot, lambda: "succeeded" in str(cell(4)), "tick's last run")
        dark = cell(2).style
        assert dark == style("muted", app)
        await command(pilot, ":theme light")
        await pilot_until(pilot, lambda: cell(2).style == style("muted", app) != dark,
                          "the RAW column in the light theme's muted")


async def test_keys_are_remappable_by_binding_id(make_app):
    app = make_app(config=console_config(**{"jobs.run": "x", "app.jobs": "J"}))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("J")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        await pilot.press("r")
        await pilot.pause()
        assert app.engine.list_runs() == []
        await pilot.press("x")
        await pilot_until(pilot, lambda: run_states(app, "hello") == ["succeeded"], "x ran it")


async def test_a_key_bound_over_a_default_is_said_not_lost_silently(make_app):
    """`jobs.run = "p"` takes pause's key: Textual keeps one of the two, silently; the
    console says which, once, when the screen is built."""
    app = make_app(config=console_config(**{"jobs.run": "p", "app.quit_q": "q",
                                             "app.help": "question_mark"}))  # defaults
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        await pilot_until(pilot, lambda: isinstance(app.screen, JobsScreen), "jobs shown")
        said = [n for n in notices(app) if n.startswith("[keys]")]
        assert said == ["[keys] p: jobs.run and jobs.pause: one key for both on this "
                        "screen; one of them has no key now"]


async def test_jobs_countdowns_move_on_with_no_event(make_app):
    """NEXT counts down as the clock moves, with nothing happening in the engine: by
    the second when a fire is near, every 30 s otherwise."""
    hour = 3600 * 500_000  # on the hour: every 1h is anchored to the epoch
    clock = [hour + 1800.0]
    app = make_app(config=make_config(job("hourly", "true", schedule="every 1h")),
                   clock=lambda: clock[0])
    async with app.run_test(size=(140, 30)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        await pilot_until(pilot, lambda: isinstance(app.screen, JobsScreen), "jobs shown")
        table = app.screen.query_one(DataTable)

        def next_cell() -> str:
            return rows(table)[0][3] if table.row_count else ""

        await pilot_until(pilot, lambda: "in 30m00s" in next_cell(), "the first countdown")
        clock[0] += 40  # beyond the quiet redraw: the next tick draws it
        await pilot_until(pilot, lambda: "in 29m20s" in next_cell(), "a quiet redraw")
        clock[0] = hour + 3600 - 100  # near: by the second
        await pilot_until(pilot, lambda: "in 1m40s" in next_cell(), "the near countdown")
        clock[0] += 3
        await pilot_until(pilot, lambda: "in 1m37s" in next_cell(), "a second later")


async def test_palette_offers_the_registry_commands(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*keys("run hello"))
        await pilot_until(pilot, lambda: palette_offers(app, ":run hello"),
                          "the palette to offer :run hello first")
        await pilot.press("enter")
        await pilot_until(pilot, lambda: run_states(app, "hello") == ["succeeded"],
                          "palette ran it")


async def test_palette_searches_runs_hosts_and_jobs(make_app):
    """The palette finds the app's data: a run by its job, a host by name; `pause`
    finds the pause of each job rather than a job whose name holds the letters."""
    from tui.command_palette import entries

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await command(pilot, ":run fail")
        await pilot_until(pilot, lambda: run_states(app, "fail") == ["failed"], "it ran")
        titles = [t for t, _h, _cb in entries(app)]
        assert any(t.startswith("run #1 fail@local failed") for t in titles)
        assert "host local" in titles and ":pause hello" in titles
        assert ":resume hello" not in titles  # the one that applies to the job now
        await command(pilot, ":pause hello")
        await pilot_until(pilot, lambda: app.engine.get_job("hello")["paused"], "paused")
        titles = [t for t, _h, _cb in entries(app)]
        assert ":resume hello" in titles and ":pause hello" not in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*keys("run #1"))
        await pilot_until(pilot, lambda: palette_offers(app, "run #1 fail@local"),
                          "the palette to offer the run first")
        await pilot.press("enter")
        from tui.screens.run_log import RunLogScreen

        await pilot_until(pilot, lambda: isinstance(app.screen, RunLogScreen),
                          "the run's output opened")
        assert app.screen.run["id"] == 1


async def test_bad_theme_file_is_a_notice_not_a_crash(make_app, tmp_path, monkeypatch):
    themes = tmp_path / "xdg" / "fleetdeck" / "themes"
    themes.mkdir(parents=True)
    (themes / "broken.toml").write_text('name = "broken"\nprimary = "not-a-colour"\n')
    (themes / "mine.toml").write_text('name = "mine"\nprimary = "#ff00ff"\n')
    # each of these crashed or hung the console
    (themes / "nan.toml").write_text('name = "nan"\nprimary = "#ff00ff"\n'
                                     'luminosity_spread = nan\n')
    (themes / "ansi.toml").write_text('name = "ansi-bogus"\nprimary = "ansi_bogus"\n')
    (themes / "vars.toml").write_text('name = "vars"\nprimary = "#ff00ff"\n'
                                      'variables = { "block-cursor-foreground" = "nope" }\n')
    (themes / "style.toml").write_text('name = "style"\nprimary = "#ff00ff"\nvariables = '
                                       '{ "block-cursor-text-style" = "loud" }\n')
    (themes / "fine.toml").write_text('name = "fine"\nprimary = "#ff00ff"\nvariables = '
                                      '{ "block-cursor-text-style" = "bold underline", '
                                      '"block-cursor-foreground" = "auto 90%", '
                                      '"input-selection-background" = "#81a1c1 35%" }\n')
    os.mkfifo(themes / "fifo.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    app = make_app(theme="mine")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        assert app.theme == "mine"
        said = " ".join(notices(app))
        for what in ("broken.toml: primary: not a colour",
                     "nan.toml: luminosity_spread: expected a number from 0 to 1, got nan",
                     "ansi.toml: primary: not a colour: 'ansi_bogus'",
                     "vars.toml: variables.block-cursor-foreground: not a colour: 'nope'",
                     "style.toml: variables.block-cursor-text-style: not a text style: "
                     "'loud'",
                     "fifo.toml: not a regular file"):
            assert what in said
        assert "fine.toml" not in said
        app.theme = "fine"  # a theme whose variables are Textual's own kind of values
        await pilot.pause()
        assert app.theme == "fine"


async def test_queue_shows_why_a_run_waits(make_app):
    cfg = make_config(job("a", "sleep 30"), job("b", "sleep 30"), max_concurrent_runs=1)
    app = make_app(config=cfg)
    async with app.run_test(size=(140, 40)) as pilot:
        await ready(pilot)
        await pilot.press("3")
        await command(pilot, ":run a")
        await command(pilot, ":run b")
        table = app.screen.query_one(DataTable)
        await pilot_until(pilot, lambda: table.row_count == 2 and "waiting for a free slot"
                          in rows(table)[1][7], "waiting reason")
        assert "running" in rows(table)[0][3]


async def test_a_stray_write_to_stderr_does_not_break_the_console(make_app):
    """A library that prints to stderr while the console runs (Textual captures it)
    must not raise: the app's own timer once overrode Textual's ``_flush(stderr)``."""
    import sys

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        print("a stray line", file=sys.stderr, flush=True)
        print("another", flush=True)
        await pilot.pause()
        await pilot.press("2")
        await pilot_until(pilot, lambda: isinstance(app.screen, JobsScreen), "the Jobs screen")


async def test_a_hidden_runs_screen_takes_a_view_refresh_and_its_runs(make_app):
    """A daemon's files reread (ViewRefreshed, in an attached console) while the Runs
    screen is hidden: it reads its view again when shown, with the run that came meanwhile
    (the refresh has no run of its own; it once crashed the console)."""
    import time

    from core.events import ViewRefreshed

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("4")
        await pilot.pause()
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await pilot.press("1")
        await pilot.pause()
        app.engine.bus.publish(ViewRefreshed(time.time()))
        await app.engine.run_job("hello")
        await pilot_until(pilot, lambda: runs.stale, "the hidden Runs screen to fall behind")
        await pilot.press("4")
        await pilot_until(pilot, lambda: any("hello" in " ".join(r) for r in rows(runs.table)),
                          "the new run on Runs")
        assert app.is_running and app.screen is runs


async def test_a_read_only_console_without_a_daemon_runs_nothing_on_its_own(make_app,
                                                                         tmp_path):
    """Its own engine looks (checks sample, alerts open) but acts on nothing: no
    schedule, no watchdog restart, no change trigger, no notification."""
    from core.health.config import CheckSpec

    restarted = tmp_path / "restarted"
    check = CheckSpec("svc", "process", pattern=f"no-such-process-{tmp_path.name}",
                      restart=f"touch {restarted}", interval=0.2, timeout=0.5, fail=(2, 2),
                      recover=(1, 1))
    base = console_config()
    cfg = Config(path=None, hosts=base.hosts, engine=base.engine, checks={"svc": check},
                 jobs={**base.jobs, "beat": job("beat", "true", schedule="every 1s"),
                       "on-edit": job("on-edit", "true", on_change=[str(tmp_path / "w")])})
    app = make_app(config=cfg, read_only=True, scheduling=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        health = app.engine.service("health")
        await pilot_until(pilot, lambda: health.states["svc@local"].state == "down",
                          "the check to be seen down")
        await pilot_until(pilot, lambda: app.engine.service("alerts").book.list(app.clock()),
                          "its alert to open")
        assert app.engine.service("triggers") is None and not health.watchdog
        assert not app.engine.service("alerts").deliver
        await asyncio.wait_for(app.workers.wait_for_complete(), WAIT)
        assert app.engine.list_runs() == [] and not restarted.exists()


async def test_a_number_key_is_its_screens_list_not_an_old_drill_down(make_app):
    """As k9s's views: `4` after a run's output was opened from Runs, and another screen
    visited, shows the Runs list (it showed that run's output again)."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await command(pilot, ":run hello")
        await pilot_until(pilot, lambda: not app.engine.queue(), "run done")
        await pilot.press("4")
        table = app.screen.query_one(DataTable)
        await pilot_until(pilot, lambda: table.row_count == 1, "the run listed")
        table.focus()
        await pilot.press("enter")
        await pilot_until(pilot, lambda: isinstance(app.screen, RunLogScreen), "its output")
        await pilot.press("2")
        await pilot_until(pilot, lambda: isinstance(app.screen, JobsScreen), "Jobs")
        await pilot.press("4")
        await pilot_until(pilot, lambda: isinstance(app.screen, RunsScreen), "the Runs list")
        await pilot.press("enter")  # the output again, then Enter on a job in Jobs:
        await pilot_until(pilot, lambda: isinstance(app.screen, RunLogScreen), "its output")
        await pilot.press("2")  # that job's runs, not the output left open
        await pilot_until(pilot, lambda: isinstance(app.screen, JobsScreen), "Jobs")
        picked = app.screen.table.selected_key()
        app.screen.action_open()
        await pilot_until(pilot, lambda: isinstance(app.screen, RunsScreen)
                          and app.screen.job == picked, "the runs of the job selected")
