"""A remote job's occurrence rolled out in batches (`serial`, `max_fail`,
`pause_between` on [jobs.NAME]), as a rolling fan-out is (core/remote/rollout.py).

The runs of one occurrence on its hosts are all queued at once (each recorded, each in
history), but a run of batch k waits behind every run of batch k-1 through the queue's
own `after` mechanism, and behind a hold that a timer lifts `pause_between` after that
batch ended. Once `max_fail` runs have failed, or every run of a batch did, the runs of
the later batches end `skipped`, never started, with the reason in their record.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from core.jobs.active import ActiveRun
from core.jobs.runs import RunState
from core.remote.rollout import Rollout, stop_reason

_NOT_FAILED = {RunState.SUCCEEDED.value, RunState.CANCELLED.value, RunState.SKIPPED.value}


@dataclass
class _Rollout:
    rollout: Rollout
    batches: list[list[int]]  # run ids per batch
    limit: int | None  # None: no max_fail
    holds: list[int]  # hold ids before batch 2, 3, ... (pause_between)
    left: list[int] = field(default_factory=list)  # runs of each batch still active
    batch_failed: list[int] = field(default_factory=list)  # failed runs of each batch
    failed: int = 0
    stopped: str | None = None


class JobRollouts:
    """The rollouts under way, keyed by run id; `release` lifts a hold (the queue then
    looks again at the runs waiting on it)."""

    def __init__(self, release: Callable[[int], None]) -> None:
        self._release = release
        self._of_run: dict[int, tuple[_Rollout, int]] = {}  # run id -> (rollout, batch)
        self.holds: set[int] = set()  # ids of holds not yet lifted (negative)
        self.dropped: list[int] = []  # holds of stopped rollouts, for the queue to forget
        self._ids = itertools.count(-1, -1)

    def plan(self, acts: list[ActiveRun], rollout: Rollout | None) -> None:
        """Batches for the runs of one occurrence (host order), before they are queued."""
        if rollout is None or not rollout.rolling or len(acts) < 2:
            return
        by_id = {a.run.id: a for a in acts}
        batches = rollout.batches([a.run.id for a in acts])
        holds = [next(self._ids) for _ in batches[1:]] if rollout.pause_between else []
        r = _Rollout(rollout, batches, rollout.fail_limit(len(acts)), holds,
                     [len(b) for b in batches], [0] * len(batches))
        self.holds.update(holds)
        for i, batch in enumerate(batches):
            for run_id in batch:
                act = by_id[run_id]
                self._of_run[run_id] = (r, i)
                if i:  # every earlier run: one cancelled must not let this one start early
                    act.after |= set(itertools.chain.from_iterable(batches[:i]))
                    if holds:
                        act.after.add(holds[i - 1])
                    act.run.reason = f"waiting for batch {i} of {len(batches)} to end (serial)"

    def new_hold(self) -> int:
        """A hold of one's own (a workflow step waiting for what it needs): runs with it
        in `after` wait until it is lifted."""
        hold = next(self._ids)
        self.holds.add(hold)
        return hold

    def lift(self, hold: int) -> None:
        self._lift(hold)

    def drop(self, hold: int) -> None:
        """A hold that will never be lifted (its waiters end otherwise)."""
        if hold in self.holds:
            self.holds.discard(hold)
            self.dropped.append(hold)

    def reason(self, act: ActiveRun) -> str | None:
        """Why a run of a rollout waits, or None for a run of none."""
        got = self._of_run.get(act.run.id)
        if got is None:
            return None
        r, i = got
        if i == 0:
            return None
        if any(x in self.holds for x in act.after) and r.left[i - 1] == 0:
            return (f"waiting {r.rollout.pause_between:g}s between batches (batch {i + 1} "
                    f"of {len(r.batches)})")
        return f"waiting for batch {i} of {len(r.batches)} to end (serial)"

    def finished(self, act: ActiveRun) -> list[tuple[int, str]]:
        """A run of a rollout ended: the runs to end skipped now (their ids), with why."""
        got = self._of_run.pop(act.run.id, None)
        if got is None:
            return []
        r, i = got
        r.left[i] -= 1
        if act.run.state not in _NOT_FAILED:
            r.failed += 1
            r.batch_failed[i] += 1
        out: list[tuple[int, str]] = []
        why = None if r.stopped is not None else stop_reason(
            r.rollout, failed=r.failed, limit=r.limit, batch=i + 1, batches=len(r.batches),
            batch_size=len(r.batches[i]), batch_failed=r.batch_failed[i] if r.left[i] == 0
            else 0, noun="run", option="max_fail")
        if why:
            r.stopped = f"not started: the rollout stopped: {why}"
            for later in r.batches[i + 1:]:
                for run_id in later:
                    if self._of_run.pop(run_id, None) is not None:
                        out.append((run_id, r.stopped))
            for h in r.holds[i:]:
                self.holds.discard(h)
                self.dropped.append(h)  # its waiters end skipped: the queue forgets it
        elif r.left[i] == 0 and i < len(r.holds) and r.stopped is None:
            hold = r.holds[i]
            asyncio.get_running_loop().call_later(r.rollout.pause_between, self._lift, hold)
        return out

    def _lift(self, hold: int) -> None:
        if hold in self.holds:
            self.holds.discard(hold)
            self._release(hold)
