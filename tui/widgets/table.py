"""Tables that fit, k9s style: columns by priority give way as the width falls, a wide
mode keeps them all and scrolls sideways, any column sorts (times by time, numbers by
number), and rows change in place. A refresh redraws the rows that changed; it never
clears the table and measures every cell again (that cost a screen 100-300 ms to show)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding
from textual.widgets.data_table import ColumnKey, RowKey

from tui.widgets.common import NavTable

PADDING = 2  # a DataTable cell's padding, both sides together
MIN_SHRUNK = 12  # a shrinking column keeps at least this much of its text
LONG = 32  # any other column is cut to this before a column goes: one long name (a
           # generated job, an FQDN) must not hide every other column
NUMBER = re.compile(r"^[#~]?(-?\d+(?:\.\d+)?)\s*%?$")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    priority: int = 1  # 1: always shown; the highest number gives way first as width falls
    sort: str = ""  # its sort key, shift+letter as in k9s ("" for none)
    shrink: bool = False  # free text (a reason, a detail): cut with "…" to the width left


def columns_of(spec: Iterable[Column | tuple[str, str]]) -> tuple[Column, ...]:
    return tuple(c if isinstance(c, Column) else Column(*c) for c in spec)


class SortText(Text):
    """A cell whose order is not its text: a time ("14:02:11", "3m ago") sorts by the
    timestamp, a duration by its seconds."""

    __slots__ = ("sort_value",)

    def __init__(self, text: str, sort_value: Any, style: str = "") -> None:
        super().__init__(text, style=style)
        self.sort_value = sort_value


def sort_value(cell: Any) -> tuple[int, Any]:
    """Numbers before words, empty cells last; numbers by value, words without case."""
    value = getattr(cell, "sort_value", None)
    if value is None:
        text = cell.plain if isinstance(cell, Text) else str(cell)
        text = text.strip().lstrip("◆ ").strip()
        if text in ("", "-"):
            return (2, "")
        number = NUMBER.match(text)
        if number is None:
            return (1, text.lower())
        value = float(number.group(1))
    return (0, value) if isinstance(value, (int, float)) else (1, str(value).lower())


class FleetTable(NavTable):
    """A NavTable that is handed rows ``(key, cells)`` and keeps itself in step."""

    BINDINGS = [
        Binding("h", "scroll_left", "Left", show=False, id="table.left"),
        Binding("l", "scroll_right", "Right", show=False, id="table.right"),
    ]

    def __init__(self, columns: Sequence[Column], **kw: Any) -> None:
        super().__init__(**kw)
        self.spec = tuple(columns)
        self.wide = False
        self.sort_key: str | None = None  # a column key, or None: the order given
        self.sort_reverse = False
        self._given: list[tuple[str, tuple[Any, ...]]] = []
        self._layout: tuple[tuple[int, ...], dict[int, int]] = ((), {})  # columns, cuts
        self._cells: dict[str, tuple[Any, ...]] = {}  # what each row shows now
        self._order: list[str] = []

    # ------------------------------------------------------------------ the rows ----
    def show(self, rows: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Make the table show ``rows`` (in this order unless a sort is chosen)."""
        self._given = list(rows)
        layout = self._fit()
        if layout != self._layout:
            self._rebuild(layout)
            return
        cols = layout[0]
        wanted = {key: self._shown(cells) for key, cells in self._sorted(self._given)}
        for key in [k for k in self._cells if k not in wanted]:
            self.remove_row(key)
            del self._cells[key]
        col_keys = [self.spec[i].key for i in cols]
        changed: set[int] = set()
        for key, cells in wanted.items():
            old = self._cells.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            elif any(map(_differs, old, cells)):
                for n, (col, before, after) in enumerate(zip(col_keys, old, cells, strict=True)):
                    if _differs(before, after):
                        self.update_cell(key, col, after)
                        changed.add(n)
            self._cells[key] = cells
        if changed:
            self._fit_columns(changed, col_keys)
        added = [k for k in wanted if k not in self._order]
        now = [k for k in self._order if k in wanted] + added  # the table's order now
        order = list(wanted)
        if order != now:
            self._reorder(order)
        else:
            self._order = order

    def _fit_columns(self, changed: set[int], col_keys: list[str]) -> None:
        """Each changed column as wide as its widest cell, measured once per column.
        DataTable's own update_width re-measures the whole column for every cell that
        got narrower: 500 rows changing at once took seconds."""
        for n in changed:
            column = self.columns[ColumnKey(col_keys[n])]
            column.content_width = max([column.label.cell_len,
                                        *(_width(cells[n]) for cells in self._cells.values())])
        self._require_update_dimensions = True
        self.refresh()

    def _reorder(self, order: list[str]) -> None:
        """Rows in this order, as DataTable.sort places them (its sort sees values, not
        keys); the cursor stays on its row."""
        selected = self.selected_key()
        self._order = order
        self._row_locations = TwoWayDict({RowKey(key): i for i, key in enumerate(order)})
        self._update_count += 1
        self.refresh()
        self.reselect(selected)

    def _sorted(self, rows: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, tuple[Any, ...]]]:
        if self.sort_key is None:
            return rows
        i = next(n for n, c in enumerate(self.spec) if c.key == self.sort_key)
        return sorted(rows, key=lambda r: sort_value(r[1][i]), reverse=self.sort_reverse)

    def _shown(self, cells: tuple[Any, ...]) -> tuple[Any, ...]:
        cols, cuts = self._layout
        return tuple(_cut(cells[i], cuts[i]) if i in cuts else cells[i] for i in cols)

    def _rebuild(self, layout: tuple[tuple[int, ...], dict[int, int]]) -> None:
        selected = self.selected_key()
        self.clear(columns=True)
        self._layout = layout
        cols = layout[0]
        for i in cols:
            c = self.spec[i]
            arrow = ("▼" if self.sort_reverse else "▲") if c.key == self.sort_key else ""
            self.add_column(c.label + arrow, key=c.key)
        self._cells, self._order = {}, []
        rows = self._sorted(self._given)
        for key, cells in rows:
            shown = self._shown(cells)
            self.add_row(*shown, key=key)
            self._cells[key] = shown
            self._order.append(key)
        self.reselect(selected)

    def reselect(self, key: str | None) -> None:
        if key is None or key not in self._cells:
            return
        row = self.get_row_index(key)
        if row != self.cursor_row:
            self.move_cursor(row=row, animate=False)

    # ---------------------------------------------------------------- the width ----
    def _fit(self) -> tuple[tuple[int, ...], dict[int, int]]:
        """The columns that fit the width, and where text is cut: first free text shrinks
        (to MIN_SHRUNK at least), then any longer column is cut (to LONG), then whole
        columns go, least important first (the rightmost of equals), never one of
        priority 1. Wide mode keeps everything."""
        every = tuple(range(len(self.spec)))
        width = self.size.width - 1  # the vertical scrollbar's column
        if self.wide or width <= 0:
            return every, {}
        need = {i: max([len(self.spec[i].label) + 1,
                        *(_width(cells[i]) for _k, cells in self._given)]) + PADDING
                for i in every}
        least = {i: min(need[i], (MIN_SHRUNK if self.spec[i].shrink else LONG) + PADDING)
                 for i in every}
        shown = list(every)
        while sum(least[i] for i in shown) > width:
            droppable = [i for i in shown if self.spec[i].priority > 1]
            if not droppable:
                break
            shown.remove(max(droppable, key=lambda i: (self.spec[i].priority, i)))
        over = sum(need[i] for i in shown) - width
        cuts: dict[int, int] = {}
        for free_text in (True, False):  # free text gives way first, the rightmost first
            for i in reversed(shown):
                if over > 0 and self.spec[i].shrink == free_text and need[i] > least[i]:
                    give = min(over, need[i] - least[i])
                    cuts[i] = need[i] - PADDING - give
                    over -= give
        return tuple(shown), cuts

    def on_resize(self, event: events.Resize) -> None:
        layout = self._fit()
        if self._given and layout != self._layout:
            self._rebuild(layout)

    def toggle_wide(self) -> bool:
        self.wide = not self.wide
        self._rebuild(self._fit())
        self.scroll_to(x=0, animate=False)
        return self.wide

    def sort_by(self, key: str) -> None:
        """Sort by this column; the same again reverses; a third time, the order given."""
        if self.sort_key != key:
            self.sort_key, self.sort_reverse = key, False
        elif not self.sort_reverse:
            self.sort_reverse = True
        else:
            self.sort_key, self.sort_reverse = None, False
        self._rebuild(self._fit())

    @property
    def hidden_columns(self) -> list[str]:
        return [c.label for i, c in enumerate(self.spec) if i not in self._layout[0]]


def _differs(before: Any, after: Any) -> bool:
    """Whether a cell must be drawn again: Rich's Text equality ignores its style (a theme
    switch, a state's colour) and a SortText's order."""
    if before is after:
        return False
    if isinstance(before, Text) and isinstance(after, Text):
        return (before.plain != after.plain or before.style != after.style
                or before.spans != after.spans
                or getattr(before, "sort_value", None) != getattr(after, "sort_value", None))
    return bool(before != after)


def _width(cell: Any) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(str(cell))


def _cut(cell: Any, width: int) -> Any:
    text = cell if isinstance(cell, Text) else Text(str(cell))
    if text.cell_len <= width:
        return cell
    cut = text.copy()
    cut.truncate(width, overflow="ellipsis")
    return cut
