"""Jobs: every job with its schedule, next fire, last result and state; act on one."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from core.jobs.preview import (
    Transition,
    dst_effect,
    job_schedule,
    local_label,
    next_transition,
    offset_label,
    upcoming,
    zone_of,
)
from core.jobs.runs import last_run_summary
from tui.palette import style
from tui.screens.base import TableScreen
from tui.screens.cells import age_cell, fmt_age, fmt_rate, fmt_time, last_run_cell
from tui.widgets.table import Column, SortText

DETAIL_FIRES = 5  # next fires the detail lists
NEAR = 120.0  # seconds: a fire this near is counted down by the second
QUIET_REDRAW = 30.0  # seconds between redraws of the countdowns otherwise


class JobsScreen(TableScreen):
    TITLE_TEXT = "2 Jobs"
    COLUMNS = (Column("name", "JOB", 1, "N"), Column("schedule", "SCHEDULE", 2, shrink=True),
               Column("raw", "RAW", 6), Column("next", "NEXT", 3, "T"),
               Column("last", "LAST", 1, "L"), Column("age", "AGE", 4, "A"),
               Column("rate", "OK%", 3, "O"), Column("state", "STATE", 2, "S"))
    KEY_PREFIX = "jobs"
    BINDINGS = [
        Binding("r", "run", "Run now", id="jobs.run"),
        Binding("p", "pause", "Pause/resume", id="jobs.pause"),
        Binding("c", "cancel", "Cancel run", id="jobs.cancel"),
        Binding("enter", "open", "Runs", id="jobs.open"),
    ]
    DEFAULT_CSS = """
    JobsScreen #job-detail { height: auto; max-height: 12; padding: 0 1;
                             background: $surface; }
    """

    def compose_body(self) -> ComposeResult:
        yield from super().compose_body()
        yield Static("", id="job-detail")

    _drawn_at = 0.0  # when the countdowns were last drawn (the screen's clock)
    _soonest: float | None = None  # the nearest next fire drawn

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(1.0, self._tick)  # NEXT and AGE move on with no event

    def _tick(self) -> None:
        """Countdowns by the second when a fire is near (under two minutes), else every
        30 s: "in 37s" must not stand still, and a quiet table is not redrawn for nothing."""
        if not self.is_current:
            return
        now = self.now()
        near = self._soonest is not None and self._soonest - now < NEAR
        if near or now - self._drawn_at >= QUIET_REDRAW:
            self.refresh_data()

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        now = self.now()
        rows = []
        jobs = self.fleet.engine.list_jobs()
        made, self._made = getattr(self, "_made", {}), {}
        for job in jobs:
            rows.append((job["name"], self._cells(job, now, made.get(job["name"])),
                         self._text(job)))
        self.set_rows(rows)
        self._drawn_at = now
        self._soonest = min((j["next_fire"] for j in jobs if j["next_fire"]), default=None)
        self.show_detail()

    @staticmethod
    def _state(job: dict[str, Any]) -> Text:
        if job["active"]:
            return Text("▶ running", style=style("running"))
        if not job["enabled"]:
            return Text("disabled", style=style("muted"))
        if job["paused"]:
            return Text("‖ paused", style=style("paused"))
        return Text("enabled")

    # a job's cells that only change with the job, kept while it and the theme do not:
    # each second's redraw of 500 countdowns then builds two cells a row, not eight
    _made: dict[str, tuple[str, dict[str, Any], tuple[Any, ...]]]

    def _cells(self, job: dict[str, Any], now: float,
               made: tuple[str, dict[str, Any], tuple[Any, ...]] | None = None
               ) -> tuple[Any, ...]:
        last = job["last_run"] or {}
        nxt = job["next_fire"]
        theme = self.app.theme
        if made is not None and made[0] == theme and made[1] == job:
            fixed = made[2]
        else:
            fixed = (Text(job["name"], style="bold"), Text(job["schedule_text"]),
                     Text(job["schedule"] or "-", style=style("muted")), last_run_cell(last),
                     Text(fmt_rate(job["success_rate"])), self._state(job))
        self._made[job["name"]] = (theme, job, fixed)
        return (
            *fixed[:3],
            SortText(f"{fmt_time(nxt, now)} ({fmt_age(nxt, now)})" if nxt else "-", nxt),
            fixed[3],
            age_cell(last.get("finished_at"), now) if last else Text("-"),
            *fixed[4:],
        )

    @staticmethod
    def _text(job: dict[str, Any]) -> str:
        last = last_run_summary(job["last_run"]) if job["last_run"] else ""
        state = "paused" if job["paused"] else "enabled" if job["enabled"] else "disabled"
        return f"{job['name']} {job['schedule_text']} {job['schedule'] or ''} {last} {state} " \
               + " ".join(job["tags"])

    def _selected_job(self) -> dict[str, Any] | None:
        key = self.table.selected_key()
        if key is None:
            return None
        return self.fleet.engine.get_job(key)

    def action_run(self) -> None:
        """The marked jobs (or the one under the cursor), each run now."""
        for name in self.chosen_keys():
            self.fleet.run_job(name)
        self.clear_marks()

    def action_pause(self) -> None:
        """Pause the marked jobs, or resume them when the first is paused already."""
        jobs = [self.fleet.engine.get_job(k) for k in self.chosen_keys()]
        if not jobs:
            return
        pause = not jobs[0]["paused"]
        for job in jobs:
            if job["paused"] != pause:
                self.fleet.set_paused(job["name"], pause)
        self.clear_marks()

    def action_cancel(self) -> None:
        job = self._selected_job()
        if not job:
            return
        if not job["active"]:
            self.notify(f"{job['name']} has no active run", severity="warning")
            return
        self.fleet.cancel_run(job["active"][0])

    def action_open(self) -> None:
        key = self.table.selected_key()
        if key:
            self.fleet.cmd_runs(key)

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()

    def on_data_table_row_highlighted(self, event: Any) -> None:
        self.show_detail()

    # ------------------------------------------------------------- the job's detail ---
    def show_detail(self) -> None:
        """The highlighted job's next fires in its zone, and the zone's next offset
        change within a year with what it does to the job."""
        pane = self.query("#job-detail")
        if not pane or not self.fleet.engine_ready:
            return
        key = self.table.selected_key()
        job = self.fleet.engine.config.jobs.get(key) if key else None
        pane.first(Static).update(detail_text(job, self.now()) if job else "")


def detail_text(job: Any, now: float) -> Text:
    """A job's detail: its schedule, its next fires with their offsets, the next DST
    change of its zone and the job's dst policy on it. `now`: the console's clock."""
    text = Text()
    text.append(job.name, style="bold")
    if not job.schedule:
        text.append(" · on demand: no schedule")
        return text
    sched = job_schedule(job)
    text.append(f" · {job.schedule}")
    if sched is None:
        text.append(" · disabled: no fires" if not job.enabled else " · unreadable schedule")
        return text
    zone = zone_of(sched)
    text.append(f" · {getattr(zone, 'key', None) or sched.timezone}")
    if sched.describe() != job.schedule:  # "every 30s" is its own description
        text.append(f" · {sched.describe()}")
    if getattr(sched, "dst", None):
        text.append(f" · dst={sched.dst}")
    items = upcoming(sched, now, DETAIL_FIRES)
    # seconds when a fire is not on the minute: "every 30s" read 19:16, 19:16, 19:17
    seconds = any(int(i) % 60 for i in items if not isinstance(i, Transition))
    text.append("\nnext fires:" if items else "\nno fire after "
                + local_label(now, zone))
    for item in items:
        if isinstance(item, Transition):
            text.append(f"\n  -- {item.label()}", style=style("notice"))
        else:
            text.append(f"\n  {local_label(item, zone, weekday=True, seconds=seconds)} "
                        f"({offset_label(item, zone)})")
    change = next_transition(sched, now)
    text.append("\nnext DST change: ", style="bold")
    if change is None:
        text.append("none within a year")
    else:
        text.append(f"{change.label()}: {dst_effect(sched, change)}")
    return text
