"""Search and error jumps in a LogView: the search box, the search in force (a
case-insensitive regex, highlighted while it is typed), and finding the next match or
error line, which scans the file in a worker thread so a big log never holds up a key.
"""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input
from textual.worker import get_current_worker

from core.logs.index import LogIndex

if TYPE_CHECKING:
    from tui.widgets.log_view import LogView


class SearchPrompt(ModalScreen[str | None]):
    """A one-line search box at the bottom, over the log; Enter searches, Escape cancels.

    While typing, the view highlights what the pattern matches."""

    DEFAULT_CSS = """
    SearchPrompt { background: transparent; align: left bottom; }
    SearchPrompt > Input { dock: bottom; width: 100%; height: 1; border: none;
                           padding: 0 1; background: $panel; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False, id="log.search_cancel")]

    def __init__(self, search: LogSearch, initial: str = "") -> None:
        super().__init__()
        self._search = search
        self._initial = initial

    def compose(self) -> ComposeResult:
        yield Input(self._initial, placeholder="search (regex, case-insensitive); Enter, Esc",
                    select_on_focus=True, compact=True, id="log-search")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._search.preview(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class LogSearch:
    """One view's search: the pattern in force and the jumps to matches and errors."""

    def __init__(self, view: LogView) -> None:
        self.view = view
        self.regex: re.Pattern[str] | None = None  # the applied search
        self.text = ""

    @staticmethod
    def compile(text: str) -> re.Pattern[str]:
        """The regex a search text stands for (case-insensitive); raises re.error."""
        return re.compile(text, re.IGNORECASE)

    def prompt(self) -> None:
        self.view.app.push_screen(SearchPrompt(self, self.text), self._entered)

    def preview(self, text: str) -> None:
        """Highlight what `text` matches (while it is typed); a bad regex shows nothing."""
        try:
            regex = self.compile(text) if text else None
        except re.error:
            regex = None
        self.view.set_highlight(regex)

    def _entered(self, text: str | None) -> None:
        if text is None:  # cancelled: back to the search in force
            self.view.set_highlight(self.regex)
            return
        self.set(text)

    def set(self, text: str, *, jump: bool = True) -> bool:
        """Search for `text` (a case-insensitive regex; empty clears the search) and,
        with `jump`, move to the first match from the cursor on. A bad regex is told
        in a notification; returns whether the search was set."""
        view = self.view
        if not text:
            self.regex, self.text = None, ""
            view.set_highlight(None)
            return True
        try:
            regex = self.compile(text)
        except re.error as e:
            view.notify(f"bad search pattern {text!r}: {e}", severity="error")
            view.set_highlight(self.regex)
            return False
        self.regex, self.text = regex, text
        view.set_highlight(regex)
        if jump:
            self._find("search", view.cursor_line, backward=False)
        return True

    def next_match(self) -> None:
        if self.regex is None:
            self.view.notify("no search yet: press / to search", severity="warning")
            return
        self._find("search", self.view.cursor_line + 1, backward=False)

    def prev_match(self) -> None:
        if self.regex is None:
            self.view.notify("no search yet: press / to search", severity="warning")
            return
        self._find("search", self.view.cursor_line - 1, backward=True)

    def next_error(self) -> None:
        self._find("error", self.view.cursor_line + 1, backward=False)

    def prev_error(self) -> None:
        self._find("error", self.view.cursor_line - 1, backward=True)

    def _find(self, what: str, start: int, *, backward: bool) -> None:
        index = self.view.index
        if index is None or index.line_count == 0:
            self.view.notify("the log is empty", severity="warning")
            return
        self.view.run_worker(partial(self._scan, index, what, self.regex, start, backward),
                             name="find", group="logview-find", exclusive=True,
                             exit_on_error=False, thread=True)

    def _scan(self, index: LogIndex, what: str, regex: re.Pattern[str] | None, start: int,
              backward: bool) -> None:
        """In the worker thread: the line found, handed back to the UI thread."""
        n = index.line_count
        start = max(0, min(start, n - 1))
        if what == "search":
            assert regex is not None
            found = index.search(regex, start, backward=backward, wrap=True)
        else:
            found = index.next_level(start, {"error"}, backward=backward)
        if get_current_worker().is_cancelled:
            return
        self.view.app.call_from_thread(self._found, index, what, found, start, backward)

    def _found(self, index: LogIndex, what: str, found: int | None, start: int,
               backward: bool) -> None:
        view = self.view
        if index is not view.index:
            return
        if found is None:
            if what == "search":
                view.notify(f"no match for /{self.text}", severity="warning")
            else:
                view.notify("no error line " + ("above" if backward else "below"),
                            severity="information")
            return
        if what == "search" and (found > start if backward else found < start):
            view.notify("search wrapped around", timeout=2)
        view.jump_to(found)
