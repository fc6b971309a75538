"""Logs: the configured sources merged into one live view, lnav-style.

Each line shows its source (in the source's colour) and is coloured by level. `/`
filters (regex, `!` inverts), `e`/`E` jump to the next/previous error, `space` pauses
the view while lines keep arriving (held, counted, shown on resume). A header line per
source counts levels and draws the error rate of the last ten minutes. Memory stays
bounded: the view keeps the last ``VIEW_LINES``; the monitor a ring per source; the rest
stays in the files.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from core.events import Event, LogLines
from core.logs.stamps import merge_by_time
from tui.palette import source_style, style
from tui.screens.base import FleetScreen
from tui.screens.hosts import sparkline
from tui.widgets.common import FilterBar, RowFilter
from tui.widgets.log_lines import display_text
from tui.widgets.merged_log import MergedLog

VIEW_LINES = 5000
CATCH_UP_LINES = 100  # per source, of what came while hidden (the rest is in the file)
LEVEL_ROLES = {"error": "error", "warning": "warning", "debug": "debug",
               "skipped": "skipped_lines"}  # info: plain
PALETTE = ("cyan", "magenta", "green", "blue", "yellow", "bright_cyan", "bright_magenta")


class LogsScreen(FleetScreen):
    TITLE_TEXT = "8 Logs"
    DEFAULT_CSS = """
    LogsScreen #sources { height: auto; max-height: 8; padding: 0 1; }
    LogsScreen #paused { height: 1; padding: 0 1; display: none; }
    LogsScreen #paused.-shown { display: block; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="logs.filter"),
        Binding("e", "next_error", "Next error", id="logs.next_error"),
        Binding("E", "previous_error", "Previous error", id="logs.previous_error"),
        Binding("space", "pause", "Pause", id="logs.pause"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="logs.clear_filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.lines: deque[tuple[str, str | None, str]] = deque(maxlen=VIEW_LINES)
        self.shown: list[tuple[str, str | None, str]] = []  # what the view holds, in order
        self.held: list[tuple[str, str | None, str]] = []
        self.paused = False
        self.row_filter = RowFilter()
        self.colours: dict[str, str] = {}
        # per source, the time of the newest line shown (read by the first show, or
        # brought by an event): an event of lines already shown (the first show read
        # them while it was on its way) does not show them twice
        self.loaded_until: dict[str, float] = {}
        self.first_shown = False
        self._missed: dict[str, LogLines] = {}  # per source, while hidden

    def compose_body(self) -> ComposeResult:
        yield Static("", id="sources")
        yield Static("", id="paused")
        yield MergedLog(VIEW_LINES, id="view")
        yield FilterBar(placeholder="filter: regex, !regex inverts")

    @property
    def view(self) -> MergedLog:
        return self.query_one("#view", MergedLog)

    def on_mount(self) -> None:
        super().on_mount()
        self.view.focus()

    # ------------------------------------------------------------------ data ----
    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        engine = self.fleet.engine
        if not engine.has_service("logs"):
            self.query_one("#sources", Static).update(
                "No log sources configured: add a [sources.NAME] table to the config "
                "(path = \"/var/log/app.log\" or command = \"journalctl -f\").")
            return
        if not self.first_shown:  # what the monitor already holds, less what events brought
            self.first_shown = True
            backlog = {}
            for name in engine.log_sources():
                since = self.loaded_until.get(name)
                backlog[name] = [line for line in engine.log_recent(name, 500)
                                 if since is None or line[0] > since]
            merged = merge_by_time(backlog)  # as lnav: by the lines' own timestamps
            for t, name, _lvl, _text in merged:
                self.loaded_until[name] = max(t, self.loaded_until.get(name, t))
            self._add([(name, lvl, text) for _t, name, lvl, text in merged])
        self._show_stats()

    def _colour(self, source: str, configured: str | None = None) -> str:
        if source not in self.colours:
            self.colours[source] = configured or PALETTE[len(self.colours) % len(PALETTE)]
        return self.colours[source]

    def _show_stats(self) -> None:
        engine = self.fleet.engine
        if not engine.has_service("logs"):
            return
        out = Text()
        for st in engine.log_stats():
            if out:
                out.append("\n")
            colour = self._colour(st["source"], st["colour"])
            out.append(f"{st['source']:<12}", style=f"bold {source_style(colour)}".strip())
            levels = st["levels"]
            out.append(f" {st['lines']:>8,} {'line ' if st['lines'] == 1 else 'lines'}  ")
            out.append(f"{levels.get('error', 0)} error", style=style("error"))
            out.append(f"  {levels.get('warning', 0)} warning", style=style("warning"))
            out.append(f"  {levels.get('info', 0)} info  {levels.get('debug', 0)} debug  ")
            rate = st["error_rate"]
            top = max(rate, default=0) or 1
            out.append(sparkline(rate, 30, top), style=style("bad"))
        self.query_one("#sources", Static).update(out)

    def missed_events(self, events: list[Event]) -> None:
        """Hidden: the newest CATCH_UP_LINES lines of each source are kept and shown when
        the screen is shown again; older ones are counted in a "lines not shown" note,
        as a flood is (they are in the file)."""
        super().missed_events(events)
        for e in events:
            if isinstance(e, LogLines):
                kept = self._missed.get(e.source)
                lines = (kept.lines if kept else []) + list(e.lines)
                skipped = (kept.skipped if kept else 0) + e.skipped
                over = max(0, len(lines) - CATCH_UP_LINES)
                self._missed[e.source] = LogLines(source=e.source, lines=lines[over:],
                                                  skipped=skipped + over)

    def catch_up(self) -> None:
        missed, self._missed = self._missed, {}
        if missed and self.is_current:
            self.engine_events(list(missed.values()))
        elif missed:
            self._missed = missed
        super().catch_up()

    def engine_events(self, events: list[Event]) -> None:
        new = []
        batch: dict[str, list[tuple[float, str | None, str]]] = {}
        for e in events:
            if isinstance(e, LogLines):
                source = e.source
                skipped = e.skipped
                if skipped:  # a flood: the monitor sends the newest lines of each batch
                    new.append((source, "skipped", f"… {skipped:,} lines not shown, they "
                                                   "came too fast (they are in the file)"))
                seen = self.loaded_until.get(source)
                fresh = [(t, lvl, text) for t, lvl, text in e.lines if seen is None or t > seen]
                if fresh:
                    self.loaded_until[source] = max(t for t, _lvl, _text in fresh)
                batch.setdefault(source, []).extend(fresh)
        # one poll reads each source in a block: the blocks of a batch interleave by the
        # lines' own timestamps, as the backlog does
        new += [(source, lvl, text) for _t, source, lvl, text in merge_by_time(batch)]
        if new:
            self._add(new)
            self._show_stats()
        super().engine_events(events)

    def _add(self, items: list[tuple[str, str | None, str]]) -> None:
        if self.paused:
            self.held += items
            self.held = self.held[-VIEW_LINES:]
            self._show_paused()
            return
        self.lines.extend(items)
        kept = [item for item in items if self.row_filter.keep(f"{item[0]} {item[2]}")]
        self.view.write_lines(self._line(item) for item in kept[-VIEW_LINES:])
        self.shown += kept
        del self.shown[:-VIEW_LINES]
        if self.row_filter.regex is not None:
            self.query_one(FilterBar).show_count(len(self.shown), len(self.lines))

    def _line(self, item: tuple[str, str | None, str]) -> Text:
        source, level, text = item
        line = Text()
        line.append(f"{source:<10} ", style=source_style(self._colour(source)))
        line.append(display_text(text),  # a log is hostile input: no escapes shown
                    style=style(LEVEL_ROLES[level]) if level in LEVEL_ROLES else "")
        return line

    def _rerender(self) -> None:
        view = self.view
        view.clear()
        self.shown = [i for i in self.lines if self.row_filter.keep(f"{i[0]} {i[2]}")]
        view.write_lines(self._line(item) for item in self.shown)

    # ----------------------------------------------------------------- keys ----
    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            held, self.held = self.held, []
            self._add(held)
        self._show_paused()

    def _show_paused(self) -> None:
        bar = self.query_one("#paused", Static)
        bar.set_class(self.paused, "-shown")
        bar.update(Text(f"‖ paused: {len(self.held)} new lines held (space resumes)",
                        style=style("interrupted")))

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        if bar.value or bar.has_class("-shown"):
            bar.action_close()
            self.view.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "filter":
            return
        self.row_filter = RowFilter.parse(event.value)
        bar = self.query_one(FilterBar)
        if self.row_filter.error is None:
            self._rerender()
            bar.show_count(len(self.shown), len(self.lines))
        else:
            bar.show_count(0, 0, self.row_filter.error)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter" and not self.row_filter.error:
            self.view.focus()

    def _jump(self, step: int) -> None:
        view = self.view
        errors = [i for i, item in enumerate(self.shown) if item[1] == "error"]
        if not errors:
            self.notify("no error lines in view", severity="warning")
            return
        here = int(view.scroll_y)
        later = [i for i in errors if (i > here if step > 0 else i < here)]
        target = (later[0] if step > 0 else later[-1]) if later else (
            errors[0] if step > 0 else errors[-1])
        view.auto_scroll = False
        view.scroll_to(y=target, animate=False)

    def action_next_error(self) -> None:
        self._jump(1)

    def action_previous_error(self) -> None:
        self._jump(-1)

