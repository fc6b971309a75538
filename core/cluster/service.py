"""The cluster as an engine service: join under this node's name, beat, take the
leader's lease when it is free and keep it while Redis answers, and tell the engine
when to schedule. Only the leader schedules; each due occurrence is claimed in Redis
under the leader's fencing token before it is dispatched, so a stale leader's claims
are refused and no occurrence runs twice across the cluster.

A leader that cannot renew stops scheduling before its lease can expire (it has not
renewed for lease - heartbeat), so two leaders never schedule at once. Redis gone, every
node retries with backoff and says so in `cluster status` and its notices.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from core.cluster.config import ClusterConfig
from core.cluster.redisstore import (
    ClusterError,
    Leadership,
    RedisStore,
    describe_error,
    redis_errors,
)
from core.cluster.tasks import stop_tasks
from core.cluster.workqueue import no_group

log = logging.getLogger("fleetdeck.cluster")

BACKOFF_CAP = 5.0  # seconds between two tries at most while Redis does not answer
CLAIM_TTL = 3600.0  # seconds a claim is kept at least (above any misfire grace)


class ClusterService:
    service_name = "cluster"

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.engine: Any = None
        self.client: Any = None
        self.store: RedisStore | None = None
        self.lead: Leadership | None = None
        self.renewed = 0.0  # monotonic time of the last renewal (or the lease's start)
        self.connected = False
        self.connected_at = 0.0  # monotonic time Redis last began to answer
        self.problem = ""  # the last Redis failure, for status and notices
        self._task: asyncio.Task[None] | None = None
        self._mirror_task: asyncio.Task[None] | None = None
        self.queue: Any = None  # core/cluster/workqueue.py
        self.worker: Any = None  # core/cluster/worker.py
        self.mirror: Any = None  # core/cluster/mirror.py
        self.fanouts: Any = None  # core/cluster/fanwork.py: this node's shared fan-outs
        self.members = 1  # nodes in the cluster's table at the last heartbeat

    @property
    def node(self) -> str:
        return self.config.node

    async def start(self, engine: Any) -> None:
        """Connect and join, or fail with one line (a wrong URL, password, a name in use)."""
        from redis.asyncio import from_url

        from core.jobs.active import EngineError
        from core.secrets import SecretError, resolve

        self.engine = engine
        try:
            url = resolve(self.config.redis, [])
        except SecretError as e:
            raise EngineError(f"[cluster] redis: {e}") from None
        self.url = url
        beat = self.config.heartbeat
        self.client = from_url(url, socket_timeout=max(beat, 0.5),
                               socket_connect_timeout=max(beat, 0.5))
        self.store = RedisStore(self.client, self.config.prefix, self.node)
        from core.cluster.fanwork import FanOutShare, FanOutWork
        from core.cluster.mirror import Mirror
        from core.cluster.worker import ClusterWorker
        from core.cluster.workqueue import WorkQueue

        self.queue = WorkQueue(self.client, self.config.prefix, self.node)
        # the blocking reads of the work stream on a connection of their own, whose
        # timeout is well past the wait (a read cut by it would lose its entries' start)
        self.queue.reader = from_url(url, socket_timeout=max(beat, 0.5) + 10.0,
                                     socket_connect_timeout=max(beat, 0.5))
        try:
            await self.client.ping()
            await self.store.join(self.config.lease)
            await self.queue.ensure_group()
        except ClusterError as e:
            await self._close()
            raise EngineError(str(e)) from None
        except redis_errors() as e:
            await self._close()
            raise EngineError(describe_error(e, url)) from None
        self.connected = True
        self.connected_at = time.monotonic()
        engine.cluster = self
        self.worker = ClusterWorker(engine, self.queue,
                                    self.config.capacity or engine.max_concurrent,
                                    visibility=self.config.visibility,
                                    block=max(beat, 0.5) * 0.6)
        self.mirror = Mirror(engine, self.queue)
        self.fanouts = FanOutShare(self.queue, lambda: self.members)
        self.worker.fanouts = FanOutWork(engine, self.queue, self.worker._room)
        try:
            await self.fanouts.start()
        except redis_errors() as e:
            await self._close()
            raise EngineError(describe_error(e, url)) from None
        self.worker.start()
        self._task = asyncio.ensure_future(self._loop())
        self._mirror_task = asyncio.ensure_future(self._mirror_loop())
        log.info("joined the cluster as %s", self.node)

    async def stop(self) -> None:
        if self.worker is not None:  # first, while the beats keep its entries fresh
            await self.worker.stop()
        await stop_tasks(self._task, self._mirror_task)
        if self.fanouts is not None:
            await self.fanouts.stop()
        if self.client is not None:
            try:
                if self.lead is not None and self.store is not None:
                    await self.store.resign(self.lead)
                if self.store is not None:
                    await self.store.leave()
            except redis_errors():
                pass
            await self._close()
        self.lead = None

    async def _close(self) -> None:
        for client in (self.client, getattr(self.queue, "reader", None)):
            if client is not None:
                await client.aclose()

    def reconfigure(self, config: Any) -> list[str]:
        return []  # [cluster] changes take a restart

    # the loop -------------------------------------------------------------------------
    async def _loop(self) -> None:
        failures = 0
        beat = self.config.heartbeat
        while True:
            self._check_lease()
            try:
                await self._beat()
            except asyncio.CancelledError:
                raise
            except redis_errors() as e:
                failures += 1
                self.problem = describe_error(e, self.url)
                if self.connected:
                    self.connected = False
                    log.warning("%s; retrying", self.problem)
                    self.engine._notice("error", f"cluster: {self.problem}; retrying")
                self._check_lease()
                # a beat or two missed is retried at once; then less and less often
                await asyncio.sleep(min(beat * 2 ** max(0, min(failures, 5) - 2),
                                        BACKOFF_CAP))
                continue
            except ClusterError as e:  # our name was taken while we were away
                self.problem = str(e)
                self._step_down(str(e))
                await asyncio.sleep(beat)
                continue
            except Exception:  # a bug must not end the beats: others would take our runs
                log.exception("the cluster's heartbeat")
                await asyncio.sleep(beat)
                continue
            if not self.connected:
                self.connected = True
                self.connected_at = time.monotonic()
                log.info("Redis answers again")
                self.engine._notice("info", "cluster: Redis answers again")
            try:
                # another worker's entries are taken over only once this node has
                # been connected for the visibility timeout and the longest backoff:
                # after an outage of Redis every worker's entries look idle until their
                # worker, retrying at its own pace, is back and touches them
                await self.worker.maintain(take_over=time.monotonic() - self.connected_at
                                           >= self.config.visibility + BACKOFF_CAP
                                           + self.config.heartbeat)
            except asyncio.CancelledError:
                raise
            except redis_errors() as e:
                if no_group(e):  # Redis came back without the work's group
                    await self.queue.ensure_group()
            failures = 0
            self.problem = ""
            await asyncio.sleep(beat)

    async def _mirror_loop(self) -> None:
        """Copy the other nodes' finished runs into this history, each heartbeat."""
        warned = False
        while True:
            try:
                await self.mirror.catch_up()
                warned = False
            except asyncio.CancelledError:
                raise
            except redis_errors() as e:
                if not warned:
                    log.warning("copying the cluster's history: %s",
                                describe_error(e, self.url))
                    warned = True
            except Exception:  # a bad entry must not stop the copying for good
                log.exception("copying the cluster's history")
            await asyncio.sleep(self.config.heartbeat)

    def _check_lease(self) -> None:
        """Stop scheduling before the lease can expire unrenewed: no split brain."""
        if self.lead is not None and \
                time.monotonic() - self.renewed > self.config.lease - self.config.heartbeat:
            self._step_down("the lease could not be renewed in time")

    async def _beat(self) -> None:
        assert self.store is not None
        eng = self.engine
        cfg = self.config
        capacity = cfg.capacity or eng.max_concurrent
        self.members = await self.store.heartbeat(cfg.lease, self.worker.load, capacity,
                                                  self.lead.term if self.lead else None)
        if self.lead is not None:
            started = time.monotonic()
            if await self.store.renew(self.lead, cfg.lease):
                self.renewed = started
            else:
                self._step_down("another node holds the lease")
            return
        started = time.monotonic()
        lead = await self.store.lead(cfg.lease)
        if lead is None:
            return
        self.lead, self.renewed = lead, started
        jobs = sorted(n for n, j in eng.config.jobs.items() if j.schedule)
        resume = await self.store.last_occurrences(jobs)
        log.warning("leader of the cluster (term %d)", lead.term)
        eng._notice("info", f"cluster: {self.node} leads (term {lead.term})")
        eng.cluster_lead(resume)

    def _step_down(self, why: str) -> None:
        if self.lead is None:
            return
        log.warning("no longer the leader (term %d): %s", self.lead.term, why)
        self.engine._notice("warning", f"cluster: {self.node} stops scheduling: {why}")
        self.lead = None
        self.engine.cluster_follow()

    # for the engine --------------------------------------------------------------------
    async def claim_work(self, occurrences: list[tuple[str, float, bool, str, dict[str, Any]]]
                         ) -> tuple[list[str] | None, str]:
        """Claim due occurrences under the current token and put those to run on the
        shared work stream (one script): a code for each (core/cluster/workqueue.py)
        and the claim as history keeps it; None when this node no longer leads."""
        lead = self.lead
        if lead is None or self.queue is None:
            return None, ""
        for _job, _occ, _run, _overlap, item in occurrences:
            if item:
                item["claim"] = lead.token
                item["origin"] = self.node
        try:
            got = await self.queue.claim_work(lead.token, CLAIM_TTL, occurrences)
        except redis_errors() as e:
            self.problem = describe_error(e, self.url)
            log.warning("claims failed: %s", self.problem)
            return None, ""
        if got is None:
            self._step_down("a newer leader holds the lease (claim refused)")
        return got, lead.token

    def shared_fanout(self) -> tuple[type, dict[str, Any]]:
        """The fan-out class, and its extra arguments, for one whose hosts the cluster's
        workers share (core/cluster/fanwork.py)."""
        from core.cluster.fanwork import SharedFanOut

        return SharedFanOut, {"share": self.fanouts}

    def status(self) -> dict[str, Any]:
        return {"node": self.node, "leader": self.lead is not None,
                "term": self.lead.term if self.lead else None,
                "connected": self.connected, "problem": self.problem}
