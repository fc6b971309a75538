"""Durations as people write them in configs and on command lines: "90s", "5m", "1h30m"."""

from __future__ import annotations

import math
import re

# the floor of anything repeated on a timer (a job's interval, a check's): shorter, the
# starts alone fill a core
MIN_INTERVAL = 0.1
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", re.ASCII)
_MAX_TEXT = 100  # "1h30m" is 5 characters; a duration never needs a hundred


class DurationError(ValueError):
    """A duration that cannot be read; the message says what is wrong in one line."""


def parse_duration(text: str | int | float) -> float:
    """Seconds from "90s", "5m", "1h30m", "1.5h", "250ms" or a bare number of seconds.
    Finite, and in ASCII digits only ("５s" is refused, naming the character): what a
    person reads as a duration is what fleetdeck reads. Callers bound the range."""
    from core.confguard import clip, non_ascii

    if isinstance(text, bool):
        raise DurationError(f"expected a duration like '90s', got {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise DurationError(f"duration must not be negative, got {clip(text)}")
        if isinstance(text, int) and text > 10**15 or not math.isfinite(text):
            raise DurationError(f"duration must be a finite number of seconds, got "
                                f"{clip(text)}")
        return float(text)
    if not isinstance(text, str):
        raise DurationError(f"expected a duration like '90s', got {type(text).__name__}")
    odd = non_ascii(text)
    if odd is not None:
        raise DurationError(f"bad duration {clip(text)}: {odd} is not ASCII; write digits "
                            "0-9 and units ms s m h d w")
    if len(text) > _MAX_TEXT:
        raise DurationError(f"bad duration {clip(text)}: {len(text)} characters long")
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise DurationError("empty duration; write e.g. '30s', '5m' or '1h30m'")
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if value < 0:
            raise DurationError(f"duration must not be negative, got {text!r}")
        if not math.isfinite(value):
            raise DurationError(f"duration must be finite, got {text!r}")
        return value
    pos = 0
    total = 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise DurationError(
            f"bad duration {text!r}; write e.g. '90s', '5m', '1h30m' (units: ms s m h d w)"
        )
    return total


def format_duration(seconds: float) -> str:
    """Short human form: 0.4s, 12s, 5m03s, 2h10m, 3d4h."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h}h"
