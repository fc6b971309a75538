"""Schedules as people write them -> next fire times, in epoch seconds.

Four forms: cron (5 fields, or 6-7 in the Quartz form with seconds first and an optional
year), aliases (``@daily``...), intervals (``every 30s``, anchored to the Unix epoch) and
one-shots (``at 2026-12-01 03:00``).

The daylight-saving rule is Vixie cron's. croniter is only asked for wall-clock
candidates (naive datetimes); mapping them to real instants happens here:

* a *fixed* job (second, minute and hour fields are plain numbers or lists of them) runs
  once on both transition days: a time in the spring-forward gap fires at the instant
  of the transition (several gap times collapse into that one fire), and a time in the
  repeated hour of fall-back fires only in the first pass;
* any other cron is a *rhythm* job and keeps its rhythm in real time: wall times in the
  gap do not exist and are skipped, and the repeated hour fires in both passes.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.durations import DurationError, parse_duration

__all__ = [
    "Schedule",
    "ScheduleError",
    "jitter_offset",
    "local_timezone_name",
    "parse_schedule",
]

_FORMS = (
    "write a cron expression ('*/15 * * * *', or 6-7 fields with seconds first), "
    "an alias (@hourly @daily @weekly @monthly @yearly), 'every 30s' or "
    "'at 2026-12-01 03:00'"
)

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_FIELDS_5 = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELDS_7 = ("second",) + _FIELDS_5 + ("year",)
_RANGES = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (0, 7),
    "year": (1970, 2099),
}
_PLAIN = re.compile(r"\d+(?:,\d+)*")
_NUMERIC_PART = re.compile(r"(\d+)(?:-(\d+))?")
_CRONISH = re.compile(r"[\d*?/,\-]+")


def _cron() -> Any:
    """The croniter package, imported with the first cron schedule (start-up time)."""
    import croniter

    return croniter


_MAX_YEARS = 130  # croniter's search horizon; covers the whole 1970-2099 year field
_EPOCH = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)


class ScheduleError(ValueError):
    """A schedule that cannot be read; the message says what is wrong in one line."""


# ---------------------------------------------------------------------------- zones ----
def local_timezone_name() -> str:
    """The host's IANA zone name: $TZ, else the /etc/localtime link, else 'UTC'."""
    env = os.environ.get("TZ", "").strip().lstrip(":")
    if env:
        name = _zone_name_from_path(env) if env.startswith("/") else env
        if name and _zone_or_none(name) is not None:
            return name
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        target = ""
    name = _zone_name_from_path(target)
    if name and _zone_or_none(name) is not None:
        return name
    try:
        with open("/etc/timezone", encoding="utf-8") as f:
            name = f.read().strip()
    except OSError:
        name = ""
    if name and _zone_or_none(name) is not None:
        return name
    return "UTC"


def _zone_name_from_path(path: str) -> str:
    marker = "zoneinfo/"
    i = path.rfind(marker)
    if i < 0:
        return ""
    name = path[i + len(marker):]
    for prefix in ("posix/", "right/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


def _zone_or_none(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


# ------------------------------------------------------------------------- jitter ----
def jitter_offset(job: str, occurrence: float, jitter: float) -> float:
    """A deterministic offset in [0, jitter) from a hash of (job, occurrence)."""
    if not jitter > 0 or not math.isfinite(jitter):
        return 0.0
    digest = hashlib.blake2b(f"{job}\0{float(occurrence)!r}".encode(), digest_size=8).digest()
    fraction = (int.from_bytes(digest, "big") >> 11) / float(1 << 53)  # in [0, 1)
    offset = fraction * jitter
    return offset if offset < jitter else math.nextafter(jitter, 0.0)


# ----------------------------------------------------------------------- schedules ----
class Schedule:
    """A parsed schedule: `raw` as written, `timezone` the IANA zone actually used."""

    raw: str
    timezone: str

    def next_after(self, ts: float) -> float | None:
        """Next fire time (epoch seconds) strictly after ts, or None if it never fires again."""
        raise NotImplementedError

    def describe(self) -> str:
        """The schedule in words, for the console."""
        return self.raw

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r}, timezone={self.timezone!r})"


class IntervalSchedule(Schedule):
    """Every N seconds, at multiples of N since the Unix epoch (restarts keep the rhythm)."""

    def __init__(self, raw: str, interval: float, timezone: str) -> None:
        self.raw = raw
        self.timezone = timezone
        self.interval = interval

    def next_after(self, ts: float) -> float | None:
        if math.isnan(ts):
            return None
        if math.isinf(ts):
            return None if ts > 0 else 0.0
        iv = self.interval
        n = math.floor(ts / iv) + 1
        t = n * iv
        while t <= ts:  # float rounding
            n += 1
            t = n * iv
        return float(t)

    def describe(self) -> str:
        try:
            return f"every {_format_interval(self.interval)}"
        except Exception:
            return self.raw


class OnceSchedule(Schedule):
    """A single fire time."""

    def __init__(self, raw: str, at: float, timezone: str, label: str) -> None:
        self.raw = raw
        self.timezone = timezone
        self.at = at
        self._label = label

    def next_after(self, ts: float) -> float | None:
        return self.at if self.at > ts else None

    def describe(self) -> str:
        return f"once at {self._label}"


class CronSchedule(Schedule):
    """A cron expression evaluated on wall-clock time in a zone, with the Vixie DST rule."""

    def __init__(
        self,
        raw: str,
        expr: str,
        fields: list[str],
        zone: ZoneInfo,
        timezone: str,
        explicit_zone: bool,
        alias: str | None = None,
    ) -> None:
        self.raw = raw
        self.timezone = timezone
        self.expr = expr
        self._zone: tzinfo = zone
        self._explicit_zone = explicit_zone
        self._alias = alias
        quartz = len(fields) > 5
        clock_fields = fields[:3] if quartz else fields[:2]
        # fixed wall-clock time (Vixie): second/minute/hour are plain numbers or lists
        self.fixed = all(_PLAIN.fullmatch(f) for f in clock_fields)
        self._iter = _cron().croniter(
            expr,
            _EPOCH,
            ret_type=datetime,
            second_at_beginning=quartz,
            max_years_between_matches=_MAX_YEARS,
        )
        # minute, hour, day-of-month, month, day-of-week[, second[, year]]: for describe()
        self._expanded = [list(f) for f in self._iter.expanded]

    # -- wall-clock candidates -----------------------------------------------------------
    def _wall_after(self, wall: datetime) -> datetime | None:
        """The first matching naive wall time strictly after `wall` (None: no more)."""
        try:
            return self._iter.get_next(datetime, start_time=wall)
        except (_cron().CroniterBadDateError, OverflowError, ValueError):
            return None

    def _real(self, wall: datetime) -> tuple[float, float]:
        """(instant with fold=0, instant with fold=1) of a naive wall time in the zone.

        Equal: an ordinary time. t0 < t1: repeated (fall-back). t0 > t1: skipped (gap).
        """
        z = self._zone
        return (
            wall.replace(tzinfo=z, fold=0).timestamp(),
            wall.replace(tzinfo=z, fold=1).timestamp(),
        )

    def _transition(self, lo: int, hi: int) -> int:
        """The first whole second in (lo, hi] whose UTC offset differs from lo's."""
        return _first_offset_change(self._zone, lo, hi)

    def _wall(self, ts: int) -> datetime:
        return datetime.fromtimestamp(ts, self._zone).replace(tzinfo=None, fold=0)

    # -- the public question -------------------------------------------------------------
    def next_after(self, ts: float) -> float | None:
        if math.isnan(ts) or ts == math.inf:
            return None
        try:
            base = math.floor(ts)
            local = datetime.fromtimestamp(base, self._zone)
        except (OverflowError, ValueError, OSError):
            return None
        wall = local.replace(tzinfo=None, fold=0)
        t0, t1 = self._real(wall)
        second_pass = local.fold == 1 and t0 < t1
        first_pass = local.fold == 0 and t0 < t1
        if second_pass and self.fixed:
            # fixed jobs fired in the first pass; resume after the repeated hour
            fold_at = self._transition(math.floor(t0), base)
            fold_end = self._wall(fold_at) + timedelta(seconds=int(t1 - t0))
            wall = max(wall, fold_end - _ONE_US)
        result = math.inf
        while True:
            cand = self._wall_after(wall)
            if cand is None:
                break
            c0, c1 = self._real(cand)
            if c0 == c1:  # an ordinary wall time
                result = c0
                break
            if c0 < c1:  # in the repeated hour of a fall-back
                if not second_pass:
                    return c0
                if not self.fixed:
                    return c1
                wall = cand  # (not reached: fixed jobs skipped the repeated hour above)
                continue
            # in the spring-forward gap: fixed jobs fire at the transition, rhythm jobs skip
            if self.fixed:
                return float(self._transition(math.floor(c1), math.ceil(c0)))
            wall = cand
        if first_pass and not self.fixed:
            # nothing more in the first pass: the second pass of the repeated hour comes
            # before `result` in real time
            fold_at = self._transition(base, math.ceil(t1))
            cand = self._wall_after(self._wall(fold_at) - _ONE_US)
            if cand is not None:
                c0, c1 = self._real(cand)
                if c0 < c1 and ts < c1 < result:
                    return c1
        return None if result == math.inf else result

    def describe(self) -> str:
        try:
            text, has_clock = _describe_cron(self._expanded, self._alias)
        except Exception:
            text, has_clock = None, False
        if not text:
            return f"cron {self.raw}"
        if has_clock and self._explicit_zone:
            text += f" ({self.timezone})"
        return text


# -------------------------------------------------------------------------- parsing ----
def parse_schedule(text: str, timezone: str | None = None) -> Schedule:
    """Read a schedule: cron, @alias, 'every <duration>' or 'at <ISO time>'."""
    if not isinstance(text, str):
        raise ScheduleError(f"expected a schedule as text, got {type(text).__name__}")
    raw = text.strip()
    if not raw:
        raise ScheduleError(f"empty schedule; {_FORMS}")
    explicit = timezone is not None and timezone.strip() != ""
    if explicit:
        assert timezone is not None
        zone_name = timezone.strip()
        zone = _zone_or_none(zone_name)
        if zone is None:
            raise ScheduleError(f"unknown time zone {timezone!r}")
    else:
        zone_name = local_timezone_name()
        zone = _zone_or_none(zone_name) or ZoneInfo("UTC")

    head, _, rest = raw.partition(" ")
    keyword = head.lower()
    if keyword == "every":
        return _parse_interval(raw, rest.strip(), zone_name)
    if keyword == "at":
        return _parse_once(raw, rest.strip(), zone, zone_name)
    if raw.startswith("@"):
        alias = keyword
        if alias == "@reboot":
            raise ScheduleError("@reboot is not supported: fleetdeck schedules by time only")
        if alias not in _ALIASES or rest.strip():
            raise ScheduleError(
                f"unknown schedule alias {raw!r}; use one of " + " ".join(_ALIASES)
            )
        return _parse_cron(raw, _ALIASES[alias], zone, zone_name, explicit, alias)
    fields = raw.split()
    if len(fields) in (5, 6, 7):
        return _parse_cron(raw, " ".join(fields), zone, zone_name, explicit, None)
    if _CRONISH.fullmatch(fields[0]):
        raise ScheduleError(
            f"bad cron expression {raw!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week) or 6-7 with seconds first and an optional year, got {len(fields)}"
        )
    raise ScheduleError(f"bad schedule {raw!r}; {_FORMS}")


def _parse_interval(raw: str, spec: str, zone_name: str) -> Schedule:
    if not spec:
        raise ScheduleError(
            f"bad interval {raw!r}: say how often, e.g. 'every 30s' or 'every 1h30m'"
        )
    try:
        seconds = parse_duration(spec)
    except DurationError as e:
        raise ScheduleError(f"bad interval {raw!r}: {e}") from None
    if not seconds > 0 or not math.isfinite(seconds):
        raise ScheduleError(f"bad interval {raw!r}: the interval must be more than zero")
    return IntervalSchedule(raw, seconds, zone_name)


def _parse_once(raw: str, spec: str, zone: ZoneInfo, zone_name: str) -> Schedule:
    hint = "write e.g. 'at 2026-12-01 03:00' or 'at 2026-12-01T03:00:00+01:00'"
    if not spec:
        raise ScheduleError(f"bad time in {raw!r}: {hint}")
    try:
        when = datetime.fromisoformat(spec)
    except ValueError:
        raise ScheduleError(f"bad time in {raw!r}: {hint}") from None
    if when.tzinfo is None:
        naive = when
        t0 = when.replace(tzinfo=zone).timestamp()
        t1 = when.replace(tzinfo=zone, fold=1).timestamp()
        if t0 > t1:  # in a spring-forward gap: the moment the skipped time would have been
            at = _first_offset_change(zone, math.floor(t1), math.ceil(t0))
        else:  # ordinary, or repeated: the first pass
            at = t0
        zone_label = "UTC" if zone_name in ("UTC", "Etc/UTC") else zone_name
    else:
        at = when.timestamp()
        naive = when.replace(tzinfo=None)
        zone_label = _format_offset(when.utcoffset())
    label = naive.strftime("%Y-%m-%d %H:%M" + (":%S" if naive.second else ""))
    return OnceSchedule(raw, float(at), zone_name, f"{label} {zone_label}")


def _first_offset_change(zone: tzinfo, lo: int, hi: int) -> int:
    """The first whole second in (lo, hi] whose UTC offset differs from lo's."""
    before = datetime.fromtimestamp(lo, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


def _format_offset(delta: timedelta | None) -> str:
    if not delta:
        return "UTC"
    minutes = int(delta.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def _parse_cron(
    raw: str, expr: str, zone: ZoneInfo, zone_name: str, explicit: bool, alias: str | None
) -> Schedule:
    fields = expr.split()
    names = _FIELDS_5 if len(fields) == 5 else _FIELDS_7[: len(fields)]
    for name, field in zip(names, fields, strict=True):
        _check_range(raw, name, field)
    try:
        sched = CronSchedule(raw, expr, fields, zone, zone_name, explicit, alias)
    except (_cron().CroniterError, ValueError, KeyError, IndexError) as e:
        raise ScheduleError(_cron_error(raw, fields, names, e)) from None
    # a cron that can never match (Feb 30, a year with no such date) is an error now,
    # not a job that silently never runs
    if sched._wall_after(_EPOCH) is None:
        raise ScheduleError(f"bad cron expression {raw!r}: never fires (no such date)")
    return sched


def _check_range(raw: str, name: str, field: str) -> None:
    lo, hi = _RANGES[name]
    for part in field.split(","):
        base, _, _step = part.partition("/")
        m = _NUMERIC_PART.fullmatch(base)
        if not m:
            continue
        for group in m.groups():
            if group is not None and not lo <= int(group) <= hi:
                raise ScheduleError(
                    f"bad cron expression {raw!r}: {name} {int(group)} out of range {lo}-{hi}"
                )


def _cron_error(raw: str, fields: list[str], names: tuple[str, ...], exc: Exception) -> str:
    """Find the field croniter objects to, by trying each one alone."""
    quartz = len(fields) > 5
    for i, (name, field) in enumerate(zip(names, fields, strict=True)):
        probe = ["*"] * len(fields)
        probe[i] = field
        try:
            _cron().croniter.expand(" ".join(probe), second_at_beginning=quartz)
        except (_cron().CroniterError, ValueError, KeyError, IndexError):
            return f"bad cron expression {raw!r}: bad {name} field {field!r}"
    detail = str(exc).split("]")[-1].strip(" ,.") or "not acceptable"
    return f"bad cron expression {raw!r}: {detail}"


# ------------------------------------------------------------------------ describe ----
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _format_interval(seconds: float) -> str:
    if seconds != int(seconds):
        if seconds < 1:
            return f"{seconds * 1000:g}ms"
        return f"{seconds:g}s"
    s = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            n, s = divmod(s, size)
            parts.append(f"{n}{unit}")
    return "".join(parts)


def _step(values: list, lo: int, hi: int) -> int | None:
    """The step k if values are lo+start, start+k, ... through the end of the range."""
    if values == ["*"]:
        return 1
    if len(values) < 2 or not all(isinstance(v, int) for v in values):
        return None
    k = values[1] - values[0]
    if k <= 0 or any(b - a != k for a, b in zip(values, values[1:], strict=False)):
        return None
    if values[0] - lo >= k or values[-1] + k <= hi:
        return None
    return k


def _contiguous(values: list) -> tuple[int, int] | None:
    if len(values) < 2 or not all(isinstance(v, int) for v in values):
        return None
    if values != list(range(values[0], values[-1] + 1)):
        return None
    return values[0], values[-1]


def _plain(values: list) -> bool:
    return values != ["*"] and all(isinstance(v, int) for v in values)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _describe_cron(expanded: list, alias: str | None) -> tuple[str | None, bool]:
    """(text, whether it names wall-clock times) or (None, False) when too unusual."""
    minutes, hours, dom, months, dow = expanded[:5]
    seconds = expanded[5] if len(expanded) > 5 else [0]
    years = expanded[6] if len(expanded) > 6 else ["*"]
    if alias == "@hourly":
        return "hourly", False

    sec_suffix = ""
    if seconds != [0]:
        if seconds == ["*"] and minutes == ["*"] and hours == ["*"]:
            time_text, clock = "every second", False
            return _with_days(time_text, clock, dom, months, dow, years)
        if not (_plain(seconds) and len(seconds) == 1):
            return None, False
        sec_suffix = f":{seconds[0]:02d}"

    def clock(h: int, m: int) -> str:
        return f"{h:02d}:{m:02d}{sec_suffix}"

    m_step = _step(minutes, 0, 59)
    h_step = _step(hours, 0, 23)
    h_range = _contiguous(hours)
    if minutes == ["*"] and hours == ["*"] and not sec_suffix:
        return _with_days("every minute", False, dom, months, dow, years)
    if m_step and m_step > 1 and hours == ["*"]:
        return _with_days(f"every {m_step} minutes", False, dom, months, dow, years)
    if _plain(minutes) and len(minutes) == 1:
        m = minutes[0]
        at = f" at :{m:02d}{sec_suffix}" if m or sec_suffix else ""
        if hours == ["*"]:
            return _with_days("hourly" + at, False, dom, months, dow, years)
        if h_step and h_step > 1 and len(hours) > 2:
            return _with_days(f"every {h_step} hours" + at, False, dom, months, dow, years)
        if h_range:
            text = f"hourly from {clock(h_range[0], m)} to {clock(h_range[1], m)}"
            return _with_days(text, True, dom, months, dow, years)
    if m_step and h_range:
        every = "every minute" if m_step == 1 else f"every {m_step} minutes"
        last = minutes[-1] if minutes != ["*"] else 59
        first = minutes[0] if minutes != ["*"] else 0
        text = f"{every} from {clock(h_range[0], first)} to {clock(h_range[1], last)}"
        return _with_days(text, True, dom, months, dow, years)
    if _plain(minutes) and _plain(hours) and len(minutes) * len(hours) <= 6:
        times = [clock(h, m) for h in hours for m in minutes]
        return _with_days("at " + _join(times), True, dom, months, dow, years)
    return None, False


def _with_days(
    time_text: str, has_clock: bool, dom: list, months: list, dow: list, years: list
) -> tuple[str | None, bool]:
    daily = has_clock and time_text.startswith("at ")
    year_text = f" in {_join([str(y) for y in years])}" if years != ["*"] else ""
    if dom == ["*"] and months == ["*"] and dow == ["*"]:
        text = f"daily {time_text}" if daily else time_text
        return text + year_text, has_clock
    if not all(_plain(f) or f == ["*"] for f in (dom, months, dow)):
        return None, False
    day_names = sorted({_DAY_NAMES[d % 7] for d in dow}, key=_DAY_NAMES.index) if dow != [
        "*"] else []
    month_text = _join([_MONTH_NAMES[m - 1] for m in months]) if months != ["*"] else ""
    if dow != ["*"] and dom == ["*"]:
        span = _contiguous(sorted({d % 7 for d in dow}))
        if len(day_names) == 1:
            days = f"on {day_names[0]}s"
            if daily and months == ["*"]:
                text = f"weekly on {day_names[0]} {time_text}"
                return text + year_text, has_clock
        elif span and span[1] - span[0] >= 2:
            days = f"on {_DAY_NAMES[span[0]][:3]}-{_DAY_NAMES[span[1]][:3]}"
        else:
            days = "on " + _join([n[:3] for n in day_names])
    elif dom != ["*"] and dow == ["*"]:
        if len(dom) == 1 and months == ["*"] and daily:
            return f"monthly on day {dom[0]} {time_text}" + year_text, has_clock
        if len(dom) == 1 and len(months) == 1 and months != ["*"] and daily:
            text = f"yearly on {_MONTH_NAMES[months[0] - 1]} {dom[0]} {time_text}"
            return text + year_text, has_clock
        days = ("on day " if len(dom) == 1 else "on days ") + _join([str(d) for d in dom])
    elif dom == ["*"] and dow == ["*"]:
        days = ""
    else:
        days = "on days " + _join([str(d) for d in dom]) + " or " + _join(
            [n[:3] for n in day_names])
    parts = [time_text]
    if days:
        parts.append(days)
    if month_text:
        parts.append(f"in {month_text}")
    return " ".join(parts) + year_text, has_clock

