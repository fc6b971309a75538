"""Schedules in words, for the console: "daily at 02:30", "every 15 minutes from 08:00 to
17:45", "at 09:00 on Mon-Fri".

`describe_cron` takes the per-field values of a compiled expression (core.jobs.cron's
CronSpec.expanded: minute, hour, day-of-month, month, day-of-week[, second, year], each a
sorted list, ["*"] or None) and returns None when the expression is too unusual to word;
the caller then shows the expression itself.
"""

from __future__ import annotations

__all__ = ["describe_cron", "format_interval"]

_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_interval(seconds: float) -> str:
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


def describe_cron(expanded: list, alias: str | None) -> tuple[str | None, bool]:
    """(text, whether it names wall-clock times) or (None, False) when too unusual."""
    if any(f is None for f in expanded):  # L, W, # or an AND of two day fields
        return (("hourly", False) if alias == "@hourly" else (None, False))
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

