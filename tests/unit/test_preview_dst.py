"""The next offset change of a schedule's zone, and what it does to the schedule's fires:
the line the console's job detail shows."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.jobs.preview import dst_effect, next_transition, offset_label
from core.jobs.schedule import parse_schedule

SPRING = datetime(2027, 3, 27, 12, tzinfo=UTC).timestamp()  # Berlin: 28 March
AUTUMN = datetime(2027, 10, 30, 12, tzinfo=UTC).timestamp()  # Berlin: 31 October


@pytest.mark.parametrize(("expr", "dst", "start", "label", "effect"), [
    ("30 2 * * *", "vixie", SPRING, "2027-03-28 02:00 CET -> CEST (+1h)",
     "02:30 does not exist that night (vixie fixed time: fires at 03:00 CEST)"),
    ("30 2 * * *", "skip", SPRING, "2027-03-28 02:00 CET -> CEST (+1h)",
     "02:30 does not exist that night (skip: does not fire then)"),
    ("30 2 * * *", "all", AUTUMN, "2027-10-31 03:00 CEST -> CET (-1h)",
     "02:30 happens twice that night (all: fires in both passes)"),
    ("30 2 * * *", "vixie", AUTUMN, "2027-10-31 03:00 CEST -> CET (-1h)",
     "02:30 happens twice that night (vixie fixed time: fires once, in the first pass)"),
    ("*/15 * * * *", "vixie", SPRING, "2027-03-28 02:00 CET -> CEST (+1h)",
     "02:00 and 3 more do not exist that night (vixie interval-like: does not fire then)"),
    ("0 4 * * *", "vixie", SPRING, "2027-03-28 02:00 CET -> CEST (+1h)",
     "none of its times is in the changed hour (vixie fixed time: unaffected)"),
    ("every 30m", "vixie", SPRING, "2027-03-28 02:00 CET -> CEST (+1h)",
     "an interval keeps real time: the wall clock moves +1h between its fires"),
])
def test_the_next_change_and_its_effect(expr, dst, start, label, effect) -> None:
    sched = parse_schedule(expr, "Europe/Berlin", dst=dst)
    change = next_transition(sched, start)
    assert change is not None
    assert change.label() == label
    assert dst_effect(sched, change) == effect


def test_a_zone_without_changes_has_none_within_a_year() -> None:
    sched = parse_schedule("30 2 * * *", "Asia/Tokyo")
    assert next_transition(sched, SPRING) is None
    assert offset_label(SPRING, ZoneInfo("Asia/Tokyo")) == "+09:00"
