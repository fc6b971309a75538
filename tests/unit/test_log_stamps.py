"""A log line's own timestamp, in the shapes most logs start with, and the merge of
sources by it (the Logs screen, as lnav)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest

from core.logs.stamps import line_time, merge_by_time


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.fixture
def berlin():
    """Local time is Berlin's (UTC+1 in March): a time with no zone is local."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_iso_8601_with_and_without_a_zone(berlin) -> None:
    assert line_time("2026-03-01T12:00:02Z INFO up") == utc(2026, 3, 1, 12, 0, 2)
    assert line_time("2026-03-01T13:00:02+01:00 x") == utc(2026, 3, 1, 12, 0, 2)
    assert line_time("2026-03-01 12:00:02.5-0130 x") == utc(2026, 3, 1, 13, 30, 2) + 0.5
    assert line_time("[2026-03-01 13:00:02,250] WARN x") == utc(2026, 3, 1, 12, 0, 2) + 0.25
    assert line_time("2026-03-01T13:00:02 naive") == utc(2026, 3, 1, 12, 0, 2)  # Berlin


def test_syslog_takes_the_year_nearest_now(berlin) -> None:
    jan = utc(2027, 1, 2, 8, 0, 0)
    # read on 2 January: a December line is last year's, a January line this year's
    assert line_time("Dec 31 23:59:59 web1 cron[12]: done", jan) == utc(2026, 12, 31, 22, 59, 59)
    assert line_time("<13>Jan  2 09:00:00 web1 app: up", jan) == utc(2027, 1, 2, 8, 0, 0)


def test_common_log_format_anywhere_near_the_start() -> None:
    line = '10.0.0.1 - - [01/Mar/2026:12:00:06 +0200] "GET / HTTP/1.1" 200 5'
    assert line_time(line) == utc(2026, 3, 1, 10, 0, 6)


def test_a_zone_that_is_no_zone_is_not_read_as_one(berlin) -> None:
    assert line_time("2026-03-01 13:00:02 -2500ms late") == utc(2026, 3, 1, 12, 0, 2)
    assert line_time("2026-03-01 13:00:02 Zebra crossed") == utc(2026, 3, 1, 12, 0, 2)


@pytest.mark.parametrize("text", [
    "2026-03-01T12:00:02+99:00 x", "[03/Dec/2026:19:03:48 +2500] GET",
    "0001-01-01 00:00:00 boot"])
def test_a_time_that_cannot_be_is_none_never_a_crash(text: str, berlin) -> None:
    """A log line is input: these raised ValueError and closed the console."""
    assert line_time(text) is None


@pytest.mark.parametrize("text", ["no time here", "2026-02-30T12:00:00Z impossible",
                                  "Foo  1 12:00:00 not a month", "12:00:00 a time alone",
                                  "[99/Xyz/2026:12:00:00 +0000]", ""])
def test_no_timestamp_is_none(text: str) -> None:
    assert line_time(text) is None


def test_merge_interleaves_sources_and_keeps_each_sources_order() -> None:
    a = [(100.0, "info", "2026-03-01T12:00:01Z a1"), (100.0, None, "  a1 continued"),
         (100.0, "info", "2026-03-01T12:00:05Z a5")]
    b = [(101.0, "info", "2026-03-01T12:00:03Z b3"),
         (101.0, "info", "2026-03-01T12:00:02Z b2 (written late, stays after b3)")]
    merged = [text for _at, _name, _lvl, text in merge_by_time({"a": a, "b": b})]
    assert merged == ["2026-03-01T12:00:01Z a1", "  a1 continued",
                      "2026-03-01T12:00:03Z b3",
                      "2026-03-01T12:00:02Z b2 (written late, stays after b3)",
                      "2026-03-01T12:00:05Z a5"]
    names = [name for _at, name, _lvl, _text in merge_by_time({"a": a, "b": b})]
    assert names == ["a", "a", "b", "b", "a"]
    # a continuation takes its line's time: it does not push what follows to the end
    db = [(100.0, None, "2026-03-01T12:00:01Z boom"), (100.0, None, "Traceback"),
          (100.0, None, "2026-03-01T12:00:05Z db later")]
    api = [(100.0, None, "2026-03-01T12:00:02Z api"), (100.0, None, "2026-03-01T12:00:09Z api")]
    assert [t for *_rest, t in merge_by_time({"db": db, "api": api})] == [
        "2026-03-01T12:00:01Z boom", "Traceback", "2026-03-01T12:00:02Z api",
        "2026-03-01T12:00:05Z db later", "2026-03-01T12:00:09Z api"]
    # the first lines, the next one's (the backlog begins inside a traceback)
    lead = [(100.0, None, "  at foo"), (100.0, None, "2026-03-01T12:00:03Z x")]
    assert [t for *_rest, t in merge_by_time({"lead": lead, "api": api})] == [
        "2026-03-01T12:00:02Z api", "  at foo", "2026-03-01T12:00:03Z x",
        "2026-03-01T12:00:09Z api"]
    # lines with no timestamp at all go by arrival
    plain = merge_by_time({"x": [(5.0, None, "late")], "y": [(1.0, None, "early")]})
    assert [t for *_rest, t in plain] == ["early", "late"]
