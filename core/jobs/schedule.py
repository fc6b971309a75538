"""Schedules as people write them -> next fire times, in epoch seconds.

Four forms: cron (5 fields, or 6-7 in the Quartz form with seconds first and an optional
year), aliases (``@daily``...), intervals (``every 30s``, anchored to the Unix epoch) and
one-shots (``at 2026-12-01 03:00``).

Cron expressions are evaluated on wall-clock time by core.jobs.cron; mapping wall times
to real instants across daylight-saving changes happens here, by one of three policies:

* ``"vixie"`` (the default, Vixie cron's rule): a job is *interval-like* when its minute
  or hour field (Quartz: second, minute or hour) starts with ``*``, else *fixed*. A fixed
  job runs once on both transition days: a time in the spring-forward gap fires at the
  instant of the transition (several gap times collapse into that one fire), and a time
  in the repeated hour of fall-back fires only in the first pass. An interval-like job
  keeps its rhythm in real time: wall times in the gap do not exist and are skipped, and
  the repeated hour fires in both passes.
* ``"skip"`` (systemd-like): gap times do not fire at all; the repeated hour fires once,
  in its first pass.
* ``"all"``: every wall-clock match: gap times fire at the transition instant (collapsed
  into one fire), and the repeated hour fires in both passes.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from core.confguard import MAX_DURATION, clip, format_seconds, non_ascii
from core.durations import MIN_INTERVAL, DurationError, parse_duration
from core.jobs.cron import CronError, CronSpec, compile_cron
from core.jobs.describe import describe_cron, format_interval
from core.jobs.zones import (
    first_offset_change,
    local_timezone_name,
    offset_changes,
    wall_instant,
    zone_or_none,
)

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
_DST_POLICIES = ("vixie", "skip", "all")
_DIALECTS = ("cron", "quartz")
_CRONISH = set("0123456789*?/,-LW#")
_ONE_US = timedelta(microseconds=1)
_MAX_FIRES = 100_000
_MAX_TEXT = 1000  # characters of a schedule; the longest cron lists are a few hundred


class ScheduleError(ValueError):
    """A schedule that cannot be read; the message says what is wrong in one line."""


# ------------------------------------------------------------------------- jitter ----
def jitter_offset(job: str, occurrence: float, jitter: float) -> float:
    """A deterministic offset in [0, jitter) from a hash of (job, occurrence)."""
    if not jitter > 0 or not math.isfinite(jitter):
        return 0.0
    digest = hashlib.blake2b(f"{job}\0{float(occurrence)!r}".encode(), digest_size=8).digest()
    fraction = (int.from_bytes(digest, "big") >> 11) / float(1 << 53)  # in [0, 1)
    offset = fraction * jitter
    return offset if offset < jitter else math.nextafter(jitter, 0.0)


# fire times end with 9999-12-29 (UTC): every zone can still write them as a datetime
LAST_INSTANT = 253_402_041_600.0


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

    def count_between(self, after: float, until: float) -> int | None:
        """How many fire times lie in (after, until], when that is cheap to know (None:
        only walking them would tell)."""
        return None

    def next_fires(self, ts: float, count: int) -> list[float]:
        """Up to `count` fire times after ts, in order (fewer when it stops firing)."""
        out: list[float] = []
        for _ in range(max(0, min(count, _MAX_FIRES))):
            nxt = self.next_after(ts)
            if nxt is None:
                break
            out.append(nxt)
            ts = nxt
        return out

    def transitions(self, start_ts: float, end_ts: float) -> list[tuple[int, int, int]]:
        """The UTC offset changes in (start_ts, end_ts] that move this schedule's fire
        times: [(instant, old offset seconds, new offset seconds)]. Only wall-clock (cron)
        schedules have any; intervals and one-shots keep real time."""
        return []

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
        return float(t) if t <= LAST_INSTANT else None

    def count_between(self, after: float, until: float) -> int | None:
        a, b = self.next_after(after), self.next_after(until)
        if a is None or b is None:
            return None
        return max(0, round(b / self.interval) - round(a / self.interval))

    def describe(self) -> str:
        try:
            return f"every {format_interval(self.interval)}"
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
    """A cron expression on wall-clock time in a zone, with a daylight-saving policy."""

    def __init__(
        self,
        raw: str,
        spec: CronSpec,
        zone: ZoneInfo,
        timezone: str,
        explicit_zone: bool,
        alias: str | None = None,
        dst: str = "vixie",
    ) -> None:
        self.raw = raw
        self.timezone = timezone
        self.spec = spec
        self.expr = spec.expr
        self.dst = dst
        self._zone: tzinfo = zone
        self._explicit_zone = explicit_zone
        self._alias = alias
        # fixed wall-clock time (Vixie): no clock field starts with '*'
        self.fixed = not spec.interval_like
        if dst == "vixie":
            self._gap_fires, self._repeat_both = self.fixed, not self.fixed
        else:
            self._gap_fires = self._repeat_both = dst == "all"

    # -- wall-clock candidates -----------------------------------------------------------
    def _wall_after(self, wall: datetime) -> datetime | None:
        """The first matching naive wall time strictly after `wall` (None: no more)."""
        return self.spec.next_after(wall)

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
        return first_offset_change(self._zone, lo, hi)

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
        gap_fires, repeat_both = self._gap_fires, self._repeat_both
        wall = local.replace(tzinfo=None, fold=0)
        t0, t1 = self._real(wall)
        second_pass = local.fold == 1 and t0 < t1
        first_pass = local.fold == 0 and t0 < t1
        if second_pass and not repeat_both:
            # the repeated hour fired in its first pass; resume after it
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
                if repeat_both:
                    return c1
                wall = cand  # (not reached: the second pass was skipped above)
                continue
            # in the spring-forward gap: fire at the transition, or skip the time
            if gap_fires:
                return float(self._transition(math.floor(c1), math.ceil(c0)))
            wall = cand
        if first_pass and repeat_both:
            # nothing more in the first pass: the second pass of the repeated hour comes
            # before `result` in real time
            fold_at = self._transition(base, math.ceil(t1))
            cand = self._wall_after(self._wall(fold_at) - _ONE_US)
            if cand is not None:
                c0, c1 = self._real(cand)
                if c0 < c1 and ts < c1 < result:
                    return c1
        return None if result == math.inf else result

    def transitions(self, start_ts: float, end_ts: float) -> list[tuple[int, int, int]]:
        return offset_changes(self._zone, start_ts, end_ts)

    def describe(self) -> str:
        try:
            text, has_clock = describe_cron(self.spec.expanded, self._alias)
        except Exception:
            text, has_clock = None, False
        if not text:
            return f"cron {self.raw}"
        if has_clock and self._explicit_zone:
            text += f" ({self.timezone})"
        return text


# -------------------------------------------------------------------------- parsing ----
def parse_schedule(
    text: str, timezone: str | None = None, *, dialect: str | None = None, dst: str = "vixie"
) -> Schedule:
    """Read a schedule: cron, @alias, 'every <duration>' or 'at <ISO time>'.

    dialect: for a cron expression, "cron" (5 fields) or "quartz" (6-7 fields); None
    picks by the number of fields. dst: the daylight-saving policy of cron schedules,
    "vixie", "skip" or "all" (see the module text)."""
    if not isinstance(text, str):
        raise ScheduleError(f"expected a schedule as text, got {type(text).__name__}")
    if dialect is not None and dialect not in _DIALECTS:
        raise ScheduleError(f"unknown cron dialect {clip(dialect)}; use 'cron' or 'quartz'")
    if dst not in _DST_POLICIES:
        raise ScheduleError(f"unknown dst policy {clip(dst)}; use 'vixie', 'skip' or 'all'")
    raw = text.strip()
    if not raw:
        raise ScheduleError(f"empty schedule; {_FORMS}")
    if len(raw) > _MAX_TEXT:
        raise ScheduleError(f"schedule {clip(raw)} is {len(raw)} characters long; at most "
                            f"{_MAX_TEXT}")
    odd = non_ascii(raw)
    if odd is not None:  # '٣' is a digit to str.isdigit and int(), not to a reader
        raise ScheduleError(f"bad schedule {clip(raw)}: {odd} is not ASCII; write digits "
                            "0-9 and names in English")
    explicit = timezone is not None and timezone.strip() != ""
    if explicit:
        assert timezone is not None
        zone_name = timezone.strip()
        zone = zone_or_none(zone_name)
        if zone is None:
            raise ScheduleError(f"unknown time zone {clip(timezone)}")
    else:
        zone_name = local_timezone_name()
        zone = zone_or_none(zone_name) or ZoneInfo("UTC")

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
                f"unknown schedule alias {clip(raw)}; use one of " + " ".join(_ALIASES)
            )
        # an alias is a 5-field cron whatever the dialect asked for
        return _parse_cron(raw, _ALIASES[alias], zone, zone_name, explicit, alias, None, dst)
    fields = raw.split()
    if len(fields) in (5, 6, 7) or dialect is not None:
        return _parse_cron(raw, " ".join(fields), zone, zone_name, explicit, None, dialect, dst)
    if set(fields[0].upper()) <= _CRONISH:
        raise ScheduleError(
            f"bad cron expression {clip(raw)}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week) or 6-7 with seconds first and an optional year, got {len(fields)}"
        )
    raise ScheduleError(f"bad schedule {clip(raw)}; {_FORMS}")


def _parse_interval(raw: str, spec: str, zone_name: str) -> Schedule:
    if not spec:
        raise ScheduleError(
            f"bad interval {clip(raw)}: say how often, e.g. 'every 30s' or 'every 1h30m'"
        )
    try:
        seconds = parse_duration(spec)
    except DurationError as e:
        raise ScheduleError(f"bad interval {clip(raw)}: {e}") from None
    if not seconds > 0 or not math.isfinite(seconds):
        raise ScheduleError(f"bad interval {clip(raw)}: the interval must be more than zero")
    if seconds < MIN_INTERVAL:
        raise ScheduleError(f"bad interval {clip(raw)}: at least 100ms (each run is a "
                            "process; for more often, loop inside one job)")
    if seconds > MAX_DURATION:
        raise ScheduleError(f"bad interval {clip(raw)}: at most "
                            f"{format_seconds(MAX_DURATION)}")
    return IntervalSchedule(raw, seconds, zone_name)


def _parse_once(raw: str, spec: str, zone: ZoneInfo, zone_name: str) -> Schedule:
    hint = "write e.g. 'at 2026-12-01 03:00' or 'at 2026-12-01T03:00:00+01:00'"
    if not spec:
        raise ScheduleError(f"bad time in {clip(raw)}: {hint}")
    try:
        when = datetime.fromisoformat(spec)
    except ValueError:
        raise ScheduleError(f"bad time in {clip(raw)}: {hint}") from None
    if when.tzinfo is None:
        naive = when
        at = wall_instant(when, zone)  # a gap's time: the change; a repeated one: 1st pass
        zone_label = "UTC" if zone_name in ("UTC", "Etc/UTC") else zone_name
    else:
        at = when.timestamp()
        naive = when.replace(tzinfo=None)
        zone_label = _format_offset(when.utcoffset())
    if at > LAST_INSTANT:
        raise ScheduleError(f"bad time in {clip(raw)}: after 9999-12-29 00:00 UTC, the last day "
                            "every zone can write")
    label = naive.strftime("%Y-%m-%d %H:%M" + (":%S" if naive.second else ""))
    return OnceSchedule(raw, float(at), zone_name, f"{label} {zone_label}")


def _format_offset(delta: timedelta | None) -> str:
    if not delta:
        return "UTC"
    minutes = int(delta.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def _parse_cron(
    raw: str,
    expr: str,
    zone: ZoneInfo,
    zone_name: str,
    explicit: bool,
    alias: str | None,
    dialect: str | None,
    dst: str,
) -> Schedule:
    try:
        # compile_cron also rejects a cron that can never match (Feb 30, a year with no
        # such date): an error now, not a job that silently never runs
        spec = compile_cron(expr, "cron" if alias else dialect)
    except CronError as e:
        raise ScheduleError(f"bad cron expression {clip(raw)}: {e.detail}") from None
    return CronSchedule(raw, spec, zone, zone_name, explicit, alias, dst)
