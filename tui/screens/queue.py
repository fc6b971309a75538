"""Queue: what is running and what waits, and why; recently finished runs below."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding

from core.events import RunFinished
from tui.palette import style
from tui.screens.base import RUN_EVENTS, TableScreen
from tui.screens.cells import run_cells, run_text
from tui.widgets.table import Column

KEEP_FINISHED = 20


class QueueScreen(TableScreen):
    TITLE_TEXT = "3 Queue"
    COLUMNS = (Column("id", "RUN", 1), Column("job", "JOB", 1), Column("host", "HOST", 2),
               Column("state", "STATE", 1), Column("exit", "EXIT", 5),
               Column("started", "STARTED", 4), Column("elapsed", "ELAPSED", 4),
               Column("reason", "WAITING FOR / RESULT", 3, shrink=True))
    BINDINGS = [
        Binding("c", "cancel", "Cancel", id="queue.cancel"),
        Binding("enter", "open", "Output", id="queue.open"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[dict[str, Any]] = []

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(1.0, self._tick)  # elapsed time of running runs

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        now = self.now()
        active = self.fleet.engine.queue()
        rows = [(str(r["id"]), run_cells(r, now), run_text(r)) for r in active]
        ids = {r["id"] for r in active}
        for r in self.finished:
            if r["id"] not in ids:
                rows.append((str(r["id"]), run_cells(r, now), run_text(r)))
        if not rows:
            empty = Text("nothing queued or running", style=style("muted"))
            rows.append(("none", (Text("-"), empty, *(Text("") for _ in range(6))), ""))
        self.set_rows(rows)

    def engine_events(self, events: list[Any]) -> None:
        for e in events:
            if isinstance(e, RunFinished) and e.run["state"] != "skipped":
                self.finished.insert(0, e.run)
        del self.finished[KEEP_FINISHED:]
        if any(isinstance(e, RUN_EVENTS) for e in events):
            self.refresh_data()

    def _tick(self) -> None:
        if self.fleet.engine_ready and any(r["state"] == "running"
                                           for r in self.fleet.engine.queue()):
            self.refresh_data()

    def _selected(self) -> int | None:
        key = self.table.selected_key()
        return int(key) if key and key.isdigit() else None

    def action_cancel(self) -> None:
        ids = [int(k) for k in self.chosen_keys() if k.isdigit()]
        if len(ids) > 1:
            self.fleet.cancel_runs(ids)
            self.clear_marks()
        elif ids:
            self.fleet.cancel_run(ids[0])

    def action_open(self) -> None:
        run_id = self._selected()
        if run_id is not None:
            self.fleet.open_run(run_id)

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()
