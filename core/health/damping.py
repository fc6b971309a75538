"""Flap damping: a check's state changes only when N of its last M samples agree.

As Monit's "if failed N times within M cycles". Two things are damped apart, as Nagios
keeps a host's UP/DOWN apart from a service's OK/WARNING/CRITICAL:

* availability: `down` after `fail` N of M samples got no usable answer (a `down`
  sample); answering again after `recover` N of M answered samples;
* thresholds, on an answering check: `warn` or `crit` after `fail` N of M samples at
  that level or worse; back down a level after `recover` N of M samples below it.

A threshold never makes a check `down`. A new check is `pending` until the samples
say; `maintenance` and `gave_up` are set from outside (a window, the watchdog) and left
by `reset`.
"""

from __future__ import annotations

from collections import deque

UP, PENDING, DOWN, MAINTENANCE, GAVE_UP = "up", "pending", "down", "maintenance", "gave_up"
WARN, CRIT = "warn", "crit"  # answering, over a threshold
STATES = (UP, WARN, CRIT, PENDING, DOWN, MAINTENANCE, GAVE_UP)
ANSWERING = (UP, WARN, CRIT)  # the check's target answers: the host is up
_LEVEL = {"ok": 0, "warn": 1, "crit": 2}  # a sample's status; "down" has no level
_STATE = (UP, WARN, CRIT)  # by level


def level_of(state: str) -> int:
    """0 up, 1 warn, 2 crit (other states: 0)."""
    return _STATE.index(state) if state in _STATE else 0


class Damper:
    def __init__(self, fail: tuple[int, int] = (3, 5), recover: tuple[int, int] = (2, 3)) -> None:
        self.fail = fail
        self.recover = recover
        self.samples: deque[str] = deque(maxlen=max(fail[1], recover[1]))
        self.state = PENDING

    def add(self, status: str | bool) -> str | None:
        """Record one sample's status ("ok", "warn", "crit", "down"; True is "ok" and
        False "down"); returns the new state when it changed."""
        if isinstance(status, bool):
            status = "ok" if status else "down"
        self.samples.append(status)
        recent = list(self.samples)
        by_fail, by_recover = recent[-self.fail[1]:], recent[-self.recover[1]:]
        state = new = self.state
        if state in (*ANSWERING, PENDING) and by_fail.count("down") >= self.fail[0]:
            new = DOWN
        elif state in (DOWN, PENDING, GAVE_UP):
            answered = [s for s in by_recover if s != "down"]
            if len(answered) >= self.recover[0]:  # what the answers that count say
                new = _STATE[self._level(answered, self.recover[0])]
        elif state in ANSWERING:
            now, target = level_of(state), self._level(by_fail, self.fail[0])
            below = sum(1 for s in by_recover if s != "down" and _LEVEL[s] < now)
            if target > now or (target < now and below >= self.recover[0]):
                new = _STATE[target]
        if new == self.state:
            return None
        self.state = new
        return new

    @staticmethod
    def _level(samples: list[str], n: int) -> int:
        """The worst level at least `n` of `samples` are at (or over)."""
        for level in (2, 1):
            if sum(1 for s in samples if _LEVEL.get(s, -1) >= level) >= n:
                return level
        return 0

    def force(self, state: str) -> str | None:
        """Set a state from outside (maintenance, gave_up); returns it if it changed."""
        if state == self.state:
            return None
        self.state = state
        return state

    def reset(self, state: str = PENDING) -> None:
        """Forget the samples (after a restart, after maintenance): judge afresh."""
        self.samples.clear()
        self.state = state
