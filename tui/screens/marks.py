"""Marks on a table screen, k9s style: space marks the row under the cursor (and moves
on), `*` marks every visible row (again: unmarks them), Esc clears the marks. An action
(ack, silence, run, pause, cancel) applies to the marked rows, or to the row under the
cursor when none is marked."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding

MARK = "◆ "

BINDINGS = [
    Binding("space", "mark", "Mark", show=False, id="table.mark"),
    Binding("asterisk", "mark_all", "Mark all", show=False, id="table.mark_all"),
]


def marked_cells(cells: tuple[Any, ...]) -> tuple[Any, ...]:
    """A marked row: its first cell carries the mark, in reverse so it reads without
    colour too."""
    first = cells[0] if cells else ""
    text = Text(MARK, style="bold reverse")
    text.append_text(first if isinstance(first, Text) else Text(str(first)))
    return (text, *cells[1:])


class Marks:
    """A mixin for TableScreen: the marked keys and the rows an action applies to."""

    marked: set[str]

    def action_mark(self) -> None:
        table: Any = self.table  # type: ignore[attr-defined]
        key = table.selected_key()
        if key is None:
            return
        self.marked ^= {key}
        row = table.cursor_row
        self.render_rows()  # type: ignore[attr-defined]
        if row + 1 < table.row_count:
            table.move_cursor(row=row + 1, animate=False)

    def action_mark_all(self) -> None:
        visible = self.visible_keys()
        if visible and set(visible) <= self.marked:
            self.marked -= set(visible)
        else:
            self.marked |= set(visible)
        self.render_rows()  # type: ignore[attr-defined]

    def visible_keys(self) -> list[str]:
        keep = self.row_filter.keep  # type: ignore[attr-defined]
        return [k for k, _cells, text in self._rows if keep(text)]  # type: ignore[attr-defined]

    def chosen_keys(self) -> list[str]:
        """The marked rows still shown, in table order; else the row under the cursor."""
        if self.marked:
            return [k for k in self.visible_keys() if k in self.marked]
        key = self.table.selected_key()  # type: ignore[attr-defined]
        return [] if key is None else [key]

    def clear_marks(self) -> bool:
        if not self.marked:
            return False
        self.marked = set()
        self.render_rows()  # type: ignore[attr-defined]
        return True
