"""Runs: history, newest first, filtered by job, state, time or any text."""

from __future__ import annotations

import re
from typing import Any

from textual.binding import Binding

from core.durations import DurationError, parse_duration
from core.jobs.runs import RunState
from tui.screens.base import RUN_EVENTS, TableScreen
from tui.screens.cells import run_cells, run_text

HISTORY_ROWS = 500


class RunsScreen(TableScreen):
    TITLE_TEXT = "4 Runs"
    COLUMNS = (("id", "RUN"), ("job", "JOB"), ("host", "HOST"), ("state", "STATE"),
               ("exit", "EXIT"), ("started", "STARTED"), ("duration", "DURATION"),
               ("reason", "REASON"))
    FILTER_FIELDS = ("job", "state", "since")
    BINDINGS = [
        Binding("enter", "open", "Output", id="runs.open"),
        Binding("c", "cancel", "Cancel", id="runs.cancel"),
        Binding("J", "clear_job", "All jobs", id="runs.all_jobs"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.job: str | None = None

    def set_job_filter(self, job: str | None) -> None:
        self.job = job
        if self.is_mounted:
            self.refresh_data()  # otherwise on_mount will, with this job

    def action_clear_job(self) -> None:
        self.set_job_filter(None)

    def _query(self) -> dict[str, Any]:
        fields = self.row_filter.fields or {}
        query: dict[str, Any] = {"job": fields.get("job") or self.job, "limit": HISTORY_ROWS}
        if fields.get("state"):
            wanted = [s for s in re.split(r"[,|]", fields["state"]) if s]
            valid = {s.value for s in RunState}
            query["states"] = [s for s in wanted if s in valid] or ["-none-"]
        if fields.get("since"):
            try:
                query["since"] = self.now() - parse_duration(fields["since"])
            except DurationError:
                pass
        return query

    def filter_changed(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        now = self.now()
        runs = self.fleet.engine.list_runs(**self._query())
        self._rows = [(str(r["id"]), run_cells(r, now), run_text(r)) for r in runs]
        self.render_rows()
        title = f"4 Runs · {self.job}" if self.job else "4 Runs"
        self.TITLE_TEXT = title
        self.update_status()

    def engine_events(self, events: list[Any]) -> None:
        if any(isinstance(e, RUN_EVENTS) for e in events):
            self.refresh_data()

    def _selected(self) -> int | None:
        key = self.table.selected_key()
        return int(key) if key and key.isdigit() else None

    def action_open(self) -> None:
        run_id = self._selected()
        if run_id is not None:
            self.fleet.open_run(run_id)

    def action_cancel(self) -> None:
        run_id = self._selected()
        if run_id is not None:
            try:
                self.fleet.cancel_run(run_id)
            except Exception as e:
                self.notify(str(e), severity="warning")

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()
