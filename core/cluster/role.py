"""The engine's cluster half (a mixin over the Engine's state): lead (schedule, after
the cluster's last claims) or follow (schedule nothing), claim due occurrences before
they become runs, and the status bar's words for this node's part."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from core.jobs.scheduler import Due

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
        """In a cluster: claim the due occurrences in Redis under the leader's token,
        then make runs of those claimed only (each run keeps its claim)."""
        pairs = [(d.job, occ) for d in batch for occ in d.occurrences]
        got, token = await self.cluster.claim(pairs)
        if got is None:
            log.warning("%d due occurrences not dispatched: not the leader", len(pairs))
            return
        ours = iter(got)
        kept = []
        for d in batch:
            keep = [next(ours) for _ in d.occurrences]
            occ = [o for o, k in zip(d.occurrences, keep, strict=True) if k]
            if occ or d.more:
                fires = [f for f, k in zip(d.fire_times, keep, strict=True) if k]
                kept.append(dataclasses.replace(d, occurrences=occ, fire_times=fires))
        self._claiming = token
        try:
            self._dispatch([d for d in kept if d.occurrences], now)
        finally:
            self._claiming = None
        await self._commit_now()
