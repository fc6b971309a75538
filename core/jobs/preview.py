"""Schedules previewed before they run: the next fires with the zone's offset changes
between them, the fires a new config adds and removes in a window, and schedules that
never fire.

`fleetdeck schedule next` and `schedule diff` print these, `check-config` warns with
`never_fires`. Times are epoch seconds; `local_label` and `local_iso` write one in a zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from core.jobs.config import Job
from core.jobs.schedule import OnceSchedule, Schedule, ScheduleError, parse_schedule
from core.jobs.zones import offset_changes, zone_or_none

__all__ = [
    "FIVE_YEARS",
    "MAX_WINDOW_FIRES",
    "FireDiff",
    "Transition",
    "config_warnings",
    "diff_fires",
    "dst_effect",
    "fires_between",
    "job_schedule",
    "local_iso",
    "local_label",
    "never_fires",
    "next_transition",
    "offset_label",
    "transitions_between",
    "upcoming",
    "zone_of",
]

YEAR = 365.2425 * 86400
FIVE_YEARS = 5 * YEAR
MAX_WINDOW_FIRES = 10_000  # fires of one job in one window, per config


# --------------------------------------------------------------------- writing times ----
def zone_of(schedule: Schedule) -> tzinfo:
    """The zone a schedule's times are read in (its own: the job's, or the host's)."""
    return zone_or_none(schedule.timezone) or ZoneInfo("UTC")


def local_iso(ts: float, zone: tzinfo) -> str:
    """ISO 8601 with the zone's offset: 2026-12-07T12:00:00+00:00."""
    return datetime.fromtimestamp(ts, zone).isoformat()


def local_label(ts: float, zone: tzinfo, *, seconds: bool = False,
                weekday: bool = False) -> str:
    """As people read it: 2026-03-29 03:00 CEST (with seconds, with the weekday)."""
    t = datetime.fromtimestamp(ts, zone)
    fmt = "%Y-%m-%d " + ("%a " if weekday else "") + ("%H:%M:%S" if seconds else "%H:%M")
    return f"{t.strftime(fmt)} {t.tzname()}"


def _span(seconds: int) -> str:
    """+1h, -1h, +30m, +1h30m."""
    sign = "+" if seconds >= 0 else "-"
    h, m = divmod(abs(seconds) // 60, 60)
    return sign + (f"{h}h" if h else "") + (f"{m}m" if m or not h else "")


# ------------------------------------------------------------------- the next fires ----
@dataclass(frozen=True)
class Transition:
    """One change of a zone's UTC offset (daylight saving starting or ending)."""

    at: int  # the instant it changes
    old_offset: int  # seconds east of UTC, before
    new_offset: int
    old_name: str  # CET
    new_name: str  # CEST

    @property
    def wall(self) -> datetime:
        """The wall clock at the change, read in the old offset: 02:00 when Berlin springs
        forward (02:00 CET becomes 03:00 CEST), 03:00 when it falls back."""
        old = timezone(timedelta(seconds=self.old_offset))
        return datetime.fromtimestamp(self.at, old).replace(tzinfo=None)

    def label(self) -> str:
        """2026-03-29 02:00 CET -> CEST (+1h)."""
        return (f"{self.wall.strftime('%Y-%m-%d %H:%M')} {self.old_name} -> {self.new_name} "
                f"({_span(self.new_offset - self.old_offset)})")


def transitions_between(zone: tzinfo, start: float, end: float) -> list[Transition]:
    """The zone's offset changes in (start, end]."""
    out = []
    for at, old, new in offset_changes(zone, start, end):
        old_name = datetime.fromtimestamp(at - 1, zone).tzname() or _span(old)
        new_name = datetime.fromtimestamp(at, zone).tzname() or _span(new)
        out.append(Transition(at, old, new, old_name, new_name))
    return out


def upcoming(schedule: Schedule, after: float, count: int) -> list[float | Transition]:
    """The next `count` fires strictly after `after`, in order, with every offset change
    of the schedule's zone between `after` and the last of them.

    The changes are the zone's, for every form: a cron schedule's fires move with them
    (`Schedule.transitions`), and an interval's keep real time but still jump on the
    wall clock they are shown in. A change at the instant of a fire comes first (the
    fire is in the new offset)."""
    fires = schedule.next_fires(after, count)
    if not fires:
        return []
    changes = transitions_between(zone_of(schedule), after, fires[-1])
    out: list[float | Transition] = []
    i = 0
    for fire in fires:
        while i < len(changes) and changes[i].at <= fire:
            out.append(changes[i])
            i += 1
        out.append(fire)
    return out


def offset_label(ts: float, zone: tzinfo) -> str:
    """The zone's UTC offset at an instant: +02:00, -03:30."""
    off = int((datetime.fromtimestamp(ts, zone).utcoffset() or timedelta()).total_seconds())
    sign = "+" if off >= 0 else "-"
    h, m = divmod(abs(off) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


def next_transition(schedule: Schedule, after: float,
                    horizon: float = YEAR) -> Transition | None:
    """The first offset change of the schedule's zone in (after, after + horizon]."""
    changes = transitions_between(zone_of(schedule), after, after + horizon)
    return changes[0] if changes else None


def dst_effect(schedule: Schedule, change: Transition) -> str:
    """What an offset change does to a schedule's fires, in one line: "02:30 does not
    exist that night (vixie: fires at 03:00 CEST)", "02:30 happens twice that night
    (skip: fires once, in the first pass)", or that none of its times is in the hour."""
    from core.jobs.schedule import CronSchedule

    delta = change.new_offset - change.old_offset
    if not isinstance(schedule, CronSchedule):
        if isinstance(schedule, OnceSchedule):
            return "a one-off: unaffected"
        return (f"an interval keeps real time: the wall clock moves {_span(delta)} "
                "between its fires")
    wall = change.wall
    if delta > 0:  # spring forward: wall times in [wall, wall + delta) do not exist
        lo, hi = wall, wall + timedelta(seconds=delta)
    else:  # fall back: wall times in [wall - |delta|, wall) happen twice
        lo, hi = wall - timedelta(seconds=-delta), wall
    hits: list[datetime] = []
    cand = schedule.spec.next_after(lo - timedelta(microseconds=1))
    while cand is not None and cand < hi and len(hits) < 1000:
        hits.append(cand)
        cand = schedule.spec.next_after(cand)
    vixie = schedule.dst == "vixie"
    policy = schedule.dst + ((" fixed time" if schedule.fixed else " interval-like")
                             if vixie else "")
    if not hits:
        return f"none of its times is in the changed hour ({policy}: unaffected)"
    fmt = "%H:%M:%S" if any(h.second for h in hits) else "%H:%M"
    times = hits[0].strftime(fmt) + (f" and {len(hits) - 1} more" if len(hits) > 1 else "")
    if delta > 0:
        gap_fires = schedule.fixed if vixie else schedule.dst == "all"
        at = local_label(change.at, zone_of(schedule))
        what = f"fires at {at[11:]}" if gap_fires else "does not fire then"
        verb = "do not" if len(hits) > 1 else "does not"
        return f"{times} {verb} exist that night ({policy}: {what})"
    repeat_both = (not schedule.fixed) if vixie else schedule.dst == "all"
    what = "fires in both passes" if repeat_both else "fires once, in the first pass"
    verb = "happen" if len(hits) > 1 else "happens"
    return f"{times} {verb} twice that night ({policy}: {what})"


# ----------------------------------------------------------- a new config's fires ----
def job_schedule(job: Job) -> Schedule | None:
    """The schedule a job fires on: None when it has none (on demand), is disabled, or
    has one that cannot be read (check-config says why)."""
    return _parse(job) if job.enabled else None


def _parse(job: Job) -> Schedule | None:
    if not job.schedule:
        return None
    try:
        return parse_schedule(job.schedule, job.timezone, dialect=job.dialect, dst=job.dst)
    except ScheduleError:
        return None


def fires_between(schedule: Schedule | None, start: float, end: float,
                  limit: int = MAX_WINDOW_FIRES) -> tuple[list[float], bool]:
    """The fires in (start, end], at most `limit` of them; True when there were more."""
    out: list[float] = []
    if schedule is None:
        return out, False
    t = start
    while (nxt := schedule.next_after(t)) is not None and nxt <= end:
        if len(out) >= limit:
            return out, True
        out.append(nxt)
        t = nxt
    return out, False


@dataclass
class FireDiff:
    """What a new config does to one job's fires in a window."""

    change: str  # the job is "added", "removed" or "changed"
    added: list[float] = field(default_factory=list)  # fires only the new config has
    removed: list[float] = field(default_factory=list)  # fires only the current one has
    old_zone: tzinfo | None = None  # the zone each side's fires are read in
    new_zone: tzinfo | None = None
    until: float | None = None  # set when there were too many fires: compared up to here


def _timing(job: Job) -> tuple[object, ...]:
    return (job.schedule, job.timezone, job.dialect, job.dst, job.enabled)


def diff_fires(old: Mapping[str, Job], new: Mapping[str, Job], start: float,
               end: float, limit: int = MAX_WINDOW_FIRES) -> dict[str, FireDiff]:
    """Per job, by name: the fires in (start, end] that the new jobs have and the old do
    not (added) and the other way round (removed). Listed: every job added or removed,
    and every changed job whose fires in the window differ. A job with more than `limit`
    fires in the window is compared up to the last fire both sides listed (`until`)."""
    out: dict[str, FireDiff] = {}
    for name in sorted(set(old) | set(new)):
        o, n = old.get(name), new.get(name)
        if o is not None and n is not None and _timing(o) == _timing(n):
            continue
        change = "added" if o is None else "removed" if n is None else "changed"
        o_sched = job_schedule(o) if o is not None else None
        n_sched = job_schedule(n) if n is not None else None
        o_fires, o_more = fires_between(o_sched, start, end, limit)
        n_fires, n_more = fires_between(n_sched, start, end, limit)
        until = None
        if o_more or n_more:
            until = min(f[-1] for f, more in ((o_fires, o_more), (n_fires, n_more)) if more)
            o_fires = [t for t in o_fires if t <= until]
            n_fires = [t for t in n_fires if t <= until]
        o_set, n_set = set(o_fires), set(n_fires)
        diff = FireDiff(
            change,
            added=[t for t in n_fires if t not in o_set],
            removed=[t for t in o_fires if t not in n_set],
            old_zone=zone_of(o_sched) if o_sched else None,
            new_zone=zone_of(n_sched) if n_sched else None,
            until=until,
        )
        if change == "changed" and not diff.added and not diff.removed:
            continue
        out[name] = diff
    return out


# ----------------------------------------------------------------- never firing ----
def never_fires(schedule: Schedule, now: float, horizon: float = FIVE_YEARS) -> str | None:
    """Why a schedule has no fire in (now, now + horizon], or None when it has one."""
    nxt = schedule.next_after(now)
    years = f"{horizon / YEAR:g} year{'s' if horizon != YEAR else ''}"
    if nxt is None:
        if isinstance(schedule, OnceSchedule):
            return f"never fires: {schedule.describe()} is in the past"
        return f"never fires again ({schedule.describe()})"
    if nxt > now + horizon:
        return f"does not fire in the next {years} (next: {local_label(nxt, zone_of(schedule))})"
    return None


def config_warnings(jobs: Mapping[str, Job], now: float,
                    horizon: float = FIVE_YEARS) -> list[tuple[str, str]]:
    """(job name, what is wrong) for each scheduled job that never fires in the horizon
    (enabled or not: a disabled job's schedule is still meant to mean something)."""
    out = []
    for name, job in jobs.items():
        sched = _parse(job)
        if sched is None:
            continue
        why = never_fires(sched, now, horizon)
        if why:
            out.append((name, why))
    return out

