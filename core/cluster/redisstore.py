"""What a node asks of Redis, each one round trip (a Lua script where it must be atomic):
join under a unique name, heartbeat, take or renew the leader's lease (a fencing token
that grows with every term), and the cluster's view for `cluster status`.

Keys, under the prefix (`fleetdeck`):
  leader            "NODE TERM" with the lease's expiry (SET NX PX)
  term              the last term handed out (INCR)
  node:NAME         the instance holding the name, expiring (SET NX PX)
  nodes             hash NAME -> JSON {pid, running, capacity, heartbeat, host}
  claim:JOB:OCC     "NODE TERM" of the run of that occurrence (SET NX PX), set with
                    the work it makes (core/cluster/workqueue.py)
  last:JOB          the newest occurrence claimed (a new leader resumes after it)
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from core.cluster.config import safe_url

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1
end
return 0
"""

_JOIN = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'ok'
"""


def redis_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions

    return (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)


def describe_error(e: BaseException, url: str) -> str:
    """A Redis failure in a few words, the URL without its password."""
    from urllib.parse import urlsplit

    import redis.exceptions

    where = safe_url(url)
    auth = isinstance(e, redis.exceptions.AuthenticationError
                      | redis.exceptions.AuthorizationError) or (
        isinstance(e, redis.exceptions.ResponseError) and "NOAUTH" in str(e))
    if auth and not urlsplit(url).password:
        return f"Redis at {where} wants a password (redis://:PASSWORD@HOST:PORT/DB)"
    if auth:
        return f"Redis at {where} refused the password"
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return f"cannot reach Redis at {where}: {text}"


class ClusterError(Exception):
    """A cluster request that cannot be done; one line for a person."""


@dataclass
class Leadership:
    term: int
    token: str  # "NODE TERM": what the leader key holds while this node leads


class RedisStore:
    def __init__(self, client: Any, prefix: str, node: str) -> None:
        self.r = client
        self.p = prefix.rstrip(":") + ":"
        self.node = node
        self.instance = f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"
        self._renew = client.register_script(_RENEW)
        self._join = client.register_script(_JOIN)

    def key(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    # membership -----------------------------------------------------------------------
    async def join(self, ttl: float) -> None:
        """Hold this node's name (refused while another instance holds it)."""
        got = await self._join(keys=[self.key("node", self.node)],
                               args=[self.instance, int(ttl * 1000)])
        if got not in (b"ok", "ok"):
            held = got.decode() if isinstance(got, bytes) else str(got)
            raise ClusterError(f"node {self.node!r} is already in the cluster ({held}); "
                               "give this one another [cluster] node")

    async def heartbeat(self, ttl: float, running: int, capacity: int,
                        leader_term: int | None) -> int:
        """Renew this node's name and row: the number of nodes in the cluster's table."""
        info = {"node": self.node, "pid": os.getpid(), "host": socket.gethostname(),
                "running": running, "capacity": capacity, "heartbeat": time.time(),
                "leader_term": leader_term}
        pipe = self.r.pipeline(transaction=False)
        pipe.set(self.key("node", self.node), self.instance, px=int(ttl * 1000), xx=True)
        pipe.hset(self.key("nodes"), self.node, json.dumps(info))
        pipe.hlen(self.key("nodes"))
        held, _, members = await pipe.execute()
        if not held:  # the name expired (a long pause): take it again, or refuse
            await self.join(ttl)
        return int(members)

    async def leave(self) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.hdel(self.key("nodes"), self.node)
        pipe.delete(self.key("node", self.node))
        await pipe.execute()

    # the lease ------------------------------------------------------------------------
    async def lead(self, ttl: float) -> Leadership | None:
        """Take the lease if it is free: a new term and its token, or None."""
        if await self.r.exists(self.key("leader")):
            return None
        term = int(await self.r.incr(self.key("term")))
        token = f"{self.node} {term}"
        ok = await self.r.set(self.key("leader"), token, nx=True, px=int(ttl * 1000))
        return Leadership(term, token) if ok else None

    async def renew(self, lead: Leadership, ttl: float) -> bool:
        return bool(await self._renew(keys=[self.key("leader")],
                                      args=[lead.token, int(ttl * 1000)]))

    async def resign(self, lead: Leadership) -> None:
        await self.r.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                          "return redis.call('DEL', KEYS[1]) end return 0", 1,
                          self.key("leader"), lead.token)

    # occurrences ----------------------------------------------------------------------
    async def last_occurrences(self, jobs: list[str]) -> dict[str, float]:
        if not jobs:
            return {}
        values = await self.r.mget([self.key("last", j) for j in jobs])
        return {j: float(v) for j, v in zip(jobs, values, strict=True) if v is not None}

    # the view ------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        pipe = self.r.pipeline(transaction=False)
        pipe.get(self.key("leader"))
        pipe.get(self.key("term"))
        pipe.hgetall(self.key("nodes"))
        leader, term, nodes = await pipe.execute()
        leader = leader.decode() if isinstance(leader, bytes) else leader
        rows = []
        for _name, raw in sorted((nodes or {}).items()):
            info = json.loads(raw)
            rows.append(info)
        return {"leader": leader.split(" ")[0] if leader else None,
                "term": int(leader.split(" ")[1]) if leader else (int(term) if term else 0),
                "nodes": rows}


async def read_status(cfg: Any) -> dict[str, Any]:
    """The cluster as Redis has it, for `cluster status` and the console (no daemon
    needed); ClusterError, one line, when Redis cannot be read."""
    from redis.asyncio import from_url

    from core.secrets import SecretError, resolve

    try:
        url = resolve(cfg.redis, [])
    except SecretError as e:
        raise ClusterError(f"[cluster] redis: {e}") from None
    client = from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return await RedisStore(client, cfg.prefix, cfg.node).status()
    except redis_errors() as e:
        raise ClusterError(describe_error(e, url)) from None
    finally:
        await client.aclose()
