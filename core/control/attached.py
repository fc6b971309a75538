"""An Engine-shaped client of a running daemon, for a console attached to it.

Reads come from the shared state directory, opened read-only and reopened when the
daemon says something changed; actions and events go over the control socket. The
console keeps calling the same methods whether its engine is its own or a daemon's. A
lost daemon is said on screen (an `EngineNotice` and `mode_label`) and the connection is
tried again every second; the console never starts an engine of its own behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.api import METHODS, Method, bind
from core.control.client import call
from core.control.protocol import MAX_FRAME, encode, socket_path
from core.events import EngineNotice, EventBus, ViewRefreshed, event_from_message
from core.jobs.active import EngineError, run_dict
from core.jobs.engine import Engine
from core.store import Store

log = logging.getLogger("fleetdeck.attached")


REFRESH = 0.1  # seconds: the read-only view is reopened at most this often
RETRY = 1.0
SETTLE = 0.3  # seconds after the last event: read the files once more
MIRROR_EVERY = 0.2  # seconds: a mirrored read is asked of the daemon at most this often
MIRROR_STALE = 1.0  # ...and at least this often while something reads it
MIRROR_IDLE = 2.0  # a read nobody asked for in this long is not fetched again


@dataclass
class _Mirrored:
    """One of the daemon's in-memory reads (health, log rings, live fan-outs) as last
    fetched; events mark it dirty, reads fetch it again in the background."""

    value: Any
    fetched: float = -1e9
    read: float = 0.0
    dirty: bool = True
    task: asyncio.Task[None] | None = None


class AttachedEngine:
    """The engine API (core.api.EngineAPI) over a running daemon: what a console attached
    to it calls, exactly as it calls an engine of its own."""

    attached = True  # the daemon runs the services and audits the actions

    def __init__(self, config: Any, state_dir: Any, daemon_pid: int, *,
                 clock: Any = time.time) -> None:
        self.config = config
        self.state_dir = Path(state_dir)
        self.clock = clock
        self.bus = EventBus()
        self._view = Engine(config, self.state_dir, clock=clock)  # reads of the files
        self.daemon_pid = daemon_pid
        self.connected = False
        self._reader: asyncio.Task[None] | None = None
        self._refreshed = 0.0
        self._trailing = False
        self._mirrors: dict[tuple[str, str], _Mirrored] = {}
        self._settle_handle: asyncio.TimerHandle | None = None

    @property
    def mode_label(self) -> str:
        return f"attached to pid {self.daemon_pid}" if self.connected else \
            "daemon lost, reconnecting…"

    def has_service(self, name: str) -> bool:
        """The daemon runs every service its config asks for (the same config as ours)."""
        c = self.config
        return {"health": bool(c.checks), "logs": bool(c.sources), "alerts": True,
                "triggers": any(j.on_change for j in c.jobs.values())}.get(name, False)

    @property
    def store(self) -> Any:
        return self._view.store

    # ------------------------------------------------------------------ life cycle ----
    async def start(self, *, scheduling: bool = True) -> None:
        self._view.open_view()
        await self._connect()
        self._reader = asyncio.ensure_future(self._read_loop())

    async def stop(self) -> None:
        if self._settle_handle is not None:
            self._settle_handle.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_unix_connection(str(socket_path(self.state_dir)),
                                                            limit=MAX_FRAME)
        writer.write(encode({"id": 0, "method": "subscribe"}))
        await writer.drain()
        self._conn = (reader, writer)
        self.connected = True
        return reader, writer

    async def _read_loop(self) -> None:
        while True:
            reader, writer = self._conn
            try:
                while True:
                    line = await reader.readuntil(b"\n")
                    msg = json.loads(line)
                    if "event" not in msg:
                        continue
                    try:
                        event = event_from_message(msg)
                    except (ValueError, TypeError):
                        continue  # a kind this console does not know
                    self._maybe_refresh()
                    for m in self._mirrors.values():
                        m.dirty = True
                    self.bus.publish(event)
                    self._settle()
            except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
                pass
            writer.close()
            self.connected = False
            self.bus.publish(EngineNotice("error", f"lost the daemon (pid {self.daemon_pid}); "
                                                   "reconnecting", ts=time.time()))
            while True:
                await asyncio.sleep(RETRY)
                try:
                    pong = await call(self.state_dir, "ping", timeout=2.0)
                    await self._connect()
                except Exception:  # noqa: BLE001 - not there yet: tried again
                    continue
                self.daemon_pid = pong["pid"]
                self._maybe_refresh(force=True)
                self.bus.publish(EngineNotice("info", f"attached again to pid "
                                                      f"{self.daemon_pid}", ts=time.time()))
                break

    def _settle(self) -> None:
        """Read again SETTLE seconds after the last event of a burst: the daemon tells of
        a change as it makes it and writes its files a moment later (a group commit)."""
        if self._settle_handle is not None:
            self._settle_handle.cancel()
        self._settle_handle = asyncio.get_running_loop().call_later(SETTLE, self._reread)

    def _maybe_refresh(self, force: bool = False) -> None:
        """Reopen the read-only view, at most every REFRESH seconds; a change inside the
        window gets a trailing reopen, so the last word of a burst is never missed."""
        now = time.monotonic()
        wait = REFRESH - (now - self._refreshed)
        if force or wait <= 0:
            self._refreshed = now
            with contextlib.suppress(Exception):
                self._view.store = Store.open(self.state_dir, read_only=True,
                                              previous=self._view.store)
        elif not self._trailing:
            self._trailing = True

            def later() -> None:
                self._trailing = False
                self._maybe_refresh(force=True)
                self.bus.publish(ViewRefreshed(time.time()))

            asyncio.get_running_loop().call_later(wait + 0.05, later)

    # ------------------------------------------------------------ mirrored reads ----
    def mirrored(self, method: str, params: dict[str, Any] | None = None,
                 default: Any = None) -> Any:
        """The daemon's answer to a read, as last fetched (``default`` until the first
        answer); a stale or dirty one is fetched again in the background and a
        ViewRefreshed event says when it changed. Screens read synchronously, as they do
        from an engine of their own."""
        key = (method, json.dumps(params or {}, sort_keys=True))
        m = self._mirrors.get(key)
        if m is None:
            m = self._mirrors[key] = _Mirrored(default)
        now = time.monotonic()
        m.read = now
        if (m.dirty or now - m.fetched > MIRROR_STALE) and m.task is None and self.connected:
            m.task = asyncio.ensure_future(self._fetch(m, method, params or {}))
        return m.value

    def seed(self, method: str, params: dict[str, Any], value: Any) -> None:
        """What an action just returned, so the next read has it without a round trip."""
        key = (method, json.dumps(params, sort_keys=True))
        self._mirrors.setdefault(key, _Mirrored(value)).value = value

    async def _fetch(self, m: _Mirrored, method: str, params: dict[str, Any]) -> None:
        try:
            wait = MIRROR_EVERY - (time.monotonic() - m.fetched)
            if wait > 0:
                await asyncio.sleep(wait)
            m.dirty = False
            try:
                value = await call(self.state_dir, method, params, timeout=5.0)
            except Exception:  # noqa: BLE001 - a lost daemon: the read loop says so
                return
            m.fetched = time.monotonic()
            if value != m.value:
                m.value = value
                self.bus.publish(ViewRefreshed(time.time()))
        finally:
            m.task = None
        if m.dirty and time.monotonic() - m.read < MIRROR_IDLE and self.connected:
            m.task = asyncio.ensure_future(self._fetch(m, method, params))

    # --------------------------------------------------------------------- reading ----
    def list_runs(self, **kw: Any) -> list[dict[str, Any]]:
        self._maybe_refresh()
        return self._view.list_runs(**kw)

    def count_runs(self, **kw: Any) -> int:
        self._maybe_refresh()
        return self._view.count_runs(**kw)

    def get_run(self, run_id: int) -> dict[str, Any]:
        self._maybe_refresh()
        return self._view.get_run(run_id)

    def run_log_path(self, run_id: int) -> Path:
        return self._view.run_log_path(run_id)

    async def wait_run(self, run_id: int) -> dict[str, Any]:
        """Wait until the daemon has the run in a final state on disk; returns it."""
        while True:
            self._maybe_refresh(force=True)
            try:
                run = self._view.get_run(run_id)
            except EngineError:  # not on disk yet (the daemon's group commit)
                run = None
            if run is not None and run["state"] not in ("queued", "running", "awaiting_approval"):
                return run
            await asyncio.sleep(0.1)

    def queue(self) -> list[dict[str, Any]]:
        self._maybe_refresh()
        assert self.store is not None
        runs = self.store.active_runs()
        runs.sort(key=lambda r: (r.state != "running", r.id))
        return [run_dict(r) for r in runs]

    def list_jobs(self) -> list[dict[str, Any]]:
        self._maybe_refresh()
        active: dict[str, list[int]] = {}
        assert self.store is not None
        for r in self.store.active_runs():
            active.setdefault(r.job, []).append(r.id)
        out = self._view.list_jobs()
        for job in out:
            job["active"] = sorted(active.get(job["name"], []))
        return out

    def get_job(self, name: str) -> dict[str, Any]:
        return next((j for j in self.list_jobs() if j["name"] == name), None) or \
            self._view.get_job(name)

    def audit_trail(self, since: float | None = None, limit: int | None = None
                    ) -> list[dict[str, Any]]:
        return self._view.audit_trail(since, limit)

    def _book(self) -> Any:
        from core.alerts.book import AlertBook

        try:
            return AlertBook(self.state_dir, self.config.alerting, self.clock, read_only=True)
        except Exception:  # noqa: BLE001 - not written yet by the daemon
            return None

    def list_alerts(self, include_resolved: bool = False, limit: int = 200
                    ) -> list[dict[str, Any]]:
        book = self._book()
        return [] if book is None else book.list(self.clock(),
                                                 include_resolved=include_resolved,
                                                 limit=limit)

    def get_alert(self, alert_id: int) -> dict[str, Any]:
        book = self._book()
        if book is None:
            raise EngineError(f"no alert #{alert_id}")
        return book.get(alert_id, self.clock())

    def list_silences(self) -> list[dict[str, Any]]:
        book = self._book()
        return [] if book is None else book.silences(self.clock())

    def fanout_resolve(self, pattern: str) -> list[str]:
        from core.remote.inventory import resolve_targets

        return resolve_targets(pattern, self.config.hosts)

    async def fresh(self, method: str, **params: Any) -> Any:
        """A read answered by the daemon now, not the mirror (for a command that prints
        once)."""
        return await self._act(method, params)

    # ------------------------------------------------------------------ actions ----
    async def _act(self, method: str, params: dict[str, Any]) -> Any:
        from core.control.client import DaemonError

        try:
            result = await call(self.state_dir, method, params)
        except DaemonError as e:
            raise EngineError(str(e)) from None
        except (OSError, EOFError):  # EOFError: asyncio's IncompleteReadError, gone mid-answer
            raise EngineError(f"the daemon (pid {self.daemon_pid}) does not answer") from None
        # the daemon answers once its files are written; its event may have come first
        self._reread()
        if method in ("fanout_start", "fanout_push", "fanout_pull", "fanout_rerun",
                      "fanout_trust"):
            self.seed("fanout_get", {"fanout_id": result["id"]}, result)
            self.seed("fanout_live", {"fanout_id": result["id"]}, True)
        return result

    def _reread(self) -> None:
        for m in self._mirrors.values():
            m.dirty = True
        self._maybe_refresh(force=True)
        self.bus.publish(ViewRefreshed(time.time()))


# the daemon's in-memory reads, mirrored (with what a screen sees before the first answer)
_MIRRORED = {"health_hosts": [], "health_snapshot": [], "log_sources": None, "log_recent": [],
             "log_stats": [], "fanout_list": [], "fanout_get": None, "fanout_live": False,
             "fanout_output": "", "fanout_gather": [], "list_approvals": []}


def _mirrored_read(spec: Method) -> Any:
    default = _MIRRORED[spec.name]

    def read(self: AttachedEngine, *args: Any, **kw: Any) -> Any:
        fallback = list(self.config.sources) if spec.name == "log_sources" else default
        return self.mirrored(spec.name, bind(spec, args, kw), fallback)

    read.__name__ = spec.name
    read.__doc__ = f"The daemon's {spec.name}, mirrored."
    return read


def _action(spec: Method) -> Any:
    async def act(self: AttachedEngine, *args: Any, actor: Any = None, **kw: Any) -> Any:
        # the daemon knows who asks from the socket's credentials; `actor` is not sent
        return await self._act(spec.name, bind(spec, args, kw))

    act.__name__ = spec.name
    act.__doc__ = f"{spec.name}, done by the daemon (audited there as this user)."
    return act


for _spec in METHODS:  # the proxies, made from the one list of the engine API
    if _spec.is_action:
        setattr(AttachedEngine, _spec.name, _action(_spec))
    elif _spec.name in _MIRRORED:
        setattr(AttachedEngine, _spec.name, _mirrored_read(_spec))
