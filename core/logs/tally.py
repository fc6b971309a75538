"""Level counts for a whole block of log lines at once, exactly as `detect_level` would
count them line by line.

Per-line Python costs about a microsecond before it does anything, and `re` a tenth of
one per match; grep does a line in a tenth of that. So a block goes to
``core/logs/_tally.c``, detect_level ported rule for rule, which decides every plain
ASCII line (nearly all of a real log) at C speed and hands back the others (UTF-8
beyond ASCII, colours) for detect_level itself. detect_level stays the definition: the
tests hold the two to the same answer.
"""

from __future__ import annotations

from core.logs.levels import detect_level

try:
    from core.logs._tally import count as _count
except ImportError as e:  # a source tree that was never installed
    raise ImportError("core/logs/_tally.c is not built: run `make run` or `pip install -e .` "
                      "(it needs gcc and the Python headers)") from e

_LEVELS = ("error", "warning", "info", "debug")


def count_levels(data: bytes, counts: dict[str, int]) -> int:
    """Add the levels of the lines of ``data`` to ``counts``; return how many lines it
    has. ``data``: complete lines, each ending in a newline, as read from a file (UTF-8;
    bad bytes read as U+FFFD)."""
    lines, *fast, others = _count(data)
    for level, n in zip(_LEVELS, fast, strict=True):
        if n:
            counts[level] = counts.get(level, 0) + n
    for start in others:
        end = data.find(b"\n", start)
        line = data[start:] if end < 0 else data[start:end]
        level = detect_level(line.decode("utf-8", "replace"))
        if level is not None:
            counts[level] = counts.get(level, 0) + 1
    return lines
