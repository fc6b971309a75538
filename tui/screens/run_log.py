"""One run's output: header with state, exit code and duration; the log, live while it runs."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from tui.fmt import fmt_duration, fmt_time
from tui.palette import style
from tui.screens.base import FleetScreen
from tui.screens.cells import run_duration, state_cell
from tui.widgets.log_view import LogView

LIVE_REFRESH = 0.15  # seconds: the log pane takes new lines in batches, not one by one


class RunLogScreen(FleetScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="log.back"),
        Binding("q", "back", "Back", show=False, id="log.quit"),
        Binding("c", "cancel", "Cancel run", id="log.cancel"),
        Binding("R", "rerun", "Run job again", id="log.rerun"),
    ]

    def __init__(self, run: dict[str, Any]) -> None:
        super().__init__()
        self.run = run
        self.TITLE_TEXT = f"Run #{run['id']}"

    def compose_body(self) -> ComposeResult:
        yield Static(id="run-header")
        yield LogView(None, follow=True, id="log")

    def on_mount(self) -> None:
        view = self.query_one(LogView)
        view.open(self.fleet.engine.run_log_path(self.run["id"]))
        view.focus()
        super().on_mount()
        self.set_interval(LIVE_REFRESH, self._live)

    def missed_events(self, events: list[Any]) -> None:
        self.stale = True  # its output is not in events: read again when shown

    def refresh_data(self) -> None:
        super().refresh_data()
        try:
            self.run = self.fleet.engine.get_run(self.run["id"])
        except Exception:
            return
        self._header()

    def _header(self) -> None:
        r = self.run
        now = self.now()
        line = Text()
        line.append(f"#{r['id']} {r['job']}@{r['host']}", style="bold")
        line.append("   ")
        line.append_text(state_cell(r["state"]))
        code = r["exit_code"]
        line.append(f"   exit {'-' if code is None else code}")
        line.append(f"   started {fmt_time(r.get('started_at'), now)}")
        line.append(f"   took {fmt_duration(run_duration(r, now))}")
        if r.get("max_attempts", 1) > 1:
            line.append(f"   attempt {r['attempt']}/{r['max_attempts']}")
        if r.get("reason"):
            line.append(f"\n{r['reason']}", style=style("muted"))
        self.query_one("#run-header", Static).update(line)

    def engine_events(self, events: list[Any]) -> None:
        mine = [e for e in events if getattr(e, "run", {}).get("id") == self.run["id"]]
        if mine:
            self.run = mine[-1].run
            self._header()
            self.update_status()

    def output_arrived(self, run_ids: set[int]) -> None:
        if self.run["id"] in run_ids:
            self.query_one(LogView).refresh_file()

    def _live(self) -> None:
        if self.run["state"] in ("queued", "running", "awaiting_approval"):
            self.query_one(LogView).refresh_file()
            self._header()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_cancel(self) -> None:
        try:
            self.fleet.cancel_run(self.run["id"])
        except Exception as e:
            self.notify(str(e), severity="warning")

    def action_rerun(self) -> None:
        self.fleet.run_job(self.run["job"])
