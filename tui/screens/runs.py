"""Runs: history, newest first, filtered by job, state, time or any text."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.binding import Binding

from core.durations import DurationError, parse_duration
from core.events import ViewRefreshed
from core.jobs.runs import RunState
from tui.palette import style
from tui.screens.base import RUN_EVENTS, TableScreen
from tui.screens.cells import run_cells, run_text
from tui.widgets.common import FilterBar
from tui.widgets.preview import read_tail
from tui.widgets.table import Column

HISTORY_ROWS = 500


class RunsScreen(TableScreen):
    TITLE_TEXT = "4 Runs"
    COLUMNS = (Column("id", "RUN", 1, "I"), Column("job", "JOB", 1, "N"),
               Column("host", "HOST", 2, "H"), Column("state", "STATE", 1, "S"),
               Column("exit", "EXIT", 5, "X"), Column("started", "STARTED", 4, "A"),
               Column("duration", "DURATION", 4, "D"), Column("reason", "REASON", 3, shrink=True))
    KEY_PREFIX = "runs"
    FILTER_FIELDS = ("job", "host", "state", "since")
    BINDINGS = [
        Binding("enter", "open", "Output", id="runs.open"),
        Binding("c", "cancel", "Cancel", id="runs.cancel"),
        Binding("J", "clear_job", "All jobs", id="runs.all_jobs"),
        Binding("v", "preview", "Preview", id="runs.preview"),
    ]
    PREVIEW = True

    def __init__(self) -> None:
        super().__init__()
        self.job: str | None = None
        self._missed: dict[int, dict[str, Any]] = {}
        self._missed_all = False
        self._runs: dict[str, dict[str, Any]] = {}  # the rows' runs, for the preview

    def set_job_filter(self, job: str | None) -> None:
        self.job = job
        if self.is_mounted:
            self.refresh_data()  # otherwise on_mount will, with this job

    def filter_to(self, text: str) -> None:
        """Open the `/` line with this filter (the cluster screen's node: `@n2(\\s|$)`)."""
        bar = self.query_one(FilterBar)
        bar.open()
        bar.field.value = text

    def action_clear_job(self) -> None:
        self.set_job_filter(None)

    def _query(self) -> dict[str, Any]:
        fields = self.row_filter.fields or {}
        query, _error = self._read_fields(fields)
        return {"job": fields.get("job") or self.job, "host": fields.get("host") or None,
                "limit": HISTORY_ROWS, **query}

    def _read_fields(self, fields: dict[str, str]) -> tuple[dict[str, Any], str | None]:
        """The query the state= and since= fields ask for, and what is wrong with them
        (a value that cannot be read adds nothing to the query)."""
        query: dict[str, Any] = {}
        error = None
        if fields.get("state"):
            wanted = [s for s in re.split(r"[,|]", fields["state"]) if s]
            valid = {s.value for s in RunState}
            query["states"] = [s for s in wanted if s in valid] or ["-none-"]
            bad = [s for s in wanted if s not in valid]
            if bad:
                error = f"state={bad[0]}: not a run state ({', '.join(sorted(valid))})"
        if fields.get("since"):
            try:
                query["since"] = self.now() - parse_duration(fields["since"])
            except DurationError as e:
                error = error or f"since={fields['since']}: {e}"
        return query, error

    def field_error(self, fields: dict[str, str]) -> str | None:
        return self._read_fields(fields)[1]

    def filter_changed(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        self._missed, self._missed_all = {}, False
        now = self.now()
        runs = self.fleet.engine.list_runs(**self._query())
        self._runs = {str(r["id"]): r for r in runs}
        self._rows = [(str(r["id"]), run_cells(r, now), run_text(r)) for r in runs]
        self.render_rows()
        title = f"4 Runs · {self.job}" if self.job else "4 Runs"
        self.TITLE_TEXT = title
        self.update_status()

    def engine_events(self, events: list[Any]) -> None:
        """Each run event changes its own row (history is not read again)."""
        if any(isinstance(e, ViewRefreshed) for e in events):  # a daemon's files changed
            self.refresh_data()
            return
        self._apply({e.run["id"]: e.run for e in events if isinstance(e, RUN_EVENTS)})

    def missed_events(self, events: list[Any]) -> None:
        """Hidden: the runs that changed are kept (the newest state of each), and applied
        when shown again, so showing the screen reads no history."""
        if any(isinstance(e, ViewRefreshed) for e in events):
            self._missed_all = True
        for e in events:
            if isinstance(e, RUN_EVENTS) and not isinstance(e, ViewRefreshed):
                self._missed[e.run["id"]] = e.run
        self.stale = self._missed_all or bool(self._missed)

    def catch_up(self) -> None:
        missed, self._missed = self._missed, {}
        if not self.is_current:
            self._missed.update(missed)
            return
        if self._missed_all:
            self._missed_all = False
            self.refresh_data()
            return
        self.stale = False
        self._apply(missed)

    def _apply(self, runs: dict[int, dict[str, Any]]) -> None:
        if not runs or not self.fleet.engine_ready:
            return
        query = self._query()
        now = self.now()
        rows = {key: row for key, *row in self._rows}
        for run_id, run in runs.items():
            key = str(run_id)
            if _matches(run, query):
                rows[key] = [run_cells(run, now), run_text(run)]
                self._runs[key] = run
            else:
                rows.pop(key, None)
                self._runs.pop(key, None)
        order = sorted(rows, key=int, reverse=True)[:HISTORY_ROWS]
        self._rows = [(key, *rows[key]) for key in order]  # type: ignore[misc]
        self._runs = {key: self._runs[key] for key in order if key in self._runs}
        self.render_rows()
        self.update_status()

    def preview_of(self, key: str) -> Callable[[], Text]:
        """The run's facts, its whole reason, and the end of its output (read in a
        thread: the output is a file)."""
        row = next((cells for k, cells, _t in self._rows if k == key), None)
        run = self._runs.get(key)
        path = self.fleet.engine.run_log_path(int(key)) if key.isdigit() else None

        def read() -> Text:
            text = Text()
            if run is not None:
                text.append(f"#{run['id']} {run['job']} on {run['host']}\n", style="bold")
                text.append_text(row[3] if row else Text(run["state"]))
                if run.get("exit_code") is not None:
                    text.append(f"  exit {run['exit_code']}")
                if run.get("trigger"):
                    text.append(f"  ({run['trigger']})", style=style("muted"))
                if run.get("claim"):  # in a cluster: the node and term that claimed it
                    node, _, term = run["claim"].partition(" ")
                    text.append(f"  claimed by {node}, term {term}", style=style("muted"))
                if run.get("node"):  # ... and the node it ran on
                    there = run.get("origin")
                    text.append(f"  ran on {run['node']}" + (
                        f" (run #{there.partition('#')[2]} there)" if there else ""),
                        style=style("muted"))
                text.append("\n")
                if run.get("reason"):
                    text.append(run["reason"] + "\n")
            tail = read_tail(path) if path else ""
            text.append("\n" + (tail or "(no output)"), style="" if tail else style("muted"))
            return text

        return read

    def _selected(self) -> int | None:
        key = self.table.selected_key()
        return int(key) if key and key.isdigit() else None

    def action_open(self) -> None:
        run_id = self._selected()
        if run_id is not None:
            self.fleet.open_run(run_id)

    def action_cancel(self) -> None:
        ids = [int(k) for k in self.chosen_keys() if k.isdigit()]
        try:
            if len(ids) > 1:
                self.fleet.cancel_runs(ids)
                self.clear_marks()
            elif ids:
                self.fleet.cancel_run(ids[0])
        except Exception as e:
            self.notify(str(e), severity="warning")

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()


def _matches(run: dict[str, Any], query: dict[str, Any]) -> bool:
    """Does a run belong in a listing asked with ``query`` (list_runs' filters)?"""
    if query.get("job") and run["job"] != query["job"]:
        return False
    if query.get("host") and run["host"] != query["host"]:
        return False
    if query.get("states") is not None and run["state"] not in query["states"]:
        return False
    since = query.get("since")
    return since is None or (run.get("queued_at") or 0.0) >= since
