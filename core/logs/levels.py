"""Severity of one line of job output: error, warning, info, debug, or unknown.

Jobs print in many shapes; the common ones are recognised with precompiled regexes
and cheap pre-checks, so the log view and the log rules can classify 100k lines/s:

- syslog priority prefix ``<3>`` (severity = priority % 8), klog/glog ``E0102 12:00:00``
- JSON lines with a ``"level"``/``"severity"``/``"lvl"`` field (word or pino-style number)
- logfmt ``level=error`` / ``lvl=warn`` / ``severity=info``
- words: ``ERROR``, ``[error]``, ``error:``, ``FATAL``, ``CRITICAL``, ``PANIC``,
  ``Traceback``, ``SomeError: ...`` (a Python exception line), ``WARN``/``WARNING``,
  ``INFO``/``NOTICE``, ``DEBUG``/``TRACE``; the first one on the line wins
- fleetdeck's own notes in a run log (``[fleetdeck] ...``) have no level.

Only the first ``SCAN_CHARS`` characters are searched for a level word: levels sit at
the start of a line, and a long line must not cost more than a short one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ERROR, WARNING, INFO, DEBUG = "error", "warning", "info", "debug"
LEVELS: tuple[str, ...] = (ERROR, WARNING, INFO, DEBUG)
NOTE_PREFIX = "[fleetdeck] "
SCAN_CHARS = 256

_WORDS: dict[str, str] = {}
for _level, _names in (
    (ERROR, "error err fatal critical crit panic emerg emergency alert severe failure"),
    (WARNING, "warning warn"),
    (INFO, "info information informational notice"),
    (DEBUG, "debug trace verbose fine finer finest"),
):
    for _name in _names.split():
        _WORDS[_name] = _level

# ANSI escape sequences (colours, cursor moves, OSC titles): coloured output must not
# hide an ERROR from the regexes below, nor reach the terminal raw.
ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")

_SYSLOG = re.compile(r"<(\d{1,3})>")
_KLOG = re.compile(r"([IWEF])\d{4} \d\d:\d\d")
_JSON_FIELD = re.compile(
    r'"(?:level|severity|lvl|levelname|loglevel|log\.level)"\s*:\s*(?:"\s*([A-Za-z]+)|(\d+))',
    re.IGNORECASE,
)
_LOGFMT = re.compile(r'(?:^|\s)(?:level|lvl|severity|loglevel)="?([A-Za-z]+)', re.IGNORECASE)
# Level words are found on the lower-cased head with a literal alternation (fast in
# `re`: no case folding, a first-character prefix), then each candidate's shape is
# checked on the original text: an upper case word stands alone (`ERROR`, `WARN`,
# `ERR!`); any case counts when the shape says "this is a level" (`[error]`, `<warn>`,
# `error:`, `Error: ...`); `Traceback` and `SomeError: ...` (an exception) are errors.
_CANDIDATE = re.compile(
    r"(?:err|fatal|crit|panic|emerg|alert|severe|warn|info|notice|debug|trace|verbose"
    r"|exception)[a-z]*"
)
_OPEN, _CLOSE = "[(<", "])>:|"
_COLON_WORDS = frozenset(("error", "fatal", "panic", "critical", "warning", "warn"))
_EXCEPTION_HEAD = re.compile(r"\s*(?:[A-Za-z_]\w*\.)*\w*$")


def strip_ansi(line: str) -> str:
    """The line without ANSI escape sequences."""
    return ANSI_RE.sub("", line) if "\x1b" in line else line


def _number_level(n: int) -> str | None:
    if n >= 10:  # pino / bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal
        return ERROR if n >= 50 else WARNING if n >= 40 else INFO if n >= 30 else DEBUG
    if n <= 7:  # syslog severity
        return ERROR if n <= 3 else WARNING if n == 4 else INFO if n <= 6 else DEBUG
    return None


def detect_level(line: str) -> str | None:
    """"error" | "warning" | "info" | "debug", or None when the line names no level."""
    if not line:
        return None
    first = line[0]
    if first == "[" and line.startswith(NOTE_PREFIX):
        return None
    if "\x1b" in line:
        line = ANSI_RE.sub("", line)
        if not line:
            return None
        first = line[0]
    head = line[:SCAN_CHARS]
    if first == "<":
        m = _SYSLOG.match(head)
        if m:
            return _number_level(int(m.group(1)) % 8)
    elif first in "IWEF":
        m = _KLOG.match(head)
        if m:
            return {"I": INFO, "W": WARNING, "E": ERROR, "F": ERROR}[m.group(1)]
    if '"' in head and head.lstrip()[:1] == "{":
        m = _JSON_FIELD.search(line)
        if m:
            word, number = m.groups()
            # (a long number: only whether it is 50 or more matters, and int() refuses
            # over 4,300 digits)
            level = _WORDS.get(word.lower()) if word \
                else _number_level(int(number.lstrip("0")[:12] or "0"))
            if level:
                return level
    if "=" in head:
        m = _LOGFMT.search(head)
        if m:
            level = _WORDS.get(m.group(1).lower())
            if level:
                return level
    return _word_level(head)


def _word_level(head: str) -> str | None:
    low = head.lower()
    if len(low) != len(head):  # a few characters grow when lower-cased
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in head)
    n = len(head)
    for m in _CANDIDATE.finditer(low):
        s, e = m.span()
        word = m.group()
        before = head[s - 1] if s else ""
        after = head[e] if e < n else ""
        if before.isalnum() or before == "_":
            if after in ":" and (word.endswith("error") or word.endswith("exception")) \
                    and _EXCEPTION_HEAD.match(head, 0, s):
                return ERROR  # ValueError: ... / pkg.SomeException
            continue
        if after.isalnum() or after == "_":
            continue
        original = head[s:e]
        if original == "Traceback":
            return ERROR
        level = _WORDS.get(word)
        if level is None:
            if after in ":" and (word.endswith("error") or word.endswith("exception")) \
                    and _EXCEPTION_HEAD.match(head, 0, s):
                return ERROR  # Exception: ... / TypeError: ...
            continue
        if original.isupper():
            return level
        if before and before in _OPEN and after and after in _CLOSE:
            return level
        if after == ":" and word in _COLON_WORDS and (not before or before in " \t:"):
            return level
    return None


def is_error(line: str) -> bool:
    return detect_level(line) == ERROR


# Byte patterns that match (at least) every line of a level, for scanning big chunks
# of a log file fast: they run on the chunk lower-cased with a newline put in front
# (`b"\n" + chunk.lower()`), so they need neither IGNORECASE nor MULTILINE, which
# make `re` several times slower. Each candidate line is confirmed by detect_level.
_CANDIDATES: dict[str, str] = {
    ERROR: r"err|fatal|crit|panic|emerg|alert|severe|failure|traceback|exception|\n[ef]\d{4}",
    WARNING: r"warn|\nw\d{4}",
    INFO: r"info|notice|\ni\d{4}",
    DEBUG: r"debug|trace|verbose|fine",
}
_ANY_LEVEL = r"\n<\d|level\"\s*:\s*\d|severity\"\s*:\s*\d|lvl\"\s*:\s*\d"


def candidate_regex(levels: Iterable[str]) -> re.Pattern[bytes]:
    """A bytes regex matching, in `b"\\n" + chunk.lower()`, a superset of the lines of
    these levels (a match starting with the newline belongs to the line after it)."""
    wanted = tuple(sorted(set(levels)))
    pattern = _compiled.get(wanted)
    if pattern is None:
        unknown = [lv for lv in wanted if lv not in _CANDIDATES]
        if unknown:
            raise ValueError(f"unknown level {unknown[0]!r}; levels are {', '.join(LEVELS)}")
        parts = [_CANDIDATES[lv] for lv in wanted] + [_ANY_LEVEL]
        pattern = _compiled[wanted] = re.compile("|".join(parts).encode())
    return pattern


_compiled: dict[tuple[str, ...], re.Pattern[bytes]] = {}
