"""Reading cron (5 fields, Vixie cron) and Quartz (6-7 fields) expressions into value sets.

The two dialects, one consistent set of extensions:

* cron: ``minute hour day-of-month month day-of-week``; day-of-week 0-7 with 0 and 7 both
  Sunday. A range must not wrap around (``22-2`` is an error, as Vixie never fires it).
* quartz: ``second minute hour day-of-month month day-of-week [year]``; day-of-week 1-7
  with 1 = Sunday, year 1970-2099; '?' in exactly one of the day fields; a range may wrap
  around (``22-2`` is 22,23,0,1,2, as Quartz reads it); L, W and # stand alone in their
  field (Quartz does not combine them with a list).

In both: names JAN-DEC and SUN-SAT (any case); ``*``, ``a``, ``a-b``, ``*/s``, ``a-b/s``
and ``a/s`` (= a-max/s); a step is 1 up to the field's maximum; lists are unions (a list
holding ``*`` is the full range). Day-of-month also takes ``L`` (last day), ``L-n``
(n days before it), ``nW`` (the weekday nearest day n, within the month), ``LW`` and
``L-nW``; day-of-week takes ``nL`` (last weekday n of the month) and ``n#k`` (k-th
weekday n, k 1-5); in quartz a lone ``L`` in day-of-week is 7 (Saturday). ``?`` in a day
field reads as ``*`` in the cron dialect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.confguard import clip

__all__ = ["CronError", "DayRules", "Parsed", "parse"]

_MONTHS = {n: i + 1 for i, n in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_DAYS = {n: i for i, n in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}

SECOND, MINUTE, HOUR, DOM, MONTH, DOW, YEAR = (
    "second", "minute", "hour", "day-of-month", "month", "day-of-week", "year")
_CRON_FIELDS = (MINUTE, HOUR, DOM, MONTH, DOW)
_QUARTZ_FIELDS = (SECOND, MINUTE, HOUR, DOM, MONTH, DOW, YEAR)
_BOUNDS = {SECOND: (0, 59), MINUTE: (0, 59), HOUR: (0, 23), DOM: (1, 31), MONTH: (1, 12),
           YEAR: (1970, 2099)}
_MAX_STEP = {SECOND: 59, MINUTE: 59, HOUR: 23, DOM: 31, MONTH: 12, DOW: 7, YEAR: 129}
_WRAP = {SECOND: 60, MINUTE: 60, HOUR: 24, DOM: 31, MONTH: 12, DOW: 7}  # quartz overflow

_TOKEN = r"(\d+|[A-Z]+)"
_RANGE = re.compile(_TOKEN + r"(?:-" + _TOKEN + r")?(?:/(\d*))?")
_STAR = re.compile(r"\*(?:/(\d*))?")
_DOM_LAST = re.compile(r"L(?:-(\d+))?(W?)")
_DOM_NEAR = re.compile(r"(\d+)W")
_DOW_LAST = re.compile(_TOKEN + r"L")
_DOW_NTH = re.compile(_TOKEN + r"#(\d+)")


class CronError(ValueError):
    """A cron expression that cannot be read; one line naming the field and the fault."""

    def __init__(self, expr: str, detail: str) -> None:
        super().__init__(f"bad cron expression {clip(expr)}: {detail}")
        self.expr = expr
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DayRules:
    """Day-of-month and day-of-week rules; weekdays 0 = Sunday .. 6 = Saturday."""

    dom: frozenset[int]  # plain days of the month
    dom_last: tuple[int, ...] = ()  # L (0) and L-n (n): days before the last day
    dom_near: tuple[int, ...] = ()  # nW: the weekday nearest day n
    dom_last_near: tuple[int, ...] = ()  # LW (0), L-nW (n)
    dow: frozenset[int] = frozenset()  # plain weekdays
    dow_last: frozenset[int] = frozenset()  # nL: the last weekday n of the month
    dow_nth: frozenset[tuple[int, int]] = frozenset()  # n#k: (weekday, k)
    both: bool = True  # True: a day must match both fields (AND), False: either (OR)

    @property
    def dom_special(self) -> bool:
        return bool(self.dom_last or self.dom_near or self.dom_last_near)

    @property
    def dow_special(self) -> bool:
        return bool(self.dow_last or self.dow_nth)


@dataclass(frozen=True, slots=True)
class Parsed:
    """An expression read: sorted values per clock field, the day rules, and the flags."""

    dialect: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...]
    days: DayRules
    interval_like: bool  # Vixie: the minute or hour (quartz: or second) field starts with '*'


def parse(expr: str, dialect: str | None = None) -> Parsed:
    """Read `expr`; raise CronError with a one-line message on anything wrong."""
    fields = expr.split()
    n = len(fields)
    if dialect not in (None, "cron", "quartz"):
        raise CronError(expr, f"unknown dialect {clip(dialect)}; use 'cron' or 'quartz'")
    if dialect is None:
        dialect = "cron" if n == 5 else "quartz" if n in (6, 7) else ""
    if dialect == "cron" and n != 5:
        raise CronError(expr, "the cron dialect has 5 fields (minute hour day-of-month month "
                              f"day-of-week), got {n}")
    if dialect == "quartz" and n not in (6, 7):
        raise CronError(expr, "the quartz dialect has 6-7 fields (second minute hour "
                              f"day-of-month month day-of-week [year]), got {n}")
    if not dialect:
        raise CronError(expr, "expected 5 fields (minute hour day-of-month month "
                              "day-of-week) or 6-7 with seconds first and an optional year, "
                              f"got {n}")
    quartz = dialect == "quartz"
    names = _QUARTZ_FIELDS[:n] if quartz else _CRON_FIELDS
    reader = _FieldReader(expr, quartz)
    got = {name: reader.field(name, text) for name, text in zip(names, fields, strict=True)}
    raw = dict(zip(names, fields, strict=True))

    dom_text, dow_text = raw[DOM], raw[DOW]
    if quartz:
        qm = (dom_text == "?") + (dow_text == "?")
        if qm != 1:
            raise CronError(expr, "quartz needs '?' in exactly one of day-of-month and "
                                  "day-of-week (e.g. '0 0 12 * * ?' or '0 0 12 ? * MON')")
        both = True  # the '?' field matches every day
    else:  # Vixie: a field starting with '*' (or '?') makes it AND, else OR
        both = dom_text[0] in "*?" or dow_text[0] in "*?"
    dom, dow = got[DOM], got[DOW]
    days = DayRules(
        dom=frozenset(dom.values), dom_last=tuple(sorted(dom.last)),
        dom_near=tuple(sorted(dom.near)), dom_last_near=tuple(sorted(dom.last_near)),
        dow=frozenset(dow.values), dow_last=frozenset(dow.last), dow_nth=frozenset(dow.nth),
        both=both,
    )
    clock = (SECOND, MINUTE, HOUR) if quartz else (MINUTE, HOUR)
    return Parsed(
        dialect=dialect,
        seconds=tuple(sorted(got[SECOND].values)) if quartz else (0,),
        minutes=tuple(sorted(got[MINUTE].values)),
        hours=tuple(sorted(got[HOUR].values)),
        months=tuple(sorted(got[MONTH].values)),
        years=tuple(sorted(got[YEAR].values)) if YEAR in got else tuple(range(1970, 2100)),
        days=days,
        interval_like=any(raw[f].startswith("*") for f in clock),
    )


def _special(name: str, item: str) -> bool:
    """An L, W or # item (a day name never ends in L and never holds a '#')."""
    if name == DOM:
        return item.startswith("L") or item.endswith("W")
    return name == DOW and (item.endswith("L") or "#" in item)


class _Field:
    __slots__ = ("values", "last", "near", "last_near", "nth")

    def __init__(self) -> None:
        self.values: set[int] = set()
        self.last: set[int] = set()
        self.near: set[int] = set()
        self.last_near: set[int] = set()
        self.nth: set[tuple[int, int]] = set()


class _FieldReader:
    def __init__(self, expr: str, quartz: bool) -> None:
        self.expr = expr
        self.quartz = quartz

    def fail(self, name: str, text: str, why: str) -> CronError:
        return CronError(self.expr, f"bad {name} field {clip(text)}: {why}")

    def bounds(self, name: str) -> tuple[int, int]:
        if name == DOW:
            return (1, 7) if self.quartz else (0, 7)
        return _BOUNDS[name]

    def field(self, name: str, text: str) -> _Field:
        out = _Field()
        up = text.upper()
        if up == "?":
            if name not in (DOM, DOW):
                raise self.fail(name, text, "'?' is only allowed in day-of-month and "
                                            "day-of-week")
            lo, hi = self.bounds(name)
            out.values.update(range(lo, hi + 1))
            return self._normalise(name, out)
        items = up.split(",")
        if self.quartz and len(items) > 1 and any(_special(name, i) for i in items):
            raise self.fail(name, text, "quartz does not allow L, W or # in a list")
        for item in items:
            if not item:
                raise self.fail(name, text, "empty list item")
            self.item(name, text, item, out)
        return self._normalise(name, out)

    def _normalise(self, name: str, out: _Field) -> _Field:
        if name == DOW:  # to 0 = Sunday .. 6 = Saturday
            shift = 1 if self.quartz else 0
            out.values = {(v - shift) % 7 for v in out.values}
            out.last = {(v - shift) % 7 for v in out.last}
            out.nth = {((v - shift) % 7, k) for v, k in out.nth}
        return out

    def number(self, name: str, text: str, token: str) -> int:
        """A number or (month / day-of-week) name, range-checked."""
        lo, hi = self.bounds(name)
        if token.isdigit():
            if len(token) > 9:
                raise CronError(self.expr, f"{name} {token} out of range {lo}-{hi}")
            v = int(token)
        elif name == MONTH and token in _MONTHS:
            v = _MONTHS[token]
        elif name == DOW and token in _DAYS:
            v = _DAYS[token] + (1 if self.quartz else 0)
        else:
            what = {MONTH: "a month name (JAN-DEC) or number",
                    DOW: "a day name (SUN-SAT) or number"}.get(name, "a number")
            raise self.fail(name, text, f"{clip(token.lower())} is not {what}")
        if not lo <= v <= hi:
            raise CronError(self.expr, f"{name} {v} out of range {lo}-{hi}")
        return v

    def step(self, name: str, text: str, digits: str | None) -> int:
        if digits is None:
            return 1
        if not digits:
            raise self.fail(name, text, "'/' must be followed by a step")
        # a step past the field's range: cronie loads it (warning only) and fires at the
        # range's start, so the cron dialect takes it; Quartz refuses it
        if len(digits) > 9 or self.quartz and int(digits) > _MAX_STEP[name]:
            raise self.fail(name, text, f"step {digits} is too large (at most "
                                        f"{_MAX_STEP[name]})")
        s = int(digits)
        if s == 0:
            raise self.fail(name, text, "the step must be at least 1")
        return s

    def item(self, name: str, text: str, item: str, out: _Field) -> None:
        lo, hi = self.bounds(name)
        m = _STAR.fullmatch(item)
        if m:
            out.values.update(range(lo, hi + 1, self.step(name, text, m.group(1))))
            return
        if name == DOM and self.dom_special(text, item, out):
            return
        if name == DOW and self.dow_special(text, item, out):
            return
        m = _RANGE.fullmatch(item)
        if not m:
            raise self.fail(name, text, self._unknown(name, item))
        a = self.number(name, text, m.group(1))
        step = self.step(name, text, m.group(3))
        if m.group(2) is None:
            b = hi if m.group(3) is not None else a  # a/s means a-max/s
        else:
            b = self.number(name, text, m.group(2))
        if b >= a:
            out.values.update(range(a, b + 1, step))
        elif self.quartz and name != YEAR:  # Quartz's overflowing range
            size = _WRAP[name]
            for i in range(a, b + size + 1, step):
                v = i % size
                out.values.add(size if v == 0 and name in (DOM, MONTH, DOW) else v)
        else:
            raise CronError(self.expr, self._wrap_message(name, m.group(1), m.group(2)))

    def _unknown(self, name: str, item: str) -> str:
        if item == "?":
            return "'?' must stand alone"
        if name in (DOM, DOW) and re.search(r"[LW#]", item):
            hint = ("L, L-n, nW, LW or L-nW" if name == DOM else
                    ("L, nL or n#k" if self.quartz else "nL or n#k"))
            return f"{clip(item.lower())} is not valid here; {name} takes {hint}"
        if "/" in item:
            return f"{clip(item.lower())}: a step goes after '*', a value or a range"
        return f"{clip(item.lower())} is not a value, range or step"

    def _wrap_message(self, name: str, a_text: str, b_text: str) -> str:
        if name == YEAR:
            return f"year range {a_text}-{b_text} is backwards"
        lo, hi = self.bounds(name)
        if name == DOW:
            hi = 6
        names = {MONTH: list(_MONTHS), DOW: list(_DAYS)}.get(name)
        named = names is not None and not a_text.isdigit()

        def label(v: int) -> str:
            return names[v - 1 if name == MONTH else v] if named and names else str(v)

        def span(x: int, y: int) -> str:
            return label(x) if x == y else f"{label(x)}-{label(y)}"

        a = self.number(name, a_text, a_text)
        b = self.number(name, b_text, b_text)
        if name == DOW and a == 7:  # 7 is Sunday again: 7-b means 0-b
            return f"{name} range {a_text}-{b_text} wraps around; write {span(0, b)}"
        return (f"{name} range {a_text}-{b_text} wraps around; "
                f"write {span(a, hi)},{span(lo, b)}")

    def dom_special(self, text: str, item: str, out: _Field) -> bool:
        m = _DOM_LAST.fullmatch(item)
        if m:
            off = m.group(1)
            n = 0 if off is None else int(off) if len(off) < 6 else 999
            if n > 30:
                raise self.fail(DOM, text, f"L-{off} is too far back (at most L-30)")
            (out.last_near if m.group(2) else out.last).add(n)
            return True
        m = _DOM_NEAR.fullmatch(item)
        if m:
            out.near.add(self.number(DOM, text, m.group(1)))
            return True
        return False

    def dow_special(self, text: str, item: str, out: _Field) -> bool:
        if item == "L":
            if not self.quartz:
                raise self.fail(DOW, text, "in the cron dialect write nL (the last weekday n "
                                           "of the month), e.g. 5L")
            out.values.add(7)  # Quartz: a lone L is 7, Saturday
            return True
        m = _DOW_LAST.fullmatch(item)
        if m:
            out.last.add(self.number(DOW, text, m.group(1)))
            return True
        m = _DOW_NTH.fullmatch(item)
        if m:
            day = self.number(DOW, text, m.group(1))
            k = m.group(2)
            if len(k) > 1 or not 1 <= int(k) <= 5:
                raise self.fail(DOW, text, f"the week number after '#' must be 1-5, not {k}")
            out.nth.add((day, int(k)))
            return True
        return False
