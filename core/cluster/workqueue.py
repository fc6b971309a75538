"""The cluster's shared work, in Redis: the leader claims due occurrences and puts the
ones to run on a stream in the same script (nothing claimed is lost between the two);
every node reads the stream in one consumer group up to its free capacity; a worker's
entries stay pending until it reports their runs, and a dead worker's are taken over
by another node after the visibility timeout; finished runs go on the results stream,
which every node mirrors into its own history.

Keys, under the prefix (next to those of core/cluster/redisstore.py):
  work              stream of items: {"kind": "job", job, occ, fire, trigger, claim,
                    origin} or {"kind": "fanout", origin, fanout, hosts, command, ...}
                    read by the group `workers` (one consumer per node)
  busy:JOB          the work entries of JOB in flight (its overlap policy, cluster-wide)
  held:JOB          items of JOB waiting for the one in flight (overlap queue/replace)
  results           stream of finished runs (JSON), capped; the cluster's history
  reply:NODE        stream of a fan-out's host results for the node that started it
  cancel:NODE:ID    the hosts of fan-out ID (started on NODE) a person cancelled
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

GROUP = "workers"

# KEYS[1] leader. ARGV[1] token, ARGV[2] claim ttl ms, ARGV[3] prefix, then five per
# occurrence: job, occurrence, "run" or "skip", overlap, item (JSON).
# Per occurrence: "-" claimed by an earlier term, "k" claimed (a skip to record),
# "s" skipped (overlap=skip, one in flight), "h" held behind it, else the entry id.
_CLAIM_WORK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local p = ARGV[3]
local out = {}
for i = 4, #ARGV, 5 do
  local job, occ, what, overlap = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if not redis.call('SET', p .. 'claim:' .. job .. ':' .. occ, ARGV[1], 'NX', 'PX',
                    ARGV[2]) then
    out[#out + 1] = '-'
  else
    local last = p .. 'last:' .. job
    if tonumber(occ) > tonumber(redis.call('GET', last) or '0') then
      redis.call('SET', last, occ)
    end
    if what ~= 'run' then
      out[#out + 1] = 'k'
    else
      local busy, held = p .. 'busy:' .. job, p .. 'held:' .. job
      if overlap ~= 'allow' and (redis.call('SCARD', busy) > 0
                                 or redis.call('LLEN', held) > 0) then
        if overlap == 'skip' then
          out[#out + 1] = 's'
        else
          redis.call('RPUSH', held, ARGV[i + 4])
          out[#out + 1] = 'h'
        end
      else
        local id = redis.call('XADD', p .. 'work', '*', 'item', ARGV[i + 4])
        redis.call('SADD', busy, id)
        out[#out + 1] = id
      end
    end
  end
end
return out
"""

# ARGV[1] prefix, [2] entry id, [3] job ('' for a fan-out's batch), [4] this node,
# [5] results' cap, [6..] finished runs (JSON). The runs go on the results stream in
# every case: they did run (a report sent twice is copied once: core/cluster/mirror.py).
# The entry is acknowledged, and the next held item of its job released, only by the
# node that holds it: 1; 0 when another node took it over meanwhile; -1 when it is no
# longer pending (reported already, an answer lost on the way; or taken over and ended).
_FINISH = """
local p, id, job, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local pend = redis.call('XPENDING', p .. 'work', 'workers', id, id, 1)
for i = 6, #ARGV do
  redis.call('XADD', p .. 'results', 'MAXLEN', '~', ARGV[5], '*', 'run', ARGV[i])
end
if not pend[1] then return -1 end
if pend[1][2] ~= node then return 0 end
redis.call('XACK', p .. 'work', 'workers', id)
redis.call('XDEL', p .. 'work', id)
if job ~= '' then
  local busy, held = p .. 'busy:' .. job, p .. 'held:' .. job
  redis.call('SREM', busy, id)
  if redis.call('SCARD', busy) == 0 then
    local nxt = redis.call('LPOP', held)
    if nxt then
      redis.call('SADD', busy, redis.call('XADD', p .. 'work', '*', 'item', nxt))
    end
  end
end
return 1
"""

# ARGV[1] prefix, [2] this node, [3..] entry ids: each still this node's has its idle
# time start again (one another node took over stays that node's)
_TOUCH = """
local p, node = ARGV[1], ARGV[2]
for i = 3, #ARGV do
  local pend = redis.call('XPENDING', p .. 'work', 'workers', ARGV[i], ARGV[i], 1)
  if pend[1] and pend[1][2] == node then
    redis.call('XCLAIM', p .. 'work', 'workers', node, 0, ARGV[i], 'JUSTID')
  end
end
return 1
"""


@dataclass
class Taken:
    """A work entry this node took: its id, the item, and, when it was taken over from
    a worker that stopped answering, that worker's name and how many times it was
    delivered before."""

    entry: str
    item: dict[str, Any]
    dead_worker: str | None = None
    deliveries: int = 1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WorkQueue:
    def __init__(self, client: Any, prefix: str, node: str, *,
                 results_cap: int = 100_000) -> None:
        self.r = client
        self.reader: Any = None  # a client of its own for the blocking reads
        self.p = prefix.rstrip(":") + ":"
        self.node = node
        self.results_cap = results_cap
        self._claim_work = client.register_script(_CLAIM_WORK)
        self._finish = client.register_script(_FINISH)
        self._touch = client.register_script(_TOUCH)

    async def ensure_group(self) -> None:
        """The consumer group, made if it is not there (also after a Redis that came
        back empty: every stream call then says NOGROUP)."""
        import redis.exceptions

        try:  # from the stream's start: nothing put there before the group is lost
            await self.r.xgroup_create(self.p + "work", GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    # the leader ------------------------------------------------------------------------
    async def claim_work(self, token: str, ttl: float,
                         occurrences: list[tuple[str, float, bool, str, dict[str, Any]]]
                         ) -> list[str] | None:
        """Claim (job, occurrence, to_run, overlap, item) under the leader's token and
        put those to run on the work stream, atomically; a code per occurrence (see
        _CLAIM_WORK), or None when the token is stale."""
        if not occurrences:
            return []
        args: list[Any] = [token, int(ttl * 1000), self.p]
        for job, occ, run, overlap, item in occurrences:
            args += [job, f"{occ:.3f}", "run" if run else "skip", overlap,
                     json.dumps(item, separators=(",", ":"))]
        got = await self._claim_work(keys=[self.p + "leader"], args=args)
        if got == -1:
            return None
        return [_text(g) for g in got]

    async def put(self, item: dict[str, Any]) -> str:
        """An item no claim guards (a fan-out's batch of hosts)."""
        return _text(await self.r.xadd(self.p + "work",
                                       {"item": json.dumps(item, separators=(",", ":"))}))

    # a worker ----------------------------------------------------------------------------
    async def take(self, count: int, block_ms: int, *, again: bool = False
                   ) -> list[Taken]:
        """New entries for this node, waiting up to `block_ms` for one (on the reader's
        own connection, whose timeout is well past the wait). `again`: the entries
        already delivered to this node's name instead (after a read whose answer was
        lost: they are this node's, and nobody else would start them before the
        visibility timeout)."""
        reader = self.reader or self.r
        got = await reader.xreadgroup(GROUP, self.node, {self.p + "work": "0" if again
                                                         else ">"},
                                      count=count, block=None if again else block_ms)
        out = []
        for _stream, entries in got or []:
            for entry, fields in entries:
                if fields:  # an entry deleted while pending comes back without them
                    out.append(Taken(_text(entry), _item(fields)))
        return out

    async def touch(self, entries: list[str]) -> None:
        """Still working on these: their idle time starts again (a long run is not
        taken for a dead worker's)."""
        if entries:
            await self._touch(keys=[], args=[self.p, self.node, *entries])

    async def take_over(self, idle: float, count: int, held: set[str]) -> list[Taken]:
        """Entries pending longer than `idle` at another worker whose name is no longer
        held (it died, or lost Redis for longer than its lease and the visibility
        timeout), or at this node's name but not `held` by it (an earlier life of this
        node, killed): now this node's, each with the worker that had it and its
        deliveries so far. XPENDING names the worker, XCLAIM
        takes the entry only if it is still idle (two nodes never both take one)."""
        ms = int(idle * 1000)
        pending = await self.r.xpending_range(self.p + "work", GROUP, min="-", max="+",
                                              count=count + len(held), idle=ms)
        owners = sorted({_text(p["consumer"]) for p in pending} - {self.node})
        alive = set()
        if owners:  # a worker whose name is held (renewed each heartbeat) keeps its own
            pipe = self.r.pipeline(transaction=False)
            for owner in owners:
                pipe.exists(f"{self.p}node:{owner}")
            alive = {o for o, n in zip(owners, await pipe.execute(), strict=True) if n}
        stale = {_text(p["message_id"]): (_text(p["consumer"]), int(p["times_delivered"]))
                 for p in pending if (_text(p["consumer"]) != self.node
                                      and _text(p["consumer"]) not in alive)
                 or (_text(p["consumer"]) == self.node
                     and _text(p["message_id"]) not in held)}
        for entry in list(stale)[count:]:
            del stale[entry]
        if not stale:
            return []
        got = await self.r.xclaim(self.p + "work", GROUP, self.node, ms, list(stale))
        out = []
        for entry, fields in got or []:
            entry = _text(entry)
            if not fields:  # deleted from the stream while pending: nothing to do
                await self.r.xack(self.p + "work", GROUP, entry)
                continue
            worker, times = stale[entry]
            out.append(Taken(entry, _item(fields), worker, times))
        return out

    async def finish_many(self, reports: list[tuple[str, str, list[dict[str, Any]]]]
                          ) -> list[int]:
        """Report entries' runs, (entry, job, runs) each, in one round trip: for each,
        1 done, 0 when another node took the entry over meanwhile, -1 when it was
        reported already (an answer lost on the way)."""
        pipe = self.r.pipeline(transaction=False)
        for entry, job, runs in reports:
            await self._finish(keys=[], args=[
                self.p, entry, job, self.node, self.results_cap,
                *(json.dumps(r, separators=(",", ":"), default=str) for r in runs)],
                client=pipe)
        return [int(g) for g in await pipe.execute()]

    # history -----------------------------------------------------------------------------
    async def results_after(self, last: str, count: int = 500) -> list[tuple[str, dict]]:
        got = await self.r.xread({self.p + "results": last or "0"}, count=count)
        out = []
        for _stream, entries in got or []:
            for entry, fields in entries:
                raw = fields.get(b"run", fields.get("run"))
                out.append((_text(entry), json.loads(raw)))
        return out

    async def first_result(self) -> str | None:
        """The oldest report Redis still keeps (None: none)."""
        got = await self.r.xrange(self.p + "results", count=1)
        return _text(got[0][0]) if got else None

    # a fan-out's replies -------------------------------------------------------------------
    async def reply(self, origin: str, message: dict[str, Any]) -> None:
        await self.r.xadd(self.p + "reply:" + origin,
                          {"m": json.dumps(message, separators=(",", ":"), default=str)},
                          maxlen=100_000, approximate=True)

    async def replies(self, last: str, block_ms: int) -> list[tuple[str, dict]]:
        got = await self.r.xread({self.p + "reply:" + self.node: last or "$"},
                                 count=500, block=block_ms)
        out = []
        for _stream, entries in got or []:
            for entry, fields in entries:
                out.append((_text(entry), json.loads(fields.get(b"m", fields.get("m")))))
        return out

    async def cancel_hosts(self, fanout: int, hosts: list[str]) -> None:
        key = f"{self.p}cancel:{self.node}:{fanout}"
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd(key, *hosts)
        pipe.expire(key, 86400)
        await pipe.execute()

    async def cancelled_hosts(self, batches: list[tuple[str, int]]) -> list[set[str]]:
        """For each (origin, fan-out id): the hosts cancelled there, in one round trip."""
        if not batches:
            return []
        pipe = self.r.pipeline(transaction=False)
        for origin, fanout in batches:
            pipe.smembers(f"{self.p}cancel:{origin}:{fanout}")
        return [{_text(h) for h in got} for got in await pipe.execute()]

    async def last_reply(self) -> str:
        info = await self.r.xinfo_stream(self.p + "reply:" + self.node) \
            if await self.r.exists(self.p + "reply:" + self.node) else None
        return _text(info["last-generated-id"]) if info else "0"


def _item(fields: dict[Any, Any]) -> dict[str, Any]:
    raw = fields.get(b"item", fields.get("item"))
    try:
        item = json.loads(raw)
    except (TypeError, ValueError):
        return {"kind": "bad", "raw": _text(raw)[:200]}
    return item if isinstance(item, dict) else {"kind": "bad", "raw": str(item)[:200]}


def no_group(e: BaseException) -> bool:
    """A Redis that lost the work stream's group (restarted empty)."""
    return "NOGROUP" in str(e)
