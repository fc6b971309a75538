"""Audit: who did what, when, through what, on which targets (`audit.jsonl`)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from core.events import AlertChanged, EngineNotice, Event, JobChanged, RunQueued
from tui.palette import style
from tui.screens.base import TableScreen
from tui.screens.cells import age_cell, time_cell
from tui.widgets.table import Column

SHOW = 1000


class AuditScreen(TableScreen):
    TITLE_TEXT = "9 Audit"
    COLUMNS = (Column("when", "WHEN", 3, "T"), Column("age", "AGE", 1),
               Column("who", "WHO", 2, "W"), Column("via", "VIA", 4),
               Column("action", "ACTION", 1, "C"), Column("targets", "TARGETS", 2, shrink=True),
               Column("detail", "DETAIL", 3, shrink=True))
    KEY_PREFIX = "audit"
    BINDINGS = [Binding("R", "reload_list", "Refresh", id="audit.refresh")]

    def refresh_data(self) -> None:
        super().refresh_data()
        from core.audit import AuditLog

        now = self.now()
        records = AuditLog(self.fleet.engine.state_dir).read(limit=SHOW)
        rows = []
        for i, r in enumerate(reversed(records)):
            targets = ", ".join(r.get("targets") or [])
            rows.append((str(i), (
                time_cell(r["ts"], now), age_cell(r["ts"], now),
                Text(r.get("user", ""), style="bold"), Text(r.get("via", ""), style=style("muted")),
                Text(r.get("action", "")), Text(targets), Text(r.get("detail", ""))),
                f"{r.get('user')} {r.get('via')} {r.get('action')} {targets} "
                f"{r.get('detail', '')}"))
        self.set_rows(rows)

    WATCHES = (RunQueued, JobChanged, AlertChanged, EngineNotice)

    def engine_events(self, events: list[Event]) -> None:
        if any(isinstance(e, RunQueued | JobChanged | AlertChanged | EngineNotice)
               for e in events):
            self.refresh_data()

    def action_reload_list(self) -> None:
        self.refresh_data()
