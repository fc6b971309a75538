"""The heap loop: one timer for all jobs, due occurrences handed to the engine in batches.

No job polls. Each scheduled job has one heap entry, its next fire time (occurrence plus
its jitter). When entries come due the loop pops them all, gathers what a late job missed
up to now (so misfire policy sees the whole gap: its latest occurrences, the older ones
counted), pushes each job's next entry and hands the batch to the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from core.jobs.schedule import Schedule, jitter_offset

log = logging.getLogger("fleetdeck.scheduler")

MAX_GATHERED = 1000  # a late job's latest missed occurrences handed over; older ones counted
MAX_WALKED = 20_000  # missed occurrences walked one by one before leaping to the latest
BULK_POP = 64  # due entries popped one by one before the rest are taken in one pass


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (if it was on): a tick that creates tens of
    thousands of lasting objects otherwise triggers collections that walk the heap."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass
class Due:
    """One job's due occurrences, oldest first, each with the time it should have fired:
    after a long downtime the latest MAX_GATHERED, the older ones only counted."""

    job: str
    occurrences: list[float]
    fire_times: list[float]
    more: int = 0  # older occurrences also missed, not in the lists
    more_exact: bool = True  # False: `more` is a lower bound (leapt over, not counted)


@dataclass
class _Entry:
    schedule: Schedule
    jitter: float
    generation: int


class Scheduler:
    def __init__(
        self,
        on_due: Callable[[list[Due], float], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._on_due = on_due
        self._clock = clock
        self._heap: list[tuple[float, float, str, int]] = []  # fire, occurrence, job, gen
        self._entries: dict[str, _Entry] = {}
        self._gen = 0
        self._next: dict[str, float] = {}
        self._wake = asyncio.Event()

    # -- what is scheduled -------------------------------------------------------------
    def set_job(self, name: str, schedule: Schedule, *, after: float, jitter: float = 0.0) -> None:
        """(Re)schedule a job from its first occurrence strictly after `after`."""
        self._gen += 1
        entry = _Entry(schedule, jitter, self._gen)
        self._entries[name] = entry
        self._push(name, entry, schedule.next_after(after))

    def remove_job(self, name: str) -> None:
        self._entries.pop(name, None)
        self._next.pop(name, None)  # its heap entries go stale and are dropped lazily
        self._wake.set()

    def next_fire(self, name: str) -> float | None:
        """The next occurrence of a job (not counting jitter), or None."""
        return self._next.get(name) if name in self._entries else None

    def _push(self, name: str, entry: _Entry, occ: float | None) -> None:
        if occ is None:
            self._next.pop(name, None)
            return
        self._next[name] = occ
        fire = occ + jitter_offset(name, occ, entry.jitter)
        first = not self._heap or fire < self._heap[0][0]
        heapq.heappush(self._heap, (fire, occ, name, entry.generation))
        if first:
            self._wake.set()

    def __len__(self) -> int:
        return len(self._entries)

    # -- the loop ------------------------------------------------------------------------
    def _take_due(self, now: float) -> list[tuple[float, float, str, int]]:
        """Remove the heap entries due by ``now`` and return them in heap (sorted) order.

        Popping one at a time costs log(n) comparisons each, and entries due at the same
        second compare down to their names; when many are due, one pass that splits the
        heap and sorts the due part gives the same entries in the same order, cheaper.
        """
        heap = self._heap
        out: list[tuple[float, float, str, int]] = []
        while heap and heap[0][0] <= now:
            if len(out) >= BULK_POP:
                due = [item for item in heap if item[0] <= now]
                heap[:] = [item for item in heap if item[0] > now]
                heapq.heapify(heap)
                due.sort()
                out.extend(due)  # all after what was popped: the heap held nothing smaller
                break
            out.append(heapq.heappop(heap))
        return out

    def pop_due(self, now: float) -> list[Due]:
        heap = self._heap
        batch: list[Due] = []
        for fire, occ, name, gen in self._take_due(now):
            entry = self._entries.get(name)
            if entry is None or entry.generation != gen:
                continue
            due = Due(name, [occ], [fire])
            nxt = _gather(entry, name, due, now)  # a late job's gap, then the future
            batch.append(due)
            if nxt is None:
                self._next.pop(name, None)
            else:
                self._next[name] = nxt
                heapq.heappush(heap, (nxt + jitter_offset(name, nxt, entry.jitter), nxt, name, gen))
        return batch

    async def run(self) -> None:
        while True:
            now = self._clock()
            with gc_paused():  # a big batch makes many lasting objects: no GC walks meanwhile
                batch = self.pop_due(now)
                if batch:
                    try:
                        self._on_due(batch, now)
                    except Exception:
                        log.exception("dispatching %d due jobs failed", len(batch))
            if batch:
                await asyncio.sleep(0)  # let the dispatched work breathe before the next pass
                continue
            self._wake.clear()
            timeout = None
            if self._heap:
                timeout = max(0.0, self._heap[0][0] - self._clock())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass


def _gather(entry: _Entry, name: str, due: Due, now: float) -> float | None:
    """Fill `due` with what its job missed up to `now` (its latest MAX_GATHERED
    occurrences, the older ones counted in `due.more`); return its next occurrence, not
    yet due, or None when the schedule ends.

    Latest, not first: run_once runs the most recent occurrence, and a person reviewing
    the gap sees its end. A dense schedule after a long downtime (a per-second Quartz job
    down for a week: 604,800 occurrences) is not walked to its end one by one: after
    MAX_WALKED it leaps to the latest ones (`_leap`)."""
    sched, jitter = entry.schedule, entry.jitter
    occs, fires = due.occurrences, due.fire_times
    walked = 0
    nxt = sched.next_after(occs[-1])
    while nxt is not None:
        nfire = nxt + jitter_offset(name, nxt, jitter)
        if nfire > now:
            break
        occs.append(nxt)
        fires.append(nfire)
        if len(occs) >= 2 * MAX_GATHERED:
            _keep_latest(due)
        walked += 1
        nxt = _leap(entry, name, due, now) if walked == MAX_WALKED else sched.next_after(nxt)
    _keep_latest(due)
    return nxt


def _keep_latest(due: Due) -> None:
    drop = len(due.occurrences) - MAX_GATHERED
    if drop > 0:
        del due.occurrences[:drop], due.fire_times[:drop]
        due.more += drop


def _leap(entry: _Entry, name: str, due: Due, now: float) -> float | None:
    """Replace `due`'s occurrences with the latest ones due by `now`, found by probing
    back from `now` over a span that holds about MAX_GATHERED of them (doubled while it
    holds too few, halved while too many); what lies between is skipped, counted by the
    schedule when it can (`count_between`: intervals), else `due.more` is a lower bound.
    Returns the first occurrence after the leap that is not due, as `_gather` would."""
    sched, jitter = entry.schedule, entry.jitter
    last = due.occurrences[-1]
    span = max(last - due.occurrences[0], 1.0)
    while True:
        start = now - jitter - span
        if start <= last:  # the rest is near: walk it
            return sched.next_after(last)
        probe: list[tuple[float, float]] = []
        nxt = sched.next_after(start)
        while nxt is not None and len(probe) <= 4 * MAX_GATHERED:
            nfire = nxt + jitter_offset(name, nxt, jitter)
            if nfire > now:
                break
            probe.append((nxt, nfire))
            nxt = sched.next_after(nxt)
        if len(probe) > 4 * MAX_GATHERED:
            span /= 2  # denser near now than where the walk was
            continue
        if len(probe) < MAX_GATHERED and span < now - last:
            span *= 2
            continue
        between = sched.count_between(last, start)
        due.more += len(due.occurrences) + (between or 0)
        due.more_exact = due.more_exact and between is not None
        due.occurrences[:] = [o for o, _ in probe]
        due.fire_times[:] = [f for _, f in probe]
        return nxt
