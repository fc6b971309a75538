"""Rolling execution: a fan-out (or a remote job) in batches, with a failure limit.

Ansible's `serial` and `max_fail_percentage` are the model people bring:

* ``serial`` is a batch size (``2``), a share of the hosts (``25%``) or a list
  (``1,5,25%``: a canary of one, then five, then a quarter of the hosts at a time; the
  last size repeats until every host had its turn). A share is of all the hosts, rounded
  down, and at least one.
* ``max_fail`` is how many failed hosts, counted over the whole rollout, stop it: ``1``
  stops after the batch in which the first host failed, ``10%`` after the batch by which
  a tenth of all the hosts had failed (rounded up). Ansible's ``max_fail_percentage`` is
  of each batch and needs *more* than it; ``max_fail`` is of the rollout and needs that
  many. The batch under way ends; the hosts of later batches are never started and end
  ``skipped``. A host counts as failed when it did not end ``ok``, ``cancelled`` (a
  person's doing) or ``skipped``: an unreachable host counts (Ansible's percentage does
  not count it; a host that cannot be reached mid-change is a failure here).
* A batch in which every host failed stops the rollout too, with or without
  ``max_fail``, as Ansible does: a canary that fails goes no further.
* ``pause_between`` waits that long between two batches.
* ``max_fail`` and ``pause_between`` need ``serial``; an empty value is an error, not
  "not given" (an unset ``$SERIAL`` in a script must not roll out to every host at once).

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
        parts = [str(p) if isinstance(p, int | str) and not isinstance(p, bool)
                 else str(p).lower()[:40] for p in text]
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
        return bool(self.serial)

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
        """A recorded rollout (a fan-out's record). One recorded before max-fail needed
        serial had one batch, which max-fail never stopped: it reads as none."""
        if not d or not d.get("serial"):
            return cls()
        return make_rollout(d.get("serial"), d.get("max_fail"), d.get("pause_between"))


def make_rollout(serial: Any = None, max_fail: Any = None,
                 pause_between: Any = None) -> Rollout:
    """A rollout from what a person wrote (RolloutError naming the bad value); None is
    "not given"."""
    from core.durations import DurationError, parse_duration

    pause = 0.0
    if pause_between is not None:
        try:
            pause = parse_duration(pause_between)
        except DurationError as e:
            raise RolloutError(f"pause-between: {e}") from None
        if pause > 86400:
            raise RolloutError("pause-between: more than a day")
    rollout = Rollout(serial=parse_serial(serial) if serial is not None else (),
                      max_fail=parse_max_fail(max_fail) if max_fail is not None else None,
                      pause_between=pause)
    if not rollout.serial:
        for what, value in (("max-fail", max_fail), ("pause-between", pause_between)):
            if value is not None:
                raise RolloutError(f"{what}: needs serial too (it acts between batches)")
    return rollout


def failures(states: Iterable[str]) -> int:
    """Hosts that count against max-fail among these final states."""
    return sum(1 for s in states if s in HOST_CLASSES and s not in NOT_FAILURES)


def stop_reason(rollout: Rollout, *, failed: int, limit: int | None, batch: int,
                batches: int, batch_failed: int, batch_size: int, noun: str = "host",
                option: str = "max-fail") -> str | None:
    """Why a rollout goes no further than `batch` (1-based) of `batches`, or None: the
    `failed` so far reached `limit` (max-fail), or all `batch_size` of the batch failed
    (`batch_failed`; pass 0 while the batch is under way)."""
    if batch >= batches:
        return None
    if limit is not None and failed >= limit:
        return (f"{failed} {noun}{'s' if failed != 1 else ''} failed by batch {batch} of "
                f"{batches} ({option} {rollout.max_fail})")
    if batch_size and batch_failed >= batch_size:
        return (f"the {noun if batch_size == 1 else f'{batch_size} {noun}s'} of batch "
                f"{batch} of {batches} failed")
    return None
