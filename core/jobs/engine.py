"""The Engine: wires config, schedules, store and runner, and holds the public methods.

Every action a person takes (run now, cancel, pause, resume) is one method here; the CLI
and the console call the same ones. Methods take plain arguments and return plain data
(dicts), so a remote client can call them over a socket later. State changes reach
screens only as events on `engine.bus`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from core.api import Actor
from core.cluster.role import ClusterRole
from core.events import (
    EngineNotice,
    EventBus,
    JobChanged,
)
from core.fleetconfig import Config
from core.jobs.active import ActiveRun, EngineError, NotFound, run_dict
from core.jobs.chains import Chains
from core.jobs.config import Job
from core.jobs.dispatch import Dispatch
from core.jobs.ending import Ending
from core.jobs.execution import Execution
from core.jobs.groups import find_run_groups, group_alive, terminate_group
from core.jobs.rolling import JobRollouts
from core.jobs.runs import FINAL_STATES, Run, RunState, Trigger, filter_problem
from core.jobs.schedule import Schedule, ScheduleError, parse_schedule
from core.jobs.scheduler import Due, Scheduler
from core.remote.inventory import TargetError, resolve_targets
from core.services import Services
from core.store import StateLock, Store
from core.workflows.actions import Workflows

log = logging.getLogger("fleetdeck.engine")


class Engine(Ending, Dispatch, Chains, ClusterRole, Execution, Workflows, Services):
    attached = False  # this process runs the engine (see core.control.attached)

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
        self._active: dict[int, ActiveRun] = {}
        self._active_by_job: dict[str, dict[int, ActiveRun]] = {}  # the same, by job name
        # the queue (see _pump): run ids free to start, a heap; runs waiting for others
        self._ready: list[int] = []
        self._ready_new: list[int] = []  # joined _ready since the last pump
        self._slot_reason = ""  # what every run in _ready not in _ready_new shows
        self._blocked: dict[int, ActiveRun] = {}
        self._rollouts = JobRollouts(self._lift_hold)  # remote jobs in batches (serial)
        self._waiting_on: dict[int, set[int]] = {}  # run id -> blocked runs waiting for it
        self._recheck: set[int] = set()  # blocked runs to look at in the next pump
        self._running = 0
        self._commit_task: asyncio.Task[None] | None = None
        self.write_error: str | None = None  # why the state cannot be written now
        self._write_failed: asyncio.Future[str] | None = None  # the next refusal
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._stopping = False
        self._services: list[Any] = []
        self._fanouts: Any = None
        self.reloader: Any = None  # the daemon's config reload (core/reload.py), if any
        self._pid = os.getpid()
        self._summary_timer = False
        self._due: deque[tuple[list[Due], float]] = deque()  # bursts being dispatched
        self._due_task: asyncio.Task[None] | None = None
        self._pump_soon = False  # a pump is coming for runs just admitted
        self._install_id = ""  # the state directory's, in every run's environment
        self._changed_jobs: dict[str, int] = {}  # job -> its changes not yet durable
        self._targets_of: object = None  # the inventory _targets_cache was resolved against
        self._targets_cache: dict[str, tuple[str, ...]] = {}
        self.cluster: Any = None  # the cluster service, when [cluster] is set
        self._schedules_wanted = False  # started to schedule (a follower waits to lead)
        self._cluster_after: dict[str, float] = {}  # the cluster's last claims, per job
        self._claiming: str | None = None  # the claim the runs being made carry
        self._parse_schedules()

    # ------------------------------------------------------------------ life cycle ----
    def _parse_schedules(self) -> None:
        self._schedules = {}
        for job in self.config.jobs.values():
            if job.schedule:
                try:
                    self._schedules[job.name] = parse_schedule(
                        job.schedule, job.timezone, dialect=job.dialect, dst=job.dst)
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
            for name in changed:
                if _rescheduled(old.jobs[name], config.jobs[name]):
                    assert self.store is not None
                    self.store.update_job_state(name, resumed_at=now)
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
            self._install_id = self.store.install_id
            await self._recover()
            self._started = True
            # services (alerts, health) first: they must see the first tick's events,
            # misfires of the downtime included
            for service in self._services:
                await service.start(self)
            self._schedules_wanted = scheduling
            if scheduling and self.cluster is None:  # in a cluster, only its leader
                self._schedule_all()
                self._scheduler_task = asyncio.create_task(self._scheduler.run())
            await self.store.commit_async()
        except BaseException:
            self._lock.release()
            raise
        log.info("engine started: %d jobs, %d scheduled", len(self.config.jobs),
                 len(self._scheduler))

    async def _recover(self) -> None:
        """Runs a dead engine left queued or running become `interrupted`, their process
        groups ended (found by pid or by their environment, when the start never
        reached the disk), and all of it durable before it is announced."""
        assert self.store is not None
        runs = self.store.active_runs()
        if not runs:
            return
        strays = find_run_groups(self._install_id, {r.id for r in runs})
        ran: dict[int, str] = {}  # which ran: a workflow's steps are judged by them
        journaled = self._journaled(runs)  # step runs whose end a workflow journaled
        for run in runs:
            if run.id in journaled:  # it ended; its record had not reached the disk
                self._journaled_end(run, journaled[run.id])
                continue
            groups = strays.get(run.id, set())
            if run.pgid and group_alive(run.pgid, run.proc_started):
                groups.add(run.pgid)
            ended = await asyncio.gather(*(terminate_group(g, 5.0) for g in sorted(groups)))
            holder = f"fleetdeck (pid {run.engine_pid})" if run.engine_pid else "fleetdeck"
            if groups or run.state == RunState.RUNNING:
                run.reason = f"{holder} died while it ran"
                ran[run.id] = "running"
            elif run.attempts:
                run.reason = f"{holder} died between attempts"
            else:
                run.reason = f"{holder} died before it started"
            for pgid, killed in zip(sorted(groups), ended, strict=True):
                how = "killed" if killed else "terminated"
                run.reason += f"; its process group {pgid} was still alive and was {how}"
            run.state = RunState.INTERRUPTED.value
            run.finished_at = self.clock()
            self.store.save_run(run)
            self._note_result(run)
        for run in runs:  # once every run is judged: a workflow run's steps
            if run.workflow:
                self._recover_workflow(run, run.reason, ran)
                self.store.save_run(run)
        await self._commit_now()  # the restart notes are history before anyone hears
        for run in runs:
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
        # resume from the last occurrence claimed, so downtime shows up as misfires; a
        # run on record for a later one (its claim was lost in a crash) counts as a claim
        after = state.get("last_occurrence") or state.get("first_seen") or now
        recorded = self.store.latest_occurrence(job.name)
        if recorded is not None and recorded > after:
            after = recorded
        if job.name in self._cluster_after:  # the cluster claimed up to here: its
            after = self._cluster_after[job.name]  # truth, not this node's own history
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
        host: str | None = None,
        triggers: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Runs newest first, filtered through the store's index (``since``: queued at
        or after); a listing reads only the runs it returns."""
        assert self.store is not None
        if (states or triggers) and (problem := filter_problem(states, triggers)):
            raise EngineError(problem)
        return self.store.find_runs(job=job, states=states, since=since, limit=limit,
                                    host=host, triggers=triggers)

    def count_runs(self, *, job: str | None = None, states: list[str] | None = None,
                   since: float | None = None, host: str | None = None,
                   triggers: list[str] | None = None) -> int:
        """How many runs match, from the index (the status bar's failure count)."""
        assert self.store is not None
        return self.store.count_runs(job=job, states=states, since=since, host=host,
                                     triggers=triggers)

    def get_run(self, run_id: int) -> dict[str, Any]:
        act = self._active.get(run_id)
        if act is not None:
            return run_dict(act.run)
        assert self.store is not None
        record = self.store.get_run_record(run_id)
        if record is None:
            raise NotFound(f"no run #{run_id}")
        return record

    def queue(self) -> list[dict[str, Any]]:
        """Queued and running runs, running first, each with the reason it waits."""
        acts = sorted(self._active.values(), key=lambda a: (a.run.state != "running", a.run.id))
        return [run_dict(a.run) for a in acts]

    def run_log_path(self, run_id: int) -> Path:
        assert self.store is not None
        self._run(run_id)
        return self.store.log_path(run_id)

    async def wait_run(self, run_id: int) -> dict[str, Any]:
        """Wait until a run reaches a final state on disk (and its end was told: the
        alert it opens is not lost to a CLI that stops right after); returns its record."""
        act = self._active.get(run_id)
        if act is not None:
            def ended() -> str | None:
                state = act.run.state
                return f"run #{run_id} of {act.run.job} {state}" \
                    if state in FINAL_STATES else None

            await self._until_on_disk(act.wait_done(), ended)
        elif self.store is not None and not self.store.read_only:
            durable = asyncio.get_running_loop().create_future()
            self.store.when_durable(lambda: durable.done() or durable.set_result(None))
            self._dirty()
            run = self.get_run(run_id)  # ended already: out of the active runs
            await self._until_on_disk(durable, lambda: f"run #{run_id} of {run['job']} "
                                                       f"{run['state']}")
        return self.get_run(run_id)

    # ------------------------------------------------------------- public: actions ----
    async def run_job(self, name: str, *, actor: Actor | None = None,
                      trigger: Trigger = Trigger.MANUAL, env: dict[str, str] | None = None,
                      requested_by: str | None = None) -> list[dict[str, Any]]:
        """Run a job now on each of its targets; returns the new runs. A person's run
        names its `actor` (audited); the engine's own (a file-change trigger) says what
        asked in `requested_by`. `env` adds to the job's environment for these runs."""
        job = self._job(name)
        self._require_started()
        if env:
            job = dataclasses.replace(job, env={**job.env, **env})
        try:
            hosts = self._targets(job.targets)
        except TargetError as e:
            raise EngineError(f"job {name}: {e}") from None
        who = actor.user if actor is not None else requested_by or "fleetdeck"
        now = self.clock()  # one request on several hosts: one queued_at, one result
        runs = [self._create_run(job, host, trigger, None, who, queued_at=now)
                for host in hosts]
        self._rollouts.plan([a for r in runs if (a := self._active.get(r.id))], job.rollout)
        log.info("run now: %s by %s", name, who, extra={"job": name})
        await self._commit_now()
        self._pump()
        self.audit(actor, "run", [name], ", ".join(f"#{r.id}" for r in runs))
        return [run_dict(r) for r in runs]

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
        return run_dict(run)

    async def cancel_run(self, run_id: int, *, actor: Actor | None = None) -> dict[str, Any]:
        self._require_started()
        run_id = int(run_id)
        act = self._active.get(run_id)
        if act is None:
            run = self._run(run_id)
            raise EngineError(f"run #{run_id} is not active (it is {run.state})")
        who = actor.user if actor is not None else "fleetdeck"
        reason = f"cancelled by {who}"
        self.audit(actor, "cancel", [f"#{run_id}"])
        log.info("cancel run #%d of %s by %s", run_id, act.run.job, who,
                 extra={"job": act.run.job, "run_id": run_id})
        self._cancel(act, reason)
        await act.wait_done()
        return run_dict(act.run)

    async def pause_job(self, name: str, *, actor: Actor | None = None) -> dict[str, Any]:
        job = self._job(name)
        self._require_started()
        assert self.store is not None
        self.store.update_job_state(name, paused=True,
                                     paused_by=actor.user if actor else "fleetdeck")
        self.audit(actor, "pause", [name])
        self._scheduler.remove_job(name)
        await self._commit_now()
        info = self._job_info(job)
        self.bus.publish(JobChanged(info))
        log.info("paused %s", name, extra={"job": name})
        return info

    async def resume_job(self, name: str, *, actor: Actor | None = None) -> dict[str, Any]:
        job = self._job(name)
        self._require_started()
        assert self.store is not None
        self.audit(actor, "resume", [name])
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
            raise NotFound(f"no job named {name!r}")
        return job

    def _run(self, run_id: int) -> Run:
        act = self._active.get(run_id)
        if act is not None:
            return act.run
        assert self.store is not None
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"no run #{run_id}")
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


def _rescheduled(old: Job, new: Job) -> bool:
    """A new schedule, or a job enabled again, starts from the reload, as a crontab
    edit or a Quartz trigger's reschedule does: the old schedule's gap, or the time the
    job was disabled, is no downtime and makes no misfires."""
    if new.enabled and not old.enabled:
        return True
    return (old.schedule, old.timezone, old.dialect, old.dst) != (
        new.schedule, new.timezone, new.dialect, new.dst)
