"""Level counts for a whole block of log lines at once, exactly as `detect_level` would
count them line by line, at C speed for the common shapes.

Per-line Python costs about a microsecond before it does anything; grep does a line in
a tenth of that. So the block is matched by a few anchored regexes (``\\n`` first, which
`re` finds with a fast literal search), one per shape whose level is certain from its
start:

- JSON lines with a level field (the first one in the line, as detect_level reads it),
- logfmt lines that start with ``level=`` / ``lvl=`` / ``severity=`` / ``loglevel=``,
- an ISO timestamp then an upper case level word (``2026-11-22T12:00:00Z INFO``),
- a BSD syslog head then one (``Nov 22 12:00:02 web01 app[812]: ERROR:``).

A fast answer is kept only where detect_level would give the same one: the syslog host
and program must hold no level-like word, no logfmt level key may sit further on in
the line, and the token must map to a level. Every other line (no shape, or a doubt)
goes through detect_level itself. So the counts are detect_level's, always; only the
speed depends on the shapes of a log.
"""

from __future__ import annotations

import re
from collections import Counter

from core.levels import _CANDIDATE, _WORDS, _number_level, detect_level

_UPPER = "|".join(sorted({w.upper() for w in _WORDS}, key=len, reverse=True))
_KEYS = r"(?i:level|severity|lvl|levelname|loglevel|log\.level)"
_SP = r"[^\S\n]"  # white space within a line
_JSON = (r"\{(?=[^\"\n]{0,255}\")[^\"\n]*+(?:\"(?!" + _KEYS + r"\"" + _SP + r"*:" + _SP
         + r"*(?:\"" + _SP + r"*(?i:[A-Za-z])|\d))[^\"\n]*+)*+\"" + _KEYS + r"\"" + _SP
         + r"*:" + _SP + r"*(\"" + _SP + r"*(?i:[A-Za-z]+)|\d+)")
_LOGFMT = r"(?i:level|lvl|severity|loglevel)=\"?((?i:[A-Za-z]+))"
_ISO = (r"\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?[ \t]+\[?("
        + _UPPER + r")(?!\w)")
_SYSLOG = (r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (\S+ [^\s:\[]+)(?:\[\d+\])?: \[?("
           + _UPPER + r")(?!\w)")

JSON_RX = re.compile(r"\n" + _JSON)
LOGFMT_RX = re.compile(r"\n" + _LOGFMT)
ISO_RX = re.compile(r"\n" + _ISO)
SYSLOG_RX = re.compile(r"\n" + _SYSLOG)
# the lines none of the shapes matched: their text, for detect_level
OTHER_RX = re.compile(r"\n(?!" + "|".join((_JSON, _LOGFMT, _ISO, _SYSLOG)) + r")(?P<line>[^\n]*)")
# a logfmt level key after the start of a line: detect_level reads it before words
LATE_KEY_RX = re.compile(r"[^\S\n](?:level|lvl|severity|loglevel)=", re.IGNORECASE)

_HEAD = 200  # a syslog host and program longer than this: detect_level decides


def _word(token: str) -> str | None:
    return _WORDS.get(token.lower())


def _json_level(token: str) -> str | None:
    if token[0] == '"':
        return _WORDS.get(token[1:].strip().lower())
    return _number_level(int(token))


# the shapes with one token each (syslog has two groups: its head, then the token)
_SHAPES = ((JSON_RX, _json_level), (LOGFMT_RX, _word), (ISO_RX, _word))


def count_levels(text: str, counts: dict[str, int], lines: int | None = None) -> None:
    """Add the levels of the lines of ``text`` to ``counts``. ``text`` is the lines
    with a newline *before* each one (``"\\n" + "\\n".join(lines)``); ``lines``, their
    number, if the caller knows it already."""
    if "\x1b" in text:  # colours: detect_level strips them first
        for line in text[1:].split("\n"):
            _add(counts, detect_level(line))
        return
    suspects: list[re.Pattern[str]] = []  # shapes with a line to look at again
    decided = 0
    for rx, level_of in _SHAPES:
        tokens = rx.findall(text)
        decided += len(tokens)
        for token, n in _tally(tokens).items():
            level = level_of(token)
            if level is None:
                suspects.append(rx)  # a token that names no level: detect_level goes on
            else:
                counts[level] = counts.get(level, 0) + n
    pairs = SYSLOG_RX.findall(text)
    if pairs:
        decided += len(pairs)
        heads, words = zip(*pairs, strict=True)
        if _CANDIDATE.search("\n".join(heads).lower()) or max(map(len, heads)) > _HEAD:
            suspects.append(SYSLOG_RX)
        for token, n in _tally(words).items():
            level = _word(token)
            if level is not None:
                counts[level] = counts.get(level, 0) + n
    if decided < (text.count("\n") if lines is None else lines):
        for m in OTHER_RX.finditer(text):
            _add(counts, detect_level(m.group("line")))
    late = _late_keys(text) if "=" in text else []
    if suspects or late:
        _recount(text, counts, suspects, late)


def _late_keys(text: str) -> list[int]:
    """Where a logfmt level key follows white space inside a line. Found with plain
    `str.find` on the lower-cased text (a case-insensitive regex over the whole block
    costs more than everything else together)."""
    if not text.isascii() or "\r" in text or "\f" in text or "\v" in text:
        return [m.start() for m in LATE_KEY_RX.finditer(text)]  # rarer spaces: be exact
    low = text.lower()
    out: list[int] = []
    for key in ("level=", "lvl=", "severity="):  # "loglevel=" ends in "level="
        total = low.count(key)
        if not total or total == low.count("\n" + key):
            continue  # none, or all at the start of their line
        for space in " \t":
            for found in (f"{space}{key}", f"{space}log{key}") if key == "level=" \
                    else (f"{space}{key}",):
                pos = low.find(found)
                while pos >= 0:
                    out.append(pos + 1)
                    pos = low.find(found, pos + 1)
    return out


def _recount(text: str, counts: dict[str, int], suspects: list[re.Pattern[str]],
             late: list[int]) -> None:
    """The lines where a fast answer may differ from detect_level's: take the fast one
    back and count detect_level's instead."""
    starts = set()
    for rx in suspects:
        starts.update(m.start() for m in rx.finditer(text))
    for pos in late:
        starts.add(text.rfind("\n", 0, pos))
    for start in starts:
        end = text.find("\n", start + 1)
        line = text[start + 1:] if end < 0 else text[start + 1:end]
        fast = _fast_level(text, start)
        if fast is _NOT_FAST:
            continue  # an other line: detect_level counted it already
        truth = detect_level(line)
        if truth != fast:
            _add(counts, fast, -1)
            _add(counts, truth)


_NOT_FAST = object()


def _fast_level(text: str, start: int) -> object:
    """What the fast shapes counted for the line after ``text[start]`` (a newline)."""
    for rx, level_of in _SHAPES:
        m = rx.match(text, start)
        if m is not None:
            return level_of(m.group(1))
    m = SYSLOG_RX.match(text, start)
    if m is not None:
        return _word(m.group(2))
    return _NOT_FAST


def _tally(tokens: list[str] | tuple[str, ...]) -> dict[str, int]:
    distinct = set(tokens)
    if len(distinct) > 8:
        return Counter(tokens)
    return {token: tokens.count(token) for token in distinct}


def _add(counts: dict[str, int], level: object, n: int = 1) -> None:
    if level is not None:
        key = str(level)
        counts[key] = counts.get(key, 0) + n
