"""A preview pane beside a table (lazydocker, k9s's describe): what the row under the
cursor holds, without opening it. Beside the table from WIDE_FROM columns, where it is
shown until toggled off; below it when narrower, where it is hidden until toggled on."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

WIDE_FROM = 120  # columns: from here the pane sits beside the table and shows by default
TAIL_BYTES = 16_384  # of a run's output: the end of it is what a preview is for
TAIL_LINES = 40


class Preview(VerticalScroll):
    """Scrolls when the text is longer than the pane; never takes the focus."""

    DEFAULT_CSS = """
    Preview { border-left: solid $panel-lighten-2; padding: 0 1; display: none; }
    Preview.-below { border-left: none; border-top: solid $panel-lighten-2;
                     height: 40%; width: 1fr; }
    Preview.-beside { width: 45%; height: 1fr; }
    Preview.-shown { display: block; }
    """
    can_focus = False

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(id="preview-text")

    def show_text(self, text: Text | str) -> None:
        self.query_one("#preview-text", Static).update(text)
        self.scroll_end(animate=False)


def read_tail(path: object) -> str:
    """The last TAIL_LINES lines of a file (read from its last TAIL_BYTES), '' if absent."""
    try:
        with open(path, "rb") as f:  # type: ignore[call-overload]
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    if size > TAIL_BYTES and lines:
        lines = lines[1:]  # the first may be cut
    return "\n".join(lines[-TAIL_LINES:])
