"""core.jobs.schedule: cron / aliases / intervals / one-shots, and the daylight-saving rule."""

from __future__ import annotations

import ast
import math
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.jobs.schedule import (
    Schedule,
    ScheduleError,
    jitter_offset,
    local_timezone_name,
    parse_schedule,
)
from tests.cronref import Ref

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def at(text: str, zone: str) -> float:
    """Epoch seconds of an ISO wall time (may carry an offset to pick the fold) in a zone."""
    d = datetime.fromisoformat(text)
    if d.tzinfo is None:
        d = d.replace(tzinfo=ZoneInfo(zone))
    return d.timestamp()


def local(ts: float, zone: str) -> str:
    """ISO text with offset, so a test shows which pass of a repeated hour it means."""
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).isoformat()


def fires(sched: Schedule, start: float, end: float, limit: int = 10_000) -> list[float]:
    """All fire times in (start, end]."""
    out: list[float] = []
    t = start
    for _ in range(limit):
        nxt = sched.next_after(t)
        if nxt is None or nxt > end:
            break
        assert nxt > t
        out.append(nxt)
        t = nxt
    return out


def fires_local(text: str, zone: str, start: str, end: str) -> list[str]:
    sched = parse_schedule(text, zone)
    return [local(t, zone) for t in fires(sched, at(start, zone), at(end, zone))]


# ------------------------------------------------------------------------------ cron ----
def test_five_field_cron():
    got = fires_local("30 4 * * *", "UTC", "2026-05-01T00:00", "2026-05-03T23:59")
    assert got == [
        "2026-05-01T04:30:00+00:00",
        "2026-05-02T04:30:00+00:00",
        "2026-05-03T04:30:00+00:00",
    ]


def test_five_field_names_and_lists():
    # Mondays and Fridays in January at 09:00 and 17:00
    got = fires_local("0 9,17 * jan mon,fri", "UTC", "2026-01-01T00:00", "2026-01-06T00:00")
    assert got == [
        "2026-01-02T09:00:00+00:00",  # Friday
        "2026-01-02T17:00:00+00:00",
        "2026-01-05T09:00:00+00:00",  # Monday
        "2026-01-05T17:00:00+00:00",
    ]


def test_quartz_six_fields_every_15_minutes_in_working_hours():
    sched = parse_schedule("0 0/15 8-17 * * ?", "UTC")
    got = fires(sched, at("2026-05-01T00:00", "UTC"), at("2026-05-02T08:15", "UTC"))
    day = [local(t, "UTC") for t in got]
    expected = [
        f"2026-05-01T{h:02d}:{m:02d}:00+00:00" for h in range(8, 18) for m in (0, 15, 30, 45)
    ]
    expected += ["2026-05-02T08:00:00+00:00", "2026-05-02T08:15:00+00:00"]
    assert day == expected
    assert local(sched.next_after(at("2026-05-01T17:45", "UTC")), "UTC") == (
        "2026-05-02T08:00:00+00:00"
    )


def test_quartz_seconds_field():
    got = fires_local("15,45 * * * * ?", "UTC", "2026-05-01T10:00", "2026-05-01T10:01:20")
    assert got == [
        "2026-05-01T10:00:15+00:00",
        "2026-05-01T10:00:45+00:00",
        "2026-05-01T10:01:15+00:00",
    ]


def test_quartz_seven_fields_with_year():
    sched = parse_schedule("0 0 12 1 1 ? 2027,2029", "UTC")
    got = [local(t, "UTC") for t in fires(sched, at("2026-01-01T00:00", "UTC"), 4e9)]
    assert got == ["2027-01-01T12:00:00+00:00", "2029-01-01T12:00:00+00:00"]
    assert sched.next_after(at("2029-01-01T12:00", "UTC")) is None


def test_year_in_the_past_parses_but_never_fires_again():
    sched = parse_schedule("0 0 12 * * ? 2020", "UTC")
    assert sched.next_after(at("2026-01-01T00:00", "UTC")) is None


def test_question_mark_in_day_fields():
    a = parse_schedule("0 30 6 ? * mon", "UTC")
    b = parse_schedule("0 30 6 1 * ?", "UTC")
    start = at("2026-06-01T07:00", "UTC")  # a Monday, after 06:30
    assert local(a.next_after(start), "UTC") == "2026-06-08T06:30:00+00:00"
    assert local(b.next_after(start), "UTC") == "2026-07-01T06:30:00+00:00"


@pytest.mark.parametrize(
    "alias, first, second",
    [
        ("@yearly", "2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"),
        ("@annually", "2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"),
        ("@monthly", "2026-06-01T00:00:00+00:00", "2026-07-01T00:00:00+00:00"),
        ("@weekly", "2026-05-17T00:00:00+00:00", "2026-05-24T00:00:00+00:00"),  # Sundays
        ("@daily", "2026-05-13T00:00:00+00:00", "2026-05-14T00:00:00+00:00"),
        ("@midnight", "2026-05-13T00:00:00+00:00", "2026-05-14T00:00:00+00:00"),
        ("@hourly", "2026-05-12T11:00:00+00:00", "2026-05-12T12:00:00+00:00"),
        ("@DAILY", "2026-05-13T00:00:00+00:00", "2026-05-14T00:00:00+00:00"),
    ],
)
def test_aliases(alias, first, second):
    sched = parse_schedule(alias, "UTC")
    t1 = sched.next_after(at("2026-05-12T10:20", "UTC"))
    t2 = sched.next_after(t1)
    assert (local(t1, "UTC"), local(t2, "UTC")) == (first, second)


def test_next_after_is_strict_and_handles_fractions():
    sched = parse_schedule("*/5 * * * *", "UTC")
    t = at("2026-05-12T10:05", "UTC")
    assert sched.next_after(t) == t + 300
    assert sched.next_after(t - 0.5) == t
    assert sched.next_after(t - 300.25) == t - 300


def test_whitespace_is_stripped_and_raw_kept():
    sched = parse_schedule("  */5  *  * * *\n", "UTC")
    assert sched.raw == "*/5  *  * * *"
    assert sched.timezone == "UTC"


# ------------------------------------------------------------------------- intervals ----
@pytest.mark.parametrize("text, seconds", [("every 30s", 30), ("every 5m", 300),
                                           ("every 1h30m", 5400), ("EVERY 2h", 7200)])
def test_interval_is_anchored_to_the_epoch(text, seconds):
    sched = parse_schedule(text, BERLIN)
    for ts in (0.0, 1_000_000.5, 1_790_000_123.0, float(seconds * 12345)):
        nxt = sched.next_after(ts)
        assert nxt > ts
        assert nxt - ts <= seconds
        assert nxt % seconds == 0
    # two "engines" started at different moments agree on the rhythm
    a = fires(sched, 1_790_000_000.0, 1_790_000_000.0 + 10 * seconds)
    b = fires(sched, 1_790_000_000.0 + seconds / 3, 1_790_000_000.0 + 10 * seconds)
    assert a[1:] == b[: len(a) - 1] or a == b


def test_interval_keeps_real_time_across_dst():
    sched = parse_schedule("every 1h", BERLIN)
    got = fires(sched, at("2026-10-25T00:00", BERLIN), at("2026-10-25T06:00", BERLIN))
    assert all(b - a == 3600 for a, b in zip(got, got[1:], strict=False))
    assert len(got) == 7  # 00:00 -> 06:00 local is 7 real hours that day


def test_fractional_interval():
    sched = parse_schedule("every 250ms", "UTC")
    assert sched.next_after(10.1) == 10.25
    assert sched.next_after(10.25) == 10.5


# -------------------------------------------------------------------------- one-shot ----
@pytest.mark.parametrize(
    "text, zone, expected",
    [
        ("at 2026-12-01T03:00", "UTC", "2026-12-01T03:00:00+00:00"),
        ("at 2026-12-01 03:00", "UTC", "2026-12-01T03:00:00+00:00"),
        ("at 2026-12-01 03:00", BERLIN, "2026-12-01T02:00:00+00:00"),  # naive: in the zone
        ("at 2026-12-01T03:00:00+01:00", NEW_YORK, "2026-12-01T02:00:00+00:00"),
        ("at 2026-12-01T03:00:00Z", BERLIN, "2026-12-01T03:00:00+00:00"),
    ],
)
def test_at_forms(text, zone, expected):
    sched = parse_schedule(text, zone)
    when = sched.next_after(0)
    assert local(when, "UTC") == expected
    assert sched.next_after(when - 1) == when
    assert sched.next_after(when) is None
    assert sched.next_after(when + 3600) is None


def test_at_in_a_dst_gap_fires_at_the_transition():
    sched = parse_schedule("at 2026-03-29 02:30", BERLIN)
    assert local(sched.next_after(0), BERLIN) == "2026-03-29T03:00:00+02:00"


def test_at_in_a_repeated_hour_takes_the_first_pass():
    sched = parse_schedule("at 2026-10-25 02:30", BERLIN)
    assert local(sched.next_after(0), BERLIN) == "2026-10-25T02:30:00+02:00"


# ---------------------------------------------------------------------------- errors ----
@pytest.mark.parametrize(
    "text, message",
    [
        ("61 * * * *", "bad cron expression '61 * * * *': minute 61 out of range 0-59"),
        ("0 24 * * *", "hour 24 out of range 0-23"),
        ("0 0 32 * *", "day-of-month 32 out of range 1-31"),
        ("0 0 1 13 *", "month 13 out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 out of range 0-7"),
        ("60 0 0 * * ?", "second 60 out of range 0-59"),
        ("0 0 0 1 1 ? 2100", "year 2100 out of range 1970-2099"),
        ("0 0-70/5 * * *", "hour 70 out of range 0-23"),
        ("a * * * *", "bad minute field 'a'"),
        ("0 0 * * funday", "bad day-of-week field 'funday'"),
        ("*/0 * * * *", "bad minute field '*/0'"),
        ("0 ? * * *", "bad hour field '?'"),
        ("* * *", "expected 5 fields"),
        ("* * * *", "got 4"),
        ("0 0 0 1 1 ? 2027 5", "got 8"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("0 0 0 29 2 ? 2027", "never fires"),
        ("@reboot", "@reboot is not supported"),
        ("@fortnightly", "unknown schedule alias '@fortnightly'"),
        ("", "empty schedule"),
        ("   ", "empty schedule"),
        ("every", "bad interval"),
        ("every 0s", "more than zero"),
        ("every 1ms", "bad interval 'every 1ms': at least 100ms"),
        ("at 9999-12-31T23:59:59-12:00", "after 9999-12-29 00:00 UTC"),
        ("every 0.0000001s", "at least 100ms"),
        ("every -5m", "bad interval 'every -5m'"),
        ("every fortnight", "bad interval"),
        ("at", "bad time"),
        ("at tomorrow", "bad time in 'at tomorrow'"),
        ("hello world", "bad schedule 'hello world'; write a cron expression"),
        ("daily", "'every 30s'"),
    ],
)
def test_errors(text, message):
    with pytest.raises(ScheduleError) as err:
        parse_schedule(text, "UTC")
    text_of_error = str(err.value)
    assert message in text_of_error
    assert "\n" not in text_of_error
    assert isinstance(err.value, ValueError)


def test_cron_cases_croniter_got_wrong():
    # a one-value range is that value, not '*'
    assert len(fires_local("0 15-15 * * *", "UTC", "2026-05-01T00:00", "2026-05-01T23:59")) == 1
    # day-of-month starting with '*' makes the day fields AND: odd days that are Mondays
    got = fires_local("0 0 */2 * 1", "UTC", "2026-01-01T00:00", "2026-02-28T00:00")
    assert [g[:10] for g in got] == ["2026-01-05", "2026-01-19", "2026-02-09", "2026-02-23"]
    with pytest.raises(ScheduleError, match=r"^bad cron expression '0 22-2 \* \* \*': hour "
                                            r"range 22-2 wraps around; write 22-23,0-2$"):
        parse_schedule("0 22-2 * * *", "UTC")


def test_dialect_keyword():
    assert parse_schedule("0 0 12 ? * 2", "UTC", dialect="quartz").describe() == (
        "weekly on Monday at 12:00 (UTC)")
    assert parse_schedule("@daily", None, dialect="quartz").describe() == "daily at 00:00"
    with pytest.raises(ScheduleError, match="the cron dialect has 5 fields .* got 6"):
        parse_schedule("0 0 12 ? * 2", "UTC", dialect="cron")
    with pytest.raises(ScheduleError, match="the quartz dialect has 6-7 fields .* got 5"):
        parse_schedule("0 12 * * *", "UTC", dialect="quartz")
    with pytest.raises(ScheduleError, match="the quartz dialect has 6-7 fields .* got 4"):
        parse_schedule("0 12 * *", "UTC", dialect="quartz")
    with pytest.raises(ScheduleError, match="^unknown cron dialect 'unix'"):
        parse_schedule("0 12 * * *", "UTC", dialect="unix")


def test_dst_keyword():
    assert parse_schedule("30 2 * * *", BERLIN, dst="skip").next_after(
        at("2026-03-29T00:00", BERLIN)) == at("2026-03-30T02:30", BERLIN)
    with pytest.raises(ScheduleError, match="^unknown dst policy 'never'"):
        parse_schedule("30 2 * * *", BERLIN, dst="never")


def test_unknown_time_zone():
    with pytest.raises(ScheduleError, match=r"^unknown time zone 'Europe/Berln'$"):
        parse_schedule("@daily", "Europe/Berln")
    with pytest.raises(ScheduleError, match="unknown time zone"):
        parse_schedule("@daily", "../../etc/passwd")


def test_local_zone_from_tz_variable(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert local_timezone_name() == "Asia/Tokyo"
    assert parse_schedule("@daily").timezone == "Asia/Tokyo"
    monkeypatch.setenv("TZ", ":America/New_York")
    assert local_timezone_name() == NEW_YORK
    monkeypatch.setenv("TZ", "/usr/share/zoneinfo/Europe/Berlin")
    assert local_timezone_name() == BERLIN


def test_local_zone_is_a_real_zone_name(monkeypatch):
    monkeypatch.delenv("TZ", raising=False)
    name = local_timezone_name()
    ZoneInfo(name)  # resolvable
    assert parse_schedule("@daily").timezone == name
    monkeypatch.setenv("TZ", "Not/AZone")
    assert local_timezone_name() == name  # a bad $TZ falls back to the system's zone


# --------------------------------------------------------------------------- describe ----
@pytest.mark.parametrize(
    "text, zone, expected",
    [
        ("0 0/15 8-17 * * ?", None, "every 15 minutes from 08:00 to 17:45"),
        ("30 2 * * *", BERLIN, "daily at 02:30 (Europe/Berlin)"),
        ("30 2 * * *", None, "daily at 02:30"),
        ("every 30s", None, "every 30s"),
        ("every 1h30m", None, "every 1h30m"),
        ("every 90", None, "every 1m30s"),
        ("at 2026-12-01 03:00", "UTC", "once at 2026-12-01 03:00 UTC"),
        ("at 2026-12-01T03:00:00+01:00", None, "once at 2026-12-01 03:00 +01:00"),
        ("@hourly", BERLIN, "hourly"),
        ("0 * * * *", None, "hourly"),
        ("15 * * * *", None, "hourly at :15"),
        ("*/5 * * * *", None, "every 5 minutes"),
        ("* * * * *", None, "every minute"),
        ("@daily", None, "daily at 00:00"),
        ("@weekly", None, "weekly on Sunday at 00:00"),
        ("@monthly", None, "monthly on day 1 at 00:00"),
        ("@yearly", None, "yearly on Jan 1 at 00:00"),
        ("0 9 * * 1-5", None, "at 09:00 on Mon-Fri"),
        ("0 */6 * * *", None, "every 6 hours"),
        ("0 8-17 * * *", None, "hourly from 08:00 to 17:00"),
        ("0 9,17 * * *", None, "daily at 09:00 and 17:00"),
        ("0 0 12 * * ? 2027", None, "daily at 12:00 in 2027"),
    ],
)
def test_describe(text, zone, expected):
    assert parse_schedule(text, zone).describe() == expected


@pytest.mark.parametrize("text", ["0 0 L * *", "0 0 * * 5#3", "1-7/2 3,5 */3 2-8 1,3 ? 2030",
                                  "* 0 0 * * ?", "0 0 1,15 * 1"])
def test_describe_never_raises_on_unusual_crons(text):
    described = parse_schedule(text, "UTC").describe()
    assert isinstance(described, str) and described


# ----------------------------------------------------------------------------- jitter ----
def test_jitter_is_deterministic_and_in_range():
    offsets = [jitter_offset("backup", 1_790_000_000.0 + 60 * i, 30.0) for i in range(500)]
    again = [jitter_offset("backup", 1_790_000_000.0 + 60 * i, 30.0) for i in range(500)]
    assert offsets == again
    assert all(0.0 <= o < 30.0 for o in offsets)
    assert len(set(offsets)) > 450  # spread, not constant
    assert min(offsets) < 3 and max(offsets) > 27
    assert jitter_offset("backup", 1.0, 30.0) != jitter_offset("report", 1.0, 30.0)


@pytest.mark.parametrize("jitter", [0.0, -5.0, math.nan])
def test_no_jitter(jitter):
    assert jitter_offset("job", 1_790_000_000.0, jitter) == 0.0


def test_tiny_jitter_stays_below_the_bound():
    for i in range(200):
        assert 0.0 <= jitter_offset(f"j{i}", float(i), 1e-300) < 1e-300


# ------------------------------------------------------------------------ daylight saving ----
# Europe/Berlin 2026: spring forward 03-29 02:00 CET -> 03:00 CEST; fall back 10-25 03:00 CEST
# -> 02:00 CET.  America/New_York 2026: spring forward 03-08 02:00 EST -> 03:00 EDT; fall back
# 11-01 02:00 EDT -> 01:00 EST.


@pytest.mark.parametrize(
    "cron, zone, day, expected",
    [
        # spring forward: the skipped time fires once, at the transition
        ("30 2 * * *", BERLIN, "2026-03-29", ["2026-03-29T03:00:00+02:00"]),
        ("30 2 * * *", NEW_YORK, "2026-03-08", ["2026-03-08T03:00:00-04:00"]),
        ("0 30 2 * * ?", BERLIN, "2026-03-29", ["2026-03-29T03:00:00+02:00"]),
        # two fixed times in the gap collapse into one fire
        ("15,45 2 * * *", BERLIN, "2026-03-29", ["2026-03-29T03:00:00+02:00"]),
        # the gap's first minute, and a time right after the gap
        ("0 2 * * *", NEW_YORK, "2026-03-08", ["2026-03-08T03:00:00-04:00"]),
        ("30 3 * * *", BERLIN, "2026-03-29", ["2026-03-29T03:30:00+02:00"]),
        # fall back: only the first pass of the repeated hour
        ("30 2 * * *", BERLIN, "2026-10-25", ["2026-10-25T02:30:00+02:00"]),
        ("30 1 * * *", NEW_YORK, "2026-11-01", ["2026-11-01T01:30:00-04:00"]),
        ("0 1 * * *", NEW_YORK, "2026-11-01", ["2026-11-01T01:00:00-04:00"]),
        ("0 30 1 * * ?", NEW_YORK, "2026-11-01", ["2026-11-01T01:30:00-04:00"]),
        ("30 2 * * *", NEW_YORK, "2026-11-01", ["2026-11-01T02:30:00-05:00"]),
        # a list of fixed times: each once, the repeated ones in the first pass only
        ("0 1,2,3 * * *", NEW_YORK, "2026-11-01",
         ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"]),
        ("0,30 2,3 * * *", BERLIN, "2026-03-29",
         ["2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"]),
    ],
)
def test_fixed_time_fires_exactly_once_on_transition_days(cron, zone, day, expected):
    got = fires_local(cron, zone, f"{day}T00:00", f"{day}T23:59:59")
    assert got == expected


@pytest.mark.parametrize(
    "cron, zone, days",
    [
        ("30 2 * * *", BERLIN, ["2026-03-28", "2026-03-30", "2026-10-24", "2026-10-26"]),
        ("30 1 * * *", NEW_YORK, ["2026-10-31", "2026-11-02"]),
        ("30 2 * * *", NEW_YORK, ["2026-03-07", "2026-03-09"]),
    ],
)
def test_fixed_time_on_ordinary_days_around_transitions(cron, zone, days):
    sched = parse_schedule(cron, zone)
    hour, minute = int(cron.split()[1]), int(cron.split()[0])
    for day in days:
        got = fires(sched, at(f"{day}T00:00", zone), at(f"{day}T23:59:59", zone))
        assert [datetime.fromtimestamp(t, ZoneInfo(zone)).replace(tzinfo=None) for t in got] == [
            datetime.fromisoformat(day).replace(hour=hour, minute=minute)
        ]


def test_fixed_time_across_a_whole_week_of_transition():
    """One fire a day, every day, from a week before spring-forward to after."""
    sched = parse_schedule("30 2 * * *", BERLIN)
    got = fires(sched, at("2026-03-25T00:00", BERLIN), at("2026-04-02T00:00", BERLIN))
    assert [local(t, BERLIN)[:10] for t in got] == [
        f"2026-{d}" for d in ("03-25", "03-26", "03-27", "03-28", "03-29", "03-30", "03-31",
                              "04-01")
    ]


TRANSITIONS = [
    pytest.param(BERLIN, "2026-03-29T01:00:00+00:00", id="berlin-spring"),
    pytest.param(BERLIN, "2026-10-25T01:00:00+00:00", id="berlin-fall"),
    pytest.param(NEW_YORK, "2026-03-08T07:00:00+00:00", id="newyork-spring"),
    pytest.param(NEW_YORK, "2026-11-01T06:00:00+00:00", id="newyork-fall"),
]


@pytest.mark.parametrize("zone, transition_utc", TRANSITIONS)
@pytest.mark.parametrize(
    "cron, step",
    [
        ("0 * * * *", 3600),
        ("@hourly", 3600),
        ("*/15 * * * *", 900),
        ("0 0/15 * * * ?", 900),
        ("0 */30 * * * ?", 1800),
    ],
)
def test_rhythm_jobs_keep_real_time_across_transitions(zone, transition_utc, cron, step):
    sched = parse_schedule(cron, zone)
    transition = datetime.fromisoformat(transition_utc).timestamp()
    start, end = transition - 12 * 3600, transition + 12 * 3600
    got = fires(sched, start - 1, end - 1)  # the 24 real hours [start, end)
    assert got[0] == start
    gaps = {b - a for a, b in zip(got, got[1:], strict=False)}
    assert gaps == {step}
    assert len(got) == 24 * 3600 // step
    assert transition in got


@pytest.mark.parametrize(
    "zone, day, expected_hours",
    [
        # the wall hours an hourly job names across the calendar day of the transition
        (BERLIN, "2026-03-29", 23),
        (BERLIN, "2026-10-25", 25),
        (NEW_YORK, "2026-03-08", 23),
        (NEW_YORK, "2026-11-01", 25),
    ],
)
def test_hourly_fires_on_every_real_hour_of_the_local_day(zone, day, expected_hours):
    sched = parse_schedule("0 * * * *", zone)
    start = at(f"{day}T00:00", zone)
    next_day = (datetime.fromisoformat(day) + timedelta(days=1)).isoformat()
    got = fires(sched, start - 1, at(next_day, zone) - 1)
    assert len(got) == expected_hours
    assert {b - a for a, b in zip(got, got[1:], strict=False)} == {3600}


def test_fall_back_hourly_fires_in_both_passes():
    got = fires_local("0 * * * *", NEW_YORK, "2026-11-01T00:30", "2026-11-01T02:30")
    assert got == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]


def test_spring_forward_hourly_has_no_skipped_hour():
    got = fires_local("0 * * * *", BERLIN, "2026-03-29T00:30", "2026-03-29T04:30")
    assert got == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_stepped_minutes_in_a_fixed_hour_is_a_rhythm_job():
    """`*/20 1 * * *` is not a fixed time: on fall-back it runs in both passes."""
    got = fires_local("*/20 1 * * *", NEW_YORK, "2026-11-01T00:00", "2026-11-01T23:00")
    assert got == [
        "2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00", "2026-11-01T01:40:00-04:00",
        "2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00", "2026-11-01T01:40:00-05:00",
    ]
    # and on spring-forward, when its hour does not exist, it does not run
    assert fires_local("*/20 2 * * *", NEW_YORK, "2026-03-08T00:00", "2026-03-08T23:00") == []


def test_every_second_cron_across_fall_back():
    sched = parse_schedule("* * * * * ?", BERLIN)
    start = at("2026-10-25T02:59:50+02:00", BERLIN)
    got = fires(sched, start, start + 20)
    assert got == [start + i for i in range(1, 21)]


@pytest.mark.parametrize(
    "cron, zone, day",
    [
        ("*/15 * * * *", BERLIN, "2026-10-25"),
        ("*/15 * * * *", BERLIN, "2026-03-29"),
        ("7,37 * * * *", NEW_YORK, "2026-11-01"),
        ("*/20 1-3 * * *", NEW_YORK, "2026-11-01"),
        ("*/20 1-3 * * *", NEW_YORK, "2026-03-08"),
        ("0 */10 2 * * ?", BERLIN, "2026-10-25"),
    ],
)
def test_rhythm_jobs_match_a_minute_by_minute_oracle(cron, zone, day):
    """A rhythm job fires at exactly the real minutes whose local wall time matches."""
    z = ZoneInfo(zone)
    start = at(f"{day}T00:00", zone) - 3600
    end = start + 27 * 3600
    ref = Ref(cron)
    expected = []
    for t in range(int(start) + 60, int(end) + 1, 60):
        wall = datetime.fromtimestamp(t, z).replace(tzinfo=None, fold=0)
        if ref.matches(wall):
            expected.append(float(t))
    assert fires(parse_schedule(cron, zone), start, end) == expected


def test_quartz_stepped_minutes_in_a_fixed_hour_is_fixed():
    """Vixie's rule: only a clock field starting with '*' makes a rhythm job, so
    `0 0/10 2 * * ?` is fixed and runs the repeated hour once, in its first pass."""
    got = fires_local("0 0/10 2 * * ?", BERLIN, "2026-10-25T00:00", "2026-10-25T23:00")
    assert got == [f"2026-10-25T02:{m}:00+02:00" for m in ("00", "10", "20", "30", "40", "50")]


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, "Australia/Lord_Howe", "UTC"])
@pytest.mark.parametrize("cron", ["30 2 * * *", "0 * * * *", "*/15 * * * *", "0 1,2 * * *"])
def test_next_after_is_strictly_increasing_through_the_transition_seasons(zone, cron):
    sched = parse_schedule(cron, zone)
    # March-April and late September-early November hold all four zones' transitions
    for start, end in (("2026-03-01", "2026-04-10"), ("2026-09-28", "2026-11-05")):
        got = fires(sched, at(f"{start}T00:00", zone), at(f"{end}T00:00", zone), 40_000)
        assert got == sorted(set(got))
        # from any point between two fires, the next one is the later of the two
        for a, b in list(zip(got, got[1:], strict=False))[::7]:
            assert sched.next_after((a + b) / 2) == b
            assert sched.next_after(a) == b


def test_fixed_job_resumed_inside_the_repeated_hour_waits_for_tomorrow():
    sched = parse_schedule("30 2 * * *", BERLIN)
    inside_second_pass = at("2026-10-25T02:10:00+01:00", BERLIN)
    assert local(sched.next_after(inside_second_pass), BERLIN) == "2026-10-26T02:30:00+01:00"
    inside_first_pass = at("2026-10-25T02:10:00+02:00", BERLIN)
    assert local(sched.next_after(inside_first_pass), BERLIN) == "2026-10-25T02:30:00+02:00"


def test_rhythm_job_resumed_inside_the_repeated_hour():
    sched = parse_schedule("*/15 * * * *", BERLIN)
    late_first_pass = at("2026-10-25T02:50:00+02:00", BERLIN)
    assert local(sched.next_after(late_first_pass), BERLIN) == "2026-10-25T02:00:00+01:00"
    second_pass = at("2026-10-25T02:50:00+01:00", BERLIN)
    assert local(sched.next_after(second_pass), BERLIN) == "2026-10-25T03:00:00+01:00"


# ------------------------------------------------------------------------- the contract ----
def test_never_fires_again_returns_none_rather_than_looping():
    sched = parse_schedule("0 0 12 1 1 ? 2030", "UTC")
    assert sched.next_after(at("2030-06-01T00:00", "UTC")) is None
    assert parse_schedule("@daily", "UTC").next_after(math.inf) is None
    assert parse_schedule("@daily", "UTC").next_after(math.nan) is None


def test_many_schedules_parse_and_answer_quickly():
    """Not a timed test (speed goals live in bench/): parsing many schedules just works."""
    scheds = [parse_schedule(f"{i % 60} {i % 24} * * *", BERLIN) for i in range(2000)]
    t = at("2026-05-01T00:00", BERLIN)
    nexts = [s.next_after(t) for s in scheds]
    assert all(n is not None and n > t for n in nexts)


def test_schedule_module_does_not_import_the_screen():
    source = Path(__file__).resolve().parents[2] / "core" / "jobs" / "schedule.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    assert not modules & {"textual", "tui"}
