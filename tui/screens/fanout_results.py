"""A fan-out's results in detail: one host's output as it streams, the outputs gathered
(identical ones grouped, the others diffed against the largest group), and the fan-outs
on record; with the words and colours for a host's state that the grid uses too.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Log, Static

from core.events import Event, FanOutDone, FanOutHost, FanOutLine
from tui.palette import style
from tui.screens.base import FleetScreen, TableScreen
from tui.screens.cells import age_cell, time_cell
from tui.widgets.table import Column

STATE_ORDER = ("connecting", "running", "pending", "failed", "timed_out", "unreachable",
               "auth_failed", "become_failed", "host_key_unknown", "host_key_changed",
               "host_key_revoked", "cancelled", "skipped", "ok")
STATE_LABEL = {"pending": "queued"}  # what a waiting host is called on screen


def fanout_of(event: Event) -> int | None:
    """The fan-out id an event is about (host_result/fanout_line carry it; started/done
    carry the whole record)."""
    fid = getattr(event, "fanout_id", None)
    if fid is None:
        fid = (getattr(event, "fanout", None) or {}).get("id")
    return fid


def host_state(state: str) -> Text:
    return Text(STATE_LABEL.get(state, state), style=style(state))


def counts_text(hosts: dict[str, dict[str, Any]]) -> Text:
    counts: dict[str, int] = {}
    for r in hosts.values():
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    out = Text()
    for state in STATE_ORDER:
        if counts.get(state):
            if out:
                out.append(" · ")
            out.append(f"{counts[state]} {STATE_LABEL.get(state, state)}",
                       style=style(state))
    return out


class HostOutputScreen(FleetScreen):
    """One host's output in a fan-out, streaming while it runs."""

    TITLE_TEXT = "6 Fan-out › host"
    BINDINGS = [Binding("escape", "back", "Back", id="fanout_host.back"),
                Binding("q", "back", "Back", show=False, id="fanout_host.quit")]

    def __init__(self, fanout_id: int, host: str) -> None:
        super().__init__()
        self.fanout_id = fanout_id
        self.host = host
        self._shown = 0

    def compose_body(self) -> ComposeResult:
        yield Static(Text(f"#{self.fanout_id} {self.host}", style="bold"), id="title")
        yield Log(id="output", highlight=False)

    WATCHES = (FanOutLine, FanOutHost, FanOutDone)

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        text = self.fleet.engine.fanout_output(self.fanout_id, self.host)
        log = self.query_one(Log)
        if len(text) < self._shown:  # a new run of the same id cannot happen; be safe
            log.clear()
            self._shown = 0
        new = text[self._shown:]
        complete = new[:new.rfind("\n") + 1]  # whole lines only: the rest comes later
        if complete:
            log.write_lines(complete.splitlines())
            self._shown += len(complete)
        rec = self.fleet.engine.fanout_get(self.fanout_id) or {}
        r = rec.get("hosts", {}).get(self.host, {})
        head = Text()
        head.append(f"#{self.fanout_id} {self.host}  ", style="bold")
        head.append_text(host_state(r.get("state", "?")))
        if r.get("reason"):
            head.append(f"  {r['reason']}", style=style("muted"))
        self.query_one("#title", Static).update(head)

    def engine_events(self, events: list[Event]) -> None:
        for e in events:
            if fanout_of(e) != self.fanout_id:
                continue
            if isinstance(e, FanOutLine) and e.host == self.host \
                    or isinstance(e, FanOutHost | FanOutDone):
                self.refresh_data()
                return

    def action_back(self) -> None:
        self.app.pop_screen()


class GatheredScreen(FleetScreen):
    """Identical outputs grouped (largest first), each other group diffed against it."""

    WATCHES = (FanOutHost, FanOutDone)
    TITLE_TEXT = "6 Fan-out › gathered"
    BINDINGS = [Binding("escape", "back", "Back", id="fanout_gathered.back"),
                Binding("q", "back", "Back", show=False, id="fanout_gathered.quit")]

    def __init__(self, fanout_id: int) -> None:
        super().__init__()
        self.fanout_id = fanout_id

    def compose_body(self) -> ComposeResult:
        yield Log(id="groups", highlight=False)

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        groups = self.fleet.engine.fanout_gather(self.fanout_id)
        log = self.query_one(Log)
        log.clear()
        if not groups:
            log.write_line("no host has finished yet")
            return
        for i, g in enumerate(groups):
            state = "" if g["state"] == "ok" else f"  {g['state']}" + (
                f": {g['reason']}" if g["reason"] else "")
            log.write_line(f"── {g['folded']} ({g['count']}){state}")
            if not g["text"]:
                log.write_line("  (no output)")
            elif i == 0 or not g["diff"]:
                for line in g["text"].splitlines():
                    log.write_line(f"  {line}")
            else:
                for line in g["diff"][2:]:  # the ---/+++ header names the two groups
                    log.write_line(f"  {line}")
            log.write_line("")

    def engine_events(self, events: list[Event]) -> None:
        if any(isinstance(e, FanOutHost | FanOutDone) and fanout_of(e) == self.fanout_id
               for e in events):
            self.refresh_data()

    def action_back(self) -> None:
        self.app.pop_screen()


class PastFanOutsScreen(TableScreen):
    """Fan-outs on record, newest first; Enter shows one in the fan-out screen."""

    WATCHES = (FanOutDone,)
    TITLE_TEXT = "6 Fan-out › past"
    COLUMNS = (Column("id", "ID", 1), Column("when", "WHEN", 3), Column("age", "AGE", 2),
               Column("by", "BY", 4), Column("pattern", "PATTERN", 1),
               Column("command", "COMMAND", 2, shrink=True), Column("result", "RESULT", 1))
    BINDINGS = [Binding("enter", "choose", "Show", id="fanout_past.show"),
                Binding("escape", "back", "Back", show=False, id="fanout_past.back"),
                Binding("q", "back", "Back", show=False, id="fanout_past.quit")]

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        now = self.now()
        rows = []
        for rec in self.fleet.engine.fanout_list(200):
            started = rec.get("started_at")
            result = counts_text(rec.get("hosts", {}))
            rows.append((str(rec["id"]), (
                Text(f"#{rec['id']}", style="bold"), time_cell(started, now),
                age_cell(started, now),
                Text(rec.get("requested_by") or ""), Text(rec.get("pattern") or ""),
                Text(rec.get("command") or ""), result),
                f"{rec['id']} {rec.get('pattern')} {rec.get('command')} {result.plain}"))
        self.set_rows(rows)

    def action_choose(self) -> None:
        key = self.table.selected_key()
        self.dismiss(int(key) if key else None)

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_choose()

    def action_back(self) -> None:
        self.dismiss(None)
