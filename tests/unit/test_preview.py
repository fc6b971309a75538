"""core/jobs/preview.py: the next fires with offset changes, the fires a new config adds and
removes in a window, and schedules that never fire. Every time is fixed: nothing here
depends on today."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.jobs.config import Job
from core.jobs.preview import (
    FIVE_YEARS,
    Transition,
    config_warnings,
    diff_fires,
    fires_between,
    job_schedule,
    local_iso,
    local_label,
    never_fires,
    transitions_between,
    upcoming,
)
from core.jobs.schedule import parse_schedule

BERLIN = "Europe/Berlin"


def at(text: str, zone: str = "UTC") -> float:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(zone))
    return when.timestamp()


def iso(items: list, zone: str) -> list[str]:
    """Fires as ISO strings, offset changes as their labels, in order."""
    return [i.label() if isinstance(i, Transition) else local_iso(i, ZoneInfo(zone))
            for i in items]


def job(name: str, schedule: str | None, **kw: object) -> Job:
    return Job(name=name, command="true", schedule=schedule, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------- next fires ----
def test_the_required_example_in_utc():
    sched = parse_schedule("0 0 12 ? * 2", "UTC")
    assert iso(upcoming(sched, at("2026-12-01T00:00"), 1), "UTC") == [
        "2026-12-07T12:00:00+00:00"]


def test_spring_forward_is_marked_before_the_fire_at_its_instant():
    sched = parse_schedule("30 2 * * *", BERLIN)  # vixie: fixed time, the gap fires at 03:00
    items = upcoming(sched, at("2026-03-28T00:00", BERLIN), 3)
    assert iso(items, BERLIN) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29 02:00 CET -> CEST (+1h)",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    change = items[1]
    assert isinstance(change, Transition)
    assert (change.at, change.old_offset, change.new_offset) == (
        at("2026-03-29T01:00"), 3600, 7200)
    assert change.at == items[2]  # the same instant: the change is said first


def test_fall_back_for_each_policy():
    start = at("2026-10-25T01:00", BERLIN)
    got = {dst: iso(upcoming(parse_schedule("*/30 * * * *", BERLIN, dst=dst), start, 5),
                    BERLIN)
           for dst in ("vixie", "skip", "all")}
    change = "2026-10-25 03:00 CEST -> CET (-1h)"
    both = ["2026-10-25T01:30:00+02:00", "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:30:00+02:00", change,
            "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00"]
    assert got["vixie"] == both  # interval-like: the repeated hour runs twice
    assert got["all"] == both
    assert got["skip"] == ["2026-10-25T01:30:00+02:00", "2026-10-25T02:00:00+02:00",
                           "2026-10-25T02:30:00+02:00", change,
                           "2026-10-25T03:00:00+01:00", "2026-10-25T03:30:00+01:00"]


def test_intervals_show_the_wall_clock_jump_too():
    items = upcoming(parse_schedule("every 1h", BERLIN), at("2026-03-29T00:30", BERLIN), 3)
    assert iso(items, BERLIN) == [
        "2026-03-29T01:00:00+01:00", "2026-03-29 02:00 CET -> CEST (+1h)",
        "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"]


def test_no_change_after_the_last_fire_and_none_without_fires():
    sched = parse_schedule("0 12 * * *", BERLIN)
    items = upcoming(sched, at("2026-03-27T13:00", BERLIN), 1)  # fires 28th: before the change
    assert iso(items, BERLIN) == ["2026-03-28T12:00:00+01:00"]
    assert upcoming(parse_schedule("at 2020-01-01 00:00", "UTC"), at("2026-01-01T00:00"), 5) == []


def test_half_hour_changes_are_labelled_in_minutes():
    # Lord Howe Island moves its clocks by 30 minutes
    changes = transitions_between(ZoneInfo("Australia/Lord_Howe"), at("2026-01-01T00:00"),
                                  at("2027-01-01T00:00"))
    assert [c.label() for c in changes] == ["2026-04-05 02:00 +11 -> +1030 (-30m)",
                                            "2026-10-04 02:00 +1030 -> +11 (+30m)"]


def test_local_label():
    zone = ZoneInfo(BERLIN)
    t = at("2026-03-29T03:00:05", BERLIN)
    assert local_label(t, zone) == "2026-03-29 03:00 CEST"
    assert local_label(t, zone, seconds=True, weekday=True) == "2026-03-29 Sun 03:00:05 CEST"


# ------------------------------------------------------------ a new config's fires ----
def test_diff_lists_added_removed_and_changed_jobs_only():
    start, end = at("2026-03-28T12:00", BERLIN), at("2026-03-29T12:00", BERLIN)
    old = {
        "backup": job("backup", "0 3 * * *", timezone=BERLIN),
        "gone": job("gone", "0 */12 * * *", timezone="UTC"),
        "same": job("same", "@hourly"),
        "command-only": job("command-only", "@daily"),
        "zone": job("zone", "0 20 * * *", timezone="UTC"),
        "quiet": job("quiet", "0 9 * * *", timezone="UTC"),
    }
    new = {
        "backup": job("backup", "30 2 * * *", timezone=BERLIN, dst="skip"),
        "new": job("new", "every 8h"),
        "same": job("same", "@hourly"),
        "command-only": Job(name="command-only", command="false", schedule="@daily"),
        "zone": job("zone", "0 20 * * *", timezone=BERLIN),
        "quiet": job("quiet", "0 9 * * *", timezone="UTC", enabled=False),
        "on-demand": job("on-demand", None),
    }
    diffs = diff_fires(old, new, start, end)
    assert sorted(diffs) == ["backup", "gone", "new", "on-demand", "quiet", "zone"]
    assert {n: d.change for n, d in diffs.items()} == {
        "backup": "changed", "gone": "removed", "new": "added", "on-demand": "added",
        "quiet": "changed", "zone": "changed"}
    # 02:30 does not exist on the 29th, and `skip` skips it; 03:00 CEST was the old fire
    assert diffs["backup"].added == []
    assert diffs["backup"].removed == [at("2026-03-29T03:00", BERLIN)]
    assert diffs["gone"].removed == [at("2026-03-28T12:00"), at("2026-03-29T00:00")]
    assert diffs["new"].added == [at("2026-03-28T16:00"), at("2026-03-29T00:00"),
                                  at("2026-03-29T08:00")]
    assert diffs["on-demand"].added == diffs["on-demand"].removed == []
    assert diffs["quiet"].removed == [at("2026-03-29T09:00")] and diffs["quiet"].added == []
    assert diffs["zone"].removed == [at("2026-03-28T20:00")]
    assert diffs["zone"].added == [at("2026-03-28T20:00", BERLIN)]
    assert str(diffs["zone"].old_zone) == "UTC" and str(diffs["zone"].new_zone) == BERLIN


def test_diff_of_too_many_fires_compares_up_to_the_shorter_list():
    start = at("2026-01-01T00:00")
    old = {"tick": job("tick", "every 1s")}
    new = {"tick": job("tick", "every 2s")}
    diffs = diff_fires(old, new, start, start + 3600, limit=100)
    d = diffs["tick"]
    assert d.until == start + 100  # the old side listed 100 fires, up to 100 s in
    assert d.added == []
    assert d.removed == [start + s for s in range(1, 101, 2)]


def test_fires_between_is_start_exclusive_end_inclusive():
    sched = parse_schedule("every 1h", "UTC")
    start = at("2026-01-01T00:00")
    assert fires_between(sched, start, start + 7200) == ([start + 3600, start + 7200], False)
    assert fires_between(sched, start, start + 7200, limit=1) == ([start + 3600], True)
    assert fires_between(None, start, start + 7200) == ([], False)


def test_job_schedule_is_none_for_on_demand_disabled_and_unreadable():
    assert job_schedule(job("a", None)) is None
    assert job_schedule(job("a", "@daily", enabled=False)) is None
    assert job_schedule(job("a", "61 * * * *")) is None
    sched = job_schedule(job("a", "0 0 12 ? * 2", timezone="UTC", dialect="quartz"))
    assert sched is not None and sched.timezone == "UTC"


# ------------------------------------------------------------------ never firing ----
def test_never_fires():
    now = at("2026-01-01T00:00")
    fifth_monday = parse_schedule("0 0 12 ? 2 2#5", "UTC")  # only when Feb 1 is a Monday
    assert never_fires(fifth_monday, now) == (
        "does not fire in the next 5 years (next: 2044-02-29 12:00 UTC)")
    assert never_fires(fifth_monday, at("2040-01-01T00:00")) is None
    assert never_fires(fifth_monday, now, horizon=20 * 365.25 * 86400) is None
    assert never_fires(parse_schedule("at 2020-01-01 00:00", "UTC"), now) == (
        "never fires: once at 2020-01-01 00:00 UTC is in the past")
    assert never_fires(parse_schedule("0 0 12 * * ? 2020", "UTC"), now) == (
        "never fires again (daily at 12:00 in 2020 (UTC))")
    assert never_fires(parse_schedule("0 0 29 2 *", "UTC"), now) is None  # 2028
    assert never_fires(parse_schedule("every 30s", "UTC"), now) is None


def test_config_warnings_name_each_job_that_never_fires():
    now = at("2026-01-01T00:00")
    jobs = {
        "leap": job("leap", "0 0 12 ? 2 2#5", timezone="UTC"),
        "off": job("off", "at 2020-01-01 00:00", enabled=False),  # disabled: still said
        "daily": job("daily", "@daily"),
        "manual": job("manual", None),
        "bad": job("bad", "61 * * * *"),  # an error check-config reports, not a warning
    }
    got = dict(config_warnings(jobs, now))
    assert sorted(got) == ["leap", "off"]
    assert "2044-02-29" in got["leap"] and "in the past" in got["off"]
    assert config_warnings(jobs, at("2043-06-01T00:00"), FIVE_YEARS)[0][0] == "off"
