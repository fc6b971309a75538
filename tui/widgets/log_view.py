"""LogView: a run's output, offset-indexed, rendering only the visible page.

The file is never loaded whole: `core.logs.index.LogIndex` keeps the byte offset of each
line and the view reads the lines of the page it paints (`render_line`), caching the
rendered strips of recent lines. Big files are indexed in slices between screen
updates; searches and error jumps scan the file in a worker thread.

Keys (each binding has an id for the keymap): j/k or arrows move the cursor line,
g/G (Home/End) go to the top/bottom, PageUp/PageDown, h/l scroll sideways, `f`
toggles follow, `/` searches (a regex, case-insensitive), `n`/`N` next/previous
match, `e`/`E` next/previous error line.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.events import MouseScrollUp, Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input
from textual.worker import get_current_worker

from core.logs.index import LogIndex
from core.logs.levels import ANSI_RE, NOTE_PREFIX, detect_level

MAX_WIDTH = 2000  # cells of a line shown; the rest of a longer line is cut
INDEX_SLICE = 1 << 20  # bytes indexed per step (a few ms), so a key never waits long
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def display_text(line: str) -> str:
    """What the screen shows of a raw log line: no escape sequences or control
    characters, tabs expanded, a carriage-return progress line shows its last state."""
    if "\x1b" in line:
        line = ANSI_RE.sub("", line)
    if "\r" in line:
        line = next((p for p in reversed(line.split("\r")) if p), "")
    if "\t" in line:
        line = line.expandtabs(8)
    if len(line) > MAX_WIDTH:
        line = line[:MAX_WIDTH]
    return _CONTROL.sub("\ufffd", line)


class SearchPrompt(ModalScreen[str | None]):
    """A one-line search box at the bottom, over the log; Enter searches, Escape cancels.

    While typing, the view highlights what the pattern matches."""

    DEFAULT_CSS = """
    SearchPrompt { background: transparent; align: left bottom; }
    SearchPrompt > Input { dock: bottom; width: 100%; height: 1; border: none;
                           padding: 0 1; background: $panel; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False, id="log.search_cancel")]

    def __init__(self, view: LogView, initial: str = "") -> None:
        super().__init__()
        self._view = view
        self._initial = initial

    def compose(self) -> ComposeResult:
        yield Input(self._initial, placeholder="search (regex, case-insensitive); Enter, Esc",
                    select_on_focus=True, compact=True, id="log-search")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._view.preview_search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class LogView(ScrollView, can_focus=True):
    """A log file, live while it grows; see the module docstring."""

    COMPONENT_CLASSES = {
        "logview--error", "logview--warning", "logview--info", "logview--debug",
        "logview--note", "logview--cursor", "logview--cursor-blurred", "logview--match",
        "logview--empty",
    }
    DEFAULT_CSS = """
    LogView { height: 1fr; background: $surface; color: $foreground; }
    LogView > .logview--error { color: $text-error; }
    LogView > .logview--warning { color: $text-warning; }
    LogView > .logview--info { }
    LogView > .logview--debug { color: $text-muted; }
    LogView > .logview--note { color: $text-muted; text-style: italic; }
    LogView > .logview--cursor { background: $block-cursor-background;
                                 color: $block-cursor-foreground; }
    LogView > .logview--cursor-blurred { background: $block-cursor-blurred-background; }
    LogView > .logview--match { text-style: reverse; }
    LogView > .logview--empty { color: $text-muted; text-style: italic; }
    """
    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="log.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="log.up"),
        Binding("g,home", "first", "Top", show=False, id="log.top"),
        Binding("G,end", "last", "Bottom", show=False, id="log.bottom"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="log.page_up"),
        Binding("pagedown,ctrl+f,space", "page_down", "Page down", show=False,
                id="log.page_down"),
        Binding("h,left", "scroll_left", "Left", show=False, id="log.left"),
        Binding("l,right", "scroll_right", "Right", show=False, id="log.right"),
        Binding("f", "toggle_follow", "Follow", id="log.follow"),
        Binding("slash", "search", "Search", id="log.search"),
        Binding("n", "search_next", "Next match", id="log.search_next"),
        Binding("N", "search_prev", "Prev match", show=False, id="log.search_prev"),
        Binding("e", "next_error", "Next error", id="log.next_error"),
        Binding("E", "prev_error", "Prev error", show=False, id="log.prev_error"),
    ]

    follow: reactive[bool] = reactive(True, init=False)
    """Stay at the end and show new lines as they arrive."""

    class CursorMoved(Message):
        """The cursor line changed (0-based `line`, of `line_count`)."""

        def __init__(self, view: LogView, line: int, line_count: int) -> None:
            super().__init__()
            self.view = view
            self.line = line
            self.line_count = line_count

        @property
        def control(self) -> LogView:
            return self.view

    class FollowChanged(Message):
        """Follow mode went on or off."""

        def __init__(self, view: LogView, follow: bool) -> None:
            super().__init__()
            self.view = view
            self.follow = follow

        @property
        def control(self) -> LogView:
            return self.view

    def __init__(self, path: Path | str | None = None, *, follow: bool = True,
                 name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(LogView.follow, follow)
        self._path: Path | None = Path(path) if path is not None else None
        self._index: LogIndex | None = None
        self._cursor = 0
        self._cache: LRUCache[tuple[int, bool], Strip] = LRUCache(512)
        self._search: re.Pattern[str] | None = None  # the applied search
        self._search_text = ""
        self._highlight: re.Pattern[str] | None = None  # what is highlighted (preview too)
        self._rendered_width = 0
        self._catching_up = False
        self._mounted = False

    # ---------------------------------------------------------------- public API

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def index(self) -> LogIndex | None:
        return self._index

    @property
    def line_count(self) -> int:
        return self._index.line_count if self._index is not None else 0

    @property
    def cursor_line(self) -> int:
        return self._cursor

    @property
    def search_pattern(self) -> str:
        return self._search_text

    @property
    def indexing(self) -> bool:
        """The file is bigger than what is indexed yet (a huge file opening)."""
        return self._index is not None and self._index.behind

    @property
    def status_text(self) -> str:
        """One short line for a status bar: position, follow, search."""
        n = self.line_count
        parts = [f"line {min(self._cursor + 1, n)}/{n}"]
        if self.follow:
            parts.append("follow")
        if self.indexing:
            parts.append("indexing…")
        if self._search_text:
            parts.append(f"/{self._search_text}")
        return " · ".join(parts)

    def open(self, path: Path | str) -> None:
        """Show the file at `path` (it may not exist yet; it appears when written)."""
        if self._index is not None:
            self._index.close()
        self._path = Path(path)
        self._index = LogIndex(self._path)
        self._cursor = 0
        self._rendered_width = 0
        self._cache.clear()
        if self._mounted:
            self._opened()

    def _opened(self) -> None:
        self.refresh_file()
        if not self.follow:
            self._set_cursor(0)
            self.scroll_to(y=0, animate=False, force=True)
        self.refresh()

    def on_mount(self) -> None:
        self._mounted = True
        if self._index is None and self._path is not None:
            self.open(self._path)
        elif self._index is not None:
            self._opened()

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        self._cache.clear()

    def on_unmount(self) -> None:
        self.close()

    def refresh_file(self) -> int:
        """Take what was appended to the file; return how many lines were added.

        Cheap when nothing changed (one stat): call it on a short timer and on output
        events. A big backlog is indexed in slices, a slice per screen update."""
        index = self._index
        if index is None:
            return 0
        before = index.line_count
        generation = index.generation
        added = index.update(max_bytes=INDEX_SLICE)
        reset = index.generation != generation
        if reset:
            self._cache.clear()
            self._rendered_width = 0
        elif index.changed_from < before:  # a partial last line grew
            for line in range(index.changed_from, before):
                self._cache.discard((line, False))
                self._cache.discard((line, True))
        changed = reset or added or index.changed_from < before
        if changed:
            self._update_virtual_size()
            if self.follow:
                self._go_end()
            elif self._cursor >= index.line_count:
                self._set_cursor(index.line_count - 1)
            self.refresh()
        if index.behind and not self._catching_up:
            self._catching_up = True
            self.set_timer(0.005, self._catch_up)
        return added

    # ---------------------------------------------------------------- rendering

    def _update_virtual_size(self) -> None:
        index = self._index
        if index is None:
            self.virtual_size = Size(0, 0)
            return
        width = min(MAX_WIDTH, max(index.max_line_bytes, self._rendered_width))
        self.virtual_size = Size(width, index.line_count)

    def _catch_up(self) -> None:
        self._catching_up = False
        if self.is_attached:
            self.refresh_file()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        line = scroll_y + y
        index = self._index
        if index is None or line >= index.line_count:
            if y == 0 and (index is None or index.line_count == 0):
                text = " waiting for output…" if self._path is not None else " no log"
                style = self.get_component_rich_style("logview--empty")
                return Strip([Segment(text, style)], cell_len(text)).crop_extend(0, width, base)
            return Strip.blank(width, base)
        is_cursor = line == self._cursor
        strip = self._cache.get((line, is_cursor))
        if strip is None:
            strip = self._render_page(line, is_cursor)
        return strip.crop_extend(scroll_x, scroll_x + width,
                                 self._cursor_style() if is_cursor else base)

    def _render_page(self, line: int, is_cursor: bool) -> Strip:
        """Read `line` and the rest of the visible page in one go; cache their strips."""
        index = self._index
        assert index is not None
        top = self.scroll_offset.y
        count = max(1, top + self.size.height - line)
        texts = index.lines(line, count, max_bytes=MAX_WIDTH * 4)
        wanted: Strip | None = None
        widest = self._rendered_width
        for offset, raw in enumerate(texts):
            number = line + offset
            cursor = number == self._cursor
            strip = self._build_strip(raw, cursor)
            self._cache[(number, cursor)] = strip
            widest = max(widest, strip.cell_length)
            if number == line:
                wanted = strip
        if wanted is None:  # the file was cut under us
            wanted = Strip.blank(0)
        if widest > self._rendered_width:
            self._rendered_width = widest
            self.call_later(self._update_virtual_size)
        return wanted

    def _cursor_style(self) -> Style:
        name = "logview--cursor" if self.has_focus else "logview--cursor-blurred"
        return self.get_component_rich_style(name)

    def _build_strip(self, raw: str, cursor: bool) -> Strip:
        text = display_text(raw)
        if raw.startswith(NOTE_PREFIX):
            kind = "note"
        else:
            kind = detect_level(text) or "info"
        style = self.get_component_rich_style(f"logview--{kind}")
        if cursor:
            style = style + self._cursor_style()
        if self._highlight is None:
            return Strip([Segment(text, style)], cell_len(text))
        match_style = style + self.get_component_rich_style("logview--match", partial=True)
        segments: list[Segment] = []
        pos = 0
        for m in self._highlight.finditer(text):
            a, b = m.span()
            if a == b:
                continue
            if a > pos:
                segments.append(Segment(text[pos:a], style))
            segments.append(Segment(text[a:b], match_style))
            pos = b
        if pos < len(text):
            segments.append(Segment(text[pos:], style))
        return Strip(segments, cell_len(text))

    def _refresh_line(self, line: int) -> None:
        self._cache.discard((line, False))
        self._cache.discard((line, True))
        self.refresh_line(line)

    # ---------------------------------------------------------------- cursor, scrolling

    def _page_height(self) -> int:
        return max(1, self.scrollable_content_region.height)

    def _set_cursor(self, line: int, *, center: bool = False) -> None:
        n = self.line_count
        line = max(0, min(line, n - 1)) if n else 0
        old = self._cursor
        self._cursor = line
        if old != line:
            self._refresh_line(old)
            self._refresh_line(line)
        top = round(self.scroll_offset.y)
        height = self._page_height()
        if line < top or line >= top + height:
            if center:
                target = line - height // 2
            else:
                target = line if line < top else line - height + 1
            self.scroll_to(y=max(0, target), animate=False, force=True)
        if old != line:
            self.post_message(self.CursorMoved(self, line, n))

    def _go_end(self) -> None:
        self._set_cursor(self.line_count - 1)
        self.scroll_to(y=self.max_scroll_y, animate=False, force=True)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._go_end()
        self.post_message(self.FollowChanged(self, follow))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # the person scrolled up (wheel, scrollbar): stop following
        if self.follow and new_value < old_value and new_value < self.max_scroll_y - 0.5:
            self.follow = False

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        if self.follow:
            self.follow = False

    def on_resize(self, event: Resize) -> None:
        self._cache.clear()
        if self.follow:
            self.call_after_refresh(self._go_end)

    def on_focus(self) -> None:
        self._refresh_line(self._cursor)

    def on_blur(self) -> None:
        self._refresh_line(self._cursor)

    def action_cursor_down(self) -> None:
        self._set_cursor(self._cursor + 1)

    def action_cursor_up(self) -> None:
        self.follow = False
        self._set_cursor(self._cursor - 1)

    def action_first(self) -> None:
        self.follow = False
        self._set_cursor(0)
        self.scroll_to(y=0, animate=False, force=True)

    def action_last(self) -> None:
        if self.follow:
            self._go_end()
        else:
            self.follow = True  # watch_follow goes to the end

    def action_page_up(self) -> None:
        self.follow = False
        height = self._page_height()
        self.scroll_to(y=max(0, self.scroll_offset.y - height), animate=False, force=True)
        self._set_cursor(self._cursor - height)

    def action_page_down(self) -> None:
        height = self._page_height()
        self.scroll_to(y=self.scroll_offset.y + height, animate=False, force=True)
        self._set_cursor(self._cursor + height)

    def action_scroll_left(self) -> None:
        self.scroll_to(x=max(0, self.scroll_offset.x - 8), animate=False, force=True)

    def action_scroll_right(self) -> None:
        self.scroll_to(x=self.scroll_offset.x + 8, animate=False, force=True)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    # ---------------------------------------------------------------- search, errors

    @staticmethod
    def compile_search(text: str) -> re.Pattern[str]:
        """The regex a search text stands for (case-insensitive); raises re.error."""
        return re.compile(text, re.IGNORECASE)

    def action_search(self) -> None:
        self.app.push_screen(SearchPrompt(self, self._search_text), self._search_entered)

    def preview_search(self, text: str) -> None:
        """Highlight what `text` matches (while it is typed); a bad regex shows nothing."""
        try:
            regex = self.compile_search(text) if text else None
        except re.error:
            regex = None
        self._set_highlight(regex)

    def _set_highlight(self, regex: re.Pattern[str] | None) -> None:
        if regex != self._highlight:
            self._highlight = regex
            self._cache.clear()
            self.refresh()

    def _search_entered(self, text: str | None) -> None:
        if text is None:  # cancelled: back to the search in force
            self._set_highlight(self._search)
            return
        self.set_search(text)

    def set_search(self, text: str, *, jump: bool = True) -> bool:
        """Search for `text` (a case-insensitive regex; empty clears the search) and,
        with `jump`, move to the first match from the cursor on. A bad regex is told
        in a notification; returns whether the search was set."""
        if not text:
            self._search, self._search_text = None, ""
            self._set_highlight(None)
            return True
        try:
            regex = self.compile_search(text)
        except re.error as e:
            self.notify(f"bad search pattern {text!r}: {e}", severity="error")
            self._set_highlight(self._search)
            return False
        self._search, self._search_text = regex, text
        self._set_highlight(regex)
        if jump:
            self._find("search", self._cursor, backward=False)
        return True

    def action_search_next(self) -> None:
        if self._search is None:
            self.notify("no search yet: press / to search", severity="warning")
            return
        self._find("search", self._cursor + 1, backward=False)

    def action_search_prev(self) -> None:
        if self._search is None:
            self.notify("no search yet: press / to search", severity="warning")
            return
        self._find("search", self._cursor - 1, backward=True)

    def action_next_error(self) -> None:
        self._find("error", self._cursor + 1, backward=False)

    def action_prev_error(self) -> None:
        self._find("error", self._cursor - 1, backward=True)

    def _find(self, what: str, start: int, *, backward: bool) -> None:
        index = self._index
        if index is None or index.line_count == 0:
            self.notify("the log is empty", severity="warning")
            return
        self._find_worker(index, what, self._search, start, backward)

    @work(thread=True, exclusive=True, group="logview-find", exit_on_error=False)
    def _find_worker(self, index: LogIndex, what: str, regex: re.Pattern[str] | None,
                     start: int, backward: bool) -> None:
        n = index.line_count
        start = max(0, min(start, n - 1))
        if what == "search":
            assert regex is not None
            found = index.search(regex, start, backward=backward, wrap=True)
        else:
            found = index.next_level(start, {"error"}, backward=backward)
        if get_current_worker().is_cancelled:
            return
        self.app.call_from_thread(self._found, index, what, found, start, backward)

    def _found(self, index: LogIndex, what: str, found: int | None, start: int,
               backward: bool) -> None:
        if index is not self._index:
            return
        if found is None:
            if what == "search":
                self.notify(f"no match for /{self._search_text}", severity="warning")
            else:
                self.notify("no error line " + ("above" if backward else "below"),
                            severity="information")
            return
        if what == "search" and (found > start if backward else found < start):
            self.notify("search wrapped around", timeout=2)
        self.follow = False
        self._set_cursor(found, center=True)
