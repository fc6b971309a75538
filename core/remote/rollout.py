"""Rolling execution: a fan-out (or a remote job) in batches, with a failure limit.

Ansible's `serial` and `max_fail_percentage` are the model people bring:

* ``serial`` is a batch size (``2``), a share of the hosts (``25%``) or a list
  (``1,5,25%``: a canary of one, then five, then a quarter of the hosts at a time; the
  last size repeats until every host had its turn). A share is of all the hosts, rounded
  down, and at least one.
* ``max_fail`` is how many failed hosts stop the rollout: ``1`` stops after the batch in
  which the first host failed, ``10%`` after the batch in which a tenth of all the hosts
  had failed (rounded up). The batch under way ends; the hosts of later batches are never
  started and end ``skipped``. A host counts as failed when it did not end ``ok``,
  ``cancelled`` (a person's doing) or ``skipped``.
* ``pause_between`` waits that long between two batches.

A rollout's first batch is its canary when ``serial`` is a list: a console asks before
the rest goes (`hold_canary`); the command line goes on by itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.remote.classes import HOST_CLASSES, HostClass

_MAX_TEXT = 200
# what does not count against --max-fail: success, a person's cancel, never started
NOT_FAILURES = frozenset({HostClass.OK.value, HostClass.CANCELLED.value,
                          HostClass.SKIPPED.value})


class RolloutError(ValueError):
    """A serial, max-fail or pause value that cannot be read; one line."""


@dataclass(frozen=True)
class Size:
    """A number of hosts, or a share of all of them in percent."""

    value: int
    percent: bool = False

    def of(self, total: int) -> int:
        """This many of `total` hosts (a share rounded down, at least one)."""
        if not self.percent:
            return self.value
        return max(1, total * self.value // 100)

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


def _size(text: str, what: str, *, most: int | None = None) -> Size:
    t = text.strip()
    percent = t.endswith("%")
    digits = t[:-1].strip() if percent else t
    if not digits.isascii() or not digits.isdigit():
        raise RolloutError(f"{what}: {text.strip()!r} is not a number of hosts or a "
                           "percentage (like 2 or 25%)")
    value = int(digits)
    if value < 1:
        raise RolloutError(f"{what}: {t} must be at least 1" + ("%" if percent else ""))
    if percent and value > 100:
        raise RolloutError(f"{what}: {t} is more than 100%")
    if most is not None and not percent and value > most:
        raise RolloutError(f"{what}: {t} is more than {most}")
    return Size(value, percent)


def parse_serial(text: str | int | Iterable[Any]) -> tuple[Size, ...]:
    """Batch sizes from ``2``, ``"25%"``, ``"1,5,25%"`` or a TOML list ``[1, "25%"]``."""
    if isinstance(text, bool):
        raise RolloutError(f"serial: expected a number of hosts or a list, got {text!r}")
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, str):
        if len(text) > _MAX_TEXT:
            raise RolloutError(f"serial: {len(text)} characters long")
        parts: list[str] = text.split(",")
    elif isinstance(text, list | tuple):
        parts = [str(p) if isinstance(p, int | str) and not isinstance(p, bool) else "?"
                 for p in text]
    else:
        raise RolloutError(f"serial: expected a number of hosts, a percentage or a list, "
                           f"got {str(text)[:40]!r}")
    if not parts or any(not p.strip() for p in parts):
        raise RolloutError("serial: an empty batch size; write sizes like 1,5,25%")
    if len(parts) > 100:
        raise RolloutError(f"serial: {len(parts)} batch sizes; at most 100")
    return tuple(_size(p, "serial", most=1_000_000) for p in parts)


def parse_max_fail(text: str | int) -> Size:
    """The failures that stop a rollout: ``1`` or ``"10%"``."""
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise RolloutError(f"max-fail: expected a number of hosts or a percentage, got "
                           f"{str(text)[:40]!r}")
    return _size(str(text), "max-fail", most=1_000_000)


@dataclass(frozen=True)
class Rollout:
    """How a fan-out goes in batches; the default is every host at once."""

    serial: tuple[Size, ...] = ()
    max_fail: Size | None = None
    pause_between: float = 0.0

    @property
    def rolling(self) -> bool:
        return bool(self.serial) or self.max_fail is not None

    @property
    def has_canary(self) -> bool:
        """A list of sizes: the first batch is tried before the rest."""
        return len(self.serial) > 1

    def batches(self, hosts: list[str]) -> list[list[str]]:
        """The hosts cut into batches in order (one batch when nothing is serial)."""
        if not self.serial:
            return [list(hosts)] if hosts else []
        total, out, i, k = len(hosts), [], 0, 0
        while i < total:
            size = self.serial[min(k, len(self.serial) - 1)].of(total)
            out.append(hosts[i:i + size])
            i, k = i + size, k + 1
        return out

    def fail_limit(self, total: int) -> int | None:
        """How many failed hosts stop the rollout (None: it never stops)."""
        if self.max_fail is None:
            return None
        if not self.max_fail.percent:
            return self.max_fail.value
        return max(1, math.ceil(total * self.max_fail.value / 100))

    def to_dict(self) -> dict[str, Any]:
        return {"serial": ",".join(map(str, self.serial)) or None,
                "max_fail": str(self.max_fail) if self.max_fail else None,
                "pause_between": self.pause_between}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Rollout:
        """A recorded rollout (a fan-out's record, a socket request)."""
        if not d:
            return cls()
        return make_rollout(d.get("serial"), d.get("max_fail"), d.get("pause_between"))


def make_rollout(serial: Any = None, max_fail: Any = None,
                 pause_between: Any = None) -> Rollout:
    """A rollout from what a person wrote (RolloutError naming the bad value)."""
    from core.durations import DurationError, parse_duration

    pause = 0.0
    if pause_between not in (None, ""):
        try:
            pause = parse_duration(pause_between)
        except DurationError as e:
            raise RolloutError(f"pause-between: {e}") from None
        if pause > 86400:
            raise RolloutError("pause-between: more than a day")
    return Rollout(serial=parse_serial(serial) if serial not in (None, "") else (),
                   max_fail=parse_max_fail(max_fail) if max_fail not in (None, "") else None,
                   pause_between=pause)


def failures(states: Iterable[str]) -> int:
    """Hosts that count against max-fail among these final states."""
    return sum(1 for s in states if s in HOST_CLASSES and s not in NOT_FAILURES)
