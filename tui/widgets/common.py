"""Small widgets every screen shares: the status bar, a keyboard table, the filter bar
(the key bar is in tui/widgets/keybar.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from textual.binding import Binding
from textual.scroll_view import ScrollView
from textual.widgets import DataTable, Static

from tui.widgets.keybar import KeyBar
from tui.widgets.prompt import LineInput, PromptLine

__all__ = ["FilterBar", "KeyBar", "NavTable", "RowFilter", "StatusBar"]


class StatusBar(Static):
    """Top line: where you are, how the engine is attached, and what needs a look."""

    DEFAULT_CSS = """
    StatusBar { dock: top; height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """


class NavTable(DataTable):
    """A row table driven by vi-style motions as well as the arrow keys."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g", "scroll_top", "Top", show=False, id="table.top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="table.bottom"),
    ]

    def __init__(self, **kw: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)  # type: ignore[arg-type]
        self._looks: dict[Any, tuple[Any, ...]] = {}  # focus/hover state -> its look

    def notify_style_update(self) -> None:
        """Textual restyles every widget of a screen each time it is shown again (and on
        focus and blur), and a DataTable then throws away every rendered cell: a screen
        switch cost 40-100 ms of drawing cells again. Its caches are keyed by the focus
        state already, so here they go only when the look of a state changed (a theme,
        a stylesheet); a focus change only drops the per-cell style lookup."""
        ScrollView.notify_style_update(self)  # the widget's own style caches
        state = self.get_pseudo_class_state()
        look = (self.rich_style, *(self.get_component_rich_style(name, default=Style())
                                   for name in sorted(self.COMPONENT_CLASSES)))
        known = self._looks.get(state)
        if known is not None and known != look or len(self._looks) > 8:
            self._looks = {}
            super().notify_style_update()  # everything is drawn again
        else:
            self._get_styles_to_render_cell.cache_clear()
            self._styles_cache.clear()
            self.refresh()
        self._looks[state] = look

    def action_scroll_top(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return None if key is None else str(key.value)


@dataclass
class RowFilter:
    """`/` filter text: a regex over the row's text; a leading `!` keeps rows NOT matching.

    Screens may also read `field=value` words (e.g. `state=failed`) before the regex.
    """

    regex: re.Pattern[str] | None = None
    invert: bool = False
    fields: dict[str, str] | None = None
    error: str | None = None

    @classmethod
    def parse(cls, text: str, field_names: tuple[str, ...] = ()) -> RowFilter:
        fields: dict[str, str] = {}
        rest: list[str] = []
        for word in text.split():
            key, sep, value = word.partition("=")
            if sep and key in field_names:
                fields[key] = value
            else:
                rest.append(word)
        pattern = " ".join(rest)
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:]
        if not pattern:
            return cls(None, invert, fields)
        try:
            return cls(re.compile(pattern, re.IGNORECASE), invert, fields)
        except re.error as e:
            return cls(None, False, fields, f"bad regex {pattern!r}: {e}")

    def keep(self, text: str) -> bool:
        if self.regex is None:
            return True
        return bool(self.regex.search(text)) != self.invert


class FilterBar(PromptLine):
    """The `/` line under a table: typing filters at once (with a live count of what
    matches), Enter returns to the table, Esc clears it. Its input is `#filter`."""

    DEFAULT_CSS = """
    FilterBar { display: none; margin-bottom: 1; }
    FilterBar.-shown { display: block; }
    """

    BINDINGS = [Binding("escape", "close", "Clear filter", id="filter.close")]

    def __init__(self, placeholder: str = "", **kw: Any) -> None:
        super().__init__("/", LineInput(placeholder=placeholder, id="filter"), **kw)

    @property
    def value(self) -> str:
        return self.field.value

    def open(self) -> None:
        self.add_class("-shown")
        self.field.focus()

    def show_count(self, shown: int, total: int, error: str | None = None) -> None:
        """`3 of 120` while a filter is typed; a bad regex says so instead."""
        if error:
            self.say(error, error=True)
        else:
            self.say(f"{shown} of {total}" if self.field.value else "")

    def action_close(self) -> None:
        self.field.value = ""
        self.remove_class("-shown")
        self.screen.focus_next(NavTable) if self.screen else None
