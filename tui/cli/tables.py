"""The CLI's tables, fitted to the width they are printed in: each row one line.

A table's narrow columns (ids, names, states, times) keep their full width; the long
text columns (a run's REASON, a fan-out's COMMAND) take what is left and are cut with an
ellipsis. A name longer than NAME_CUT (a generated job, an FQDN) is cut to it before
any column goes. When even then the narrow columns do not fit, the columns a person can
do without (an exit code the reason repeats, a duration) go first, in the order each
table gives.

The width is the console's (`tui.cli.common.console`): the terminal's, or COLUMNS when
it is set; piped with no COLUMNS nothing is cut, as `kubectl get` and `ps` do, so a
`| grep` sees whole reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

GAP = 2  # between two columns (padding 1 on either side, none at the edges)
MIN_LONG = 30  # a long column gets at least this much (or all its text) before others go
NAME_CUT = 32  # a narrow column is cut to this (as the console's tables) before others go
LONG_SHORTEST = 12  # ...or before a long column is left less than this


@dataclass(frozen=True)
class Col:
    """One column: its header, whether it is the long text, and when it may go.

    `drop` 0 is always shown; the others go highest first when the narrow columns
    leave a long column less than MIN_LONG."""

    header: str
    long: bool = False
    drop: int = 0
    justify: str = "left"


def print_table(out: Any, cols: Sequence[Col], rows: Iterable[Sequence[Any]],
                empty: str = "") -> None:
    """Print rows (rich markup strings or Text) under `cols`, fitted to `out.width`;
    none: the line `empty` says instead of a header over nothing ("no runs")."""
    from rich.table import Table

    cells = [[_one_line(c) for c in row] for row in rows]
    if not cells and empty:
        out.print(empty, markup=False, highlight=False)
        return
    natural = [max([len(col.header), *(row[i].cell_len for row in cells)])
               for i, col in enumerate(cols)]
    shown, widths = fit(cols, natural, out.width)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for i in shown:
        table.add_column(cols[i].header, justify=cols[i].justify,  # type: ignore[arg-type]
                         width=widths[i], no_wrap=True, overflow="ellipsis")
    for row in cells:
        table.add_row(*(row[i] for i in shown))
    _print_trimmed(out, table)


def fit(cols: Sequence[Col], natural: Sequence[int], width: int) -> tuple[list[int], list[int]]:
    """Which columns to show and each one's width, for a total of at most `width`.

    Narrow columns get their natural width (one over NAME_CUT only what the long ones
    leave); long ones share the rest, the shortest served first (each gets all it
    needs, or an equal part of what is left)."""
    shown = list(range(len(cols)))
    while True:
        narrow = sum(min(natural[i], NAME_CUT) for i in shown if not cols[i].long)
        room = width - narrow - GAP * (len(shown) - 1)
        longs = [i for i in shown if cols[i].long]
        wanted = sum(min(natural[i], MIN_LONG) for i in longs)
        droppable = [i for i in shown if cols[i].drop]
        if room >= wanted or not droppable:
            break
        shown.remove(max(droppable, key=lambda i: (cols[i].drop, i)))
    widths = list(natural)
    over = [i for i in shown if not cols[i].long and natural[i] > NAME_CUT]
    extra = sum(natural[i] - NAME_CUT for i in over)
    # a long name stays whole while the long text keeps LONG_SHORTEST of its own
    kept = max(0, min(extra, room - sum(min(natural[i], LONG_SHORTEST) for i in longs)))
    cut = extra - kept
    for i in sorted(over, key=lambda i: -natural[i]):  # the longest gives way first
        give = min(cut, natural[i] - NAME_CUT)
        widths[i] -= give
        cut -= give
    room -= kept
    left = max(room, len(longs))
    for n, i in enumerate(sorted(longs, key=lambda i: natural[i])):
        share = left // (len(longs) - n)
        widths[i] = max(1, min(natural[i], share))
        left -= widths[i]
    return shown, widths


def _print_trimmed(out: Any, table: Any) -> None:
    """The table's lines without the spaces that pad the last column: nothing trails
    a line for `grep`, a diff or a copy to paste."""
    from rich.segment import Segment, Segments

    segments: list[Segment] = []
    for line in out.render_lines(table, pad=False):
        while line and not line[-1].text.strip() and not _has_background(line[-1]):
            line.pop()
        if line and not _has_background(line[-1]):
            line[-1] = Segment(line[-1].text.rstrip(" "), line[-1].style, line[-1].control)
        segments += [*line, Segment.line()]
    out.print(Segments(segments))


def _has_background(segment: Any) -> bool:
    return segment.style is not None and segment.style.bgcolor is not None


def _one_line(cell: Any) -> Any:
    """A cell as rich Text on one line: a line break or tab in a reason is a space."""
    from rich.text import Text

    text = cell if isinstance(cell, Text) else Text.from_markup(str(cell))
    for sep in ("\r\n", "\n", "\r", "\t"):
        if sep in text.plain:
            text = Text(" ").join(text.split(sep, allow_blank=True))
    return text
