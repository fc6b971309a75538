"""core.jobs.cron against the documents: crontab(5) (Vixie / Debian cron), Quartz's
CronExpression and CronTrigger tutorial, and the cases where croniter went wrong.

Every expected time below was worked out by hand from the 2026 calendar (1 January 2026 is
a Thursday) and the rules, not read off an implementation.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from core.jobs.cron import CronError, compile_cron


def fires(expr: str, start: str, n: int, dialect: str | None = None) -> list[str]:
    spec = compile_cron(expr, dialect)
    t: datetime | None = datetime.fromisoformat(start)
    out = []
    for _ in range(n):
        assert t is not None
        t = spec.next_after(t)
        if t is None:
            break
        assert spec.matches(t)
        out.append(t.strftime("%Y-%m-%d %H:%M:%S" if spec.dialect == "quartz" else
                              "%Y-%m-%d %H:%M"))
    return out


JAN1 = "2026-01-01T00:00"


# ---------------------------------------------------------------- crontab(5) ----
@pytest.mark.parametrize("expr, start, expected", [
    # "run five minutes after midnight, every day"
    ("5 0 * * *", JAN1, ["2026-01-01 00:05", "2026-01-02 00:05", "2026-01-03 00:05"]),
    # "run at 2:15pm on the first of every month"
    ("15 14 1 * *", JAN1, ["2026-01-01 14:15", "2026-02-01 14:15", "2026-03-01 14:15"]),
    # "run at 10 pm on weekdays"
    ("0 22 * * 1-5", JAN1, ["2026-01-01 22:00", "2026-01-02 22:00", "2026-01-05 22:00",
                            "2026-01-06 22:00"]),
    # "run 23 minutes after midn, 2am, 4am ..., everyday"
    ("23 0-23/2 * * *", JAN1, ["2026-01-01 00:23", "2026-01-01 02:23", "2026-01-01 04:23"]),
    # "run at 5 after 4 every sunday"
    ("5 4 * * sun", JAN1, ["2026-01-04 04:05", "2026-01-11 04:05", "2026-01-18 04:05"]),
    # "30 4 1,15 * 5": 4:30 on the 1st and 15th of each month, plus every Friday
    ("30 4 1,15 * 5", JAN1, ["2026-01-01 04:30", "2026-01-02 04:30", "2026-01-09 04:30",
                             "2026-01-15 04:30", "2026-01-16 04:30", "2026-01-23 04:30",
                             "2026-01-30 04:30", "2026-02-01 04:30"]),
    # neither day field starts with '*': days 8-14 OR Saturdays (not "the 2nd Saturday")
    ("0 4 8-14 * 6", JAN1, ["2026-01-03 04:00", "2026-01-08 04:00", "2026-01-09 04:00",
                            "2026-01-10 04:00", "2026-01-11 04:00", "2026-01-12 04:00",
                            "2026-01-13 04:00", "2026-01-14 04:00", "2026-01-17 04:00"]),
    # 7 and 0 are both Sunday; names in any case
    ("0 0 * * 7", JAN1, ["2026-01-04 00:00", "2026-01-11 00:00"]),
    ("0 0 * * 5-7", JAN1, ["2026-01-02 00:00", "2026-01-03 00:00", "2026-01-04 00:00",
                           "2026-01-09 00:00"]),
    ("0 12 * jan,Mar Mon", JAN1, ["2026-01-05 12:00", "2026-01-12 12:00", "2026-01-19 12:00",
                                  "2026-01-26 12:00", "2026-03-02 12:00"]),
    # N/step is N-max/step: day-of-week 1/2 = 1,3,5,7 (Mon Wed Fri Sun)
    ("0 0 * * 1/2", JAN1, ["2026-01-02 00:00", "2026-01-04 00:00", "2026-01-05 00:00",
                           "2026-01-07 00:00"]),
    ("*/20 3 * * *", JAN1, ["2026-01-01 03:00", "2026-01-01 03:20", "2026-01-01 03:40",
                            "2026-01-02 03:00"]),
])
def test_crontab5_examples(expr, start, expected):
    assert fires(expr, start, len(expected)) == expected


# -------------------------------------------------------- croniter's errors ----
@pytest.mark.parametrize("expr, start, expected", [
    # a one-value range N-N is N, not '*'
    ("0 15-15 * * *", JAN1, ["2026-01-01 15:00", "2026-01-02 15:00", "2026-01-03 15:00"]),
    ("0 0 * 3-3 *", JAN1, ["2026-03-01 00:00", "2026-03-02 00:00", "2026-03-03 00:00"]),
    ("0 0 * 3-3 *", "2026-03-31T00:00", ["2027-03-01 00:00"]),
    ("* * * * SAT-SAT", JAN1, ["2026-01-03 00:00", "2026-01-03 00:01", "2026-01-03 00:02"]),
    ("* * * * SAT-SAT", "2026-01-03T23:59", ["2026-01-10 00:00"]),
    # day-of-month starts with '*' (*/2): AND, the odd days that are Mondays
    ("0 0 */2 * 1", JAN1, ["2026-01-05 00:00", "2026-01-19 00:00", "2026-02-09 00:00",
                           "2026-02-23 00:00", "2026-03-09 00:00"]),
    # a list holding '*' is the full range; the star rule looks at the first character
    ("0 0 4-5,* * 1", JAN1, ["2026-01-02 00:00", "2026-01-03 00:00", "2026-01-04 00:00"]),
    ("0 0 *,4-5 * 1", JAN1, ["2026-01-05 00:00", "2026-01-12 00:00"]),
    ("0 0 4-5 * *,1", JAN1, ["2026-01-04 00:00", "2026-01-05 00:00", "2026-02-04 00:00"]),
    # '?' reads as '*' in the cron dialect
    ("0 0 ? * 1", JAN1, ["2026-01-05 00:00", "2026-01-12 00:00"]),
])
def test_cases_croniter_got_wrong(expr, start, expected):
    assert fires(expr, start, len(expected)) == expected


# ------------------------------------------------------- 5-field extensions ----
@pytest.mark.parametrize("expr, expected", [
    ("0 0 * * 5L", ["2026-01-30 00:00", "2026-02-27 00:00", "2026-03-27 00:00",
                    "2026-04-24 00:00"]),
    ("0 0 * * 0L", ["2026-01-25 00:00", "2026-02-22 00:00", "2026-03-29 00:00",
                    "2026-04-26 00:00"]),
    ("0 0 * * 7L", ["2026-01-25 00:00", "2026-02-22 00:00"]),
    ("0 0 * * FRI#2", ["2026-01-09 00:00", "2026-02-13 00:00"]),
    ("0 0 L * *", ["2026-01-31 00:00", "2026-02-28 00:00", "2026-03-31 00:00",
                   "2026-04-30 00:00"]),
    ("0 0 L-2 * *", ["2026-01-29 00:00", "2026-02-26 00:00", "2026-03-29 00:00"]),
    ("0 0 LW * *", ["2026-01-30 00:00", "2026-02-27 00:00", "2026-03-31 00:00",
                    "2026-04-30 00:00", "2026-05-29 00:00"]),
    ("0 0 15W * *", ["2026-01-15 00:00", "2026-02-16 00:00", "2026-03-16 00:00",
                     "2026-04-15 00:00"]),
    # 1W on a Saturday is Monday the 3rd: W never leaves the month
    ("0 0 1W * *", ["2026-02-02 00:00", "2026-03-02 00:00", "2026-04-01 00:00",
                    "2026-05-01 00:00", "2026-06-01 00:00", "2026-07-01 00:00",
                    "2026-08-03 00:00"]),
    # 31W: the 31st on a Sunday is the Friday before; 30-day months have no 31st
    ("0 0 31W * *", ["2026-01-30 00:00", "2026-03-31 00:00", "2026-05-29 00:00",
                     "2026-07-31 00:00"]),
    # neither day field starts with '*': the 26th OR the 4th Thursday
    ("43 3 26 * THU#4", ["2026-01-22 03:43", "2026-01-26 03:43", "2026-02-26 03:43",
                         "2026-03-26 03:43", "2026-04-23 03:43", "2026-04-26 03:43"]),
    # the 23rd of every month, or a 5th Thursday (none in February or March 2026)
    ("31 12 23 * THU#5", ["2026-01-23 12:31", "2026-01-29 12:31", "2026-02-23 12:31",
                          "2026-03-23 12:31", "2026-04-23 12:31", "2026-04-30 12:31"]),
    # lists of extensions are unions
    ("0 0 1,L * *", ["2026-01-31 00:00", "2026-02-01 00:00", "2026-02-28 00:00"]),
    ("0 0 * * 1#1,5L", ["2026-01-05 00:00", "2026-01-30 00:00", "2026-02-02 00:00"]),
])
def test_five_field_extensions(expr, expected):
    assert fires(expr, JAN1, len(expected)) == expected


# ------------------------------------------------------------------- Quartz ----
@pytest.mark.parametrize("expr, start, expected", [
    # "Fire at 12pm (noon) every day"
    ("0 0 12 * * ?", JAN1, ["2026-01-01 12:00:00", "2026-01-02 12:00:00"]),
    # "Fire at 10:15am every day" in four spellings
    ("0 15 10 ? * *", JAN1, ["2026-01-01 10:15:00", "2026-01-02 10:15:00"]),
    ("0 15 10 * * ?", JAN1, ["2026-01-01 10:15:00", "2026-01-02 10:15:00"]),
    ("0 15 10 * * ? *", JAN1, ["2026-01-01 10:15:00", "2026-01-02 10:15:00"]),
    # "... every day during the year 2005"
    ("0 15 10 * * ? 2005", "2005-01-01T00:00", ["2005-01-01 10:15:00", "2005-01-02 10:15:00"]),
    ("0 15 10 * * ? 2005", "2005-12-31T10:15", []),
    # "every minute starting at 2pm and ending at 2:59pm, every day"
    ("0 * 14 * * ?", "2026-01-01T14:57:30", ["2026-01-01 14:58:00", "2026-01-01 14:59:00",
                                             "2026-01-02 14:00:00"]),
    # "every 5 minutes starting at 2pm and ending at 2:55pm"
    ("0 0/5 14 * * ?", "2026-01-01T14:50", ["2026-01-01 14:55:00", "2026-01-02 14:00:00"]),
    # "... and every 5 minutes starting at 6pm and ending at 6:55pm"
    ("0 0/5 14,18 * * ?", "2026-01-01T14:50", ["2026-01-01 14:55:00", "2026-01-01 18:00:00",
                                               "2026-01-01 18:05:00"]),
    # "every minute starting at 2pm and ending at 2:05pm"
    ("0 0-5 14 * * ?", "2026-01-01T14:03", ["2026-01-01 14:04:00", "2026-01-01 14:05:00",
                                            "2026-01-02 14:00:00"]),
    # "at 2:10pm and at 2:44pm every Wednesday in the month of March"
    ("0 10,44 14 ? 3 WED", JAN1, ["2026-03-04 14:10:00", "2026-03-04 14:44:00",
                                  "2026-03-11 14:10:00"]),
    # "at 10:15am every Monday, Tuesday, Wednesday, Thursday and Friday"
    ("0 15 10 ? * MON-FRI", JAN1, ["2026-01-01 10:15:00", "2026-01-02 10:15:00",
                                   "2026-01-05 10:15:00"]),
    # "at 10:15am on the 15th day of every month"
    ("0 15 10 15 * ?", JAN1, ["2026-01-15 10:15:00", "2026-02-15 10:15:00"]),
    # "at 10:15am on the last day of every month"
    ("0 15 10 L * ?", JAN1, ["2026-01-31 10:15:00", "2026-02-28 10:15:00",
                             "2026-03-31 10:15:00"]),
    ("0 15 10 L * ?", "2028-02-01T00:00", ["2028-02-29 10:15:00"]),
    # "at 10:15am on the 2nd-to-last last day of every month"
    ("0 15 10 L-2 * ?", JAN1, ["2026-01-29 10:15:00", "2026-02-26 10:15:00",
                               "2026-03-29 10:15:00"]),
    # "at 10:15am on the last Friday of every month"
    ("0 15 10 ? * 6L", JAN1, ["2026-01-30 10:15:00", "2026-02-27 10:15:00",
                              "2026-03-27 10:15:00"]),
    # "... last Friday of every month during the years 2002, 2003, 2004 and 2005"
    ("0 15 10 ? * 6L 2002-2005", "2002-01-01T00:00", ["2002-01-25 10:15:00",
                                                      "2002-02-22 10:15:00"]),
    ("0 15 10 ? * 6L 2002-2005", "2005-12-01T00:00", ["2005-12-30 10:15:00"]),
    ("0 15 10 ? * 6L 2002-2005", JAN1, []),
    # "at 10:15am on the third Friday of every month"
    ("0 15 10 ? * 6#3", JAN1, ["2026-01-16 10:15:00", "2026-02-20 10:15:00",
                               "2026-03-20 10:15:00"]),
    # "at 12pm (noon) every 5 days every month, starting on the first day of the month"
    ("0 0 12 1/5 * ?", JAN1, ["2026-01-01 12:00:00", "2026-01-06 12:00:00",
                              "2026-01-11 12:00:00", "2026-01-16 12:00:00",
                              "2026-01-21 12:00:00", "2026-01-26 12:00:00",
                              "2026-01-31 12:00:00", "2026-02-01 12:00:00"]),
    # "every November 11th at 11:11am"
    ("0 11 11 11 11 ?", JAN1, ["2026-11-11 11:11:00", "2027-11-11 11:11:00"]),
    # day-of-week 1 = SUN .. 7 = SAT: 2 is Monday; a lone L is 7, Saturday
    ("0 0 12 ? * 2", JAN1, ["2026-01-05 12:00:00", "2026-01-12 12:00:00"]),
    ("0 0 12 ? * L", JAN1, ["2026-01-03 12:00:00", "2026-01-10 12:00:00"]),
    ("0 0 12 ? * 1,7", JAN1, ["2026-01-03 12:00:00", "2026-01-04 12:00:00",
                              "2026-01-10 12:00:00"]),
    ("0 0 12 LW * ?", JAN1, ["2026-01-30 12:00:00", "2026-02-27 12:00:00",
                             "2026-03-31 12:00:00"]),
    ("0 0 12 15W * ?", JAN1, ["2026-01-15 12:00:00", "2026-02-16 12:00:00"]),
    ("0 0 12 L-3W * ?", JAN1, ["2026-01-28 12:00:00", "2026-02-25 12:00:00",
                               "2026-03-27 12:00:00"]),
    # Quartz's overflowing ranges: 22-2 is 22,23,0,1,2; FRI-MON; NOV-FEB
    ("0 0 22-2 * * ?", JAN1, ["2026-01-01 01:00:00", "2026-01-01 02:00:00",
                              "2026-01-01 22:00:00", "2026-01-01 23:00:00",
                              "2026-01-02 00:00:00"]),
    ("0 0 12 ? * FRI-MON", JAN1, ["2026-01-02 12:00:00", "2026-01-03 12:00:00",
                                  "2026-01-04 12:00:00", "2026-01-05 12:00:00",
                                  "2026-01-09 12:00:00"]),
    ("0 0 12 ? NOV-FEB *", "2026-02-27T13:00", ["2026-02-28 12:00:00",
                                                "2026-11-01 12:00:00"]),
    ("*/20 * * * * ?", "2026-01-01T10:00:30", ["2026-01-01 10:00:40", "2026-01-01 10:01:00",
                                               "2026-01-01 10:01:20"]),
])
def test_quartz_examples(expr, start, expected):
    assert fires(expr, start, max(1, len(expected))) == expected


@pytest.mark.parametrize("expr, expected", [
    ("*/60 * * * *", ["2026-01-01 11:00", "2026-01-01 12:00"]),
    ("0 */24 * * *", ["2026-01-02 00:00", "2026-01-03 00:00"]),
    ("0 0 */32 * *", ["2026-02-01 00:00", "2026-03-01 00:00"]),
])
def test_a_cron_step_past_its_field_fires_at_the_fields_start(expr, expected):
    """cronie loads such a line (with a warning) and croniter reads it alike: the step
    leaves only the range's first value. Quartz refuses it (above)."""
    assert fires(expr, "2026-01-01T10:00:30", 2) == expected


# ------------------------------------------------------------------ errors ----
@pytest.mark.parametrize("expr, dialect, message", [
    ("0 22-2 * * *", None,
     "bad cron expression '0 22-2 * * *': hour range 22-2 wraps around; write 22-23,0-2"),
    ("0 0 * * 5-1", None, "day-of-week range 5-1 wraps around; write 5-6,0-1"),
    ("0 0 * NOV-FEB *", None, "month range NOV-FEB wraps around; write NOV-DEC,JAN-FEB"),
    ("0 0 0 1 1 ? 2030-2020", None, "year range 2030-2020 is backwards"),
    ("*/99999999999999999999 * * * *", None,
     "bad minute field '*/99999999999999999999': step 99999999999999999999 is too large"),
    ("0 */60 * * * ?", None, "bad minute field '*/60': step 60 is too large (at most 59)"),
    ("*/0 * * * *", None, "bad minute field '*/0': the step must be at least 1"),
    ("61 * * * *", None, "minute 61 out of range 0-59"),
    ("0 0 * * 8", None, "day-of-week 8 out of range 0-7"),
    ("0 0 12 ? * 0", None, "day-of-week 0 out of range 1-7"),
    ("0 0 0 1 1 ? 2100", None, "year 2100 out of range 1970-2099"),
    ("0 0 * MON *", None, "bad month field 'MON': 'mon' is not a month name"),
    ("0 ? * * *", None, "bad hour field '?'"),
    ("0 0 30 2 *", None, "never fires"),
    ("0 0 31 4,6,9,11 *", None, "never fires"),
    ("0 0 0 29 2 ? 2027", None, "never fires"),
    ("0 0 * * L", None, "bad day-of-week field 'L': in the cron dialect write nL"),
    ("0 0 * * 5#6", None, "the week number after '#' must be 1-5"),
    ("0 0 L-31 * *", None, "L-31 is too far back (at most L-30)"),
    ("0 0 12 * * *", None, "quartz needs '?' in exactly one of day-of-month and day-of-week"),
    ("0 0 12 ? * ?", None, "quartz needs '?' in exactly one of day-of-month and day-of-week"),
    ("0 0 12 1,L * ?", None, "quartz does not allow L, W or # in a list"),
    ("0 0 12 ? * 6#3,2#1", None, "quartz does not allow L, W or # in a list"),
    ("0 0 12 ? * 2", "cron", "the cron dialect has 5 fields"),
    ("* * * * *", "quartz", "the quartz dialect has 6-7 fields"),
    ("* * * *", None, "got 4"),
])
def test_rejected(expr, dialect, message):
    with pytest.raises(CronError) as err:
        compile_cron(expr, dialect)
    text = str(err.value)
    assert message in text
    assert text.startswith(f"bad cron expression {expr!r}: ")
    assert "\n" not in text
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("expr", [
    "0 0 * * 5L", "0 0 * * 0L", "0 0 LW * *", "43 3 26 * THU#4", "31 12 23 * THU#5",
    "0 0 12 L-2 * ?", "0 0 12 ? * 6L", "0 0 12 ? * L", "0 0 12 LW * ?", "0 0 L-2 * *",
    "0 0 15W * *", "0 0 ? * MON", "0 0 1 * ?",
])
def test_accepted(expr):
    compile_cron(expr)


# -------------------------------------------------------- the other answers ----
@pytest.mark.parametrize("expr, interval_like", [
    ("0 1-5 * * *", False), ("0-30/30 2 * * *", False), ("30 2 * * *", False),
    ("0 * * * *", True), ("*/5 1 * * *", True), ("* 3 * * *", True), ("5 */2 * * *", True),
    ("0 0/10 2 * * ?", False), ("0 */10 2 * * ?", True), ("* 0 0 * * ?", True),
    ("0 0 * * * ?", True),
])
def test_interval_like_is_vixies_rule(expr, interval_like):
    assert compile_cron(expr).interval_like is interval_like


@pytest.mark.parametrize("expr, expanded", [
    ("0 15-15 * * *", [[0], [15], ["*"], ["*"], ["*"]]),
    ("*/15 8-17 * * 1-5", [[0, 15, 30, 45], list(range(8, 18)), ["*"], ["*"], [1, 2, 3, 4, 5]]),
    ("0 0 * * 0,7", [[0], [0], ["*"], ["*"], [0]]),
    ("0 0 1,15 * 1", [[0], [0], [1, 15], ["*"], [1]]),  # either: both listed
    ("0 0 */2 * 1", [[0], [0], None, ["*"], [1]]),  # both must match: no plain list
    ("0 0 4-5,* * 1", [[0], [0], ["*"], ["*"], ["*"]]),  # either, and one is every day
    ("0 0 L * *", [[0], [0], None, ["*"], ["*"]]),
    ("0 0 12 ? * 2", [[0], [12], ["*"], ["*"], [1], [0], ["*"]]),
    ("0 0 12 ? * 1,7 2030", [[0], [12], ["*"], ["*"], [0, 6], [0], [2030]]),
    ("* * * * * ?", [["*"], ["*"], ["*"], ["*"], ["*"], ["*"], ["*"]]),
])
def test_expanded(expr, expanded):
    assert compile_cron(expr).expanded == expanded


def test_dialect_is_chosen_by_field_count():
    assert compile_cron("* * * * *").dialect == "cron"
    assert compile_cron("0 * * * * ?").dialect == "quartz"
    assert compile_cron("0 * * * * ? 2030", "quartz").dialect == "quartz"


def test_matches():
    spec = compile_cron("30 4 1,15 * 5")
    assert spec.matches(datetime(2026, 1, 2, 4, 30))  # a Friday
    assert spec.matches(datetime(2026, 1, 15, 4, 30))  # the 15th
    assert not spec.matches(datetime(2026, 1, 14, 4, 30))
    assert not spec.matches(datetime(2026, 1, 15, 4, 30, 5))  # cron fires at second 0
    q = compile_cron("15 30 4 ? * 6#3")
    assert q.matches(datetime(2026, 1, 16, 4, 30, 15))
    assert not q.matches(datetime(2026, 1, 9, 4, 30, 15))


def test_next_after_is_strict_and_drops_microseconds():
    spec = compile_cron("*/5 * * * *")
    assert spec.next_after(datetime(2026, 1, 1, 10, 5)) == datetime(2026, 1, 1, 10, 10)
    assert spec.next_after(datetime(2026, 1, 1, 10, 4, 59, 999999)) == datetime(
        2026, 1, 1, 10, 5)
    q = compile_cron("* * * * * ?")
    assert q.next_after(datetime(2026, 1, 1, 10, 5, 0, 500)) == datetime(2026, 1, 1, 10, 5, 1)


def test_no_fire_after_2099_and_answers_quickly():
    leap = compile_cron("0 0 29 2 *")
    assert leap.next_after(datetime(2095, 1, 1)) == datetime(2096, 2, 29)
    assert leap.next_after(datetime(2096, 2, 29)) is None  # 2100 is no leap year, and past
    rare = compile_cron("0 0 0 29 2 ? 2096")
    assert rare.next_after(datetime(1970, 1, 1)) == datetime(2096, 2, 29)
    t0 = time.perf_counter()
    for _ in range(200):
        rare.next_after(datetime(1970, 1, 1))
        leap.next_after(datetime(2096, 2, 29))
        compile_cron("0 0 0 5W 2 ? 2099").next_after(datetime(1970, 1, 1))
    assert time.perf_counter() - t0 < 2.0  # generous: about 1 ms on a slow machine
    assert compile_cron("* * * * *").next_after(datetime(2099, 12, 31, 23, 59)) is None
    assert compile_cron("* * * * *").next_after(datetime(1900, 1, 1)) == datetime(1970, 1, 1)
