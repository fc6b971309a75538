"""MergedLog: the Logs screen's live view. Lines are kept as they come and drawn only
when they are on screen.

Textual's RichLog renders every line as it is written: at 1,000 lines a second that
was a tenth of a second of the event loop per batch, and a key pressed meanwhile
waited for it. Here a write only appends (and follows the end); `render_line` draws
the lines of the page shown, caching the strips of recent ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

CACHED_STRIPS = 512  # a few pages and a bit, drawn once each


class MergedLog(ScrollView, can_focus=True):
    """At most `max_lines` lines, the oldest dropped first; `auto_scroll` follows the
    end as lines come (a jump to a line turns it off, as in RichLog). Lines come made
    safe to show (tui/widgets/log_lines.py `display_text`)."""

    DEFAULT_CSS = """
    MergedLog { height: 1fr; background: $surface; color: $foreground; overflow-y: scroll;
                &:focus { background-tint: $foreground 5%; } }
    """

    def __init__(self, max_lines: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: deque[Text] = deque(maxlen=max_lines)
        self.auto_scroll = True
        self._dropped = 0  # lines dropped off the top so far: a line's key is its number
        self._widest = 0
        self._strips: LRUCache[int, Strip] = LRUCache(CACHED_STRIPS)

    @property
    def following(self) -> bool:
        """Lines that come are followed: `auto_scroll` is on and the view is at the end.
        Scrolled up, the view stays where the person is reading, as less and lnav do;
        End (or scrolling back down) follows again."""
        return self.auto_scroll and self.scroll_y >= self.max_scroll_y

    def write_lines(self, texts: Iterable[Text]) -> None:
        follow = self.following
        before = len(self.lines)
        added = 0
        for text in texts:
            self.lines.append(text)
            self._widest = max(self._widest, text.cell_len)
            added += 1
        if not added:
            return
        dropped = before + added - len(self.lines)
        self._dropped += dropped
        self.virtual_size = Size(self._widest, len(self.lines))
        if follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
        elif dropped:  # the lines read stay in view as older ones drop off the top
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False)
        self.refresh()

    def clear(self) -> None:
        self._dropped += len(self.lines)
        self.lines.clear()
        self._widest = 0
        self._strips.clear()
        self.virtual_size = Size(0, 0)
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # the theme changed: draw again

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if index >= len(self.lines):
            return Strip.blank(width, style)
        key = self._dropped + index
        strip = self._strips.get(key)
        if strip is None:
            segments = list(self.lines[index].render(self.app.console))
            strip = self._strips[key] = Strip(segments).apply_style(style)
        return strip.crop_extend(scroll_x, scroll_x + width, style)

