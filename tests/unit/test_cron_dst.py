"""Cron schedules across daylight-saving changes, under each policy of core.jobs.schedule.

Zones: Europe/Berlin (2026: spring forward 03-29 02:00 CET -> 03:00 CEST, fall back 10-25
03:00 CEST -> 02:00 CET), America/New_York (03-08 02:00 -> 03:00, 11-01 02:00 -> 01:00)
and Australia/Lord_Howe, whose clocks move by 30 minutes (04-05 02:00 +11:00 -> 01:30
+10:30, 10-04 02:00 +10:30 -> 02:30 +11:00).

Policies: "vixie" (fixed jobs: a gap time fires at the transition, the repeated hour in
its first pass only; interval-like jobs, whose minute or hour (Quartz: or second) field
starts with '*': gap times skipped, the repeated hour in both passes), "skip" (gap times
never, the repeated hour once) and "all" (gap times at the transition, the repeated hour
twice).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.jobs.schedule import parse_schedule
from tests.cronref import Ref

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
LORD_HOWE = "Australia/Lord_Howe"


def at(text: str, zone: str) -> float:
    d = datetime.fromisoformat(text)
    if d.tzinfo is None:
        d = d.replace(tzinfo=ZoneInfo(zone))
    return d.timestamp()


def fires(text: str, zone: str, start: str, end: str, dst: str) -> list[str]:
    sched = parse_schedule(text, zone, dst=dst)
    out = []
    t = at(start, zone)
    stop = at(end, zone)
    while True:
        nxt = sched.next_after(t)
        if nxt is None or nxt > stop:
            return out
        assert nxt > t
        out.append(datetime.fromtimestamp(nxt, ZoneInfo(zone)).isoformat())
        t = nxt


# --------------------------------------------------------------- worked cases ----
CASES = [
    # fixed, fall back: one fire per wall-clock hour, not two at 02:00
    ("0 1-5 * * *", BERLIN, "2026-10-25T00:00", "2026-10-25T06:00", {
        "vixie": ["01:00+02", "02:00+02", "03:00+01", "04:00+01", "05:00+01"],
        "skip": ["01:00+02", "02:00+02", "03:00+01", "04:00+01", "05:00+01"],
        "all": ["01:00+02", "02:00+02", "02:00+01", "03:00+01", "04:00+01", "05:00+01"],
    }),
    # a stepped range that does not start with '*' is fixed: as `0,30 2 * * *`
    ("0-30/30 2 * * *", BERLIN, "2026-10-25T00:00", "2026-10-25T06:00", {
        "vixie": ["02:00+02", "02:30+02"],
        "skip": ["02:00+02", "02:30+02"],
        "all": ["02:00+02", "02:30+02", "02:00+01", "02:30+01"],
    }),
    ("0-30/30 2 * * *", BERLIN, "2026-03-29T00:00", "2026-03-29T06:00", {
        "vixie": ["03:00+02"], "skip": [], "all": ["03:00+02"],
    }),
    # fixed, spring forward: the skipped time
    ("30 2 * * *", BERLIN, "2026-03-29T00:00", "2026-03-29T23:00", {
        "vixie": ["03:00+02"], "skip": [], "all": ["03:00+02"],
    }),
    ("0 0 2 * * ?", NEW_YORK, "2026-03-08T00:00", "2026-03-08T23:00", {
        "vixie": ["03:00-04"], "skip": [], "all": ["03:00-04"],
    }),
    # interval-like, spring forward: the gap's times do not exist (or collapse into the
    # transition, which is also 03:00's own fire)
    ("*/30 * * * *", BERLIN, "2026-03-29T01:00", "2026-03-29T03:40", {
        "vixie": ["01:30+01", "03:00+02", "03:30+02"],
        "skip": ["01:30+01", "03:00+02", "03:30+02"],
        "all": ["01:30+01", "03:00+02", "03:30+02"],
    }),
    ("*/20 2 * * *", NEW_YORK, "2026-03-08T00:00", "2026-03-08T23:00", {
        "vixie": [], "skip": [], "all": ["03:00-04"],
    }),
    # interval-like, fall back: both passes of the repeated hour
    ("*/30 1 * * *", NEW_YORK, "2026-11-01T00:00", "2026-11-01T05:00", {
        "vixie": ["01:00-04", "01:30-04", "01:00-05", "01:30-05"],
        "skip": ["01:00-04", "01:30-04"],
        "all": ["01:00-04", "01:30-04", "01:00-05", "01:30-05"],
    }),
    # Quartz: a '*' in the second field makes it interval-like too
    ("*/30 0 2 * * ?", BERLIN, "2026-10-25T01:59", "2026-10-25T02:30+01:00", {
        "vixie": ["02:00:00+02", "02:00:30+02", "02:00:00+01", "02:00:30+01"],
        "skip": ["02:00:00+02", "02:00:30+02"],
        "all": ["02:00:00+02", "02:00:30+02", "02:00:00+01", "02:00:30+01"],
    }),
    ("0 0/10 2 * * ?", BERLIN, "2026-10-25T02:15", "2026-10-25T03:00", {
        "vixie": ["02:20+02", "02:30+02", "02:40+02", "02:50+02"],
        "skip": ["02:20+02", "02:30+02", "02:40+02", "02:50+02"],
        "all": ["02:20+02", "02:30+02", "02:40+02", "02:50+02",
                "02:00+01", "02:10+01", "02:20+01", "02:30+01", "02:40+01", "02:50+01"],
    }),
    # Lord Howe: the half-hour shift
    ("45 1 * * *", LORD_HOWE, "2026-04-05T00:00", "2026-04-05T23:00", {
        "vixie": ["01:45+11"], "skip": ["01:45+11"], "all": ["01:45+11", "01:45+10:30"],
    }),
    ("*/15 1 * * *", LORD_HOWE, "2026-04-05T01:20", "2026-04-05T03:00", {
        "vixie": ["01:30+11", "01:45+11", "01:30+10:30", "01:45+10:30"],
        "skip": ["01:30+11", "01:45+11"],
        "all": ["01:30+11", "01:45+11", "01:30+10:30", "01:45+10:30"],
    }),
    ("15 2 * * *", LORD_HOWE, "2026-10-04T00:00", "2026-10-04T23:00", {
        "vixie": ["02:30+11"], "skip": [], "all": ["02:30+11"],
    }),
    ("0 0,15 2 * * ?", LORD_HOWE, "2026-10-04T00:00", "2026-10-04T23:00", {
        "vixie": ["02:30+11"], "skip": [], "all": ["02:30+11"],
    }),
    ("*/10 2 * * *", LORD_HOWE, "2026-10-04T00:00", "2026-10-04T23:00", {
        "vixie": ["02:30+11", "02:40+11", "02:50+11"],
        "skip": ["02:30+11", "02:40+11", "02:50+11"],
        "all": ["02:30+11", "02:40+11", "02:50+11"],
    }),
]


def _expand(day: str, short: str) -> str:
    """'02:00+02' -> '2026-10-25T02:00:00+02:00' (':SS' and ':30' offsets allowed)."""
    sign = "+" if "+" in short else "-"
    clock, offset = short.split(sign)
    if clock.count(":") == 1:
        clock += ":00"
    if ":" not in offset:
        offset += ":00"
    return f"{day}T{clock}{sign}{offset}"


@pytest.mark.parametrize("policy", ["vixie", "skip", "all"])
@pytest.mark.parametrize("expr, zone, start, end, expected", CASES,
                         ids=[f"{c[0]}@{c[1].split('/')[1]}-{c[2][5:10]}" for c in CASES])
def test_worked_cases(expr, zone, start, end, expected, policy):
    day = start[:10]
    assert fires(expr, zone, start, end, policy) == [_expand(day, s) for s in expected[policy]]


# ------------------------------------------------------ against a brute force ----
def oracle(expr: str, zone: str, start: float, end: float, policy: str,
           step: int) -> list[float]:
    """Fires in (start, end] by scanning real time every `step` seconds: wall times seen
    once fire; the second sight of a repeated wall time fires when the policy repeats;
    a jump of the wall clock fires at the instant after it when the policy fires gap
    times and a skipped wall time matches."""
    ref = Ref(expr)
    z = ZoneInfo(zone)
    fields = expr.split()
    clock = fields[:3] if len(fields) > 5 else fields[:2]
    fixed = not any(f.startswith("*") for f in clock)
    gap_fires = {"vixie": fixed, "skip": False, "all": True}[policy]
    repeat = {"vixie": not fixed, "skip": False, "all": True}[policy]
    out = []
    t = int(start) - int(start) % step
    prev = datetime.fromtimestamp(t, z).replace(tzinfo=None)
    while t < end:
        t += step
        local = datetime.fromtimestamp(t, z)
        wall = local.replace(tzinfo=None, fold=0)
        fire = False
        if wall - prev > timedelta(seconds=step) and gap_fires:
            w = prev + timedelta(seconds=step)
            while w < wall and not fire:
                fire = ref.matches(w)
                w += timedelta(seconds=step)
        if not fire and ref.matches(wall):
            fire = local.fold == 0 or repeat or wall.replace(tzinfo=z, fold=1).timestamp() == \
                wall.replace(tzinfo=z, fold=0).timestamp()
        if fire and start < t <= end:
            out.append(float(t))
        prev = wall
    return out


TRANSITIONS = [
    (BERLIN, "2026-03-29T01:00:00+00:00"), (BERLIN, "2026-10-25T01:00:00+00:00"),
    (NEW_YORK, "2026-03-08T07:00:00+00:00"), (NEW_YORK, "2026-11-01T06:00:00+00:00"),
    (LORD_HOWE, "2026-04-04T15:00:00+00:00"), (LORD_HOWE, "2026-10-03T15:30:00+00:00"),
]
EXPRS = [
    ("30 2 * * *", 60), ("0 1-5 * * *", 60), ("0-30/30 2 * * *", 60), ("15,45 1,2 * * *", 60),
    ("*/15 * * * *", 60), ("*/20 1-3 * * *", 60), ("7 */1 * * *", 60), ("50 1 * * 0", 60),
    ("0 30 2 * * ?", 30), ("0 */10 1-2 * * ?", 30), ("*/30 40 1 * * ?", 30),
    ("30 0/20 2 * * ?", 30),
]


@pytest.mark.parametrize("policy", ["vixie", "skip", "all"])
@pytest.mark.parametrize("zone, transition", TRANSITIONS,
                         ids=[f"{z.split('/')[1]}-{t[5:10]}" for z, t in TRANSITIONS])
def test_policies_match_a_real_time_scan(zone, transition, policy):
    mid = datetime.fromisoformat(transition).timestamp()
    start, end = mid - 4 * 3600 - 17, mid + 4 * 3600
    for expr, step in EXPRS:
        sched = parse_schedule(expr, zone, dst=policy)
        got = []
        t = start
        while (nxt := sched.next_after(t)) is not None and nxt <= end:
            got.append(nxt)
            t = nxt
        assert got == oracle(expr, zone, start, end, policy, step), expr
        # from anywhere between two fires, the next one is the later
        for a, b in zip(got, got[1:], strict=False):
            assert sched.next_after((a + b) / 2) == b


def test_transitions_and_next_fires_for_the_preview():
    sched = parse_schedule("30 2 * * *", BERLIN)
    start, end = at("2026-03-01T00:00", BERLIN), at("2026-11-01T00:00", BERLIN)
    assert sched.transitions(start, end) == [
        (int(at("2026-03-29T03:00", BERLIN)), 3600, 7200),
        (int(at("2026-10-25T02:00+01:00", BERLIN)), 7200, 3600),
    ]
    got = sched.next_fires(at("2026-03-28T00:00", BERLIN), 3)
    assert [datetime.fromtimestamp(t, ZoneInfo(BERLIN)).isoformat() for t in got] == [
        "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    assert parse_schedule("every 1h", BERLIN).transitions(start, end) == []
    assert parse_schedule("0 0 12 1 1 ? 2027", "UTC").next_fires(0, 5) == [
        datetime.fromisoformat("2027-01-01T12:00:00+00:00").timestamp()]
    assert parse_schedule("@daily", "UTC").next_fires(0, 0) == []
