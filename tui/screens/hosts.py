"""Hosts: one row per host with its health, like glances' fleet list; Enter drills down.

STATE keeps whether a host answers apart from how it does: `down` is a failed probe
(no answer, no login); a host over a threshold is `up` with the threshold's level
beside it (`up · crit`), its failing checks saying what crossed what.

Rows come from the HealthMonitor (`engine.health_hosts()`); `health_sample` events
redraw at most once a second, however many hosts report. `s` cycles the sort column,
`/` filters, Enter opens a host: its checks with their trends, its recent runs, and
`f` to start a fan-out on it.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from core.events import CheckChanged, Event, HealthSample, JobChanged, RunFinished, RunStarted
from tui.palette import style
from tui.screens.base import RUN_EVENTS, TableScreen
from tui.screens.cells import fmt_age, run_cells
from tui.widgets.common import NavTable
from tui.widgets.table import Column

SPARK = "▁▂▃▄▅▆▇█"
SORTS = ("state", "host", "cpu", "memory", "disk", "load")
REDRAW_EVERY = 1.0  # seconds: samples arrive per host; the table is redrawn at most this often


def sparkline(values: list[float | None], width: int = 20, top: float = 100.0) -> str:
    """The last `width` values as block characters, scaled to [0, top]."""
    vals = values[-width:]
    out = []
    for v in vals:
        if v is None:
            out.append(" ")
        else:
            out.append(SPARK[min(len(SPARK) - 1, max(0, int(v / top * len(SPARK))))])
    return "".join(out)


def pct(value: Any, warn: float = 80.0, crit: float = 95.0) -> Text:
    if value is None:
        return Text("-", style=style("muted"))
    look = style("crit") if value >= crit else style("warn") if value >= warn else ""
    return Text(f"{value:.0f}%", style=look)


def state_text(state: str, level: str = "ok") -> Text:
    """A state, and for an answering host over a threshold its level: `up · crit`."""
    text = Text(state, style=style(state))
    if level in ("warn", "crit"):
        text.append(" · ")
        text.append(level, style=style(level))
    return text


class HostsScreen(TableScreen):
    TITLE_TEXT = "5 Hosts"
    COLUMNS = (Column("host", "HOST", 1), Column("state", "STATE", 1), Column("cpu", "CPU", 1),
               Column("mem", "MEM", 2), Column("disk", "DISK", 2), Column("load", "LOAD", 3),
               Column("trend", "CPU, LAST HOUR", 5), Column("failing", "FAILING CHECKS", 2,
                                                             shrink=True))
    BINDINGS = [
        Binding("enter", "open", "Open", id="hosts.open"),
        Binding("s", "sort", "Sort", id="hosts.sort"),
        Binding("f", "fanout", "Fan-out", id="hosts.fanout"),
        Binding("v", "preview", "Preview", id="hosts.preview"),
    ]
    PREVIEW = True

    def __init__(self) -> None:
        super().__init__()
        self.sort = "state"
        self._drawn = 0.0

    def compose_body(self) -> ComposeResult:
        yield Static("", id="hint", classes="muted")
        yield from super().compose_body()

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        self._drawn = time.monotonic()
        engine = self.fleet.engine
        hint = self.query_one("#hint", Static)
        hint.display = not engine.has_service("health")
        if not engine.has_service("health"):  # the inventory still: open, fan out
            self.set_rows([(name, (Text(name, style="bold"), Text("no checks", style=style(
                "muted")), *(Text("-") for _ in range(4)), Text(""), Text("")), name)
                for name in sorted(engine.config.hosts)])
            hint.update("No health checks configured: add a [checks.NAME] table to the "
                        "config (kind = \"metrics\", \"tcp\", \"http\", ...).")
            return
        rows = engine.health_hosts()
        rows.sort(key=self._sort_key)
        self.set_rows([(r["host"], self._cells(r), self._text(r)) for r in rows])

    def _sort_key(self, r: dict[str, Any]) -> Any:
        m = r["metrics"] or {}
        order = {"down": 0, "gave_up": 0, "pending": 2, "maintenance": 3, "up": 4}
        if self.sort == "host":
            return r["host"]
        if self.sort == "state":
            level = {"crit": 0, "warn": 1}.get(r.get("level", "ok"), 2)
            return (order.get(r["state"], 9), level, r["host"])
        key = {"memory": "memory", "cpu": "cpu", "disk": "disk", "load": "load1"}[self.sort]
        return (-(m.get(key) or 0.0), r["host"])

    @staticmethod
    def _cells(r: dict[str, Any]) -> tuple[Any, ...]:
        m = r["metrics"] or {}
        load = m.get("load1")
        return (
            Text(r["host"], style="bold"),
            state_text(r["state"], r.get("level", "ok")),
            pct(m.get("cpu")),
            pct(m.get("memory"), 85, 95),
            pct(m.get("disk"), 85, 95),
            Text("-" if load is None else f"{load:.2f}"),
            Text(sparkline(r["cpu_trend"]), style=style("trend")),
            Text(", ".join(r["failing"]), style=style("bad")),
        )

    @staticmethod
    def _text(r: dict[str, Any]) -> str:
        return f"{r['host']} {r['state']} {r.get('level', '')} {' '.join(r['failing'])}"

    WATCHES = (*RUN_EVENTS, JobChanged, HealthSample, CheckChanged)

    def engine_events(self, events: list[Event]) -> None:
        super().engine_events(events)
        if any(isinstance(e, HealthSample | CheckChanged) for e in events) and \
                time.monotonic() - self._drawn >= REDRAW_EVERY:
            self.refresh_data()

    def preview_of(self, key: str) -> Text:
        """Every check on the host: its state, since when, and why (held in memory)."""
        text = Text(f"{key}\n", style="bold")
        now = self.now()
        checks = [c for c in self.fleet.engine.health_snapshot() if c["target"] == key]
        for c in sorted(checks, key=lambda c: (c["state"] == "up", c["check"])):
            text.append_text(state_text(c["state"]))
            text.append(f" {c['check']}", style="bold")
            if c["since"]:
                text.append(f" since {fmt_age(c['since'], now)}", style=style("muted"))
            text.append("\n")
            if c["detail"]:
                text.append(f"  {c['detail']}\n")
        if not checks:
            text.append("no checks on this host", style=style("muted"))
        return text

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.notify(f"sorted by {self.sort}")
        self.refresh_data()

    def action_open(self) -> None:
        key = self.table.selected_key()
        if key:
            self.app.push_screen(HostDetailScreen(key))

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()

    def action_fanout(self) -> None:
        key = self.table.selected_key()
        if key:
            self.fleet.execute(f"fanout {key}")


class HostDetailScreen(TableScreen):
    """One host: every check on it with its trend, and the runs it had lately."""

    TITLE_TEXT = "5 Hosts › host"
    COLUMNS = (Column("check", "CHECK", 1), Column("kind", "KIND", 4),
               Column("state", "STATE", 1), Column("since", "SINCE", 3),
               Column("status", "LAST", 2), Column("trend", "TREND", 5),
               Column("detail", "DETAIL", 2, shrink=True))
    BINDINGS = [
        Binding("f", "fanout", "Fan-out here", id="host.fanout"),
        Binding("escape", "back", "Back", id="host.back"),
        Binding("q", "back", "Back", show=False, id="host.quit"),
    ]

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def compose_body(self) -> ComposeResult:
        yield Static(Text(self.host, style="bold"), id="host-title")
        yield from super().compose_body()
        yield Static("Recent runs on this host", classes="section", id="runs-title")
        t = NavTable(id="host-runs")
        for key, label in (("id", "RUN"), ("job", "JOB"), ("host", "HOST"), ("state", "STATE"),
                           ("exit", "EXIT"), ("when", "WHEN"), ("took", "TOOK"),
                           ("reason", "REASON")):
            t.add_column(label, key=key)
        yield t

    @property
    def table(self) -> NavTable:
        return self.query_one("#table", NavTable)

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        now = self.now()
        rows = []
        for c in self.fleet.engine.health_snapshot():
            if c["target"] != self.host:
                continue
            values = [v for _, _, v in c["history"]]
            top = 100.0 if c["kind"] == "metrics" else max([v or 0 for v in values] or [1]) or 1
            rows.append((c["check"], (
                Text(c["check"], style="bold"), Text(c["kind"]), state_text(c["state"]),
                Text(fmt_age(c["since"], now) if c["since"] else "-"),
                Text(c["status"] or "-", style=style(c["status"] or "")),
                Text(sparkline(values, 30, top), style=style("trend")),
                Text(c["detail"] or "", style=style("muted"))), f"{c['check']} {c['state']}"))
        self.set_rows(rows)
        runs = self.fleet.engine.list_runs(host=self.host, limit=20)
        table = self.query_one("#host-runs", NavTable)
        table.clear()
        for r in runs:
            table.add_row(*run_cells(r, now), key=str(r["id"]))

    def engine_events(self, events: list[Event]) -> None:
        if any(getattr(e, "target", None) == self.host for e in events) or any(
                isinstance(e, RunFinished | RunStarted) for e in events):
            self.refresh_data()

    def action_fanout(self) -> None:
        self.fleet.execute(f"fanout {self.host}")

    def action_back(self) -> None:
        self.app.pop_screen()
