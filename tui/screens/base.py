"""What every console screen shares: status bar, footer, engine refresh, table filter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Input

from core.events import (
    Event,
    JobChanged,
    RunFinished,
    RunQueued,
    RunRetrying,
    RunStarted,
    ViewRefreshed,
)
from core.jobs.runs import FAILED_STATES, FAILING_WINDOW
from tui.keys import key_clashes
from tui.screens.marks import BINDINGS as MARK_BINDINGS
from tui.screens.marks import Marks, marked_cells
from tui.widgets.common import FilterBar, KeyBar, RowFilter, StatusBar
from tui.widgets.preview import WIDE_FROM, Preview
from tui.widgets.table import Column, FleetTable, columns_of

CATCH_UP_AFTER = 0.05  # s after a screen is shown again: its first frame is out by then
PREVIEW_AFTER = 0.08  # s: the cursor rests this long before the preview follows it
# what changes run listings (the last: an attached console reread the state)
RUN_EVENTS = (RunQueued, RunStarted, RunFinished, RunRetrying, ViewRefreshed)


class Console(Protocol):
    """What screens ask of the console app (FleetdeckApp is one): its engine and verbs.
    Screens know the app through this, not by importing it: no import cycle."""

    engine: Any
    engine_ready: bool
    actor: Any

    def clock(self) -> float: ...
    def guard(self, verb: str) -> bool: ...
    def execute(self, line: str) -> None: ...
    def notify(self, message: str, **kw: Any) -> None: ...
    def run_job(self, job: str) -> None: ...
    def set_paused(self, job: str, paused: bool) -> None: ...
    def cancel_run(self, run_id: int) -> None: ...
    def cancel_runs(self, run_ids: list[int]) -> None: ...
    def open_run(self, run_id: int) -> None: ...
    def cmd_runs(self, job: str | None = None) -> None: ...
    def open_alert(self, alert_id: int) -> None: ...
    def ack_alert(self, alert_id: int) -> None: ...
    def silence(self, target: str, duration: str) -> None: ...


class FleetScreen(Screen[None]):
    """A top-level screen: pulls its data from the engine, then follows events."""

    TITLE_TEXT = ""

    @property
    def fleet(self) -> Console:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield from self.compose_body()
        yield KeyBar()

    def compose_body(self) -> ComposeResult:  # pragma: no cover - overridden
        yield from ()

    # what happened while the screen was hidden (another mode shown): caught up when it is
    # shown again, after it is drawn, so a key shows its screen at once
    stale = False
    catch_up_pending = False  # shown again, not caught up yet: keys wait (tui/keys.py)
    laid_out = False  # laid out ahead, while hidden (tui/pump.py)

    def on_mount(self) -> None:
        self._say_key_clashes()
        self.refresh_data()

    def _say_key_clashes(self) -> None:
        keymap = self.fleet.engine.config.keys
        if not keymap:
            return
        mine = [b for cls in type(self).__mro__ for b in vars(cls).get("BINDINGS", ())]
        said = self.app.__dict__.setdefault("key_clashes_said", set())  # once per console
        for clash in key_clashes([*self.app.BINDINGS, *mine], keymap):
            if clash in said:
                continue
            said.add(clash)
            self.notify(f"[keys] {clash}: one key for both on this screen; one of them has "
                        f"no key now", severity="warning", timeout=10)

    def on_screen_resume(self) -> None:
        # after the first frame: call_after_refresh may run before it when nothing is
        # dirty yet, and a catch-up that changes a table makes it draw every cell again
        self.catch_up_pending = True
        self.set_timer(CATCH_UP_AFTER, self._caught_up)

    def _caught_up(self) -> None:
        try:
            self.catch_up()
        finally:
            self.catch_up_pending = False

    def now(self) -> float:
        return self.fleet.clock()

    def refresh_data(self) -> None:
        """Pull the whole view from the engine (on show, and when the engine is ready)."""
        self.stale = False
        self.update_status()

    # the events that change what this screen shows (engine_events reacts to them)
    WATCHES: tuple[type[Event], ...] = (*RUN_EVENTS, JobChanged)

    def missed_events(self, events: list[Event]) -> None:
        """A batch of events while hidden; a screen that can apply them later keeps them."""
        if not self.stale and any(isinstance(e, self.WATCHES) for e in events):
            self.stale = True

    def catch_up(self) -> None:
        """Shown again: after events it missed the default reads the view again; the
        status bar's counts are always brought up to date."""
        if not self.is_current:
            return
        if self.stale:
            self.refresh_data()
        else:
            self.update_status()

    def engine_events(self, events: list[Event]) -> None:
        """A batch of events; the default is a full refresh when anything run-like came."""
        if any(isinstance(e, (*RUN_EVENTS, JobChanged)) for e in events):
            self.refresh_data()

    def output_arrived(self, run_ids: set[int]) -> None:
        """New output lines of these runs reached their log files since the last batch."""

    def update_status(self) -> None:
        app = self.fleet
        mode = getattr(app.engine, "mode_label", None) or app.mode_label  # attached or not
        # (priority, markup, plain length): the lowest priorities go first when the
        # line would not fit, so "3 alerts firing" is never cut to "│ 3"
        parts: list[tuple[int, str, int]] = []

        def part(priority: int, markup: str, plain: str | None = None) -> None:
            parts.append((priority, markup, len(plain if plain is not None else markup)))

        part(1, "[b]fleetdeck[/b]", "fleetdeck")
        part(2, mode + (" · read-only" if app.read_only else ""))
        part(5, self.TITLE_TEXT)
        if not app.engine_ready:
            part(9, "starting engine…")
        else:
            queue = app.engine.queue()
            running = sum(1 for r in queue if r["state"] == "running")
            queued = len(queue) - running
            failed = app.engine.count_runs(states=list(FAILED_STATES),
                                           since=self.now() - FAILING_WINDOW)
            part(6, f"{running} running · {queued} queued")
            text = f"{failed} failed (6h)"
            part(8, f"[b $error]{failed} failed[/] (6h)" if failed else text, text)
            firing = sum(1 for a in app.engine.list_alerts() if a["status"] == "firing")
            if firing:  # only when there is something to say
                text = f"{firing} alert{'s' if firing > 1 else ''} firing"
                part(9, f"[b $error]{text}[/]", text)
        width = max(20, self.app.size.width - 2)
        shown = [p for p in parts if p[1]]
        while len(shown) > 1 and sum(p[2] for p in shown) + 3 * (len(shown) - 1) > width:
            shown.remove(min(shown, key=lambda p: p[0]))
        try:
            self.query_one(StatusBar).update(" │ ".join(p[1] for p in shown))
        except Exception:
            pass

    def on_resize(self) -> None:
        self.update_status()


class TableScreen(Marks, FleetScreen):
    """A screen whose body is one table with a `/` filter and marks (tui/screens/marks.py)."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="table.filter"),
        Binding("escape", "clear_filter", "Back", show=False, id="table.clear_filter"),
        Binding("w", "wide", "Wide", show=False, id="table.wide"),
        *MARK_BINDINGS,
    ]
    FILTER_FIELDS: tuple[str, ...] = ()
    COLUMNS: tuple[Column | tuple[str, str], ...] = ()  # Column, or (key, label)
    KEY_PREFIX = ""  # binding ids of its sort keys: "<prefix>.sort_<column>"

    def __init_subclass__(cls, **kw: Any) -> None:
        # a column's sort key (shift+letter, k9s style) becomes a binding of its screen;
        # added before Textual merges the class's bindings
        sorts = [c for c in columns_of(cls.__dict__.get("COLUMNS", ())) if c.sort]
        if sorts:
            cls.BINDINGS = [*cls.__dict__.get("BINDINGS", []), *(
                Binding(c.sort, f"sort_column('{c.key}')", f"Sort by {c.label.lower()}", show=False,
                        id=f"{cls.KEY_PREFIX}.sort_{c.key}") for c in sorts)]
        super().__init_subclass__(**kw)

    def __init__(self) -> None:
        super().__init__()
        self.row_filter = RowFilter()
        self._rows: list[tuple[str, tuple[Any, ...], str]] = []  # key, cells, search text
        self.marked: set[str] = set()

    PREVIEW = False  # a preview pane of the row under the cursor (preview_of), v toggles
    preview_open: bool | None = None  # None: as the width decides (tui/widgets/preview.py)

    def compose_body(self) -> ComposeResult:
        table = FleetTable(columns_of(self.COLUMNS), id="table")
        if self.PREVIEW:
            with Container(id="body"):
                yield table
                yield Preview(id="preview")
        else:
            yield table
        yield FilterBar(placeholder="filter: regex, !regex inverts"
                        + (", or " + " ".join(f"{f}=…" for f in self.FILTER_FIELDS)
                           if self.FILTER_FIELDS else ""))

    @property
    def table(self) -> FleetTable:
        return self.query_one("#table", FleetTable)

    # ----------------------------------------------------------------- preview ----
    def preview_of(self, key: str) -> Text | Callable[[], Text]:
        """What the pane shows for this row; a callable is run in a thread (file I/O)."""
        return Text("")

    def action_preview(self) -> None:
        self.preview_open = not self._preview_shown()
        self._layout_preview()

    def _preview_shown(self) -> bool:
        wide = self.app.size.width >= WIDE_FROM
        return wide if self.preview_open is None else self.preview_open

    def _layout_preview(self) -> None:
        if not self.PREVIEW or not self.query("#preview"):
            return
        pane, body = self.query_one(Preview), self.query_one("#body")
        beside = self.app.size.width >= WIDE_FROM
        body.set_class(not beside, "-below")
        pane.set_class(beside, "-beside")
        pane.set_class(not beside, "-below")
        pane.set_class(self._preview_shown(), "-shown")
        self._preview_soon()

    def _preview_soon(self) -> None:
        if self.PREVIEW and self._preview_shown():
            if self._preview_timer is not None:
                self._preview_timer.stop()
            self._preview_timer = self.set_timer(PREVIEW_AFTER, self._update_preview)

    _preview_timer: Any = None
    preview_key: str | None = None  # the row the pane shows now

    def _update_preview(self) -> None:
        key = self.table.selected_key() if self.query("#table") else None
        if key is None:
            self._show_preview(None, Text(""))
            return
        what = self.preview_of(key)
        if callable(what):
            self._preview_in_thread(key, what)
        else:
            self._show_preview(key, what)

    @work(thread=True, exclusive=True, group="preview")
    def _preview_in_thread(self, key: str, read: Callable[[], Text]) -> None:
        text = read()
        self.app.call_from_thread(self._show_preview, key, text)

    def _show_preview(self, key: str | None, text: Text) -> None:
        # a read in a thread may end after the screen lost its widgets (closing, quitting)
        tables, panes = self.query("#table"), self.query(Preview)
        if self.is_mounted and tables and panes and \
                tables.first(FleetTable).selected_key() == key:
            panes.first(Preview).show_text(text)
            self.preview_key = key

    def on_data_table_row_highlighted(self, event: Any) -> None:
        self._preview_soon()

    def on_resize(self) -> None:
        super().on_resize()
        self._layout_preview()

    def action_wide(self) -> None:
        wide = self.table.toggle_wide()
        hidden = self.table.hidden_columns
        self.notify("wide: every column, ←/→ or h/l scroll" if wide else
                    "fit to width" + (f" ({', '.join(hidden)} hidden; w shows them)"
                                      if hidden else ""), timeout=3)

    def action_sort_column(self, column: str) -> None:
        self.table.sort_by(column)

    def on_mount(self) -> None:
        self.table.focus()
        super().on_mount()
        self._layout_preview()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_clear_filter(self) -> None:
        if self.clear_marks():  # Esc: marks first, then the filter, then back
            return
        bar = self.query_one(FilterBar)
        if bar.value or bar.has_class("-shown"):
            bar.action_close()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "filter":
            return
        self.row_filter = RowFilter.parse(event.value, self.FILTER_FIELDS)
        if self.row_filter.error is None and self.row_filter.fields:
            self.row_filter.error = self.field_error(self.row_filter.fields)
        if self.row_filter.error is None:
            self.filter_changed()
            self.render_rows()
        else:
            self.query_one(FilterBar).show_count(0, 0, self.row_filter.error)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter":
            return
        if self.row_filter.error:
            return  # the line says why; the person fixes it or Esc clears it
        self.table.focus()

    def filter_changed(self) -> None:
        """Hook for screens whose filter fields change what they fetch."""

    def field_error(self, fields: dict[str, str]) -> str | None:
        """Hook: what is wrong with the filter's key=value fields (a value that cannot
        be read must say so, not filter as if it were absent)."""
        return None

    def set_rows(self, rows: list[tuple[str, tuple[Any, ...], str]]) -> None:
        self._rows = rows
        self.render_rows()

    def render_rows(self) -> None:
        tables = self.query("#table")
        if not tables:
            return  # not composed yet: on_mount renders
        table = tables.first(FleetTable)
        keep = [r for r in self._rows if self.row_filter.keep(r[2])]
        self.query_one(FilterBar).show_count(len(keep), len(self._rows))
        table.show([(key, marked_cells(cells) if key in self.marked else cells)
                    for key, cells, _text in keep])
        self._preview_soon()
