"""The Engine: wires config, schedules, store and runner, and holds the public methods.

Every action a person takes (run now, cancel, pause, resume) is one method here; the CLI
and the console call the same ones. Methods take plain arguments and return plain data
(dicts), so a remote client can call them over a socket later. State changes reach
screens only as events on `engine.bus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import getpass
import heapq
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.events import (
    EngineNotice,
    EventBus,
    JobChanged,
    OutputLine,
    RunFinished,
    RunQueued,
    RunRetrying,
    RunStarted,
)
from core.fleetconfig import Config
from core.jobs.config import Job
from core.jobs.process import MAX_EVENT_LINE, LocalProcess, group_alive, terminate_group
from core.jobs.runs import ACTIVE_STATES, Run, RunState, Trigger
from core.jobs.schedule import Schedule, ScheduleError, parse_schedule
from core.jobs.scheduler import Due, Scheduler
from core.remote.inventory import TargetError, resolve_targets
from core.store import StateLock, Store
from core.store.history import run_doc
from core.store.store import SUMMARY_INTERVAL

log = logging.getLogger("fleetdeck.engine")

SUCCESS_WINDOW = 20  # recent results kept per job for its success rate
MAX_SKIPPED_RECORDS = 100  # skipped occurrences recorded one by one; beyond, one summary

_QUEUED = RunState.QUEUED.value
COMMIT_DELAY = 0.02  # seconds: changes made within it share one commit


class EngineError(Exception):
    """A request the engine refuses; the message is one line for a person."""


@dataclass
class _Active:
    run: Run
    job: Job | None
    finished: bool = False
    _done: asyncio.Event | None = None  # made when somebody waits: most runs nobody does
    process: LocalProcess | None = None
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    waiting_retry: asyncio.TimerHandle | None = None
    after: set[int] = field(default_factory=set)  # run ids this one must wait for

    async def wait_done(self) -> None:
        if not self.finished:
            if self._done is None:
                self._done = asyncio.Event()
            await self._done.wait()

    def set_done(self) -> None:
        self.finished = True
        if self._done is not None:
            self._done.set()


def _run_dict(run: Run) -> dict[str, Any]:
    """``run.to_dict()``, the same dict, made without ``asdict``'s deep-copy machinery
    (it was the larger part of the cost of queueing a run)."""
    try:
        return run_doc(run)
    except TypeError:  # something run_doc does not copy itself: let asdict do it
        return run.to_dict()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


class Engine:
    def __init__(
        self,
        config: Config,
        state_dir: Path,
        *,
        clock: Any = time.time,
        max_concurrent_runs: int | None = None,
    ) -> None:
        self.config = config
        self.state_dir = Path(state_dir)
        self.bus = EventBus()
        self.clock = clock
        self.max_concurrent = max_concurrent_runs or config.engine.max_concurrent_runs
        self.store: Store | None = None
        self._lock: StateLock | None = None
        self._schedules: dict[str, Schedule] = {}
        self._scheduler = Scheduler(self._on_due, clock)
        self._scheduler_task: asyncio.Task[None] | None = None
        self._active: dict[int, _Active] = {}
        self._active_by_job: dict[str, dict[int, _Active]] = {}  # the same, by job name
        # the queue (see _pump): run ids free to start, a heap; runs waiting for others
        self._ready: list[int] = []
        self._ready_new: list[int] = []  # joined _ready since the last pump
        self._slot_reason = ""  # what every run in _ready not in _ready_new shows
        self._blocked: dict[int, _Active] = {}
        self._waiting_on: dict[int, set[int]] = {}  # run id -> blocked runs waiting for it
        self._recheck: set[int] = set()  # blocked runs to look at in the next pump
        self._running = 0
        self._commit_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._stopping = False
        self._services: list[Any] = []
        self._fanouts: Any = None
        self._health: Any = None
        self._logs: Any = None
        self._pid = os.getpid()
        self._summary_timer = False
        self._changed_jobs: set[str] = set()
        self._targets_of: object = None  # the inventory _targets_cache was resolved against
        self._targets_cache: dict[str, tuple[str, ...]] = {}
        self._parse_schedules()

    def record_action(self, action: str, targets: list[str] | tuple[str, ...] = (), *,
                      detail: str = "", via: str = "console", uid: int | None = None) -> None:
        """Append a person's action to the audit trail (core/audit.py). A daemon's socket
        records its own (with the peer's uid); this is for the console and the CLI."""
        from core.audit import AuditLog

        try:
            AuditLog(self.state_dir).record(action, targets, detail=detail, via=via, uid=uid)
        except OSError as e:
            log.error("cannot write the audit trail: %s", e)

    @property
    def health(self) -> Any:
        """The HealthMonitor (core.health.monitor) if one is attached, else None."""
        return self._health

    @property
    def logs(self) -> Any:
        """The LogMonitor (core.logs.monitor) if one is attached, else None."""
        return self._logs

    @property
    def fanouts(self) -> Any:
        """Fan-outs started from here (core.remote.fanouts.FanOuts), over the engine's pool."""
        if self._fanouts is None:
            from core.remote.fanouts import FanOuts

            self._fanouts = FanOuts(self)
        return self._fanouts

    def add_service(self, service: Any) -> None:
        """Attach a part that lives as long as the engine (health monitor, notifier...).

        It needs `async start(engine)` and `async stop()`; started after the engine,
        stopped before it, in reverse order.
        """
        self._services.append(service)

    @property
    def alerts(self) -> Any:
        """The AlertManager (core.alerts.manager) attached with `attach_alerts`, or None."""
        from core.alerts.manager import alert_manager

        return alert_manager(self)

    # ------------------------------------------------------------------ life cycle ----
    def _parse_schedules(self) -> None:
        self._schedules = {}
        for job in self.config.jobs.values():
            if job.schedule:
                try:
                    self._schedules[job.name] = parse_schedule(job.schedule, job.timezone)
                except ScheduleError as e:  # config validation normally catches this first
                    log.error("job %s: %s", job.name, e, extra={"job": job.name})

    def apply_config(self, config: Config) -> dict[str, list[str]]:
        """Take a new (valid) config without stopping: running runs go on with the job
        they started with; changed jobs take effect at their next occurrence; removed
        jobs stop being scheduled (their history stays). Returns what changed."""
        old = self.config
        added = sorted(set(config.jobs) - set(old.jobs))
        removed = sorted(set(old.jobs) - set(config.jobs))
        changed = sorted(n for n in set(config.jobs) & set(old.jobs)
                         if config.jobs[n] != old.jobs[n])
        self.config = config
        self._parse_schedules()
        if self._started and self._scheduler_task is not None:
            now = self.clock()
            for name in removed:
                self._scheduler.remove_job(name)
            for name in added + changed:
                self._schedule_job(config.jobs[name], now)
        for name in added + changed:
            self.bus.publish(JobChanged(self._job_info(config.jobs[name])))
        summary = {"added": added, "changed": changed, "removed": removed, "services": []}
        if self._started:
            for service in self._services:
                reconfigure = getattr(service, "reconfigure", None)
                if reconfigure is not None:
                    summary["services"] += reconfigure(config)
        self._notice("info", "config reloaded: " + (", ".join(
            f"{len(v)} {k}" for k, v in summary.items() if v) or "nothing changed"))
        return summary

    def open_view(self) -> None:
        """Open the state read-only, without the lock: for listings while a daemon runs."""
        self.store = Store.open(self.state_dir, read_only=True)

    async def start(self, *, scheduling: bool = True) -> None:
        """Take the state directory, recover what a dead engine left, start scheduling."""
        self._lock = StateLock(self.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock.acquire()
        try:
            self.store = Store.open(self.state_dir, retention=self.config.engine.history_retention)
            await self._recover()
            self._started = True
            # services (alerts, health) first: they must see the first tick's events,
            # misfires of the downtime included
            for service in self._services:
                await service.start(self)
            if scheduling:
                self._schedule_all()
                self._scheduler_task = asyncio.create_task(self._scheduler.run())
            await self.store.commit_async()
        except BaseException:
            self._lock.release()
            raise
        log.info("engine started: %d jobs, %d scheduled", len(self.config.jobs),
                 len(self._scheduler))

    async def stop(self) -> None:
        """Stop scheduling, end what runs (recorded `interrupted`), commit, release."""
        if not self._started:
            return
        self._stopping = True
        for service in reversed(self._services):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %r failed", service)
        if self._scheduler_task:
            self._scheduler_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler_task
        reason = "fleetdeck stopped while it ran"
        for act in list(self._active.values()):
            if act.task is None:
                self._finish(act, RunState.INTERRUPTED, "fleetdeck stopped before it started")
            else:
                act.cancel_reason = reason
        running = [a.task for a in self._active.values() if a.task is not None]
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if getattr(self, "_fleetdeck_ssh_pool", None) is not None:  # remote hosts ran
            from core.remote.runs import close_engine_pool

            await close_engine_pool(self)
        assert self.store is not None
        self.store.commit()
        self.store.close()
        if self._lock:
            self._lock.release()
        self._started = False
        log.info("engine stopped")

    async def _recover(self) -> None:
        """Runs a dead engine left queued or running become `interrupted`."""
        assert self.store is not None
        for run in self.store.active_runs():
            holder = f"fleetdeck (pid {run.engine_pid})" if run.engine_pid else "fleetdeck"
            if run.state == RunState.QUEUED:
                run.reason = f"{holder} died before it started"
            else:
                run.reason = f"{holder} died while it ran"
                if run.pgid and group_alive(run.pgid, run.proc_started):
                    killed = await terminate_group(run.pgid, 5.0)
                    how = "killed" if killed else "terminated"
                    run.reason += f"; its process group {run.pgid} was still alive and was {how}"
            run.state = RunState.INTERRUPTED.value
            run.finished_at = self.clock()
            self.store.save_run(run)
            self._note_result(run)
            log.warning("run #%d of %s: %s", run.id, run.job, run.reason,
                        extra={"job": run.job, "run_id": run.id})
            self._notice("warning", f"run #{run.id} of {run.job}: {run.reason}", run.job, run.id)

    def _schedule_all(self) -> None:
        assert self.store is not None
        now = self.clock()
        for job in self.config.jobs.values():
            self._schedule_job(job, now)

    def _schedule_job(self, job: Job, now: float) -> None:
        assert self.store is not None
        sched = self._schedules.get(job.name)
        state = self.store.job_state(job.name)
        if sched is None or not job.enabled or state.get("paused"):
            self._scheduler.remove_job(job.name)
            return
        if "first_seen" not in state:
            self.store.update_job_state(job.name, first_seen=now)
            state = self.store.job_state(job.name)
        # resume from the last occurrence claimed, so downtime shows up as misfires
        after = state.get("last_occurrence") or state.get("first_seen") or now
        if state.get("resumed_at"):
            after = max(after, state["resumed_at"])
        self._scheduler.set_job(job.name, sched, after=min(after, now), jitter=job.jitter)

    # ------------------------------------------------------------- public: reading ----
    def list_jobs(self) -> list[dict[str, Any]]:
        return [self._job_info(job) for job in self.config.jobs.values()]

    def get_job(self, name: str) -> dict[str, Any]:
        return self._job_info(self._job(name))

    def list_runs(
        self,
        *,
        job: str | None = None,
        states: list[str] | None = None,
        since: float | None = None,
        limit: int | None = 50,
    ) -> list[dict[str, Any]]:
        assert self.store is not None
        runs = self.store.list_runs(job=job, states=states, since=since, limit=limit)
        return [_run_dict(r) for r in runs]

    def get_run(self, run_id: int) -> dict[str, Any]:
        act = self._active.get(run_id)
        if act is not None:
            return _run_dict(act.run)
        assert self.store is not None
        record = self.store.get_run_record(run_id)
        if record is None:
            raise EngineError(f"no run #{run_id}")
        return record

    def queue(self) -> list[dict[str, Any]]:
        """Queued and running runs, running first, each with the reason it waits."""
        acts = sorted(self._active.values(), key=lambda a: (a.run.state != "running", a.run.id))
        return [_run_dict(a.run) for a in acts]

    def run_log_path(self, run_id: int) -> Path:
        assert self.store is not None
        self._run(run_id)
        return self.store.log_path(run_id)

    async def wait_run(self, run_id: int) -> dict[str, Any]:
        """Wait until a run reaches a final state; returns its record."""
        act = self._active.get(run_id)
        if act is not None:
            await act.wait_done()
        return self.get_run(run_id)

    # ------------------------------------------------------------- public: actions ----
    async def run_job(self, name: str, *, requested_by: str | None = None,
                      trigger: Trigger = Trigger.MANUAL, env: dict[str, str] | None = None,
                      ) -> list[dict[str, Any]]:
        """Run a job now on each of its targets; returns the new runs. `env` adds to the
        job's environment for these runs (a file-change trigger's changed paths)."""
        job = self._job(name)
        self._require_started()
        if env:
            job = dataclasses.replace(job, env={**job.env, **env})
        try:
            hosts = self._targets(job.targets)
        except TargetError as e:
            raise EngineError(f"job {name}: {e}") from None
        who = requested_by or _user()
        runs = [self._create_run(job, host, trigger, None, who) for host in hosts]
        log.info("run now: %s by %s", name, who, extra={"job": name})
        await self._commit_now()
        self._pump()
        return [_run_dict(r) for r in runs]

    async def run_action(self, name: str, command: str, host: str, *, trigger: Trigger,
                         timeout: float | None = None, requested_by: str | None = None,
                         ) -> dict[str, Any]:
        """Run a command that is not a configured job (a watchdog's restart) as a run in
        history under `name`, on `host`, with the engine's runner and SSH pool."""
        self._require_started()
        d = self.config.defaults
        job = Job(name=name, command=command, targets=host, timeout=timeout,
                  kill_grace=d.kill_grace, overlap="allow")
        run = self._create_run(job, host, trigger, None, requested_by or "fleetdeck")
        await self._commit_now()
        self._pump()
        return _run_dict(run)

    async def cancel_run(self, run_id: int, *, requested_by: str | None = None) -> dict[str, Any]:
        self._require_started()
        act = self._active.get(run_id)
        if act is None:
            run = self._run(run_id)
            raise EngineError(f"run #{run_id} is not active (it is {run.state})")
        who = requested_by or _user()
        reason = f"cancelled by {who}"
        log.info("cancel run #%d of %s by %s", run_id, act.run.job, who,
                 extra={"job": act.run.job, "run_id": run_id})
        self._cancel(act, reason)
        await act.wait_done()
        return _run_dict(act.run)

    async def pause_job(self, name: str, *, requested_by: str | None = None) -> dict[str, Any]:
        job = self._job(name)
        self._require_started()
        assert self.store is not None
        self.store.update_job_state(name, paused=True, paused_by=requested_by or _user())
        self._scheduler.remove_job(name)
        await self._commit_now()
        info = self._job_info(job)
        self.bus.publish(JobChanged(info))
        log.info("paused %s", name, extra={"job": name})
        return info

    async def resume_job(self, name: str, *, requested_by: str | None = None) -> dict[str, Any]:
        job = self._job(name)
        self._require_started()
        assert self.store is not None
        # a paused job does not catch up on what it missed while paused
        self.store.update_job_state(name, paused=False, paused_by=None, resumed_at=self.clock())
        self._schedule_job(job, self.clock())
        await self._commit_now()
        info = self._job_info(job)
        self.bus.publish(JobChanged(info))
        log.info("resumed %s", name, extra={"job": name})
        return info

    # ----------------------------------------------------------------- internals ------
    def _targets(self, pattern: str) -> tuple[str, ...]:
        """The hosts a target pattern names, resolved once per inventory (TargetError)."""
        hosts = self.config.hosts
        if self._targets_of is not hosts:  # a new config: resolve afresh
            self._targets_of, self._targets_cache = hosts, {}
        found = self._targets_cache.get(pattern)
        if found is None:
            found = self._targets_cache[pattern] = tuple(resolve_targets(pattern, hosts))
        return found

    def _require_started(self) -> None:
        if not self._started:
            raise EngineError("the engine is not running")

    def _job(self, name: str) -> Job:
        job = self.config.jobs.get(name)
        if job is None:
            raise EngineError(f"no job named {name!r}")
        return job

    def _run(self, run_id: int) -> Run:
        act = self._active.get(run_id)
        if act is not None:
            return act.run
        assert self.store is not None
        run = self.store.get_run(run_id)
        if run is None:
            raise EngineError(f"no run #{run_id}")
        return run

    def _job_info(self, job: Job) -> dict[str, Any]:
        assert self.store is not None
        state = self.store.job_state_view(job.name)
        sched = self._schedules.get(job.name)
        recent = state.get("recent", [])
        ok = sum(1 for s in recent if s == RunState.SUCCEEDED)
        return {
            "name": job.name,
            "command": job.command,
            "targets": job.targets,
            "schedule": job.schedule,
            "schedule_text": sched.describe() if sched else "on demand",
            "timezone": sched.timezone if sched else None,
            "next_fire": self._next_fire(job, sched, state),
            "enabled": job.enabled,
            "paused": bool(state.get("paused")),
            "last_run": dict(state["last_run"]) if state.get("last_run") else None,
            "success_rate": (ok / len(recent)) if recent else None,
            "recent": list(recent),
            "active": sorted(self._active_by_job.get(job.name, ())),
            "tags": list(job.tags),
            "description": job.description,
        }

    def _next_fire(self, job: Job, sched: Schedule | None, state: dict[str, Any]) -> float | None:
        if self._scheduler_task is not None:
            return self._scheduler.next_fire(job.name)
        # a read-only view (no scheduler of our own): compute it from the schedule
        if sched is None or not job.enabled or state.get("paused"):
            return None
        return sched.next_after(max(self.clock(), state.get("last_occurrence") or 0))

    def _notice(self, level: str, message: str, job: str | None = None,
                run_id: int | None = None) -> None:
        self.bus.publish(EngineNotice(level, message, job, run_id, self.clock()))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # durability: changes are batched into one atomic commit (group commit) -------------
    def _dirty(self) -> None:
        if self._commit_task is None or self._commit_task.done():
            self._commit_task = self._spawn(self._commit_soon())

    async def _commit_soon(self) -> None:
        # Changes of the next COMMIT_DELAY share one write: a busy engine rewrites its
        # head segment ~50 times a second, not once per run. What must be on disk before
        # something happens (an occurrence claim before its run starts) uses _commit_now.
        await asyncio.sleep(COMMIT_DELAY)
        assert self.store is not None
        try:
            await self.store.commit_async()
        except Exception:
            log.exception("writing state failed")

    async def _commit_now(self) -> None:
        assert self.store is not None
        await self.store.commit_async()

    # scheduling ----------------------------------------------------------------------
    def _on_due(self, batch: list[Due], now: float) -> None:
        """Turn due occurrences into runs (or recorded skips), then persist and start."""
        assert self.store is not None
        created = self._dispatch(batch, now)  # the scheduler paused the GC for the batch
        if created or batch:
            self._spawn(self._persist_then_pump())

    def _dispatch(self, batch: list[Due], now: float) -> bool:
        assert self.store is not None
        created = False
        claims: dict[str, float] = {}
        runs: list[tuple[Run, dict[str, Any]]] = []
        for due in batch:
            job = self.config.jobs.get(due.job)
            if job is None:
                continue
            to_run, to_skip = self._apply_misfire(job, due, now)
            claims[job.name] = due.more_until or due.occurrences[-1]
            if to_skip or due.more:
                self._record_batch(runs, claims)  # skips take ids: keep records in id order
                runs, claims = [], {}
                self._record_skips(job, to_skip, due)
            for occ, trigger in to_run:
                try:
                    hosts = self._targets(job.targets)
                except TargetError as e:
                    self._notice("error", f"job {job.name}: {e}", job.name)
                    continue
                for host in hosts:
                    self._create_run(job, host, trigger, occ, None, runs)
                    created = True
        self._record_batch(runs, claims)
        return created

    async def _persist_then_pump(self) -> None:
        # the occurrence keys are on disk before anything starts: no occurrence runs twice
        await self._commit_now()
        self._pump()

    def _apply_misfire(
        self, job: Job, due: Due, now: float
    ) -> tuple[list[tuple[float, Trigger]], list[float]]:
        if len(due.occurrences) == 1 and now - due.fire_times[0] <= job.misfire_grace:
            return [(due.occurrences[0], Trigger.SCHEDULE)], []  # the usual case: on time
        ontime = [o for o, f in zip(due.occurrences, due.fire_times, strict=True)
                  if now - f <= job.misfire_grace]
        late = [o for o, f in zip(due.occurrences, due.fire_times, strict=True)
                if now - f > job.misfire_grace]
        if not late:
            return [(o, Trigger.SCHEDULE) for o in ontime], []
        policy = job.misfire
        if policy == "run_all":
            caught_up = [(o, Trigger.MISFIRE) for o in late]
            return caught_up + [(o, Trigger.SCHEDULE) for o in ontime], []
        if policy == "run_once" and not ontime:
            return [(late[-1], Trigger.MISFIRE)], late[:-1]
        return [(o, Trigger.SCHEDULE) for o in ontime], late

    def _record_skips(self, job: Job, skipped: list[float], due: Due) -> None:
        if not skipped and not due.more:
            return
        assert self.store is not None
        shown = skipped[-MAX_SKIPPED_RECORDS:]
        hidden = len(skipped) - len(shown) + due.more
        reason = f"missed while fleetdeck was down or busy (misfire={job.misfire})"
        for occ in shown:
            self._record_skipped(job, occ, reason)
        if hidden:
            self._notice("warning", f"job {job.name}: {hidden} more missed occurrences skipped",
                         job.name)
            log.warning("job %s: %d more missed occurrences skipped", job.name, hidden,
                        extra={"job": job.name})
        log.warning("job %s: %d occurrences missed, skipped (misfire=%s)", job.name,
                    len(skipped) + due.more, job.misfire, extra={"job": job.name})

    def _record_skipped(self, job: Job, occ: float | None, reason: str,
                        host: str = "local") -> Run:
        assert self.store is not None
        now = self.clock()
        run = Run(
            id=self.store.next_run_id(), job=job.name, host=host, command=job.command,
            trigger=Trigger.SCHEDULE.value, occurrence=occ, state=RunState.SKIPPED.value,
            reason=reason, queued_at=now, finished_at=now, engine_pid=os.getpid(),
        )
        self.store.add_run(run)
        self._note_result(run)
        self.bus.publish(RunFinished(_run_dict(run)))
        self._dirty()
        return run

    # runs ----------------------------------------------------------------------------
    def _create_run(self, job: Job, host: str, trigger: Trigger, occ: float | None,
                    who: str | None, batch: list[tuple[Run, dict[str, Any]]] | None = None,
                    ) -> Run:
        """A new run of `job` on `host`, queued behind what its overlap policy says.

        With ``batch`` the run is queued and announced at once but recorded in the store
        later, with the rest of the batch (``_record_batch``), in the same loop turn.
        """
        assert self.store is not None
        policy = job.overlap
        same = [] if policy == "allow" else [
            a for a in self._active_by_job.get(job.name, {}).values() if a.run.host == host]
        if policy == "skip" and same and trigger != Trigger.MANUAL:
            ids = ", ".join(f"#{a.run.id}" for a in same)
            return self._record_skipped(job, occ, f"run {ids} still active (overlap=skip)", host)
        run = Run(
            id=self.store.next_run_id(), job=job.name, host=host, command=job.command,
            trigger=trigger.value, occurrence=occ, state=_QUEUED,
            queued_at=self.clock(), max_attempts=1 + job.retry.retries,
            engine_pid=self._pid, requested_by=who,
        )
        act = _Active(run, job)
        if policy == "replace" and same:
            for other in same:
                self._cancel(other, f"replaced by run #{run.id} (overlap=replace)")
            act.after = {a.run.id for a in same}
        elif policy in ("queue", "skip") and same:  # skip: a person's run-now waits its turn
            act.after = {a.run.id for a in same}
        self._active[run.id] = act
        self._active_by_job.setdefault(job.name, {})[run.id] = act
        self._queue(act)
        if batch is None:
            record = self.store.add_run(run)  # the same as run.to_dict(), made once
        else:  # run_doc(run) without its checks: every field was just set from plain data
            doc = vars(run).copy()
            doc["attempts"] = []
            batch.append((run, doc))
            record = doc.copy()
            record["attempts"] = []
        self.bus.publish(RunQueued(record))
        return run

    def _record_batch(self, batch: list[tuple[Run, dict[str, Any]]],
                      claims: dict[str, float]) -> None:
        assert self.store is not None
        self.store.claim_occurrences(claims)
        self.store.add_runs([run for run, _ in batch], [doc for _, doc in batch])

    def _pump(self) -> None:
        """Start queued runs while there are free slots and nothing they wait for.

        The queue, oldest (lowest id) first, is kept in two parts so that a pump costs
        what changed, not the length of the queue: runs waiting for other runs
        (``_blocked``, looked at again only when one of those leaves), and runs free
        to start (``_ready``, a heap by id), started while slots are free; the rest
        show the free-slot reason, rewritten for all only when that text changes.
        Runs whose reason changed are announced (RunQueued) oldest first.
        """
        if self._stopping:
            return
        changed: list[_Active] = []
        if self._recheck:
            for run_id in sorted(self._recheck):
                act = self._blocked.get(run_id)
                if act is None:
                    continue
                act.after = {r for r in act.after if r in self._active}
                if act.after:
                    self._block(act)
                    reason = self._after_reason(act)
                    if act.run.reason != reason:
                        act.run.reason = reason
                        changed.append(act)
                else:
                    del self._blocked[run_id]
                    heapq.heappush(self._ready, run_id)
                    self._ready_new.append(run_id)
            self._recheck.clear()
        ready = self._ready
        while ready and self._running < self.max_concurrent:
            act = self._active.get(heapq.heappop(ready))
            if act is None or act.run.state != RunState.QUEUED:
                continue
            self._running += 1
            act.task = asyncio.ensure_future(self._execute(act))
        if ready:
            reason = f"waiting for a free slot ({self._running}/{self.max_concurrent} running)"
            if reason != self._slot_reason:  # every waiting run shows the new count
                self._slot_reason = reason
                self._ready_new = list(ready)
            for run_id in self._ready_new:
                act = self._active.get(run_id)
                if act is None or act.run.state != RunState.QUEUED or act.task is not None:
                    continue
                if act.run.reason != reason:
                    act.run.reason = reason
                    changed.append(act)
        self._ready_new = []
        if len(ready) > 64 and len(ready) > 2 * len(self._active):  # drop finished ones
            self._ready = [i for i in ready if i in self._active]
            heapq.heapify(self._ready)
        if changed:
            changed.sort(key=lambda a: a.run.id)
        for act in changed[:200]:  # reasons are for display; don't flood on a huge queue
            self.bus.publish(RunQueued(_run_dict(act.run)))

    def _queue(self, act: _Active) -> None:
        """A new run joins the queue: blocked behind the runs in ``act.after``, or ready."""
        if act.after:
            self._blocked[act.run.id] = act
            self._block(act)
            self._recheck.add(act.run.id)
        else:
            heapq.heappush(self._ready, act.run.id)
            self._ready_new.append(act.run.id)

    def _block(self, act: _Active) -> None:
        for r in act.after:
            if r in self._active:  # one already gone is pruned at the recheck
                self._waiting_on.setdefault(r, set()).add(act.run.id)

    @staticmethod
    def _after_reason(act: _Active) -> str:
        reason = "waiting for run " + ", ".join(f"#{r}" for r in sorted(act.after))
        return reason + f" (overlap={act.job.overlap if act.job else 'queue'})"

    def _cancel(self, act: _Active, reason: str) -> None:
        if act.run.state == RunState.QUEUED:
            if act.waiting_retry:
                act.waiting_retry.cancel()
            if act.task is None:
                self._finish(act, RunState.CANCELLED, reason)
                self._pump()
                return
        act.cancel_reason = reason
        if act.process is not None:
            act.process.cancel()

    def _finish(self, act: _Active, state: RunState, reason: str) -> None:
        assert self.store is not None
        run = act.run
        run.state = state.value
        run.reason = reason
        run.finished_at = self.clock()
        self.store.save_run(run)
        self._note_result(run)
        self._active.pop(run.id, None)
        self._blocked.pop(run.id, None)
        self._recheck.update(self._waiting_on.pop(run.id, ()))
        of_job = self._active_by_job.get(run.job)
        if of_job is not None:
            of_job.pop(run.id, None)
            if not of_job:
                del self._active_by_job[run.job]
        act.set_done()
        self.bus.publish(RunFinished(_run_dict(run)))
        self._dirty()
        self._job_changed(run.job)

    def _job_changed(self, name: str) -> None:
        """Announce a job's new summary once per loop turn, however many of its runs
        finished in it (a burst of runs is one JobChanged per job, not one per run)."""
        if not self._changed_jobs:
            asyncio.get_running_loop().call_soon(self._announce_jobs)
        self._changed_jobs.add(name)

    def _announce_jobs(self) -> None:
        names, self._changed_jobs = self._changed_jobs, set()
        for name in sorted(names):
            job = self.config.jobs.get(name)
            if job is not None:
                self.bus.publish(JobChanged(self._job_info(job)))

    def _note_result(self, run: Run) -> None:
        assert self.store is not None
        state = self.store.job_state_view(run.job)
        recent = (state.get("recent") or [])[-(SUCCESS_WINDOW - 1):] + [run.state]
        self.store.update_job_summary(
            run.job,
            recent=recent,
            last_run={"id": run.id, "state": run.state, "finished_at": run.finished_at,
                      "exit_code": run.exit_code, "host": run.host},
        )
        if self._started and not self._stopping and not self._summary_timer:
            # the summary reaches the disk soon, with one timer for any number of runs
            self._summary_timer = True
            asyncio.get_running_loop().call_later(SUMMARY_INTERVAL + 0.1, self._summary_due)

    def _summary_due(self) -> None:
        self._summary_timer = False
        self._dirty()

    async def _execute(self, act: _Active) -> None:
        """One run from start to a final state, attempts and retries included."""
        run, job = act.run, act.job
        assert self.store is not None and job is not None
        logfile = None
        try:
            logfile = _LazyLog(functools.partial(self.store.log_path, run.id))
            state, reason = await self._attempts(act, job, logfile)
        except asyncio.CancelledError:
            state, reason = RunState.INTERRUPTED, act.cancel_reason or "fleetdeck stopped"
        except Exception as e:  # a bug must not leave a run hanging as `running`
            log.exception("run #%d failed inside fleetdeck", run.id)
            state, reason = RunState.FAILED, f"fleetdeck error: {e}"
        finally:
            if logfile is not None:
                logfile.close()
            self._running -= 1
        self._finish(act, state, reason)
        log.info("run #%d of %s %s%s", run.id, run.job, state.value,
                 f": {reason}" if reason else "", extra={"job": run.job, "run_id": run.id})
        self._pump()

    async def _attempts(self, act: _Active, job: Job, logfile: Any) -> tuple[RunState, str]:
        run = act.run
        written = 0
        cap = self.config.engine.log_retention_bytes
        truncated = False

        def on_line(stream: str, line: str) -> None:
            nonlocal written, truncated
            if written < cap:
                logfile.write(line + "\n")
                written += len(line) + 1
            elif not truncated:
                truncated = True
                logfile.write(f"[fleetdeck] log capped at {cap} bytes; output dropped\n")
            self.bus.publish(OutputLine(run.id, run.job, run.host, stream,
                                        line[:MAX_EVENT_LINE], time.time()))

        def note(text: str) -> None:
            logfile.write(f"[fleetdeck] {text}\n")
            self.bus.publish(OutputLine(run.id, run.job, run.host, "fleetdeck", text,
                                        time.time()))

        while True:
            if run.host != "local":
                from core.remote.runs import remote_attempts

                return await remote_attempts(self, act, job, on_line, note)
            env = {
                **job.env,
                "FLEETDECK_JOB": job.name,
                "FLEETDECK_RUN_ID": str(run.id),
                "FLEETDECK_ATTEMPT": str(run.attempt),
            }
            if run.occurrence is not None:
                env["FLEETDECK_SCHEDULED_AT"] = str(int(run.occurrence))
            if run.attempt > 1:
                note(f"attempt {run.attempt} of {run.max_attempts}")
            proc = LocalProcess(job.command, env=env, cwd=job.cwd, timeout=job.timeout,
                                kill_grace=job.kill_grace, on_line=on_line)
            act.process = proc
            error = await proc.start()
            started = self.clock()
            if run.started_at is None:
                run.started_at = started
            attempt = {"number": run.attempt, "started_at": started}
            if error is None:
                assert proc.info is not None
                run.pid, run.pgid, run.proc_started = (proc.info.pid, proc.info.pgid,
                                                       proc.info.started)
            run.state = RunState.RUNNING.value
            run.reason = ""
            self.store.save_run(run)  # type: ignore[union-attr]
            self.bus.publish(RunStarted(_run_dict(run)))
            self._dirty()
            if error is not None:
                note(error)
                attempt.update(finished_at=self.clock(), state=RunState.FAILED.value)
                run.attempts.append(attempt)
                return RunState.FAILED, error
            if act.cancel_reason:  # cancelled while it was starting
                proc.cancel()
            outcome = await proc.wait()
            act.process = None
            run.exit_code = outcome.exit_code
            if outcome.cancelled:
                state, reason = RunState.CANCELLED, act.cancel_reason or "cancelled"
            elif outcome.timed_out:
                state, reason = RunState.TIMED_OUT, f"timed out after {job.timeout:g}s"
            elif outcome.exit_code == 0:
                state, reason = RunState.SUCCEEDED, ""
            elif outcome.signal:
                state, reason = RunState.FAILED, f"killed by signal {outcome.signal}"
            else:
                state, reason = RunState.FAILED, f"exit code {outcome.exit_code}"
            attempt.update(finished_at=self.clock(), exit_code=outcome.exit_code,
                           state=state.value)
            run.attempts.append(attempt)
            if state in (RunState.FAILED, RunState.TIMED_OUT) and run.attempt < run.max_attempts:
                await self._wait_to_retry(act, job, state, reason, note)
                if act.cancel_reason:
                    return RunState.CANCELLED, act.cancel_reason
                continue
            return state, reason

    async def _wait_to_retry(self, act: _Active, job: Job, state: RunState, reason: str,
                             note: Any) -> None:
        """Record the next attempt and wait its backoff with the slot given back.

        Shared by local and remote runs; the caller checks `act.cancel_reason` after.
        """
        run = act.run
        delay = self._backoff(job, run.attempt)
        note(f"attempt {run.attempt} {state.value} ({reason}); retrying in {delay:.1f}s")
        run.attempt += 1
        run.state = RunState.QUEUED.value
        run.reason = f"retry {run.attempt}/{run.max_attempts} in {delay:.0f}s after: {reason}"
        run.pid = run.pgid = run.proc_started = None
        assert self.store is not None
        self.store.save_run(run)
        self.bus.publish(RunRetrying(_run_dict(run), delay))
        self._dirty()
        self._running -= 1  # the slot is given back while it waits
        self._pump()
        try:
            await self._sleep_unless_cancelled(act, delay)
        finally:
            self._running += 1

    async def _sleep_unless_cancelled(self, act: _Active, delay: float) -> None:
        loop = asyncio.get_running_loop()
        woke = asyncio.Event()
        act.waiting_retry = loop.call_later(delay, woke.set)
        original = act.process
        act.process = _RetryWait(woke)  # type: ignore[assignment]
        try:
            await woke.wait()
        finally:
            act.waiting_retry.cancel()
            act.waiting_retry = None
            act.process = original

    @staticmethod
    def _backoff(job: Job, attempt: int) -> float:
        base = min(job.retry.backoff_max, job.retry.backoff * (2 ** (attempt - 1)))
        spread = base * job.retry.jitter
        return max(0.0, base + random.uniform(-spread, spread))


class _LazyLog:
    """A run's log file, created at its first line: a silent run costs no file."""

    def __init__(self, path: Callable[[], Path]) -> None:
        self._path = path  # asked at the first line: its folder is made then
        self._file: Any = None

    def write(self, text: str) -> None:
        if self._file is None:
            fd = os.open(self._path(), os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
            self._file = open(fd, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._file.write(text)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _RetryWait:
    """Stands in for the process while a run waits to retry, so cancel() wakes it."""

    def __init__(self, woke: asyncio.Event) -> None:
        self._woke = woke

    def cancel(self) -> None:
        self._woke.set()


def active_states() -> tuple[str, ...]:
    return tuple(s.value for s in ACTIVE_STATES)
