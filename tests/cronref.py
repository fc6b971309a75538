"""A reference evaluator for cron (5 fields) and Quartz (6-7 fields), for tests only.

Written straight from the rules, sharing nothing with core.jobs: every list item becomes
a predicate on one value (ranges by modular distance, not by listing their values), and
the next fire time is found by brute force: a day-by-day scan, then a scan of that day's
hours, minutes and seconds. Slow and plain on purpose.

The rules:
* cron: minute hour day-of-month month day-of-week; day-of-week 0-7, 0 and 7 Sunday; a
  range must not wrap. Quartz: second minute hour day-of-month month day-of-week [year];
  day-of-week 1-7, 1 Sunday; a range may wrap (22-2 = 22..23, 0..2); '?' in exactly one
  day field.
* '*', 'a', 'a-b', '*/s', 'a-b/s', 'a/s' (a to the field maximum); names JAN-DEC and
  SUN-SAT; a list is a union.
* day-of-month: L, L-n, nW, LW, L-nW; day-of-week: nL, n#k, and in Quartz a lone L
  (Saturday); '?' as '*'.
* cron days (Vixie): if either day field starts with '*' (or '?'), a day must match both
  fields, otherwise either. Quartz: the field that is not '?' decides.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

MONTH_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAY_NAMES = "SUN MON TUE WED THU FRI SAT".split()
LAST_DAY = date(2099, 12, 31)


class RefError(ValueError):
    pass


def _value(tok: str, kind: str, quartz: bool) -> int:
    if tok.isdigit():
        return int(tok)
    if kind == "month" and tok in MONTH_NAMES:
        return MONTH_NAMES.index(tok) + 1
    if kind == "dow" and tok in DAY_NAMES:
        return DAY_NAMES.index(tok) + (1 if quartz else 0)
    raise RefError(f"bad value {tok!r}")


class _Field:
    """A field as predicates. `hit(v)` for clock fields; `day_hit(d)` for the day fields."""

    def __init__(self, text: str, kind: str, lo: int, hi: int, quartz: bool) -> None:
        self.text, self.kind, self.lo, self.hi, self.quartz = text, kind, lo, hi, quartz
        self.preds = [self._item(p) for p in text.upper().split(",")]

    def _plain(self, a: int, b: int, step: int):
        lo, hi = self.lo, self.hi
        for v in (a, b):
            if not lo <= v <= hi:
                raise RefError(f"{v} out of range")
        if a <= b:
            return lambda v: a <= v <= b and (v - a) % step == 0
        if not self.quartz or self.kind == "year":
            raise RefError("wrapping range")
        size = {"second": 60, "minute": 60, "hour": 24, "dom": 31, "month": 12, "dow": 7}[
            self.kind]
        reach = b + size - a

        def wrapped(v: int) -> bool:
            dist = (v - a) % size
            return dist <= reach and dist % step == 0

        return wrapped

    def _item(self, item: str):
        step = 1
        if "/" in item and not item.startswith("L"):
            item, s = item.split("/")
            step = int(s)
            if step < 1:
                raise RefError("step")
            if item == "*":
                return self._plain(self.lo, self.hi, step)
            if "-" not in item:
                return self._plain(_value(item, self.kind, self.quartz), self.hi, step)
        if item in ("*", "?"):
            return lambda v: True
        if "-" in item and not item.startswith("L"):
            a, b = item.split("-")
            return self._plain(_value(a, self.kind, self.quartz),
                               _value(b, self.kind, self.quartz), step)
        return self._plain(_value(item, self.kind, self.quartz),
                           _value(item, self.kind, self.quartz), 1)

    def hit(self, v: int) -> bool:
        return any(p(v) for p in self.preds)


def _nearest_weekday(d: date) -> date | None:
    """Quartz's W: the Monday-Friday nearest d within d's month."""
    wd = d.weekday()  # Monday 0 .. Sunday 6
    if wd < 5:
        return d
    last = calendar.monthrange(d.year, d.month)[1]
    if wd == 5:  # Saturday
        return d - timedelta(days=1) if d.day > 1 else d + timedelta(days=2)
    return d + timedelta(days=1) if d.day < last else d - timedelta(days=2)


class _DomField:
    def __init__(self, text: str, quartz: bool) -> None:
        self.tests = []
        for item in text.upper().split(","):
            self.tests.append(self._item(item, quartz))

    def _item(self, item: str, quartz: bool):
        if item == "L":
            return lambda d, last: d.day == last
        if item == "LW":
            return lambda d, last: _nearest_weekday(d.replace(day=last)) == d
        if item.startswith("L-"):
            near = item.endswith("W")
            n = int(item[2:-1] if near else item[2:])
            if n > 30:
                raise RefError("L-n")

            def back(d: date, last: int) -> bool:
                if last - n < 1:
                    return False
                target = d.replace(day=last - n)
                return (_nearest_weekday(target) if near else target) == d

            return back
        if item.endswith("W"):
            n = int(item[:-1])
            if not 1 <= n <= 31:
                raise RefError("nW")
            return lambda d, last: n <= last and _nearest_weekday(d.replace(day=n)) == d
        plain = _Field(item, "dom", 1, 31, quartz)
        return lambda d, last: plain.hit(d.day)

    def hit(self, d: date, last: int) -> bool:
        return any(t(d, last) for t in self.tests)


class _DowField:
    def __init__(self, text: str, quartz: bool) -> None:
        self.quartz = quartz
        self.tests = [self._item(item) for item in text.upper().split(",")]

    def _raw_days(self, weekday: int) -> tuple[int, ...]:
        """The raw numbers naming a weekday (Monday 0 .. Sunday 6 as Python counts)."""
        sunday_first = (weekday + 1) % 7
        if self.quartz:
            return (sunday_first + 1,)
        return (0, 7) if sunday_first == 0 else (sunday_first,)

    def _item(self, item: str):
        q = self.quartz
        if item == "L" and q:
            return lambda d, last: d.weekday() == 5
        if item.endswith("L"):
            raw = _value(item[:-1], "dow", q)
            if not (1 if q else 0) <= raw <= 7:
                raise RefError("nL")
            return lambda d, last: raw in self._raw_days(d.weekday()) and d.day + 7 > last
        if "#" in item:
            a, k = item.split("#")
            raw, nth = _value(a, "dow", q), int(k)
            if not 1 <= nth <= 5 or not (1 if q else 0) <= raw <= 7:
                raise RefError("#")
            return lambda d, last: (raw in self._raw_days(d.weekday())
                                    and (d.day - 1) // 7 + 1 == nth)
        plain = _Field(item, "dow", 1 if q else 0, 7, q)
        return lambda d, last: any(plain.hit(r) for r in self._raw_days(d.weekday()))

    def hit(self, d: date, last: int) -> bool:
        return any(t(d, last) for t in self.tests)


class Ref:
    """A cron or Quartz expression, evaluated by brute force."""

    def __init__(self, expr: str, dialect: str | None = None) -> None:
        parts = expr.split()
        if dialect is None:
            dialect = "cron" if len(parts) == 5 else "quartz"
        self.quartz = q = dialect == "quartz"
        if q:
            if len(parts) not in (6, 7):
                raise RefError("fields")
            sec, mi, hr, dom, mon, dow = parts[:6]
            year = parts[6] if len(parts) == 7 else "*"
            if (dom == "?") == (dow == "?"):
                raise RefError("quartz needs exactly one ?")
        else:
            if len(parts) != 5:
                raise RefError("fields")
            mi, hr, dom, mon, dow = parts
            sec, year = "0", "*"
        self.sec = _Field(sec, "second", 0, 59, q)
        self.min = _Field(mi, "minute", 0, 59, q)
        self.hour = _Field(hr, "hour", 0, 23, q)
        self.mon = _Field(mon, "month", 1, 12, q)
        self.year = _Field(year, "year", 1970, 2099, q)
        self.dom = _DomField(dom, q)
        self.dow = _DowField(dow, q)
        if q:
            self.mode = "dow" if dom == "?" else "dom"
        else:
            self.mode = "and" if dom[0] in "*?" or dow[0] in "*?" else "or"

    def day_ok(self, d: date) -> bool:
        if not (self.year.hit(d.year) and self.mon.hit(d.month)):
            return False
        last = calendar.monthrange(d.year, d.month)[1]
        if self.mode == "dom":
            return self.dom.hit(d, last)
        if self.mode == "dow":
            return self.dow.hit(d, last)
        a, b = self.dom.hit(d, last), self.dow.hit(d, last)
        return (a and b) if self.mode == "and" else (a or b)

    def matches(self, t: datetime) -> bool:
        return (self.day_ok(t.date()) and self.hour.hit(t.hour) and self.min.hit(t.minute)
                and self.sec.hit(t.second))

    def next_after(self, t: datetime) -> datetime | None:
        """The first fire strictly after t, scanning day by day up to 2099-12-31."""
        t = t.replace(microsecond=0)
        day = t.date()
        first = True
        while day <= LAST_DAY:
            if self.day_ok(day):
                found = self._time_of_day(day, t if first else None)
                if found is not None:
                    return found
            day += timedelta(days=1)
            first = False
        return None

    def _time_of_day(self, day: date, after: datetime | None) -> datetime | None:
        h0 = after.hour if after else 0
        for h in range(h0, 24):
            if not self.hour.hit(h):
                continue
            m0 = after.minute if after and h == after.hour else 0
            for m in range(m0, 60):
                if not self.min.hit(m):
                    continue
                for s in range(60):
                    if self.sec.hit(s):
                        cand = datetime(day.year, day.month, day.day, h, m, s)
                        if after is None or cand > after:
                            return cand
        return None


# ------------------------------------------------------------------ random expressions ----
_BOUNDS = {"second": (0, 59), "minute": (0, 59), "hour": (0, 23), "dom": (1, 31),
           "month": (1, 12), "year": (1970, 2099)}


def _token(rng, v: int, kind: str, quartz: bool) -> str:
    """v as a number or, now and then, a name (in any case)."""
    if kind == "month" and rng.random() < 0.3:
        name = MONTH_NAMES[v - 1]
    elif kind == "dow" and (quartz or v != 7) and rng.random() < 0.3:
        name = DAY_NAMES[(v - 1 if quartz else v) % 7]
    else:
        return str(v)
    return rng.choice([name, name.lower(), name.title()])


def _plain_item(rng, kind: str, lo: int, hi: int, quartz: bool, wrap: bool) -> str:
    def tok(v: int) -> str:
        return _token(rng, v, kind, quartz)

    a = rng.randint(lo, hi)
    r = rng.random()
    span = hi - lo
    if r < 0.12:
        return "*"
    if r < 0.25:
        return f"*/{rng.randint(1, max(1, span // 2))}"
    if r < 0.45:
        return tok(a)
    if r < 0.52:
        return f"{tok(a)}-{tok(a)}"  # a one-value range
    b = rng.randint(lo, hi)
    if b < a and not wrap:
        a, b = b, a
    if r < 0.75:
        return f"{tok(a)}-{tok(b)}"
    if r < 0.9:
        return f"{tok(a)}-{tok(b)}/{rng.randint(1, max(1, span // 3))}"
    return f"{tok(a)}/{rng.randint(1, max(1, span // 2))}"


def _plain_field(rng, kind: str, lo: int, hi: int, quartz: bool, wrap: bool = False) -> str:
    r = rng.random()
    if r < 0.55:
        return _plain_item(rng, kind, lo, hi, quartz, wrap)
    items = [_plain_item(rng, kind, lo, hi, quartz, wrap) for _ in range(rng.randint(2, 3))]
    if r > 0.93:
        items.insert(rng.randint(0, len(items)), "*")  # a list holding '*'
    return ",".join(items)


def _dom_special(rng) -> str:
    near = rng.choice([1, 2, 15, 28, 29, 30, 31, rng.randint(1, 31)])  # the edges matter
    return rng.choice(["L", "LW", f"L-{rng.randint(0, 5)}", f"{near}W", f"L-{rng.randint(1, 4)}W"])


def _dow_special(rng, quartz: bool) -> str:
    lo = 1 if quartz else 0
    v = rng.randint(lo, 7)
    tok = _token(rng, v, "dow", quartz)
    if quartz and rng.random() < 0.15:
        return "L"
    if rng.random() < 0.5:
        return f"{tok}L"
    return f"{tok}#{rng.randint(1, 5)}"


def _dom_field(rng, quartz: bool) -> str:
    r = rng.random()
    if r < 0.2:
        return _dom_special(rng)
    if r < 0.3 and not quartz:
        return ",".join([_dom_special(rng), _plain_item(rng, "dom", 1, 31, quartz, False)])
    return _plain_field(rng, "dom", 1, 31, quartz, wrap=quartz and rng.random() < 0.3)


def _dow_field(rng, quartz: bool) -> str:
    r = rng.random()
    if r < 0.2:
        return _dow_special(rng, quartz)
    if r < 0.28 and not quartz:
        return ",".join([_dow_special(rng, quartz),
                         _plain_item(rng, "dow", 0, 7, quartz, False)])
    lo = 1 if quartz else 0
    return _plain_field(rng, "dow", lo, 7, quartz, wrap=quartz and rng.random() < 0.3)


def random_cron(rng) -> str:
    """A random 5-field expression in the cron dialect."""
    dom = "*" if rng.random() < 0.3 else ("?" if rng.random() < 0.05 else _dom_field(rng, False))
    dow = "*" if rng.random() < 0.4 else ("?" if rng.random() < 0.05 else _dow_field(rng, False))
    return " ".join([
        _plain_field(rng, "minute", 0, 59, False),
        _plain_field(rng, "hour", 0, 23, False),
        dom,
        "*" if rng.random() < 0.5 else _plain_field(rng, "month", 1, 12, False),
        dow,
    ])


def random_quartz(rng) -> str:
    """A random 6- or 7-field expression in the Quartz dialect."""
    def clock(kind: str) -> str:
        lo, hi = _BOUNDS[kind]
        return _plain_field(rng, kind, lo, hi, True, wrap=rng.random() < 0.2)

    if rng.random() < 0.5:
        dom, dow = "?", ("*" if rng.random() < 0.3 else _dow_field(rng, True))
    else:
        dom, dow = ("*" if rng.random() < 0.3 else _dom_field(rng, True)), "?"
    month = "*" if rng.random() < 0.5 else _plain_field(rng, "month", 1, 12, True,
                                                          wrap=rng.random() < 0.2)
    parts = [clock("second"), clock("minute"), clock("hour"), dom, month, dow]
    r = rng.random()
    if r < 0.2:
        parts.append("*")
    elif r < 0.4:
        a = rng.randint(1995, 2099)
        b = rng.randint(a, 2099)
        parts.append(rng.choice([f"{a}-{b}", f"{a}/{rng.randint(1, 7)}", f"{a},{b}"]))
    return " ".join(parts)
