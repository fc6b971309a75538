"""Flap damping: a check's state changes only when N of its last M samples agree.

As Monit's "if failed N times within M cycles". A new check is `pending` until the
samples say up or down; `maintenance` and `gave_up` are set from outside (a window, the
watchdog) and left by `reset`.
"""

from __future__ import annotations

from collections import deque

UP, PENDING, DOWN, MAINTENANCE, GAVE_UP = "up", "pending", "down", "maintenance", "gave_up"
STATES = (UP, PENDING, DOWN, MAINTENANCE, GAVE_UP)


class Damper:
    def __init__(self, fail: tuple[int, int] = (3, 5), recover: tuple[int, int] = (2, 3)) -> None:
        self.fail = fail
        self.recover = recover
        self.samples: deque[bool] = deque(maxlen=max(fail[1], recover[1]))
        self.state = PENDING

    def add(self, ok: bool) -> str | None:
        """Record one sample; returns the new state when it changed."""
        self.samples.append(ok)
        recent = list(self.samples)
        fails = sum(1 for s in recent[-self.fail[1]:] if not s)
        oks = sum(1 for s in recent[-self.recover[1]:] if s)
        new = self.state
        if self.state in (UP, PENDING) and fails >= self.fail[0]:
            new = DOWN
        elif self.state in (DOWN, PENDING, GAVE_UP) and oks >= self.recover[0]:
            new = UP
        if new == self.state:
            return None
        self.state = new
        return new

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
