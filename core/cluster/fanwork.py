"""A fan-out's hosts over the cluster's workers. The node a person asked (the origin)
puts the hosts on the work stream in batches; each worker that takes a batch runs it
as a fan-out of its own over its SSH pool (its known_hosts, its inventory) and replies
each host's result and output on the origin's reply stream; the origin records them in
its fan-out as if it had run them, so the record, the gathered output and a rerun are
the same as on one node. A batch whose worker stopped answering is taken over and its
hosts end `failed` with that reason, never run twice (a rerun of the non-ok hosts runs
them again). A cancel on the origin is written to Redis (`cancel:NODE:ID`), and each
worker stops the cancelled hosts of its batches at its next heartbeat.

Shared: a command fan-out to more than one host. Run on the origin alone: a push or
pull (the files are the origin's), a become password (it never leaves the origin), an
out-dir (the files are the origin's), a rolling fan-out (its batches wait on each
other) and a fan-out that trusts new host keys.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from core.cluster.redisstore import redis_errors
from core.cluster.tasks import stop_tasks
from core.cluster.workqueue import Taken, WorkQueue
from core.events import EventBus
from core.remote.classes import HostClass
from core.remote.fanout import DEFAULT_FORKS, FanOut

log = logging.getLogger("fleetdeck.cluster")

TEXT_CAP = 256 * 1024  # of a host's output in its reply (the rest stays on the worker)
MAX_BATCH = 50  # hosts in one work item


class SharedFanOut(FanOut):
    """A fan-out whose hosts run on the cluster's workers (its origin records them)."""

    def __init__(self, *args: Any, share: FanOutShare, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._share = share
        self._waiting: dict[str, Any] = {}  # host -> its run here, not yet replied
        self._all_in = asyncio.Event()

    async def _wave(self, runs: list[Any]) -> None:
        runs = [hr for hr in runs if not hr.result.final]
        if not runs:
            return
        self._waiting = {hr.result.host: hr for hr in runs}
        self._all_in.clear()
        self._share.live[self.id] = self
        try:
            await self._share.send(self, [hr.result.host for hr in runs])
            await self._all_in.wait()
        finally:
            self._share.live.pop(self.id, None)

    def delivered(self, host: str, result: dict[str, Any], text: str, node: str) -> None:
        """A worker's reply: the host's output, then its end, as if run here."""
        hr = self._waiting.pop(host, None)
        if hr is None or hr.result.final:
            return
        problem = hr.out.open()
        r = hr.result
        r.started_at = result.get("started_at") or r.started_at
        r.node = node
        if problem is None:
            on_line = self._on_line(hr)
            lines = text.split("\n")
            for line in lines[:-1] if lines and lines[-1] == "" else lines:
                on_line("stdout", line)
        self._set(hr, str(result.get("state") or "failed"),
                  exit_code=result.get("exit_code"), reason=str(result.get("reason") or ""),
                  fingerprint=result.get("fingerprint"))
        if not self._waiting:
            self._all_in.set()

    def cancel_host(self, name: str) -> None:
        hr = self._waiting.pop(name, None)
        if hr is None:
            super().cancel_host(name)
            return
        if not hr.result.final:
            self._set(hr, HostClass.CANCELLED.value, reason="cancelled (its worker is told "
                      "to stop it)")
        self._share.cancel(self.id, name)
        if not self._waiting:
            self._all_in.set()


class FanOutShare:
    """The origin's half: batches out, replies in."""

    def __init__(self, queue: WorkQueue, nodes: Any) -> None:
        self.queue = queue
        self.nodes = nodes  # () -> how many nodes are in the cluster now
        self.live: dict[int, SharedFanOut] = {}
        self._last: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._cancels: dict[int, list[str]] = {}  # to tell the workers, next loop turn

    async def start(self) -> None:
        self._last = await self.queue.last_reply()
        self._task = asyncio.ensure_future(self._read())

    async def stop(self) -> None:
        await stop_tasks(self._task)

    def cancel(self, fanout: int, host: str) -> None:
        """Tell the workers (they look each heartbeat); the hosts of one cancel go in
        one write."""
        first = not self._cancels
        self._cancels.setdefault(fanout, []).append(host)
        if first:
            asyncio.get_running_loop().call_soon(self._send_cancels)

    def _send_cancels(self) -> None:
        cancels, self._cancels = self._cancels, {}
        for fanout, hosts in cancels.items():
            asyncio.ensure_future(_retrying(
                lambda fanout=fanout, hosts=hosts: self.queue.cancel_hosts(fanout, hosts)))

    async def send(self, fo: SharedFanOut, hosts: list[str]) -> None:
        size = max(1, min(MAX_BATCH, math.ceil(len(hosts) / (2 * max(1, self.nodes())))))
        for i in range(0, len(hosts), size):
            item = {"kind": "fanout", "origin": self.queue.node, "fanout": fo.id,
                    "hosts": hosts[i:i + size], "command": fo.command,
                    "timeout": fo.timeout, "connect_timeout": fo.connect_timeout,
                    "kill_grace": fo.kill_grace, "become": fo.become,
                    "forks": fo.forks}
            await _retrying(lambda item=item: self.queue.put(item))

    async def _read(self) -> None:
        while True:
            try:
                got = await self.queue.replies(self._last or "0", 300)
            except asyncio.CancelledError:
                raise
            except redis_errors():
                await asyncio.sleep(1.0)
                continue
            except Exception:  # a bug must not leave every shared fan-out waiting
                log.exception("reading fan-out replies")
                await asyncio.sleep(1.0)
                continue
            for entry, msg in got:
                self._last = entry
                fo = self.live.get(msg.get("fanout")) if isinstance(msg, dict) else None
                if fo is not None:
                    fo.delivered(str(msg.get("host")), msg.get("result") or {},
                                 str(msg.get("text") or ""), str(msg.get("node") or ""))


class FanOutWork:
    """A worker's half: a taken batch run here, each host's result replied."""

    def __init__(self, engine: Any, queue: WorkQueue,
                 room: asyncio.Event | None = None) -> None:
        self.engine = engine
        self.queue = queue
        self.room = room  # set when a batch ends: the worker may take more
        self._open: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, tuple[str, int, FanOut]] = {}  # entry -> origin, id, run

    def entries(self) -> list[str]:
        return list(self._open)

    @property
    def load(self) -> int:
        return len(self._open)

    def begin(self, t: Taken) -> None:
        self._open[t.entry] = asyncio.ensure_future(self._run(t))

    async def _run(self, t: Taken) -> None:
        from core.remote.runs import engine_pool

        item = t.item
        node = self.queue.node
        hosts = [str(h) for h in item.get("hosts") or []]
        replies: list[tuple[str, dict[str, Any], str]] = []
        try:
            if t.dead_worker is not None:
                why = (f"worker {t.dead_worker} stopped answering while it had this host; "
                       "not run again (rerun the non-ok hosts)")
                replies = [(h, {"state": HostClass.FAILED.value, "reason": why}, "")
                           for h in hosts]
            else:
                inventory = self.engine.config.hosts
                for h in hosts:
                    if h not in inventory:
                        replies.append((h, {"state": HostClass.FAILED.value, "reason":
                                            f"host {h!r} is not in node {node}'s "
                                            "inventory"}, ""))
                known = [inventory[h] for h in hosts if h in inventory]
                if known:
                    fo = FanOut(str(item.get("command") or ""), known,
                                pool=engine_pool(self.engine), inventory=inventory,
                                bus=EventBus(), forks=int(item.get("forks") or DEFAULT_FORKS),
                                timeout=item.get("timeout"),
                                connect_timeout=item.get("connect_timeout"),
                                kill_grace=float(item.get("kill_grace") or 5.0),
                                become=item.get("become"), requested_by=item.get("origin"),
                                group_forks={g.name: g.forks for g in
                                             self.engine.config.groups.values() if g.forks})
                    self._running[t.entry] = (str(item.get("origin")),
                                              int(item.get("fanout") or 0), fo)
                    await fo.run()
                    replies += [(name, r.to_dict(), fo.output(name)[:TEXT_CAP])
                                for name, r in fo.results.items()]
            for host, result, text in replies:
                msg = {"fanout": item.get("fanout"), "host": host, "result": result,
                       "text": text, "node": node}
                await _retrying(lambda msg=msg: self.queue.reply(str(item.get("origin")), msg))
            await _retrying(lambda: self.queue.finish_many([(t.entry, "", [])]))
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not leave the entry pending for ever
            log.exception("fan-out batch %s", t.entry)
        finally:
            self._open.pop(t.entry, None)
            self._running.pop(t.entry, None)
            if self.room is not None:
                self.room.set()

    async def check_cancels(self) -> None:
        """Hosts of running batches that their origin cancelled: stopped here too."""
        running = list(self._running.values())
        got = await self.queue.cancelled_hosts([(o, f) for o, f, _fo in running])
        for (_origin, _fanout, fo), hosts in zip(running, got, strict=True):
            for host in hosts & set(fo.results):
                fo.cancel_host(host)


async def _retrying(send: Any) -> Any:
    """Until Redis takes it: a reply lost would leave a host pending at its origin."""
    delay = 0.2
    while True:
        try:
            return await send()
        except redis_errors():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
