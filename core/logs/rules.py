"""Log rules: count matching lines in a sliding window and say when a threshold is
crossed, and when it falls back.

A rule matches lines by level (``level = "error"`` means error and worse), by regex
(``match = "timeout|refused"``) or by a field condition over the source's named groups
(``field = "status >= 500"``); any combination must all hold. Its threshold is either a
count (``"> 10 in 60s"``) or a share of all lines (``"> 5% in 5m"``). Time comes from an
injected clock, so windows are tested without waiting.
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from core.confguard import clip, regex_problem
from core.durations import DurationError, parse_duration
from core.logs.levels import LEVELS, detect_level
from core.schema import Key, Section

_THRESHOLD = re.compile(r"^\s*(>=|>)\s*(\d+(?:\.\d+)?)\s*(%?)\s+in\s+(\S+)\s*$")
_FIELD = re.compile(r"^\s*([A-Za-z_]\w*)\s*(==|!=|>=|<=|>|<|~)\s*(.+?)\s*$")
_SEVERITY = {level: i for i, level in enumerate(LEVELS)}  # error 0 ... debug 3
# a lookaround or \A/\Z sees past a line's edge in a block: such rules go line by line
_EDGE_SENSITIVE = ("(?=", "(?!", "(?<", "\\A", "\\Z", "\\z")


class RuleError(ValueError):
    """A rule that cannot be read; the message is one line."""


@dataclass(frozen=True)
class Threshold:
    op: str  # ">" | ">="
    value: float
    percent: bool
    window: float  # seconds

    def crossed(self, count: float) -> bool:
        return count > self.value if self.op == ">" else count >= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}{'%' if self.percent else ''} in {self.window:g}s"


def parse_threshold(text: str) -> Threshold:
    m = _THRESHOLD.match(text)
    if not m:
        raise RuleError(f"bad threshold {clip(text)}; write e.g. '> 10 in 60s' or '> 5% in 5m'")
    try:
        window = parse_duration(m.group(4))
    except DurationError as e:
        raise RuleError(f"bad threshold {clip(text)}: {e}") from None
    if window <= 0:
        raise RuleError(f"bad threshold {clip(text)}: the window must be more than 0")
    percent = m.group(3) == "%"
    value = float(m.group(2))
    if percent and value > 100:
        raise RuleError(f"bad threshold {clip(text)}: a share above 100%")
    return Threshold(m.group(1), value, percent, window)


@dataclass(frozen=True)
class FieldCondition:
    name: str
    op: str
    value: str

    def holds(self, fields: dict[str, str]) -> bool:
        got = fields.get(self.name)
        if got is None:
            return False
        if self.op == "~":
            return re.search(self.value, got) is not None
        if self.op in ("==", "!="):
            return (got == self.value) == (self.op == "==")
        try:
            a, b = float(got), float(self.value)
        except ValueError:
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]


def parse_field(text: str) -> FieldCondition:
    m = _FIELD.match(text)
    if not m:
        raise RuleError(f"bad field condition {clip(text)}; write e.g. 'status >= 500'")
    value = m.group(3).strip().strip('"')
    op = m.group(2)
    if value[:1] in ("<", ">", "=", "!", "~"):
        raise RuleError(f"bad field condition {clip(text)}; write e.g. 'status >= 500'")
    if op in ("<", "<=", ">", ">="):
        try:
            float(value)
        except ValueError:
            raise RuleError(f"bad field condition {clip(text)}: {op} needs a number") from None
    if op == "~":
        _rx, problem = regex_problem(value)
        if problem:
            raise RuleError(f"bad regex in {clip(text)}: {problem}")
    return FieldCondition(m.group(1), m.group(2), value)


@dataclass(frozen=True)
class RuleSpec:
    name: str
    sources: tuple[str, ...]
    threshold: Threshold
    level: str | None = None  # this level and worse
    match: str | None = None  # regex on the line
    field: FieldCondition | None = None
    per_source: bool = True  # False: one window across all its sources (a host group)
    description: str = ""
    remediation: str | None = None  # a workflow (core/workflows/)

    def matches(self, level: str | None, line: str, fields: dict[str, str],
                compiled: re.Pattern[str] | None) -> bool:
        if self.level is not None and (level is None or _SEVERITY.get(level, 9)
                                       > _SEVERITY[self.level]):
            return False
        if compiled is not None and compiled.search(line) is None:
            return False
        return self.field is None or self.field.holds(fields)


@dataclass
class Window:
    """Match and line counts within the last `seconds`, as (time, count) pairs: a block
    of lines read at once is one pair (line counts only for shares)."""

    seconds: float
    lines_too: bool
    hits: deque[tuple[float, int]] = field(default_factory=deque)
    lines: deque[tuple[float, int]] = field(default_factory=deque)
    firing: bool = False
    _hits: int = 0
    _lines: int = 0

    def add_counts(self, at: float, hits: int, lines: int) -> None:
        if hits:
            self.hits.append((at, hits))
            self._hits += hits
        if self.lines_too and lines:
            self.lines.append((at, lines))
            self._lines += lines

    def value(self, now: float) -> float:
        edge = now - self.seconds
        while self.hits and self.hits[0][0] <= edge:
            self._hits -= self.hits.popleft()[1]
        if not self.lines_too:
            return float(self._hits)
        while self.lines and self.lines[0][0] <= edge:
            self._lines -= self.lines.popleft()[1]
        return 100.0 * self._hits / self._lines if self._lines else 0.0


class RuleState:
    """One rule's windows (one per source, or one for all) and their firing state."""

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.regex = re.compile(spec.match) if spec.match else None
        # the same regex over a whole block (``^``/``$`` per line); not for patterns whose
        # meaning at a line's edges differs between a line and a block
        self.block_regex = re.compile(spec.match, re.MULTILINE) if spec.match and not any(
            s in spec.match for s in _EDGE_SENSITIVE) else None
        # ...and the same followed by the rest of its line: one findall counts the lines
        # (a regex that matches nothing at all would count wrongly: those go one by one)
        self.line_count_regex = None
        if self.block_regex is not None and self.regex is not None \
                and self.regex.search("") is None:
            with contextlib.suppress(re.error):  # e.g. a global flag: `(?s)` must lead
                self.line_count_regex = re.compile(f"((?:{spec.match})[^\n]*)",
                                                   re.MULTILINE)
        # `timeout|refused`: `re` searches a literal fast, an alternation of them ten
        # times slower; so each branch that starts with a literal is searched alone
        self.branch_regexes: list[tuple[re.Pattern[str], bool]] = []
        if self.line_count_regex is not None:
            branches = top_level_branches(spec.match or "")
            if len(branches) > 1 and all(_LITERAL_START.match(b) for b in branches) \
                    and not _BACKREFERENCE.search(spec.match or ""):
                with contextlib.suppress(re.error):
                    self.branch_regexes = [
                        (re.compile(f"(?:{b})[^\n]*", re.MULTILINE),
                         "\n" in b or _MAY_MATCH_NEWLINE.search(b) is not None)
                        for b in branches]
        self.windows: dict[str, Window] = {}

    def _window(self, source: str) -> Window:
        key = source if self.spec.per_source else "*"
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = Window(self.spec.threshold.window,
                                           self.spec.threshold.percent)
        return w

    def feed_block(self, source: str, at: float, text: str, n: int,
                   levels: dict[str, int], fields_rx: re.Pattern[str] | None) -> None:
        """A block of ``n`` lines (``text``: a newline before each) whose levels are
        counted in ``levels``. A level-only rule needs only those counts; a regex-only
        rule searches the block once; only field conditions look at lines one by one."""
        spec = self.spec
        if spec.match is None and spec.field is None:
            worst = _SEVERITY[spec.level or "debug"]
            hits = sum(c for lv, c in levels.items() if _SEVERITY.get(lv, 9) <= worst)
        elif spec.level is None and spec.field is None and self.block_regex is not None:
            hits = self.count_lines(text)
        else:
            lines = self.matching_lines(text) if self.block_regex is not None \
                else text[1:].split("\n")
            hits = 0
            for line in lines:
                level = detect_level(line) if spec.level is not None else None
                fields: dict[str, str] = {}
                if spec.field is not None and fields_rx is not None:
                    m = fields_rx.search(line)
                    if m is not None:
                        fields = {k: v for k, v in m.groupdict().items() if v is not None}
                if spec.matches(level, line, fields, None if self.block_regex else self.regex):
                    hits += 1
        self._window(source).add_counts(at, hits, n)

    def count_lines(self, text: str) -> int:
        """How many lines of a block the regex matches: one findall when no match runs
        over a line's end (the usual case), else line by line."""
        if self.block_regex is None:
            assert self.regex is not None
            return sum(1 for line in text[1:].split("\n") if self.regex.search(line))
        if self.branch_regexes:
            lines = self._branch_lines(text)
            if lines is not None:
                return lines
            return sum(1 for _ in self.matching_lines(text))
        rx = self.line_count_regex
        if rx is not None:
            found = rx.findall(text)
            if rx.groups > 1:
                found = [f[0] for f in found]
            if not any("\n" in f for f in found):
                return len(found)
        return sum(1 for _ in self.matching_lines(text))

    def _branch_lines(self, text: str) -> int | None:
        """How many lines some branch matches; None if a match runs over a line's end
        (looked for only when a branch could match a newline). A match runs on to the
        end of its line, so a branch's matches are its lines; only when two branches
        match in one block are their lines united by where they start."""
        found: list[tuple[re.Pattern[str], int]] = []
        for brx, may_cross in self.branch_regexes:
            if may_cross:
                matches = [m.group() for m in brx.finditer(text)]
                if any("\n" in m for m in matches):
                    return None
                n = len(matches)
            else:
                n = len(brx.findall(text))  # strings of the rest of each line: cheap
            if n:
                found.append((brx, n))
        if len(found) < 2:
            return sum(n for _, n in found)
        starts: set[int] = set()
        rfind, add = text.rfind, starts.add
        for brx, _n in found:
            for m in brx.finditer(text):
                add(rfind("\n", 0, m.start()))
        return len(starts)

    def matching_lines(self, text: str) -> Iterator[str]:
        """The lines of a block the rule's regex matches, each once; a match that runs
        over a line's end is checked again on its line alone."""
        rx, line_rx = self.block_regex, self.regex
        assert rx is not None and line_rx is not None
        pos, size = 0, len(text)
        while pos < size:
            m = rx.search(text, pos)
            if m is None:
                return
            start = m.start()
            # the line holding the match (the next one when it begins on a newline)
            line_start = text.rfind("\n", 0, start + 1) + 1
            end = text.find("\n", line_start)
            if end < 0:
                end = size
            line = text[line_start:end]
            inside = m.end() <= end and text[start:start + 1] != "\n"
            if inside or line_rx.search(line):
                yield line
            pos = end

    def evaluate(self, now: float) -> list[tuple[str, bool, float]]:
        """(window key, firing now, value) for each window whose firing state changed."""
        out = []
        for key, w in self.windows.items():
            value = w.value(now)
            firing = self.spec.threshold.crossed(value)
            if firing != w.firing:
                w.firing = firing
                out.append((key, firing, value))
        return out


_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")  # a group of another branch: not split
# what in a pattern can match a newline: \s \W \D, [^...], (?s), \n \x0a \012 \N{} \u...
_MAY_MATCH_NEWLINE = re.compile(r"\\[sWDnxuUN0]|\[\^|\(\?[a-zA-Z]*s")
_LITERAL_START = re.compile(r"[A-Za-z0-9 _\-:=/\"']{2}")  # two plain characters first


def top_level_branches(pattern: str) -> list[str]:
    """``a|b(c|d)|[|]e`` -> ``["a", "b(c|d)", "[|]e"]``: the pattern split at the bars
    outside groups, classes and escapes (one branch when it has none)."""
    out, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]" or pattern[i + 1:i + 3] == "^]":
                i += 2 if pattern[i + 1] == "]" else 3  # a leading ] is a character
                continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    out.append(pattern[start:])
    return out


RULE = Section("rules", "log rules: a count of matching lines over a window fires an alert", (
    Key("sources", "strings", "the log sources this rule counts", required=True),
    Key("threshold", "string", "e.g. '> 10 in 60s' or '> 5% in 5m'", required=True),
    Key("level", "string", "lines of this level and worse", choices=LEVELS),
    Key("match", "string", "a regex the line must match"),
    Key("field", "string", "a condition on a named field: 'status >= 500'"),
    Key("per_source", "boolean", "false: one window over all its sources", True),
    Key("description", "text", "one line for the console", ""),
    Key("remediation", "string", "a workflow its alert offers to run on its host"),
), named=True)


def read_rules(c: Any, doc: dict[str, Any], sources: dict[str, Any]) -> dict[str, RuleSpec]:
    """`[rules.NAME]`: sources, threshold, level / match / field, per_source."""
    section = doc.get("rules")
    if section is None:
        return {}
    section = c.table(section, ("rules",))
    if section is None:
        return {}
    out: dict[str, RuleSpec] = {}
    declared = doc.get("sources")  # a source with its own mistake is still a known name
    known = set(declared) if isinstance(declared, dict) else set(sources)
    for name, raw in section.items():
        p = ("rules", name)
        t = c.table(raw, p)
        if t is None or not c.name_ok(name, "rule", p):
            continue
        c.known_keys(t, RULE.names(), p)
        ok = True
        srcs = c.str_list(t, "sources", p)
        if not srcs:
            c.add(p, "missing key 'sources' (the log sources this rule counts)")
            ok = False
        for s in srcs:
            if s not in known:
                c.add(p + ("sources",), f"unknown source {clip(s)}")
                ok = False
        text = c.string(t, "threshold", p, None)
        threshold = None
        if text is None:
            c.add(p, "missing key 'threshold' (e.g. '> 10 in 60s')")
            ok = False
        else:
            try:
                threshold = parse_threshold(text)
            except RuleError as e:
                c.add(p + ("threshold",), str(e))
                ok = False
        level = c.choice(t, "level", p, None, LEVELS) if "level" in t else None
        if "level" in t and level is None:
            ok = False
        match = c.string(t, "match", p, None)
        if match is not None:
            _rx, problem = regex_problem(match)
            if problem:
                c.add(p + ("match",), f"bad regex {clip(match)}: {problem}")
                ok = False
        cond = None
        ftext = c.string(t, "field", p, None)
        if ftext is not None:
            try:
                cond = parse_field(ftext)
            except RuleError as e:
                c.add(p + ("field",), str(e))
                ok = False
            else:
                ok = _field_known(c, p, cond.name, srcs, sources) and ok
        if not any(k in t for k in ("level", "match", "field")):
            c.add(p, "a rule needs 'level', 'match' or 'field' to know what to count")
            ok = False
        if ok and threshold is not None:
            out[name] = RuleSpec(name, srcs, threshold, level, match, cond,
                                 c.boolean(t, "per_source", p, True),
                                 c.string(t, "description", p, "", nonempty=False),
                                 c.string(t, "remediation", p, None, line=True))
    return out


def _field_known(c: Any, p: tuple[str, ...], name: str, srcs: list[str],
                 sources: dict[str, Any]) -> bool:
    """A field condition needs the field in every source it counts (their `fields` regex
    names it): elsewhere it could never hold, and the rule would never fire."""
    lacking = [s for s in srcs if s in sources and
               name not in re.compile(sources[s].fields or "(?!)").groupindex]
    if lacking:
        c.add(p + ("field",), f"source {lacking[0]!r} has no field {name!r} (its 'fields' "
                              f"regex must name it: (?P<{name}>...))")
    return not lacking
