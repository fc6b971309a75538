"""The time a log line says it was written, and a merge of several sources by it.

A source's backlog arrives in one read, so every line of it has the same arrival time;
merged by arrival alone, the first screen of the Logs view lists one source after
another. lnav merges by the lines' own timestamps; so does this, for the shapes most
logs use at the start of a line:

- ISO 8601 / RFC 3339: ``2026-12-03T19:03:48.123Z``, ``2026-12-03 19:03:48+01:00``
- syslog (RFC 3164): ``Dec  3 19:03:48`` (the year is the one that puts it nearest now)
- Common Log Format, anywhere in the first ``SCAN_CHARS``: ``[03/Dec/2026:19:03:48 +0000]``

A time without a zone is local time, as the program that wrote it most likely meant.
A line with no timestamp keeps its source's order and its arrival time.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone

SCAN_CHARS = 80

_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
                  r"(?:\s?(Z|[+-]\d\d:?\d\d)(?![\w:]))?")  # "-2500ms" is no zone
_SYSLOG = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)")
_CLF = re.compile(r"\[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-]\d{4})\]")
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def _epoch(year: int, month: int, day: int, hh: int, mm: int, ss: int, frac: str | None,
           zone: str | None) -> float | None:
    """Seconds since the epoch, or None for what is no time (2026-02-30, 25:00, an offset
    of +99:00, year 1 in a zone west of UTC): a log line is input, never a crash."""
    try:
        tz = None
        if zone == "Z":
            tz = UTC
        elif zone:
            digits = zone.replace(":", "")
            sign = -1 if digits[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5])))
        seconds = datetime(year, month, day, hh, mm, ss, tzinfo=tz).timestamp()  # no zone: local
    except (ValueError, OverflowError, OSError):
        return None
    return seconds + (int(frac) / 10 ** len(frac) if frac else 0.0)


def line_time(text: str, now: float | None = None) -> float | None:
    """The epoch seconds a line's own timestamp names, or None when it has none."""
    head = text[:SCAN_CHARS]
    m = _ISO.match(head.lstrip("[ "))
    if m:
        y, mo, d, hh, mi, ss = (int(g) for g in m.groups()[:6])
        return _epoch(y, mo, d, hh, mi, ss, m.group(7), m.group(8))
    m = _SYSLOG.match(head.lstrip("<>0123456789 "))  # after a syslog priority <13>
    if m and m.group(1) in _MONTHS:
        now = time.time() if now is None else now
        year = time.localtime(now).tm_year
        month, day = _MONTHS[m.group(1)], int(m.group(2))
        hh, mi, ss = int(m.group(3)), int(m.group(4)), int(m.group(5))
        best = None
        for y in (year - 1, year, year + 1):  # December's lines read in January
            at = _epoch(y, month, day, hh, mi, ss, None, None)
            if at is not None and (best is None or abs(at - now) < abs(best - now)):
                best = at
        return best
    m = _CLF.search(head)
    if m and m.group(2) in _MONTHS:
        day, year = int(m.group(1)), int(m.group(3))
        hh, mi, ss = int(m.group(4)), int(m.group(5)), int(m.group(6))
        return _epoch(year, _MONTHS[m.group(2)], day, hh, mi, ss, None, m.group(7))
    return None


Line = tuple[float, str | None, str]  # arrival time, level, text


def merge_by_time(sources: dict[str, Iterable[Line]], now: float | None = None
                  ) -> list[tuple[float, str, str | None, str]]:
    """Every source's lines as one list (arrival, source, level, text), ordered by each
    line's own timestamp. A line without one (a traceback's, a continuation) takes the
    timestamp of the line before it, as lnav does (the first lines, the next one's; a
    source with none at all goes by arrival). A source's own order is never changed."""

    if len(sources) <= 1:  # nothing to interleave: no line is parsed (a flood's path)
        return [(at, name, level, text) for name, lines in sources.items()
                for at, level, text in lines]

    def keyed(name: str, lines: Iterable[Line]) -> Iterator[tuple[float, str, float,
                                                               str | None, str]]:
        lines = list(lines)
        stamps = [line_time(text, now) for _at, _level, text in lines]
        first = next((s for s in stamps if s is not None), None)
        last: float | None = None
        for (at, level, text), stamp in zip(lines, stamps, strict=True):
            if stamp is None:  # a continuation: the time of its line
                stamp = at if first is None else last if last is not None else first
            last = stamp if last is None else max(last, stamp)  # never before the line
            yield last, name, at, level, text                    # above it

    merged = heapq.merge(*(keyed(n, lines) for n, lines in sources.items()),
                         key=lambda item: item[0])
    return [(at, name, level, text) for _key, name, at, level, text in merged]
