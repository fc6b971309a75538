"""A cron / Quartz evaluator on naive wall-clock time: compile once, ask for next fires.

``compile_cron(expr, dialect)`` reads an expression (see core.jobs.cronparse for the two
dialects) into a CronSpec whose field values are computed once. ``next_after`` walks the
fields from the year down, jumping straight to the next allowed month, day, hour, minute
and second (bisect in sorted tuples), so a call costs a handful of steps whatever the
expression. Days are decided per month shape: which days of a month match depends only
on (number of days, weekday of the 1st), 28 shapes in all, each worked out once per spec.

Times are naive wall-clock datetimes; time zones and daylight saving belong to the caller
(core.jobs.schedule maps wall times to instants).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime

from core.jobs.cronparse import CronError, DayRules, parse

__all__ = ["CronError", "CronSpec", "compile_cron"]

FIRST_YEAR, LAST_YEAR = 1970, 2099
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


# (number of days, weekday of the 1st with 0 = Sunday) for every month 1970-2099
_SHAPES: list[tuple[int, int]] = [
    (_MONTH_DAYS[m - 1] + (m == 2 and _leap(y)), (date(y, m, 1).weekday() + 1) % 7)
    for y in range(FIRST_YEAR, LAST_YEAR + 1) for m in range(1, 13)
]


def _nearest_weekday(day: int, ndays: int, first: int) -> int:
    """The Monday-Friday day nearest `day`, never leaving the month (Quartz's W)."""
    w = (first + day - 1) % 7
    if w == 6:  # Saturday: the Friday before, or Monday the 3rd for the 1st
        return 3 if day == 1 else day - 1
    if w == 0:  # Sunday: the Monday after, or the Friday before for the last day
        return day - 2 if day == ndays else day + 1
    return day


def _days_of(rules: DayRules, ndays: int, first: int) -> tuple[int, ...]:
    """The days of a month of `ndays` days starting on weekday `first` that match."""
    dom = {d for d in rules.dom if d <= ndays}
    dom.update(ndays - n for n in rules.dom_last if ndays - n >= 1)
    dom.update(_nearest_weekday(d, ndays, first) for d in rules.dom_near if d <= ndays)
    dom.update(_nearest_weekday(ndays - n, ndays, first)
               for n in rules.dom_last_near if ndays - n >= 1)
    dow = set()
    for d in range(1, ndays + 1):
        w = (first + d - 1) % 7
        if (w in rules.dow or (w in rules.dow_last and d + 7 > ndays)
                or (w, (d - 1) // 7 + 1) in rules.dow_nth):
            dow.add(d)
    return tuple(sorted(dom & dow if rules.both else dom | dow))


@dataclass(frozen=True, slots=True, eq=False)
class CronSpec:
    """A compiled expression. Field values are sorted tuples; weekdays 0 = Sunday."""

    expr: str
    dialect: str  # "cron" or "quartz"
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...]
    days: DayRules
    interval_like: bool  # Vixie's rule: a clock field starts with '*'
    _shape_days: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)
    _sets: tuple[frozenset[int], ...] = ()

    # -- days -----------------------------------------------------------------------------
    def _days(self, y: int, m: int) -> tuple[int, ...]:
        shape = _SHAPES[(y - FIRST_YEAR) * 12 + m - 1]
        got = self._shape_days.get(shape)
        if got is None:
            got = self._shape_days[shape] = _days_of(self.days, *shape)
        return got

    def fires_at_all(self) -> bool:
        """Whether any allowed (year, month) has a matching day."""
        return any(self._days(y, m) for y in self.years for m in self.months)

    # -- the questions ---------------------------------------------------------------------
    def next_after(self, wall: datetime) -> datetime | None:
        """The first matching wall time strictly after `wall` (microseconds dropped), or
        None when there is none up to the end of the year range (2099)."""
        y, mo, d, h, mi = wall.year, wall.month, wall.day, wall.hour, wall.minute
        if self.dialect == "quartz":
            s = wall.second + 1
        else:
            s = 0
            mi += 1
        if y < FIRST_YEAR:
            y, mo, d, h, mi, s = FIRST_YEAR, 1, 1, 0, 0, 0
        years, months, hours = self.years, self.months, self.hours
        minutes, seconds = self.minutes, self.seconds
        last_year = years[-1]
        while True:
            if y > last_year:
                return None
            i = bisect_left(years, y)
            if years[i] != y:
                y, mo, d, h, mi, s = years[i], 1, 1, 0, 0, 0
            i = bisect_left(months, mo)
            if i == len(months):
                y, mo, d, h, mi, s = y + 1, 1, 1, 0, 0, 0
                continue
            if months[i] != mo:
                mo, d, h, mi, s = months[i], 1, 0, 0, 0
            days = self._days(y, mo)
            i = bisect_left(days, d)
            if i == len(days):
                mo, d, h, mi, s = mo + 1, 1, 0, 0, 0
                continue
            if days[i] != d:
                d, h, mi, s = days[i], 0, 0, 0
            i = bisect_left(hours, h)
            if i == len(hours):
                d, h, mi, s = d + 1, 0, 0, 0
                continue
            if hours[i] != h:
                h, mi, s = hours[i], 0, 0
            i = bisect_left(minutes, mi)
            if i == len(minutes):
                h, mi, s = h + 1, 0, 0
                continue
            if minutes[i] != mi:
                mi, s = minutes[i], 0
            i = bisect_left(seconds, s)
            if i == len(seconds):
                mi, s = mi + 1, 0
                continue
            return datetime(y, mo, d, h, mi, seconds[i])

    def matches(self, wall: datetime) -> bool:
        """Whether `wall` (to the second; cron fires at second 0) is a fire time."""
        secs, mins, hrs, mons, yrs = self._sets
        if not (wall.second in secs and wall.minute in mins and wall.hour in hrs
                and wall.month in mons and wall.year in yrs):
            return False
        return wall.day in self._days(wall.year, wall.month)

    # -- for describing ----------------------------------------------------------------------
    @property
    def expanded(self) -> list[list | None]:
        """croniter's order: minute, hour, day-of-month, month, day-of-week[, second, year].

        Each field is its sorted values, or ["*"] for every value; day-of-week 0 = Sunday.
        None for a field that a plain list cannot say (L, W, #, or two restricted day
        fields that must both match)."""

        def plain(values: tuple[int, ...], lo: int, hi: int) -> list:
            return ["*"] if values == tuple(range(lo, hi + 1)) else list(values)

        r = self.days
        dom: list | None = sorted(r.dom)
        dow: list | None = sorted(r.dow)
        dom_full, dow_full = dom == list(range(1, 32)), dow == list(range(7))
        if r.dom_special:
            dom, dom_full = None, False
        if r.dow_special:
            dow, dow_full = None, False
        if r.both:
            if dom_full:
                dom = ["*"]
            if dow_full:
                dow = ["*"]
            if not dom_full and not dow_full:
                dom = None  # both must match: no plain wording
        elif dom_full or dow_full:  # either matches, and one matches every day
            dom, dow = ["*"], ["*"]
        out = [plain(self.minutes, 0, 59), plain(self.hours, 0, 23), dom,
               plain(self.months, 1, 12), dow]
        if self.dialect == "quartz":
            out += [plain(self.seconds, 0, 59), plain(self.years, FIRST_YEAR, LAST_YEAR)]
        return out


def compile_cron(expr: str, dialect: str | None = None) -> CronSpec:
    """Read a cron ("cron": 5 fields) or Quartz ("quartz": 6-7 fields) expression.

    dialect None: 5 fields are cron, 6-7 quartz. Raises CronError (a ValueError) with a
    one-line message for anything wrong, including an expression that can never fire."""
    p = parse(expr, dialect)
    spec = CronSpec(
        expr=expr, dialect=p.dialect, seconds=p.seconds, minutes=p.minutes, hours=p.hours,
        months=p.months, years=p.years, days=p.days, interval_like=p.interval_like,
        _sets=(frozenset(p.seconds), frozenset(p.minutes), frozenset(p.hours),
               frozenset(p.months), frozenset(p.years)),
    )
    if not spec.fires_at_all():
        raise CronError(expr, "never fires (no such date)")
    return spec
