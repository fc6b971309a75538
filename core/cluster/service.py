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
from core.cluster.redisstore import ClusterError, Leadership, RedisStore

log = logging.getLogger("fleetdeck.cluster")

CLAIM_TTL = 3600.0  # seconds a claim is kept at least (above any misfire grace)


def redis_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions

    return (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)


def describe_error(e: BaseException, url: str) -> str:
    """A Redis failure in a few words, the URL without its password."""
    from urllib.parse import urlsplit

    import redis.exceptions

    where = _safe_url(url)
    auth = isinstance(e, redis.exceptions.AuthenticationError
                      | redis.exceptions.AuthorizationError) or (
        isinstance(e, redis.exceptions.ResponseError) and "NOAUTH" in str(e))
    if auth and not urlsplit(url).password:
        return f"Redis at {where} wants a password (redis://:PASSWORD@HOST:PORT/DB)"
    if auth:
        return f"Redis at {where} refused the password"
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return f"cannot reach Redis at {where}: {text}"


def _safe_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


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
        self.problem = ""  # the last Redis failure, for status and notices
        self._task: asyncio.Task[None] | None = None

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
        try:
            await self.client.ping()
            await self.store.join(self.config.lease)
        except ClusterError as e:
            await self.client.aclose()
            raise EngineError(str(e)) from None
        except redis_errors() as e:
            await self.client.aclose()
            raise EngineError(describe_error(e, url)) from None
        self.connected = True
        engine.cluster = self
        self._task = asyncio.ensure_future(self._loop())
        log.info("joined the cluster as %s", self.node)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self.client is not None:
            try:
                if self.lead is not None and self.store is not None:
                    await self.store.resign(self.lead)
                if self.store is not None:
                    await self.store.leave()
            except redis_errors():
                pass
            await self.client.aclose()
        self.lead = None

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
                await asyncio.sleep(min(beat * 2 ** min(failures, 4), 5.0))
                continue
            except ClusterError as e:  # our name was taken while we were away
                self.problem = str(e)
                self._step_down(str(e))
                await asyncio.sleep(beat)
                continue
            if not self.connected:
                self.connected = True
                log.info("Redis answers again")
                self.engine._notice("info", "cluster: Redis answers again")
            failures = 0
            self.problem = ""
            await asyncio.sleep(beat)

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
        await self.store.heartbeat(cfg.lease, eng._running, capacity,
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
    async def claim(self, due: list[tuple[str, float]]) -> tuple[list[bool] | None, str]:
        """Claim due occurrences under the current token: which are ours, and the claim
        as history keeps it ("NODE TERM"); None when this node no longer leads."""
        lead = self.lead
        if lead is None or self.store is None:
            return None, ""
        try:
            got = await self.store.claim(lead, due, CLAIM_TTL)
        except redis_errors() as e:
            self.problem = describe_error(e, self.url)
            log.warning("claims failed: %s", self.problem)
            return None, ""
        if got is None:
            self._step_down("a newer leader holds the lease (claim refused)")
        return got, lead.token

    def status(self) -> dict[str, Any]:
        return {"node": self.node, "leader": self.lead is not None,
                "term": self.lead.term if self.lead else None,
                "connected": self.connected, "problem": self.problem}
