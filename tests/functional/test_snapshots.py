"""Snapshots of every screen at 80x24 and 160x48, in the default and high-contrast themes.

The data is fixed: runs seeded into a real store with fixed times, a fixed clock, the
process in UTC, no scheduling; so no timing text can move between runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.jobs.runs import Run
from core.store import Store
from tests.helpers import NOW, console_app, job, make_config, pilot_until, ready
from tui.app import FleetdeckApp
from tui.screens.jobs import JobsScreen
from tui.screens.overview import OverviewScreen
from tui.screens.queue import QueueScreen
from tui.screens.run_log import RunLogScreen
from tui.screens.runs import RunsScreen
from tui.widgets.log_view import LogView
from tui.widgets.preview import WIDE_FROM

pytestmark = pytest.mark.usefixtures("utc")

SIZES = [(80, 24), (160, 48)]
THEMES = ["dark", "high-contrast"]

CONFIG = make_config(
    job("backup-db", "pg_dump app > /srv/backup/app.sql", schedule="0 3 * * *"),
    job("heartbeat", "echo ok", schedule="every 30s"),
    job("rotate-logs", "logrotate /etc/logrotate.conf", schedule="*/15 * * * *"),
    job("sync-assets", "rsync -a /srv/assets/ cdn:/assets/", schedule="0 0/10 8-17 * * ?"),
    job("deploy", "./deploy.sh"),
)

SEED = [  # job, state, exit, minutes before NOW it started, duration s, reason, output
    ("heartbeat", "succeeded", 0, 200, 0.2, "", ["ok"]),
    ("backup-db", "succeeded", 0, 180, 95.0, "", ["dumping app", "done: 1.2 GB"]),
    ("rotate-logs", "succeeded", 0, 60, 1.5, "", ["rotated 4 files"]),
    ("sync-assets", "failed", 23, 45, 12.0, "exit code 23",
     ["sending incremental file list", "rsync: connection unexpectedly closed",
      "ERROR: rsync error: some files could not be transferred (code 23)"]),
    ("deploy", "timed_out", None, 30, 600.0, "timed out after 600s",
     ["pulling image", "WARNING: registry slow", "waiting for health check"]),
    ("heartbeat", "succeeded", 0, 5, 0.1, "", ["ok"]),
    ("rotate-logs", "skipped", None, 2, 0.0, "run #3 still active (overlap=skip)", []),
]


def seed(state_dir: Path) -> None:
    store = Store.open(state_dir)
    for name, state, code, ago, duration, reason, output in SEED:
        started = NOW - ago * 60
        run = Run(id=store.next_run_id(), job=name, host="local", command="-",
                  trigger="schedule", state=state, reason=reason, queued_at=started,
                  started_at=None if state == "skipped" else started,
                  finished_at=started + duration, exit_code=code)
        store.add_run(run)
        store.log_path(run.id).write_text("".join(f"{line}\n" for line in output))
        recent = (store.job_state(name).get("recent") or []) + [state]
        store.update_job_state(name, recent=recent, first_seen=NOW - 86400,
                               last_run={"id": run.id, "state": state,
                                         "finished_at": run.finished_at, "exit_code": code,
                                         "host": "local"})
    store.update_job_state("deploy", paused=True)
    store.commit()
    store.close()


def make(tmp_path: Path, theme: str) -> FleetdeckApp:
    state = tmp_path / "state"
    seed(state)
    return console_app(CONFIG, state, clock=lambda: NOW, theme=theme)


def log_shown(screen: object) -> bool:
    """The run's log read (in a worker) and in the pane."""
    if not isinstance(screen, RunLogScreen):
        return False
    view = screen.query_one(LogView)
    return view.line_count > 0 and not view.indexing


def before(screen_class: type, *keys: str):
    async def run_before(pilot) -> None:
        app = await ready(pilot)
        app._refresh_screen()  # noqa: SLF001
        if keys:
            await pilot.press(*keys)
        if screen_class is RunLogScreen:
            await pilot_until(pilot, lambda: log_shown(app.screen), "the run's log")
        else:
            await pilot_until(pilot, lambda: isinstance(app.screen, screen_class),
                              screen_class.__name__)
        if getattr(app.screen, "PREVIEW", False) and app.size.width >= WIDE_FROM:
            await pilot_until(pilot, lambda: app.screen.preview_key is not None and
                              app.screen.preview_key == app.screen.table.selected_key(),
                              "the preview of the row under the cursor")
        await pilot.pause()

    return run_before


SCREENS = {
    "overview": (OverviewScreen,),
    "jobs": (JobsScreen, "2"),
    "queue": (QueueScreen, "3"),
    "runs": (RunsScreen, "4"),
    "run_log": (RunLogScreen, "4", "j", "j", "j", "enter"),  # the failed sync-assets run
}


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(snap_compare, tmp_path, screen, size, theme):
    app = make(tmp_path, theme)
    assert snap_compare(app, terminal_size=size, run_before=before(*SCREENS[screen]))


# Every theme on one screen that shows every signal colour (failed, timed out, skipped,
# succeeded; the cursor row; the status bar's failures), and NO_COLOR on top of the
# default theme: there, attributes alone tell the states apart.
@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast", "ansi", "no-color"])
def test_theme_snapshot(snap_compare, tmp_path, monkeypatch, theme):
    if theme == "no-color":
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    app = make(tmp_path, "dark" if theme == "no-color" else theme)
    assert snap_compare(app, terminal_size=(80, 24), run_before=before(RunsScreen, "4"))


def prompt_before(*keys: str, suggested: bool = False):
    """The `:` prompt open with `keys` typed (and its dim completion shown)."""
    async def run_before(pilot) -> None:
        from textual.widgets import Input

        from tui.screens.dialogs import CommandLineScreen

        app = await ready(pilot)
        app._refresh_screen()  # noqa: SLF001
        await pilot.press("colon", *keys)
        await pilot_until(pilot, lambda: isinstance(app.screen, CommandLineScreen),
                          "the prompt")
        field = app.screen.query_one("#command", Input)
        await pilot_until(pilot, lambda: field.value == "".join(
            " " if k == "space" else k for k in keys), "the typed text")
        if suggested:
            await pilot_until(pilot, lambda: field._suggestion, "the completion")  # noqa: SLF001
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_prompt_snapshot(snap_compare, tmp_path, size):
    """The prompt over the overview (still in sight), the text typed, the completion
    dim after it, the command's usage at the right."""
    app = make(tmp_path, "dark")
    assert snap_compare(app, terminal_size=size,
                        run_before=prompt_before("r", "u", "n", "space", "h", "e",
                                                 suggested=True))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_snapshot(snap_compare, tmp_path, size):
    """`?` on Jobs: the screen's keys, then the global ones; generic keys last."""
    from tui.screens.dialogs import HelpScreen

    app = make(tmp_path, "dark")
    assert snap_compare(app, terminal_size=size,
                        run_before=before(HelpScreen, "2", "question_mark"))
