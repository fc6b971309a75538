"""Dispatch: due occurrences become runs (or recorded skips), runs wait in the queue
behind their overlap policy and the free slots, and finished runs leave it. Group
commit lives here too: what a run needs on disk before it starts is committed first."""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import os
from typing import Any

from core.events import (
    Event,
    JobChanged,
    RunFinished,
    RunQueued,
)
from core.jobs.active import ActiveRun, EngineError, run_dict
from core.jobs.config import Job
from core.jobs.runs import Run, RunState, Trigger, worst_state
from core.jobs.scheduler import Due, gc_paused
from core.remote.inventory import TargetError
from core.store.docs import plain_copy
from core.store.store import SUMMARY_INTERVAL

log = logging.getLogger("fleetdeck.engine")

SUCCESS_WINDOW = 20  # recent results kept per job for its success rate
MAX_SKIPPED_RECORDS = 100  # skipped occurrences recorded one by one; beyond, one summary

_QUEUED = RunState.QUEUED.value
COMMIT_DELAY = 0.02  # seconds: changes made within it share one commit
WRITE_RETRY = 5.0  # seconds between tries to write state the disk refused (full, read-only)
DISPATCH_PART = 256  # due occurrences made into runs per commit while a burst is made


class Dispatch:
    """The queue half of the Engine (a mixin: the state is made in Engine.__init__)."""

    # durability: changes are batched into one atomic commit (group commit) -------------
    def _dirty(self) -> None:
        """A change to make durable soon. One task at a time does it, and it goes on
        while there are changes: one made while it was writing (a run that started as
        the commit of its queueing went out) would otherwise wait for the next change,
        which may never come -- a run was seen `queued` on disk while it ran."""
        if self._commit_task is None or self._commit_task.done():
            self._commit_task = self._spawn(self._commit_soon(until_clean=True))

    async def _commit_soon(self, delay: float = COMMIT_DELAY, *,
                           until_clean: bool = False) -> None:
        # Changes of the next COMMIT_DELAY share one write: a busy engine rewrites its
        # head segment ~50 times a second, not once per run. What waits for the disk
        # (new runs, before they may start) commits at once (delay 0): a commit already
        # writing is joined, and the changes made meanwhile go in the next one.
        assert self.store is not None
        while True:
            if delay:
                await asyncio.sleep(delay)
            try:
                await self.store.commit_async()
            except OSError as e:
                self._unwritable(e)
                if not until_clean:  # one loop tries again (_dirty's), not one per caller
                    self._dirty()
                    return
                delay = WRITE_RETRY  # the changes wait in memory; nothing is dropped
                continue
            except Exception:
                log.exception("writing state failed")
                return
            if self.write_error is not None:
                log.warning("the state is written again (%s before)", self.write_error)
                self._notice("info", "the state is written again")
                self.write_error = None
            if not (until_clean and self.store.dirty):
                return
            delay = COMMIT_DELAY

    def _unwritable(self, e: OSError) -> None:
        """The disk refused the state: said once, in one line; tried again every
        WRITE_RETRY; and whoever waits for a run's end on disk hears of it (a CLI
        `run` would otherwise wait for ever on a full disk)."""
        what = (e.strerror or str(e)).lower()
        message = f"cannot write the state: {e.filename}: {what}" if e.filename \
            else f"cannot write the state: {what}"
        if message != self.write_error:
            log.error("%s; trying again every %gs (nothing is lost while fleetdeck runs)",
                      message, WRITE_RETRY)
            self._notice("error", message)
        self.write_error = message
        failed, self._write_failed = self._write_failed, None
        if failed is not None and not failed.done():
            failed.set_result(message)

    async def _until_on_disk(self, waiting: Any, ended: Any) -> None:
        """Wait for `waiting` (a run's end on disk); an EngineError once `ended()` names
        an ended run and the disk refuses to take it (its record is in memory only: a
        daemon keeps trying)."""
        done = asyncio.ensure_future(waiting)
        try:
            while not done.done():
                if self.write_error and (what := ended()):
                    raise EngineError(f"{what}, but {self.write_error}")
                if self._write_failed is None:
                    self._write_failed = asyncio.get_running_loop().create_future()
                await asyncio.wait({done, self._write_failed},
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()

    async def _commit_now(self) -> None:
        assert self.store is not None
        await self.store.commit_async()

    def _announce(self, event: Event) -> None:
        """Publish ``event`` once what it tells is on disk (the next group commit): the
        console, the daemon's output and socket clients never hear of a run a crash
        then loses. Call it after the change it tells of."""
        assert self.store is not None
        self.store.when_durable(functools.partial(self.bus.publish, event))
        self._dirty()

    # scheduling ----------------------------------------------------------------------
    def _on_due(self, batch: list[Due], now: float) -> None:
        if self.cluster is not None:  # claimed in Redis first (core/cluster/)
            self._spawn(self._claim_then_dispatch(batch, now))
            return
        self._on_due_here(batch, now)

    def _on_due_here(self, batch: list[Due], now: float) -> None:
        """Due occurrences become runs (or recorded skips), a part at a time: each part's
        commit starts as soon as it is recorded and its runs join the queue once it is
        durable, while the next part is made (a pipeline) -- ten thousand due jobs do
        not wait for one commit of them all, nor for the last one to be made."""
        if not self._due and len(batch) <= DISPATCH_PART:
            self._dispatch(batch, now)  # the usual tick (the scheduler paused the GC)
            self._spawn(self._commit_soon(0))
            return
        self._due.append((batch, now))
        if self._due_task is None or self._due_task.done():
            self._due_task = self._spawn(self._dispatch_parts())

    async def _dispatch_parts(self) -> None:
        while self._due:
            batch, now = self._due.popleft()
            for i in range(0, len(batch), DISPATCH_PART):
                with gc_paused():
                    self._dispatch(batch[i:i + DISPATCH_PART], now)
                self._spawn(self._commit_soon(0))
                await asyncio.sleep(0)  # the commit takes this part; spawns go on

    def _dispatch(self, batch: list[Due], now: float) -> bool:
        assert self.store is not None
        created = False
        claims: dict[str, float] = {}
        runs: list[tuple[Run, dict[str, Any]]] = []
        for due in batch:
            job = self.config.jobs.get(due.job)
            if job is None:
                continue
            to_run, to_skip = self._apply_misfire(job, due, now)
            claims[job.name] = due.occurrences[-1]
            if to_skip or due.more:
                self._record_batch(runs, claims)  # skips take ids: keep records in id order
                runs, claims = [], {}
                self._record_skips(job, to_skip, due)
            backlog: set[int] = set()  # this hand-over's runs: in turn, not overlaps
            for occ, trigger in to_run:
                try:
                    hosts = self._targets(job.targets)
                except TargetError as e:
                    self._notice("error", f"job {job.name}: {e}", job.name)
                    continue
                made = [self._create_run(job, host, trigger, occ, None, runs,
                                         backlog=backlog) for host in hosts]
                backlog.update(r.id for r in made if r.state == _QUEUED)
                self._rollouts.plan([a for r in made if (a := self._active.get(r.id))],
                                    job.rollout)
                created = created or bool(made)
        self._record_batch(runs, claims)
        return created

    def _apply_misfire(
        self, job: Job, due: Due, now: float
    ) -> tuple[list[tuple[float, Trigger]], list[float]]:
        if len(due.occurrences) == 1 and now - due.fire_times[0] <= job.misfire_grace:
            return [(due.occurrences[0], Trigger.SCHEDULE)], []  # the usual case: on time
        ontime = [o for o, f in zip(due.occurrences, due.fire_times, strict=True)
                  if now - f <= job.misfire_grace]
        late = [o for o, f in zip(due.occurrences, due.fire_times, strict=True)
                if now - f > job.misfire_grace]
        if not late:
            return [(o, Trigger.SCHEDULE) for o in ontime], []
        policy = job.misfire
        if policy == "run_all":
            caught_up = [(o, Trigger.MISFIRE) for o in late]
            return caught_up + [(o, Trigger.SCHEDULE) for o in ontime], []
        if policy == "run_once" and not ontime:
            return [(late[-1], Trigger.MISFIRE)], late[:-1]
        return [(o, Trigger.SCHEDULE) for o in ontime], late

    def _record_skips(self, job: Job, skipped: list[float], due: Due) -> None:
        if not skipped and not due.more:
            return
        assert self.store is not None
        shown = skipped[-MAX_SKIPPED_RECORDS:]
        hidden = len(skipped) - len(shown) + due.more
        reason = f"missed while fleetdeck was down or busy (misfire={job.misfire})"
        for occ in shown:
            self._record_skipped(job, occ, reason, trigger=Trigger.MISFIRE)
        bound = "" if due.more_exact else "at least "  # leapt over, not counted
        if hidden:
            self._notice("warning", f"job {job.name}: {bound}{hidden:,} more missed occurrences "
                         "skipped", job.name)
            log.warning("job %s: %s%d more missed occurrences skipped", job.name, bound, hidden,
                        extra={"job": job.name})
        log.warning("job %s: %s%d occurrences missed, skipped (misfire=%s)", job.name, bound,
                    len(skipped) + due.more, job.misfire, extra={"job": job.name})

    def _record_skipped(self, job: Job, occ: float | None, reason: str,
                        host: str = "local", trigger: Trigger = Trigger.SCHEDULE) -> Run:
        """A skipped occurrence, recorded; one the misfire policy dropped has the trigger
        `misfire` (as one it ran late), so the missed-run review finds both at once."""
        assert self.store is not None
        now = self.clock()
        run = Run(
            id=self.store.next_run_id(), job=job.name, host=host, command=job.command,
            trigger=trigger.value, occurrence=occ, state=RunState.SKIPPED.value,
            reason=reason, queued_at=now, finished_at=now, engine_pid=os.getpid(),
            claim=self._claiming, node=self.cluster.node if self.cluster else None,
        )
        self.store.add_run(run)
        self._note_result(run)
        self._announce(RunFinished(run_dict(run)))
        self._job_changed(job.name)
        return run

    # runs ----------------------------------------------------------------------------
    def _create_run(self, job: Job, host: str, trigger: Trigger, occ: float | None,
                    who: str | None, batch: list[tuple[Run, dict[str, Any]]] | None = None,
                    queued_at: float | None = None,
                    workflow: dict[str, Any] | None = None,
                    backlog: set[int] | frozenset[int] = frozenset()) -> Run:
        """A new run of `job` on `host`, queued behind what its overlap policy says.
        Runs in `backlog` (occurrences handed over with this one: run_all's catch-up)
        are no overlap to skip or replace: it runs after them.

        With ``batch`` the run is queued at once but recorded in the store later, with
        the rest of the batch (``_record_batch``), in the same loop turn. Either way it
        is announced (RunQueued) once its record is durable.
        """
        assert self.store is not None
        policy = job.overlap
        same = [] if policy == "allow" else [
            a for a in self._active_by_job.get(job.name, {}).values() if a.run.host == host]
        earlier = [a for a in same if a.run.id not in backlog]
        if policy == "skip" and earlier and trigger != Trigger.MANUAL:
            ids = ", ".join(f"#{a.run.id}" for a in earlier)
            return self._record_skipped(job, occ, f"run {ids} still active (overlap=skip)", host)
        run = Run(
            id=self.store.next_run_id(), job=job.name, host=host, command=job.command,
            trigger=trigger.value, occurrence=occ, state=_QUEUED,
            queued_at=self.clock() if queued_at is None else queued_at,
            max_attempts=1 + job.retry.retries,
            engine_pid=self._pid, requested_by=who, parent=job.parent, step=job.step,
            claim=self._claiming if trigger != Trigger.MANUAL else None,
            node=self.cluster.node if self.cluster is not None else None,
            workflow=workflow if workflow is not None else self._new_workflow(job, host),
        )
        act = ActiveRun(run, job)
        if policy == "replace":
            for other in earlier:
                self._cancel(other, f"replaced by run #{run.id} (overlap=replace)")
        if same:  # skip: a person's run-now waits its turn
            act.after = {a.run.id for a in same}
        self._active[run.id] = act
        self._active_by_job.setdefault(job.name, {})[run.id] = act
        if batch is None:
            self._queued_when_durable(act, self.store.add_run(run))  # add_run: its record
        else:  # run_doc(run) without its checks: every field was just set from plain data
            doc = vars(run).copy()
            doc["attempts"] = []
            if run.workflow is not None:
                doc["workflow"] = plain_copy(run.workflow)
            batch.append((run, doc))
        return run

    def _record_batch(self, batch: list[tuple[Run, dict[str, Any]]],
                      claims: dict[str, float]) -> None:
        assert self.store is not None
        self.store.claim_occurrences(claims)
        records = [dict(doc, attempts=[]) for _, doc in batch]  # the events' own copies
        self.store.add_runs([run for run, _ in batch], [doc for _, doc in batch])
        for (run, _doc), record in zip(batch, records, strict=True):
            self._queued_when_durable(self._active.get(run.id), record)

    def _queued_when_durable(self, act: ActiveRun | None, record: dict[str, Any]) -> None:
        """Once the new run's record is on disk: announce it, then let it be started
        (unless it already left: cancelled or replaced in the same turn)."""
        assert self.store is not None
        self._announce(RunQueued(record))
        if act is not None:
            self.store.when_durable(functools.partial(self._admit, act))

    def _admit(self, act: ActiveRun) -> None:
        """A run whose record is durable joins the queue: nothing starts before its
        record (and its occurrence's claim) is on disk. One pump for all admitted."""
        if self._active.get(act.run.id) is not act or act.run.state != _QUEUED:
            return  # cancelled (or replaced) meanwhile
        self._queue(act)
        if not self._pump_soon:
            self._pump_soon = True
            asyncio.get_running_loop().call_soon(self._pump_admitted)

    def _pump_admitted(self) -> None:
        self._pump_soon = False
        self._pump()

    def _pump(self) -> None:
        """Start queued runs while there are free slots and nothing they wait for.

        The queue, oldest (lowest id) first, is kept in two parts so that a pump costs
        what changed, not the length of the queue: runs waiting for other runs
        (``_blocked``, looked at again only when one of those leaves), and runs free
        to start (``_ready``, a heap by id), started while slots are free; the rest
        show the free-slot reason, rewritten for all only when that text changes.
        Runs whose reason changed are announced (RunQueued) oldest first.
        """
        if self._stopping:
            return
        changed: list[ActiveRun] = []
        if self._recheck:
            for run_id in sorted(self._recheck):
                act = self._blocked.get(run_id)
                if act is None:
                    continue
                act.after = {r for r in act.after
                             if r in self._active or r in self._rollouts.holds}
                if act.after:
                    self._block(act)
                    reason = self._after_reason(act)
                    if act.run.reason != reason:
                        act.run.reason = reason
                        changed.append(act)
                else:
                    del self._blocked[run_id]
                    heapq.heappush(self._ready, run_id)
                    self._ready_new.append(run_id)
            self._recheck.clear()
        ready = self._ready
        while ready and self._running < self.max_concurrent:
            act = self._active.get(heapq.heappop(ready))
            if act is None or act.run.state != RunState.QUEUED:
                continue
            self._running += 1
            act.task = asyncio.ensure_future(self._execute(act))
        if ready:
            reason = f"waiting for a free slot ({self._running}/{self.max_concurrent} running)"
            if reason != self._slot_reason:  # every waiting run shows the new count
                self._slot_reason = reason
                self._ready_new = list(ready)
            for run_id in self._ready_new:
                act = self._active.get(run_id)
                if act is None or act.run.state != RunState.QUEUED or act.task is not None:
                    continue
                if act.run.reason != reason:
                    act.run.reason = reason
                    changed.append(act)
        self._ready_new = []
        if len(ready) > 64 and len(ready) > 2 * len(self._active):  # drop finished ones
            self._ready = [i for i in ready if i in self._active]
            heapq.heapify(self._ready)
        if changed:
            changed.sort(key=lambda a: a.run.id)
        for act in changed[:200]:  # reasons are for display; don't flood on a huge queue
            self.bus.publish(RunQueued(run_dict(act.run)))

    def _queue(self, act: ActiveRun) -> None:
        """A new run joins the queue: blocked behind the runs in ``act.after``, or ready."""
        if act.after:
            self._blocked[act.run.id] = act
            self._block(act)
            self._recheck.add(act.run.id)
        else:
            heapq.heappush(self._ready, act.run.id)
            self._ready_new.append(act.run.id)

    def _block(self, act: ActiveRun) -> None:
        for r in act.after:  # one already gone is pruned at the recheck
            if r in self._active or r in self._rollouts.holds:
                self._waiting_on.setdefault(r, set()).add(act.run.id)

    def _after_reason(self, act: ActiveRun) -> str:
        if act.job is not None and act.job.parent is not None and act.run.reason:
            return act.run.reason  # a workflow step's: its workflow says what it waits for
        rolling = self._rollouts.reason(act)
        if rolling is not None:
            return rolling
        reason = "waiting for run " + ", ".join(f"#{r}" for r in sorted(act.after))
        return reason + f" (overlap={act.job.overlap if act.job else 'queue'})"

    def _cancel(self, act: ActiveRun, reason: str) -> None:
        if act.run.state == RunState.QUEUED:
            if act.waiting_retry:
                act.waiting_retry.cancel()
            if act.task is None:
                self._finish(act, RunState.CANCELLED, reason)
                self._pump()
                return
        act.cancel_reason = reason
        if act.process is not None:
            act.process.cancel()

    def _finish(self, act: ActiveRun, state: RunState, reason: str) -> None:
        assert self.store is not None
        run = act.run
        run.state = state.value
        run.reason = reason
        run.finished_at = self.clock()
        self.store.save_run(run)
        if run.parent is None or run.job in self.config.jobs:  # a step of its own: no job
            self._note_result(run)
        self._active.pop(run.id, None)
        self._blocked.pop(run.id, None)
        self._recheck.update(self._waiting_on.pop(run.id, ()))
        of_job = self._active_by_job.get(run.job)
        if of_job is not None:
            of_job.pop(run.id, None)
            if not of_job:
                del self._active_by_job[run.job]
        self._announce(RunFinished(run_dict(run)))
        self.store.when_durable(act.set_done)  # `run --wait` says so once it is on disk
        if act.on_finish is not None:  # a workflow step's run: its workflow goes on
            act.on_finish(act)
        self._chain(act)  # after / after_failure (core/jobs/chains.py)
        self._job_changed(run.job)
        for run_id, why in self._rollouts.finished(act):  # max_fail: the rest never start
            other = self._active.get(run_id)
            if other is not None and other.task is None and other.run.state == _QUEUED:
                self._finish(other, RunState.SKIPPED, why)
        while self._rollouts.dropped:
            self._waiting_on.pop(self._rollouts.dropped.pop(), None)

    def _lift_hold(self, hold: int) -> None:
        """A pause between a rollout's batches is over: the next batch may start."""
        self._recheck.update(self._waiting_on.pop(hold, ()))
        self._pump()

    def _job_changed(self, name: str) -> None:
        """Announce a job's new summary once its latest change is durable: a burst of
        its runs in one commit is one JobChanged, not one per run."""
        assert self.store is not None
        self._changed_jobs[name] = self._changed_jobs.get(name, 0) + 1
        self.store.when_durable(functools.partial(self._announce_job, name))

    def _announce_job(self, name: str) -> None:
        left = self._changed_jobs.get(name, 1) - 1
        if left > 0:  # a later change of it is not on disk yet: that one announces
            self._changed_jobs[name] = left
            return
        self._changed_jobs.pop(name, None)
        job = self.config.jobs.get(name)
        if job is not None:
            self.bus.publish(JobChanged(self._job_info(job)))

    def _note_result(self, run: Run) -> None:
        assert self.store is not None
        state = self.store.job_state_view(run.job)
        recent = (state.get("recent") or [])[-(SUCCESS_WINDOW - 1):] + [run.state]
        # one occurrence on several hosts is one result: its hosts' states, the worst
        # of them as the job's last state (a run on one host failing is the news)
        batch = run.occurrence if run.occurrence is not None else run.queued_at
        last = state.get("last_run") or {}
        hosts = dict(last.get("hosts") or {}) if last.get("batch") == batch else {}
        hosts[run.host] = run.state
        self.store.update_job_summary(
            run.job,
            recent=recent,
            last_run={"id": run.id, "state": worst_state(hosts.values()),
                      "finished_at": run.finished_at, "exit_code": run.exit_code,
                      "host": run.host, "batch": batch, "hosts": hosts},
        )
        if self._started and not self._stopping and not self._summary_timer:
            # the summary reaches the disk soon, with one timer for any number of runs
            self._summary_timer = True
            asyncio.get_running_loop().call_later(SUMMARY_INTERVAL + 0.1, self._summary_due)

    def _summary_due(self) -> None:
        self._summary_timer = False
        self._dirty()

