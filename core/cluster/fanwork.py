"""A fan-out's hosts over the cluster's workers. The node a person asked (the origin)
puts the hosts on the work stream in batches; each worker that takes a batch runs it
as a fan-out of its own over its SSH pool (its known_hosts, its inventory) and replies
each host's lines (stdout and stderr apart) and its end on the origin's reply stream as
they come, a few times a second; the origin records them in its fan-out as if it had
run them, so the record, the gathered output, `--stream` and a rerun are the same as on
one node. A batch whose worker stopped answering is taken over and its
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
import contextlib
import logging
import math
import time
from typing import Any

from core.cluster.redisstore import redis_errors
from core.cluster.tasks import stop_tasks
from core.cluster.workqueue import Taken, WorkQueue
from core.events import EventBus
from core.remote.classes import HostClass
from core.remote.fanout import DEFAULT_FORKS, FanOut
from core.remote.results import RUNNING

log = logging.getLogger("fleetdeck.cluster")

TEXT_CAP = 256 * 1024  # of a host's output in its reply (the rest stays on the worker)
MAX_BATCH = 50  # hosts in one work item


class SharedFanOut(FanOut):
    """A fan-out whose hosts run on the cluster's workers (its origin records them)."""

    def __init__(self, *args: Any, share: FanOutShare, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._share = share
        self._waiting: dict[str, Any] = {}  # host -> its run here, not yet replied
        self._sinks: dict[str, Any] = {}  # host -> where its lines go (None: nowhere)
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

    def delivered(self, items: list[Any], node: str) -> None:
        """A worker's reply, in the order it ran: ["l", host, stream, line] a line of a
        host's output, ["r", host, result] its end; recorded as if run here."""
        for item in items:
            if not isinstance(item, list) or len(item) < 3:
                continue
            kind, host = item[0], str(item[1])
            hr = self._waiting.get(host)
            if hr is None or hr.result.final:
                continue
            r = hr.result
            if host not in self._sinks:  # its first word: it runs (on that worker)
                r.node = node
                problem = hr.out.open()
                self._sinks[host] = self._on_line(hr) if problem is None else None
                r.started_at = time.time()
                self._set(hr, RUNNING)
            if kind == "l" and len(item) == 4:
                sink = self._sinks[host]
                if sink is not None:
                    sink(str(item[2]), str(item[3]))
            elif kind == "r" and isinstance(item[2], dict):
                result = item[2]
                self._waiting.pop(host, None)
                r.started_at = result.get("started_at") or r.started_at
                self._set(hr, str(result.get("state") or "failed"),
                          exit_code=result.get("exit_code"),
                          reason=str(result.get("reason") or ""),
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
                if fo is not None and isinstance(msg.get("items"), list):
                    fo.delivered(msg["items"], str(msg.get("node") or ""))


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
        sink = _Replies(self.queue, str(item.get("origin")), item.get("fanout"), node)
        try:
            if t.dead_worker is not None:
                why = (f"worker {t.dead_worker} stopped answering while it had this host; "
                       "not run again (rerun the non-ok hosts)")
                for h in hosts:
                    sink.end(h, {"state": HostClass.FAILED.value, "reason": why})
            else:
                inventory = self.engine.config.hosts
                for h in hosts:
                    if h not in inventory:
                        sink.end(h, {"state": HostClass.FAILED.value, "reason":
                                     f"host {h!r} is not in node {node}'s inventory"})
                known = [inventory[h] for h in hosts if h in inventory]
                if known:
                    fo = _ReplyingFanOut(
                        str(item.get("command") or ""), known, sink=sink,
                        pool=engine_pool(self.engine), inventory=inventory, bus=EventBus(),
                        forks=int(item.get("forks") or DEFAULT_FORKS),
                        timeout=item.get("timeout"),
                        connect_timeout=item.get("connect_timeout"),
                        kill_grace=float(item.get("kill_grace") or 5.0),
                        become=item.get("become"), requested_by=item.get("origin"),
                        group_forks={g.name: g.forks for g in
                                     self.engine.config.groups.values() if g.forks})
                    self._running[t.entry] = (str(item.get("origin")),
                                              int(item.get("fanout") or 0), fo)
                    sink.start()
                    await fo.run()
            await sink.close()
            await _retrying(lambda: self.queue.finish_many([(t.entry, "", [])]))
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not leave the entry pending for ever
            log.exception("fan-out batch %s", t.entry)
        finally:
            sink.stop()
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


class _ReplyingFanOut(FanOut):
    """A worker's fan-out of a batch: each host's lines and its end also go to the
    origin, as they come."""

    def __init__(self, *args: Any, sink: _Replies, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._sink = sink

    def _on_line(self, hr: Any) -> Any:
        keep = super()._on_line(hr)
        host, sink = hr.result.host, self._sink

        def on_line(stream: str, line: str) -> None:
            keep(stream, line)
            sink.line(host, stream, line)

        return on_line

    def _set(self, hr: Any, state: str, **kw: Any) -> None:
        super()._set(hr, state, **kw)
        if hr.result.final:
            self._sink.end(hr.result.host, hr.result.to_dict())


class _Replies:
    """What a batch tells its origin, in order, a few times a second: its hosts' lines
    (up to TEXT_CAP each; the rest stays in the worker's run) and their ends."""

    def __init__(self, queue: WorkQueue, origin: str, fanout: Any, node: str) -> None:
        self.queue, self.origin, self.fanout, self.node = queue, origin, fanout, node
        self._items: list[list[Any]] = []
        self._size = 0
        self._sent: dict[str, int] = {}  # bytes of each host's lines sent
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def line(self, host: str, stream: str, line: str) -> None:
        sent = self._sent.get(host, 0)
        if sent > TEXT_CAP:
            return
        if sent + len(line) + 1 > TEXT_CAP:
            self._sent[host] = TEXT_CAP + 1
            line = (f"[fleetdeck] output beyond {TEXT_CAP // 1024} KB stays on worker "
                    f"{self.node}")
        else:
            self._sent[host] = sent + len(line) + 1
        self._items.append(["l", host, stream, line])
        self._size += len(line)
        if self._size > 64 * 1024:
            self._wake.set()

    def end(self, host: str, result: dict[str, Any]) -> None:
        self._items.append(["r", host, result])
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._items:
            return
        items, self._items, self._size = self._items, [], 0
        msg = {"fanout": self.fanout, "node": self.node, "items": items}
        await _retrying(lambda: self.queue.reply(self.origin, msg))

    async def close(self) -> None:
        """Everything told, in order: the loop ends after the send it is making."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()


async def _retrying(send: Any) -> Any:
    """Until Redis takes it: a reply lost would leave a host pending at its origin."""
    delay = 0.2
    while True:
        try:
            return await send()
        except redis_errors():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
