"""A node as a worker of the cluster: it reads the shared work stream up to its free
capacity, runs each item as its own runs (recorded in its own history first, so a
crash here is seen here), and reports them once they are on disk. While it works it
keeps its entries fresh; an entry that stays idle past the visibility timeout belongs
to a worker that stopped answering, and another node takes it over: the lost run is
recorded `interrupted` and run again when its job's retries allow.

Reports that Redis could not take wait here and go when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from core.cluster.tasks import stop_tasks
from core.cluster.workqueue import Taken, WorkQueue

log = logging.getLogger("fleetdeck.cluster")

STOP_WAIT = 10.0  # seconds a stopping node gives its runs to end and be reported
TAKE_AT_ONCE = 8  # entries per read at most
REPORTS_AT_ONCE = 64  # reports per round trip at most
TAIL_BYTES = 4096  # of a run's log, in its report (the full log stays on its node)


@dataclass
class _Open:
    taken: Taken
    waiting: set[int] = field(default_factory=set)  # run ids not yet ended
    runs: list[dict[str, Any]] = field(default_factory=list)  # reports of those ended


class ClusterWorker:
    def __init__(self, engine: Any, queue: WorkQueue, capacity: int, *,
                 visibility: float, block: float) -> None:
        self.engine = engine
        self.queue = queue
        self.capacity = capacity
        self.visibility = visibility
        self.block_ms = max(50, int(block * 1000))
        self._open: dict[str, _Open] = {}
        self._entry_of: dict[int, str] = {}  # run id -> its work entry
        self._outbox: list[tuple[str, str, list[dict[str, Any]]]] = []
        self._flush_lock = asyncio.Lock()
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.fanouts: Any = None  # core/cluster/fanwork.py, for a fan-out's batches
        # runs held beyond the capacity, recorded and waiting for a slot here: a slot
        # that frees starts one at once instead of waiting for a read and a commit
        self.prefetch = max(1, capacity // 2)
        self.taken_over = 0  # entries taken from workers that stopped answering

    @property
    def load(self) -> int:
        """Runs of the cluster's work here now (queued or running)."""
        return sum(len(o.waiting) for o in self._open.values()) + (
            self.fanouts.load if self.fanouts is not None else 0)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._take_loop())

    async def stop(self) -> None:
        """Take nothing more; end this node's runs of the shared work (cancelled: the
        node was stopped) and report them, so no other node takes them for a dead
        worker's. A fan-out's batch is left to the visibility timeout."""
        from core.jobs.ending import STOPPED_WHILE_RUNNING

        await stop_tasks(self._task)
        eng = self.engine
        acts = [a for o in self._open.values() for rid in o.waiting
                if (a := eng._active.get(rid)) is not None]
        for act in acts:
            eng._cancel(act, STOPPED_WHILE_RUNNING)
        if acts:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(a.wait_done() for a in acts)),
                                       STOP_WAIT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), STOP_WAIT)

    # taking work -------------------------------------------------------------------------
    async def _take_loop(self) -> None:
        from core.cluster.redisstore import describe_error, redis_errors
        from core.cluster.workqueue import no_group

        failures = 0
        lost = False  # a read failed: its answer (entries now ours) may be lost
        while True:
            free = self.capacity + self.prefetch - self.load
            if free <= 0 or self.engine._stopping:
                self._room.clear()
                try:
                    await asyncio.wait_for(self._room.wait(), 1.0)
                except TimeoutError:
                    pass
                continue
            try:
                if lost:  # what was delivered to this name and is not held here
                    held = self.held()
                    taken = [t for t in await self.queue.take(100, 0, again=True)
                             if t.entry not in held]
                    lost = False
                else:
                    # a few at a time: a burst spreads over the nodes waiting for work
                    # instead of going whole to the first that asks (each blocked
                    # reader is woken by one new entry, so one-by-one puts go round)
                    taken = await self.queue.take(min(free, TAKE_AT_ONCE), self.block_ms)
            except asyncio.CancelledError:
                raise
            except redis_errors() as e:
                failures += 1
                lost = True
                if failures == 1:
                    log.warning("taking work: %s", describe_error(e, self.engine.cluster.url))
                if no_group(e):  # Redis came back empty: the group is made again
                    with contextlib.suppress(*redis_errors()):
                        await self.queue.ensure_group()
                await asyncio.sleep(min(0.2 * 2 ** min(failures, 5), 5.0))
                continue
            except Exception:  # a bug must not end the taking for good
                log.exception("taking work")
                await asyncio.sleep(1.0)
                continue
            failures = 0
            for t in taken:
                self._begin(t)

    def held(self) -> set[str]:
        """The work entries this node holds: running, reporting, or a fan-out's batch."""
        return set(self._open) | {entry for entry, _job, _runs in self._outbox} | set(
            self.fanouts.entries() if self.fanouts is not None else ())

    def _begin(self, t: Taken) -> None:
        kind = t.item.get("kind")
        if kind == "fanout" and self.fanouts is not None:
            self.fanouts.begin(t)
            return
        if kind != "job":
            self._report(t.entry, "", [{"state": "failed", "node": self.queue.node,
                                        "reason": f"not a work item fleetdeck knows: "
                                                  f"{str(t.item)[:120]}"}])
            return
        try:
            acts, ended = self.engine.cluster_take(t.item, t.dead_worker, t.deliveries)
        except Exception as e:  # a bug must not leave the entry pending for ever
            log.exception("work item %s", t.entry)
            acts, ended = [], [{"job": t.item.get("job"), "state": "failed",
                                "node": self.queue.node, "reason": f"fleetdeck error: {e}"}]
        o = _Open(t, runs=list(ended))
        self._open[t.entry] = o
        for act in acts:
            o.waiting.add(act.run.id)
            self._entry_of[act.run.id] = t.entry
            act.on_finish = self._ended_soon
        if not o.waiting:  # reported once what was recorded of it is on disk
            self.engine.store.when_durable(lambda: self._close(t.entry))
            self.engine._dirty()

    def _ended_soon(self, act: Any) -> None:
        """A run of an item ended (not yet on disk): report it once it is."""
        self.engine.store.when_durable(lambda: self._ended(act))

    def _ended(self, act: Any) -> None:
        entry = self._entry_of.pop(act.run.id, None)
        o = self._open.get(entry) if entry is not None else None
        if o is None:
            return
        o.waiting.discard(act.run.id)
        o.runs.append(self.report_of(act.run))
        self._room.set()
        if not o.waiting:
            self._close(entry)

    def _close(self, entry: str) -> None:
        o = self._open.pop(entry, None)
        if o is None:
            return
        self._report(entry, str(o.taken.item.get("job") or ""), o.runs)

    def _report(self, entry: str, job: str, runs: list[dict[str, Any]]) -> None:
        self._outbox.append((entry, job, runs))
        asyncio.ensure_future(self.flush())  # at once, or by the flush under way

    def report_of(self, run: Any) -> dict[str, Any]:
        """A finished run as the results stream carries it: the record, where it ran,
        the tail of its log and where the whole log is."""
        from core.jobs.active import run_dict

        doc = run_dict(run)
        doc["node"] = self.queue.node
        path = self.engine.store.log_path(run.id)
        doc["log"] = f"{self.queue.node}:{path}"
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - TAIL_BYTES))
                doc["log_tail"] = f.read().decode("utf-8", "replace")
        except OSError:
            doc["log_tail"] = ""
        return doc

    async def flush(self) -> None:
        """Send the reports Redis has not taken yet (in order; stop at a failure). One
        flush at a time: two would send the same first report twice. The one under way
        sends what is added meanwhile (no await between its last look and its end)."""
        if self._flush_lock.locked():
            return
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        from core.cluster.redisstore import redis_errors

        while self._outbox:
            part = self._outbox[:REPORTS_AT_ONCE]
            try:
                mine = await self.queue.finish_many(part)
            except asyncio.CancelledError:
                raise
            except redis_errors():
                return  # the next heartbeat tries again
            del self._outbox[:len(part)]
            for (entry, _job, _runs), done in zip(part, mine, strict=True):
                if done == 0:
                    log.warning("work entry %s was taken over by another node before "
                                "its report; its runs are reported all the same", entry)

    # each heartbeat ----------------------------------------------------------------------
    async def maintain(self, *, take_over: bool = True) -> None:
        """Keep this node's entries fresh, take over a stopped worker's (when told: see
        ClusterService), send what waits."""
        held = self.held()
        await self.queue.touch(sorted(held))
        if self.fanouts is not None:
            await self.fanouts.check_cancels()
        free = self.capacity - self.load
        if free > 0 and take_over:
            for t in await self.queue.take_over(self.visibility, min(free, 100), held):
                self.taken_over += 1
                log.warning("took over work entry %s from %s, which stopped answering",
                            t.entry, t.dead_worker)
                self._begin(t)
        await self.flush()
