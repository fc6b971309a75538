"""A late job's gap as the scheduler hands it over: the latest occurrences, the older
ones counted, and a long gap of a dense schedule leapt over instead of walked."""

from __future__ import annotations

from core.jobs.schedule import Schedule, parse_schedule
from core.jobs.scheduler import MAX_GATHERED, MAX_WALKED, Scheduler

NOW = 1_780_000_000.5  # 2026-05-28, half a second past a whole second
DAY = 86_400


class Counted(Schedule):
    """A schedule that counts how often it is asked (the walk's cost, not its time)."""

    def __init__(self, inner: Schedule) -> None:
        self.inner, self.raw, self.timezone, self.calls = inner, inner.raw, inner.timezone, 0

    def next_after(self, ts: float) -> float | None:
        self.calls += 1
        return self.inner.next_after(ts)

    def count_between(self, after: float, until: float) -> int | None:
        return self.inner.count_between(after, until)


def gap(expr: str, after: float, jitter: float = 0.0) -> tuple[object, Counted]:
    sched = Counted(parse_schedule(expr, "UTC"))
    scheduler = Scheduler(lambda batch, now: None, clock=lambda: NOW)
    scheduler.set_job("j", sched, after=after, jitter=jitter)
    [due] = scheduler.pop_due(NOW)
    assert scheduler.next_fire("j") > NOW - jitter
    return due, sched


def test_a_short_gap_hands_over_its_latest_occurrences_and_counts_the_older():
    due, _ = gap("every 1m", NOW - 1500 * 60)
    assert len(due.occurrences) == MAX_GATHERED == len(due.fire_times)
    assert due.occurrences[-1] == (NOW // 60) * 60  # the most recent: what run_once runs
    assert due.occurrences[0] == due.occurrences[-1] - (MAX_GATHERED - 1) * 60
    assert (due.more, due.more_exact) == (1500 - MAX_GATHERED, True)


def test_a_month_of_a_per_second_interval_is_counted_not_walked():
    due, sched = gap("every 1s", NOW - 30 * DAY)
    assert due.occurrences[-1] == NOW // 1 and len(due.occurrences) == MAX_GATHERED
    assert all(b - a == 1 for a, b in zip(due.occurrences, due.occurrences[1:], strict=False))
    assert (due.more + MAX_GATHERED, due.more_exact) == (30 * DAY, True)
    assert sched.calls < MAX_WALKED + 20 * MAX_GATHERED  # not 2.6 million


def test_a_week_of_a_per_second_quartz_cron_leaps_to_its_latest_seconds():
    due, sched = gap("* * * * * ?", NOW - 7 * DAY)
    assert due.occurrences[-1] == NOW // 1 and len(due.occurrences) >= MAX_GATHERED
    assert not due.more_exact and MAX_WALKED <= due.more < 7 * DAY
    assert sched.calls < MAX_WALKED + 20 * MAX_GATHERED  # not 604,800


def test_a_leap_keeps_jitter_honest_and_business_hours_sparse():
    # weekday working hours, every minute, down for 60 days: the leap finds the last
    # working minutes before NOW (a Thursday, 20:26 UTC: today's 17:59)
    due, _ = gap("* 9-17 * * 1-5", NOW - 60 * DAY, jitter=30)
    assert due.occurrences[-1] == (NOW // DAY) * DAY + 17 * 3600 + 59 * 60
    assert all(f - o < 30 for o, f in zip(due.occurrences, due.fire_times, strict=True))
    assert all(f <= NOW for f in due.fire_times) and not due.more_exact
