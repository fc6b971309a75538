"""Fan-out: one command on many hosts at once, per-host results, gathered output.

``FanOut`` is headless and event-driven: it publishes ``FanOutStarted``, a
``FanOutHost`` on every host state change (pending -> connecting -> running -> a final
class), a ``FanOutLine`` per output line and ``FanOutDone`` on an EventBus. The CLI
prints from those events; the console can subscribe to the same ones. ``cancel()``
stops starting hosts and cancels the running ones; ``cancel_host(name)`` cancels one.

Final classes are ``core.remote.classes.HostClass`` values: ok, failed, timed_out,
unreachable, auth_failed, become_failed, host_key_unknown, host_key_changed,
host_key_revoked, cancelled, skipped.
``local`` runs as a local subprocess, everything else over the shared ``SSHPool``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.api import current_user
from core.events import EventBus, FanOutBatch, FanOutDone, FanOutHost, FanOutLine, FanOutStarted
from core.jobs.process import MAX_EVENT_LINE, LocalProcess
from core.remote.become import Become, BecomeLines
from core.remote.classes import HostClass
from core.remote.commands import DEFAULT_KILL_GRACE, run_command
from core.remote.inventory import LOCAL_HOST, fold_hosts
from core.remote.output import HostOutput
from core.remote.results import (
    CONNECTING,
    PENDING,
    RUNNING,
    HostResult,
    counts,
    exit_status,
)
from core.remote.rollout import Rollout, failures, stop_reason
from core.remote.ssh import SSHError, SSHPool, target_for
from core.remote.transfer import Transfer
from core.store.fanouts import owner

DEFAULT_FORKS = 64
SAVE_EVERY = 0.5  # seconds: a host's end is in the record at most this late


@dataclass
class _HostRun:
    result: HostResult
    task: asyncio.Task[None] | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    out: HostOutput = field(default_factory=HostOutput)


# -------------------------------------------------------------------------- fan-out ---
class FanOut:
    """One command on many hosts; `await run()` returns the finished record (a dict)."""

    def __init__(self, command: str, hosts: Sequence[Any], *, pool: SSHPool,
                 inventory: Mapping[str, Any] | None = None, bus: EventBus | None = None,
                 fanout_id: int = 0, pattern: str = "", forks: int = DEFAULT_FORKS,
                 timeout: float | None = None, connect_timeout: float | None = None,
                 kill_grace: float = DEFAULT_KILL_GRACE, log_dir: Path | None = None,
                 requested_by: str | None = None, store: Any = None,
                 rerun_of: int | None = None, rollout: Rollout | None = None,
                 hold_canary: bool = False, out_dir: Path | None = None,
                 transfer: Transfer | None = None, become: str | None = None,
                 become_password: str | None = None,
                 group_forks: Mapping[str, int] | None = None) -> None:
        if forks < 1:
            raise ValueError("forks must be at least 1")
        self.id = fanout_id
        self.transfer = transfer  # a push or pull instead of a command
        self.become = become  # every host's sudo user; else each host's own `become`
        self._become_password = become_password  # never in the record or an event
        self.command = transfer.describe() if transfer is not None else command
        self.pattern = pattern
        self.hosts = list(hosts)
        self.inventory = inventory or {h.name: h for h in self.hosts}
        self.pool = pool
        self.bus = bus or EventBus()
        self.forks = forks
        self.timeout = timeout
        self.connect_timeout = connect_timeout or pool.connect_timeout
        self.kill_grace = kill_grace
        self.log_dir = Path(log_dir) if log_dir else None
        self.requested_by = requested_by or current_user()
        self.store = store
        self.rerun_of = rerun_of
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.state = "pending"
        self.out_dir = Path(out_dir) if out_dir else None
        self._runs = {h.name: _HostRun(HostResult(h.name), out=HostOutput(
            self._log_path(h.name) if self.log_dir else None, self.out_dir, h.name))
            for h in self.hosts}
        self._stopping = False
        self.rollout = rollout or Rollout()
        self.hold_canary = hold_canary and self.rollout.has_canary
        self._batches = self.rollout.batches(list(self._runs))
        for i, names in enumerate(self._batches, 1):
            for name in names:
                self._runs[name].result.batch = i if self.rollout.rolling else None
        self.batch = 0  # the batch under way (1 first)
        self.held = False  # the canary ended; waiting for a person to go on
        self.stopped: str | None = None  # why a rollout stopped before its last batch
        self._wake = asyncio.Event()  # a hold or a pause ends early: go on, or cancel
        self._save_soon: asyncio.TimerHandle | None = None
        self._sem = asyncio.Semaphore(forks)
        # [groups.NAME] forks: at most that many of a group's hosts at once, taken before
        # a fork slot (a host waiting for its group holds no slot another could use)
        self._group_sems = {g: asyncio.Semaphore(n) for g, n in (group_forks or {}).items()}
        self._trusted_from = len(pool.trusted)  # keys the pool trusts from now are ours

    # ---- public ----
    @property
    def results(self) -> dict[str, HostResult]:
        return {name: hr.result for name, hr in self._runs.items()}

    def record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "command": self.command,
            "transfer": self.transfer.to_dict() if self.transfer is not None else None,
            "become": self.become,
            "become_asked": self._become_password is not None,  # a rerun asks again
            "pattern": self.pattern,
            "requested_by": self.requested_by,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "state": self.state,
            "forks": self.forks,
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "rerun_of": self.rerun_of,
            "rollout": self.rollout.to_dict() | {
                "batches": len(self._batches), "batch": self.batch, "held": self.held,
                "stopped": self.stopped} if self.rollout.rolling else None,
            "counts": counts(self.results.values()),
            "exit_status": exit_status(self.results.values()) if self.finished_at else None,
            "log_dir": str(self.log_dir) if self.log_dir else None,
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "hosts": {n: r.to_dict() for n, r in self.results.items()},
            "trusted": [list(t) for t in self.pool.trusted[self._trusted_from:]],
            "owner": owner(),  # a reader can tell a fan-out whose process died
        }

    def cancel(self) -> None:
        """Start no more hosts; cancel the ones connecting or running."""
        self._stopping = True
        self._wake.set()
        for name in self._runs:
            self.cancel_host(name)

    def proceed(self) -> bool:
        """Go on after the canary batch (False when the rollout is not held)."""
        if not self.held:
            return False
        self.held = False
        self._wake.set()
        return True

    def cancel_host(self, name: str) -> None:
        hr = self._runs.get(name)
        if hr is None or hr.result.final:
            return
        hr.cancel.set()
        if hr.task is None and self.started_at is not None:  # a later batch's host
            self._set(hr, HostClass.CANCELLED.value, reason="cancelled before it started")
        elif hr.result.state in (PENDING, CONNECTING) and hr.task is not None:
            hr.task.cancel()  # a connection being opened for others is shielded

    async def run(self) -> dict[str, Any]:
        self.started_at = time.time()
        self.state = "running"
        self._save()
        self.bus.publish(FanOutStarted(self.record()))
        try:
            if self.rollout.rolling:
                await self._roll()
            else:
                await self._wave(list(self._runs.values()))
        except asyncio.CancelledError:
            self.cancel()
            await asyncio.gather(*(hr.task for hr in self._runs.values() if hr.task),
                                 return_exceptions=True)
            self._done()
            raise
        self._done()
        return self.record()

    def gather(self) -> list[dict[str, Any]]:
        """Finished hosts grouped by identical output, class and exit code; largest first.

        Each group: hosts (the fan-out's order), folded (node-set text), count, state,
        exit_code, reason and text (the shared output).
        """
        groups: dict[tuple[Any, ...], list[str]] = {}
        for name, hr in self._runs.items():
            r = hr.result
            key = (r.state, r.exit_code, r.reason, r.digest)
            groups.setdefault(key, []).append(name)
        out = []
        for (state, code, reason, _), names in groups.items():
            out.append({"hosts": names, "folded": fold_hosts(names), "count": len(names),
                        "state": state, "exit_code": code, "reason": reason,
                        "text": self.output(names[0])})
        out.sort(key=lambda g: (-g["count"], g["state"] != "ok", g["folded"]))
        return out

    def output(self, name: str) -> str:
        """A host's output (stdout and stderr as they came)."""
        return self._runs[name].out.text()

    # ---- internals ----
    async def _wave(self, runs: list[_HostRun]) -> None:
        runs = [hr for hr in runs if not hr.result.final]
        for hr in runs:
            hr.task = asyncio.ensure_future(self._host(hr))
        # a host cancelled before its task first ran ends cancelled; the rest go on
        await asyncio.gather(*(hr.task for hr in runs if hr.task), return_exceptions=True)

    async def _roll(self) -> None:
        """Batch after batch; after each, the failures so far against max-fail and the
        batch's own (all of it failed: no further); the canary's hold and the pause
        between batches. Hosts of batches never started end `skipped` when the
        rollout stopped, `cancelled` when a person did."""
        limit = self.rollout.fail_limit(len(self._runs))
        last = len(self._batches)
        for i, names in enumerate(self._batches, 1):
            if self._stopping:
                break
            self.batch = i
            self._save()
            self.bus.publish(FanOutBatch(self.id, i, last, names, "started"))
            await self._wave([self._runs[n] for n in names])
            self.stopped = stop_reason(
                self.rollout, failed=failures(r.state for r in self.results.values()),
                limit=limit, batch=i, batches=last, batch_size=len(names),
                batch_failed=failures(self._runs[n].result.state for n in names))
            if self.stopped:
                break
            if i == last or self._stopping:
                continue
            if i == 1 and self.hold_canary:
                self.held = True
                self._save()
                self.bus.publish(FanOutBatch(self.id, i, last, names, "held"))
                self._wake.clear()
                await self._wake.wait()
                self.held = False
            if self.rollout.pause_between and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.rollout.pause_between)
        for hr in self._runs.values():
            if hr.task is None and not hr.result.final:
                if self.stopped:
                    self._set(hr, HostClass.SKIPPED.value,
                              reason=f"not started: the rollout stopped, {self.stopped}")
                else:
                    self._set(hr, HostClass.CANCELLED.value,
                              reason="cancelled before it started")

    def _log_path(self, name: str) -> Path:
        from core.store.fanouts import FanOutStore

        assert self.log_dir is not None
        return self.log_dir / FanOutStore.log_name(name)

    def _save(self) -> None:
        if self.store is not None:
            try:
                self.store.save(self.record())
            except OSError as e:
                import logging

                logging.getLogger("fleetdeck.fanout").error(
                    "fan-out #%s: cannot record it: %s", self.id, e)

    def _saved_soon(self) -> None:
        """A host's end reaches the record within SAVE_EVERY: `fanouts ID` and a console
        attached later see it while the rest runs, without a write per host."""
        if self._save_soon is None and self.store is not None:
            def save() -> None:
                self._save_soon = None
                if self.finished_at is None:
                    self._save()

            self._save_soon = asyncio.get_running_loop().call_later(SAVE_EVERY, save)

    def _done(self) -> None:
        if self._save_soon is not None:
            self._save_soon.cancel()
            self._save_soon = None
        self.finished_at = time.time()
        self.state = "cancelled" if self._stopping else "finished"
        self._save()
        self.bus.publish(FanOutDone(self.record()))

    def _publish(self, hr: _HostRun) -> None:
        self.bus.publish(FanOutHost(self.id, hr.result.to_dict()))

    def _set(self, hr: _HostRun, state: str, **kw: Any) -> None:
        r = hr.result
        r.state = state
        hr.out.ran = hr.out.ran or state == RUNNING
        for k, v in kw.items():
            setattr(r, k, v)
        if r.final:
            r.finished_at = time.time()
            r.digest = hr.out.digest
            hr.out.close()
            self._saved_soon()
        self._publish(hr)

    def _on_line(self, hr: _HostRun) -> Any:
        name = hr.result.host
        out = hr.out

        def on_line(stream: str, line: str) -> None:
            out.add(stream, line)
            hr.result.lines, hr.result.bytes = out.lines, out.bytes
            self.bus.publish(FanOutLine(self.id, name, stream, line[:MAX_EVENT_LINE],
                                        time.time()))

        return on_line

    async def _host(self, hr: _HostRun) -> None:
        r = hr.result
        try:
            async with contextlib.AsyncExitStack() as caps:
                host = self.inventory.get(r.host)
                for g in sorted(set(getattr(host, "groups", ())) & self._group_sems.keys()):
                    await caps.enter_async_context(self._group_sems[g])
                await caps.enter_async_context(self._sem)
                if self._stopping or hr.cancel.is_set():
                    self._set(hr, HostClass.CANCELLED.value, reason="cancelled before it started")
                    return
                r.started_at = time.time()
                problem = hr.out.open()
                if problem is not None:
                    self._set(hr, HostClass.FAILED.value, reason=problem)
                    return
                on_line = self._on_line(hr)
                if r.host == LOCAL_HOST:
                    await self._local(hr, on_line)
                else:
                    await self._remote(hr, on_line)
        except asyncio.CancelledError:
            if not r.final:
                how = {PENDING: " before it started", CONNECTING: " while connecting"}
                self._set(hr, HostClass.CANCELLED.value,
                          reason="cancelled" + how.get(r.state, ""))
        except Exception as e:  # a bug must not leave a host hanging as running
            if not r.final:
                self._set(hr, HostClass.FAILED.value, reason=f"fleetdeck error: {e}")
        finally:
            hr.out.close()

    async def _remote(self, hr: _HostRun, on_line: Any) -> None:
        host = self.inventory.get(hr.result.host) or next(
            h for h in self.hosts if h.name == hr.result.host)
        target = target_for(host, self.inventory)
        self._set(hr, CONNECTING)
        try:
            conn = await self.pool.connect(target, connect_timeout=self.connect_timeout)
        except SSHError as e:
            self._set(hr, e.cls.value, reason=str(e), fingerprint=e.fingerprint)
            return
        self._set(hr, RUNNING)
        if self.transfer is not None:
            await self._transfer(hr, conn)
            return
        command, sink, become = self.command, on_line, self._become_for(host)
        if become is not None:
            command, mark = become.wrap(command, self.kill_grace)
            sink = BecomeLines(mark, on_line)
        res = await run_command(conn, command, on_line=sink, timeout=self.timeout,
                                kill_grace=self.kill_grace, cancel=hr.cancel,
                                stdin_line=become.password if become else None)
        self.pool.touch(target)
        if isinstance(sink, BecomeLines) and not sink.became and not (
                res.cancelled or res.timed_out or res.lost):
            self._set(hr, HostClass.BECOME_FAILED.value, reason=sink.reason(),
                      exit_code=res.exit_code)
        elif res.cancelled:
            self._set(hr, HostClass.CANCELLED.value, reason="cancelled while running",
                      exit_code=res.exit_code)
        elif res.timed_out:
            self._set(hr, HostClass.TIMED_OUT.value, reason=f"timed out after "
                      f"{self.timeout:g}s; stopped on the host")
        elif res.lost:
            self._set(hr, HostClass.FAILED.value, reason=res.error or "connection lost")
        elif res.signal:
            self._set(hr, HostClass.FAILED.value, reason=f"killed by signal {res.signal}")
        elif res.exit_code == 0:
            self._set(hr, HostClass.OK.value, exit_code=0)
        else:
            self._set(hr, HostClass.FAILED.value, exit_code=res.exit_code,
                      reason=f"exit code {res.exit_code}")

    def _become_for(self, host: Any) -> Become | None:
        user = self.become or getattr(host, "become", None)
        return Become(user, self._become_password) if user else None

    async def _transfer(self, hr: _HostRun, conn: Any) -> None:
        """A push or pull on this host: cancelled or timed out like a command (its
        temporary file removed), ended `ok` with `changed` or `unchanged`."""
        from core.remote.sftp import CANCELLED, TIMED_OUT, bounded, pull, push

        assert self.transfer is not None
        out = await bounded(
            push(conn, self.transfer, hr.result.host) if self.transfer.kind == "push"
            else pull(conn, self.transfer, hr.result.host), hr.cancel, self.timeout)
        if out == CANCELLED:
            self._set(hr, HostClass.CANCELLED.value, reason="cancelled while running")
            return
        if out == TIMED_OUT:
            self._set(hr, HostClass.TIMED_OUT.value, reason=f"timed out after {self.timeout:g}s")
            return
        assert not isinstance(out, str)
        self.pool.touch(target_for(self.inventory[hr.result.host], self.inventory))
        if out.ok:
            self._set(hr, HostClass.OK.value, exit_code=0, changed=out.changed,
                      reason=out.reason)
        else:
            self._set(hr, HostClass.FAILED.value, reason=out.reason)

    async def _local(self, hr: _HostRun, on_line: Any) -> None:
        if self.transfer is not None or self.become:
            what = f"a {self.transfer.kind}" if self.transfer is not None else "become"
            self._set(hr, HostClass.FAILED.value, reason=f"{what} goes over SSH; 'local' "
                      "is this machine")
            return
        proc = LocalProcess(self.command, timeout=self.timeout, kill_grace=self.kill_grace,
                            on_line=on_line)
        error = await proc.start()
        if error is not None:
            self._set(hr, HostClass.FAILED.value, reason=error)
            return
        self._set(hr, RUNNING)
        watcher = asyncio.ensure_future(hr.cancel.wait())
        watcher.add_done_callback(lambda _: proc.cancel())
        try:
            outcome = await proc.wait()
        finally:
            watcher.cancel()
        if outcome.cancelled:
            self._set(hr, HostClass.CANCELLED.value, reason="cancelled while running")
        elif outcome.timed_out:
            self._set(hr, HostClass.TIMED_OUT.value, reason=f"timed out after {self.timeout:g}s")
        elif outcome.exit_code == 0:
            self._set(hr, HostClass.OK.value, exit_code=0)
        elif outcome.signal:
            self._set(hr, HostClass.FAILED.value, reason=f"killed by signal {outcome.signal}")
        else:
            self._set(hr, HostClass.FAILED.value, exit_code=outcome.exit_code,
                      reason=f"exit code {outcome.exit_code}")
