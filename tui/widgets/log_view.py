"""LogView: a run's output, offset-indexed, rendering only the visible page.

The file is never loaded whole: `core.logs.index.LogIndex` keeps the byte offset of each
line and the view reads the lines of the page it paints (`render_line`), caching the
rendered strips of recent lines (tui/widgets/log_lines.py draws a line). Big files are
indexed in slices between screen updates; searches and error jumps
(tui/widgets/log_search.py) scan the file in a worker thread.

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
from textual.binding import Binding
from textual.cache import LRUCache
from textual.events import MouseScrollUp, Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.logs.index import LogIndex
from tui.widgets.log_lines import MAX_WIDTH, display_text, line_kind, line_strip
from tui.widgets.log_search import LogSearch

INDEX_SLICE = 1 << 20  # bytes indexed per step (a few ms), so a key never waits long


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
        self.search = LogSearch(self)
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
        if self.search.text:
            parts.append(f"/{self.search.text}")
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
        style = self.get_component_rich_style(f"logview--{line_kind(raw, text)}")
        if cursor:
            style = style + self._cursor_style()
        if self._highlight is None:
            return line_strip(text, style)
        match_style = style + self.get_component_rich_style("logview--match", partial=True)
        return line_strip(text, style, self._highlight, match_style)

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

    def action_search(self) -> None:
        self.search.prompt()

    def action_search_next(self) -> None:
        self.search.next_match()

    def action_search_prev(self) -> None:
        self.search.prev_match()

    def action_next_error(self) -> None:
        self.search.next_error()

    def action_prev_error(self) -> None:
        self.search.prev_error()

    def set_highlight(self, regex: re.Pattern[str] | None) -> None:
        """Show what `regex` matches (None: nothing) in every line."""
        if regex != self._highlight:
            self._highlight = regex
            self._cache.clear()
            self.refresh()

    def jump_to(self, line: int) -> None:
        """Stop following and put the cursor on `line` (centred if it was off the page)."""
        self.follow = False
        self._set_cursor(line, center=True)
