"""The engine's cluster half (a mixin over the Engine's state): lead (schedule, after
the cluster's last claims) or follow (schedule nothing), claim due occurrences before
they become runs, and the status bar's words for this node's part."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.events import RunFinished
from core.jobs.active import ActiveRun, run_dict
from core.jobs.config import Job
from core.jobs.runs import Run, RunState, Trigger
from core.jobs.scheduler import Due
from core.remote.inventory import TargetError

log = logging.getLogger("fleetdeck.engine")


class ClusterRole:
    """What the engine does as a member of a cluster (core/cluster/service.py)."""

    @property
    def mode_label(self) -> str | None:
        """The console's status bar: this node's part in its cluster (None: alone)."""
        c = self.cluster
        if c is None:
            return None
        if not c.connected:
            return f"cluster {c.node}: Redis unreachable, retrying"
        if c.lead is not None:
            return f"cluster {c.node}: leader (term {c.lead.term})"
        return f"cluster {c.node}: standby"

    def cluster_lead(self, resume: dict[str, float]) -> None:
        """This node leads the cluster: schedule, each job after the cluster's last
        claimed occurrence (the others' history is theirs)."""
        if not self._schedules_wanted or self._stopping:
            return
        self._cluster_after = dict(resume)
        if self._scheduler_task is None:
            self._schedule_all()
            self._scheduler_task = asyncio.create_task(self._scheduler.run())

    def cluster_follow(self) -> None:
        """Another node leads (or this one cannot renew): schedule nothing."""
        task, self._scheduler_task = self._scheduler_task, None
        if task is not None:
            task.cancel()
        for name in list(self.config.jobs):
            self._scheduler.remove_job(name)

    async def _claim_then_dispatch(self, batch: list[Due], now: float) -> None:
        """In a cluster: each due occurrence is claimed in Redis under the leader's
        token and, when it is to run, put on the shared work stream in the same script
        (core/cluster/workqueue.py); the misfire policy's skips, and the overlap policy's
        across the cluster, are recorded here, each with its claim."""
        plan: list[tuple[Job, Due, list[float]]] = []
        pairs: list[tuple[str, float, bool, str, dict[str, Any]]] = []
        for d in batch:
            job = self.config.jobs.get(d.job)
            if job is None:
                continue
            to_run, to_skip = self._apply_misfire(job, d, now)
            plan.append((job, d, to_skip))
            pairs += [(job.name, occ, True, job.overlap,
                       {"kind": "job", "job": job.name, "occ": occ, "trigger": t.value})
                      for occ, t in to_run]
            pairs += [(job.name, occ, False, job.overlap, {}) for occ in to_skip]
        if not pairs and not any(d.more for d in batch):
            return
        got, token = await self.cluster.claim_work(pairs)
        if got is None:
            log.warning("%d due occurrences not dispatched: not the leader", len(pairs))
            return
        code = {(job, occ): c for (job, occ, *_), c in zip(pairs, got, strict=True)}
        self._claiming = token
        try:
            claims: dict[str, float] = {}
            for job, d, to_skip in plan:
                mine = [o for o in to_skip if code.get((job.name, o)) == "k"]
                self._record_skips(job, mine, d)
                for occ in d.occurrences:
                    c = code.get((job.name, occ))
                    if c == "s":
                        self._record_skipped(job, occ, "an earlier run of it is still "
                                             "active in the cluster (overlap=skip)")
                    if c not in (None, "-"):
                        claims[job.name] = max(claims.get(job.name, occ), occ)
            self.store.claim_occurrences(claims)
        finally:
            self._claiming = None
        await self._commit_now()

    def cluster_take(self, item: dict[str, Any], dead_worker: str | None,
                     deliveries: int) -> tuple[list[ActiveRun], list[dict[str, Any]]]:
        """A work item this node took: its runs, recorded and queued here (each keeps
        the occurrence's claim), and the reports of runs that ended at once. Taken over
        from a worker that stopped answering, the lost run is recorded `interrupted`
        and the occurrence runs again only while the job's retries allow."""
        name, occ = str(item.get("job")), item.get("occ")
        occ = float(occ) if isinstance(occ, int | float) else None
        try:
            trigger = Trigger(item.get("trigger", "schedule"))
        except ValueError:
            trigger = Trigger.SCHEDULE
        job = self.config.jobs.get(name)
        ended: list[Run] = []
        self._claiming = item.get("claim") if isinstance(item.get("claim"), str) else None
        try:
            if job is None:
                ended.append(self._record_ended(
                    name, occ, trigger, RunState.FAILED,
                    f"job {name!r} is not in node {self.cluster.node}'s config"))
            elif dead_worker is not None:
                again = deliveries <= job.retry.retries
                ended.append(self._record_ended(
                    name, occ, trigger, RunState.INTERRUPTED,
                    f"worker {dead_worker} stopped answering while it had this run "
                    f"(delivery {deliveries}); " + (
                        f"run again on {self.cluster.node} (retries={job.retry.retries})"
                        if again else f"not run again (retries={job.retry.retries})")))
                if not again:
                    job = None
            acts: list[ActiveRun] = []
            if job is not None:
                try:
                    hosts = self._targets(job.targets)
                except TargetError as e:
                    hosts = ()
                    ended.append(self._record_ended(name, occ, trigger, RunState.FAILED,
                                                    str(e)))
                batch: list[tuple[Run, dict[str, Any]]] = []
                made = [self._create_run(job, h, trigger, occ, None, batch) for h in hosts]
                self._rollouts.plan([a for r in made if (a := self._active.get(r.id))],
                                    job.rollout)
                self._record_batch(batch, {job.name: occ} if occ is not None else {})
                acts = [a for r in made if (a := self._active.get(r.id)) is not None]
                ended += [r for r in made if r.id not in self._active]
        finally:
            self._claiming = None
        self._spawn(self._commit_soon(0))
        return acts, [self.cluster.worker.report_of(r) for r in ended]

    def _record_ended(self, job: str, occ: float | None, trigger: Trigger,
                      state: RunState, reason: str) -> Run:
        now = self.clock()
        run = Run(id=self.store.next_run_id(), job=job, host="local", command="",
                  trigger=trigger.value, occurrence=occ, state=state.value, reason=reason,
                  queued_at=now, finished_at=now, claim=self._claiming,
                  node=self.cluster.node)
        self.store.add_run(run)
        self._announce(RunFinished(run_dict(run)))
        return run
