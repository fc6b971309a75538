"""Missed runs: the occurrences that fell in downtime and what the misfire policy did
with each (ran late, or skipped), as `fleetdeck runs --missed` lists them. Enter opens
the run."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from rich.text import Text
from textual.binding import Binding

from core.jobs.preview import job_schedule, local_label, zone_of
from core.jobs.runs import missed_rows
from core.jobs.zones import local_timezone_name
from tui.palette import style
from tui.screens.base import RUN_EVENTS, TableScreen
from tui.screens.cells import state_cell

SHOW_ROWS = 500


class MissedScreen(TableScreen):
    TITLE_TEXT = "Missed runs"
    COLUMNS = (("job", "JOB"), ("occurrence", "OCCURRENCE"), ("what", "WHAT"), ("run", "RUN"))
    BINDINGS = [Binding("enter", "open", "Open run", id="missed.open")]

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        rows = missed_rows(self.fleet.engine, limit=SHOW_ROWS)
        self.set_rows([(str(r["run"]), self._cells(r), self._text(r)) for r in rows])
        self.TITLE_TEXT = f"Missed runs ({len(rows)}{'+' if len(rows) >= SHOW_ROWS else ''})"
        self.update_status()

    def engine_events(self, events: list[Any]) -> None:
        if any(isinstance(e, RUN_EVENTS) for e in events):
            self.refresh_data()

    def _zone(self, job: str) -> tzinfo:
        """The zone the job's occurrences are read in: its schedule's, else this host's."""
        spec = self.fleet.engine.config.jobs.get(job)
        sched = job_schedule(spec) if spec is not None else None
        return zone_of(sched) if sched is not None else ZoneInfo(local_timezone_name())

    def _cells(self, r: dict[str, Any]) -> tuple[Text, ...]:
        occ = r["occurrence"]
        when = "-" if occ is None else local_label(occ, self._zone(r["job"]), seconds=True)
        if r["what"] == "skipped":
            what = Text(f"skipped (misfire={r['policy'] or '?'})", style=style("notice"))
            run = Text(f"#{r['run']}")
        else:
            what = Text("ran late")
            run = Text(f"#{r['run']} ") + state_cell(r["state"])
        return (Text(r["job"], style="bold"), Text(when), what, run)

    @staticmethod
    def _text(r: dict[str, Any]) -> str:
        return f"{r['job']} {r['what']} {r['policy'] or ''} {r['state']} #{r['run']}"

    def action_open(self) -> None:
        key = self.table.selected_key()
        if key and key.isdigit():
            self.fleet.open_run(int(key))

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()
