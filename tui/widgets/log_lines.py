"""What one raw log line looks like on screen: no escape sequences or control characters,
cut at MAX_WIDTH, of a kind (its level, or a fleetdeck note) that picks its colour, with
search matches marked. Pure text in, a Strip out: the LogView caches what these return.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from core.logs.levels import ANSI_RE, NOTE_PREFIX, detect_level

MAX_WIDTH = 2000  # cells of a line shown; the rest of a longer line is cut
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


def line_kind(raw: str, text: str) -> str:
    """note (fleetdeck's own lines), or the level `text` shows (info when none)."""
    if raw.startswith(NOTE_PREFIX):
        return "note"
    return detect_level(text) or "info"


def line_strip(text: str, style: Style, highlight: re.Pattern[str] | None = None,
               match_style: Style | None = None) -> Strip:
    """`text` in `style`, with what `highlight` matches (empty matches aside) in
    `match_style`."""
    if highlight is None:
        return Strip([Segment(text, style)], cell_len(text))
    segments: list[Segment] = []
    pos = 0
    for m in highlight.finditer(text):
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
