"""A workflow run from start to end. It stands in for the workflow run's process, so the
engine's one attempt loop records it, cancels it and times it out like any run.

Every step's runs are recorded at the start, in one commit, as children of the workflow
run (`parent`, `step`), each held in the engine's queue behind a hold of its step: no
run starts before its record is on disk, and a chain of steps costs no commit per link.
When the runs of the steps a step needs have ended (in memory, as they end), the step
is decided (`when`): its hold is lifted, or its runs end `skipped`. A step's end is on
disk with its runs' ends (the same group commit), so a retry after a crash never runs
again a step on record as ended; a gate's decision is committed before its step starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Any

from core.api import Actor
from core.jobs.active import ActiveRun
from core.jobs.config import Job
from core.jobs.process import ProcessOutcome
from core.jobs.runs import RunState, Trigger, worst_state
from core.remote.config import LOCAL_HOST
from core.remote.inventory import TargetError
from core.workflows.journal import Journal
from core.workflows.outputs import read_outputs, run_folder
from core.workflows.record import result_of, set_step, step_decision
from core.workflows.spec import FINAL_STEP, Gate, Step, WorkflowSpec

log = logging.getLogger("fleetdeck.engine")

SAVE_EVERY = 0.5  # seconds: the workflow run's record is saved at most this often (its
# runs, saved as they change, are the truth; a crash brings it up to date from them)


@dataclasses.dataclass
class _Step:
    step: Step
    hosts: tuple[str, ...] = ()
    acts: list[ActiveRun] = dataclasses.field(default_factory=list)
    left: int = 0  # its runs not ended yet
    hold: int | None = None
    waiting: int = 0  # the steps it needs that have not ended
    started: bool = False


class WorkflowProcess:
    """The process protocol of core/jobs/execution.py, over a workflow's steps. A
    workflow holds no slot of its own: its steps' runs do."""

    info = None
    retry_failed_start = False
    timeout_note = ""

    def __init__(self, engine: Any, act: ActiveRun, job: Job, env: dict[str, str],
                 on_line: Any) -> None:
        self.engine = engine
        self.act = act
        self.job = job
        self.spec: WorkflowSpec = job.workflow
        self.env = env
        self.on_line = on_line
        self.gates: dict[str, asyncio.Future[tuple[str, str, str]]] = {}
        self.recorded: dict[str, asyncio.Event] = {}  # a decision, once on disk
        self._steps: dict[str, _Step] = {}
        self._users: dict[str, list[str]] = {n: [] for n in self.spec.order}
        self._ended = asyncio.Event()
        self._open = 0  # steps not ended
        self._task: asyncio.Task[str] | None = None
        self._cancelled = False
        self._save_timer: asyncio.TimerHandle | None = None
        self._with_outputs: list[str] = []  # steps that wrote outputs, in order
        self._ancestors: dict[str, set[str]] = {}
        self._out_dir = ""  # where its steps write outputs (made at the start)
        self._journal: Any = None  # the steps' ends, durable (core/workflows/journal.py)

    # the process protocol -------------------------------------------------------------
    async def start(self) -> str | None:
        self.engine._running -= 1  # the slot goes back at once: steps take their own
        self.engine._pump()
        self._task = asyncio.ensure_future(self._drive())
        return None

    def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        why = self.act.cancel_reason or "the workflow was stopped"
        for name, s in self._steps.items():
            if self.record["steps"][name]["state"] in FINAL_STEP:
                continue
            if s.hold is not None and not s.started:
                self.engine._rollouts.drop(s.hold)
            for child in list(s.acts):
                if not child.finished and self.engine._active.get(child.run.id) is child:
                    self.engine._cancel(child, f"{why} (workflow run #{self.act.run.id})")
        for fut in self.gates.values():
            if not fut.done():
                fut.set_result(("cancelled", "", why))
        now = self.engine.clock()
        for name, s in self._steps.items():  # the rest end as their runs end
            if self.record["steps"][name]["state"] not in FINAL_STEP and s.left <= 0:
                self._end(name, "cancelled", why, now)
        self._check_ended()

    async def wait(self) -> ProcessOutcome:
        assert self._task is not None
        try:
            try:
                error = await asyncio.wait_for(asyncio.shield(self._task), self.job.timeout)
            except TimeoutError:
                self.cancel()
                await self._task
                return ProcessOutcome(None, timed_out=True)
            if self._cancelled:
                return ProcessOutcome(None, cancelled=True)
            return ProcessOutcome(0 if not error else 1, error=error or None)
        finally:
            self.engine._running += 1  # the attempt loop gives back a slot at the end

    # the steps ------------------------------------------------------------------------
    @property
    def record(self) -> dict[str, Any]:
        return self.act.run.workflow  # type: ignore[return-value]

    async def _drive(self) -> str:
        eng = self.engine
        steps = self.record["steps"]
        batch: list[Any] = []
        who = self.act.run.requested_by
        for name in self.spec.order:
            step = self.spec.step(name)
            for need in step.needs:
                self._users[need].append(name)
            st = steps[name]
            if st["state"] in FINAL_STEP:  # kept from the run a retry continues
                continue
            self._open += 1
            s = self._steps[name] = _Step(step)
            s.waiting = sum(1 for n in step.needs if steps[n]["state"] not in FINAL_STEP)
            try:
                job, s.hosts = self._step_job(step)
            except TargetError as e:
                st["reason"] = f"targets: {e}"  # decided (failed) when it would start
                continue
            s.hold = eng._rollouts.new_hold()
            for host in s.hosts:
                run = eng._create_run(job, host, Trigger.WORKFLOW, self.act.run.occurrence,
                                      who, batch)
                child = eng._active.get(run.id)
                st["runs"].append(run.id)
                if child is None:
                    continue
                child.after.add(s.hold)
                child.run.reason = self._waiting_text(step)
                child.on_output = self._forward(name, len(s.hosts) > 1)
                child.on_finish = self._child_ended
                s.acts.append(child)
            s.left = len(s.acts)
            eng._rollouts.plan(s.acts, job.rollout)
        self._out_dir = run_folder(eng.state_dir, self.act.run.id, make=True)
        self._journal = Journal(self._out_dir)
        eng._record_batch(batch, {})
        eng.store.save_run(self.act.run)
        await eng._commit_now()  # every step's runs on disk before any of them starts
        self.note(f"{len(self._steps)} steps, runs " + (
            f"#{batch[0][0].id}-#{batch[-1][0].id}" if batch else "none"))
        for name in self.spec.order:
            s = self._steps.get(name)
            if s is not None and s.waiting == 0:
                self._ready(name)
        self._check_ended()
        try:
            await self._ended.wait()
        finally:
            self._journal.close()
        self._flush()
        await eng._commit_now()
        return "" if self._cancelled else result_of(self.spec, steps)

    def _ready(self, name: str) -> None:
        """Every step `name` needs has ended: decide whether it runs."""
        if self._cancelled:
            return
        s = self._steps[name]
        st = self.record["steps"][name]
        verdict = step_decision(s.step, self.record["steps"])
        assert verdict is not None
        run_it, why, upstream = verdict
        if run_it and st["reason"].startswith("targets: "):
            self._skip_runs(s, st["reason"])
            self._end(name, "failed", st["reason"], self.engine.clock())
        elif not run_it:
            self._skip_runs(s, why)
            self._end(name, "skipped", why, self.engine.clock(), upstream_failed=upstream)
            self.note(f"step {name} skipped: {why}")
        elif s.step.approve is not None and (st.get("approval") or {}).get("state") \
                != "approved":
            asyncio.ensure_future(self._gate(name, s.step.approve))
        else:
            self._go(name)

    def _go(self, name: str) -> None:
        s = self._steps[name]
        st = self.record["steps"][name]
        s.started = True
        st["state"], st["started_at"] = "running", self.engine.clock()
        env = self._step_env(s.step, s.hosts)
        for child in s.acts:
            child.extra_env = env
            child.run.reason = ""
        self.note(f"step {name} started: run{'s' if len(st['runs']) > 1 else ''} "
                  + ", ".join(f"#{i}" for i in st["runs"]))
        self._save()
        if not s.acts:  # its runs ended at once (a job's own overlap: skipped)
            self._step_ended(name)
        elif s.hold is not None:
            self.engine._rollouts.lift(s.hold)

    def _skip_runs(self, s: _Step, why: str) -> None:
        if s.hold is not None:
            self.engine._rollouts.drop(s.hold)
        for child in list(s.acts):
            if self.engine._active.get(child.run.id) is child and child.task is None:
                child.on_finish = None
                self.engine._finish(child, RunState.SKIPPED, why)
        s.acts, s.left = [], 0

    def _child_ended(self, child: ActiveRun) -> None:
        name = child.job.step if child.job is not None else None
        s = self._steps.get(name or "")
        if s is None or child not in s.acts:
            return
        s.left -= 1
        if s.left == 0 and s.started:
            self._step_ended(name)  # type: ignore[arg-type]
        elif self._cancelled and s.left == 0:
            self._end(name, "cancelled", self.act.cancel_reason or "cancelled",  # type: ignore[arg-type]
                      self.engine.clock())
            self._check_ended()

    def _step_ended(self, name: str) -> None:
        s = self._steps[name]
        st = self.record["steps"][name]
        runs = [a.run for a in s.acts]
        state = worst_state(r.state for r in runs) if runs else "skipped"
        bad = next((r for r in runs if r.state == state and state != "succeeded"), None)
        reason = ""
        if bad is not None:
            reason = f"run #{bad.id}" + (f" on {bad.host}" if len(runs) > 1 else "") \
                + f" {state}" + (f": {bad.reason}" if bad.reason else "")
        if state == RunState.SUCCEEDED.value:
            st["outputs"] = self._outputs(name, s.hosts)
            if st["outputs"]:
                self._with_outputs.append(name)
        self._journal.ended({  # on disk before anything that needs this step starts
            "step": name, "state": state, "reason": reason, "outputs": st.get("outputs") or {},
            "at": self.engine.clock(),
            "runs": {str(r.id): {"state": r.state, "exit_code": r.exit_code,
                                 "finished_at": r.finished_at, "reason": r.reason}
                     for r in runs}})
        self.note(f"step {name} {state}" + (f": {reason}" if reason else ""))
        self._end(name, state, reason, self.engine.clock())  # what follows is decided
        self._check_ended()

    def _end(self, name: str, state: str, reason: str, now: float, *,
             upstream_failed: bool = False) -> None:
        st = self.record["steps"][name]
        if st["state"] in FINAL_STEP:
            return
        set_step(st, state, reason, now, upstream_failed=upstream_failed)
        self._open -= 1
        self._save()
        if self._cancelled:
            return
        for user in self._users[name]:
            u = self._steps.get(user)
            if u is None:
                continue
            u.waiting -= 1
            if u.waiting == 0:
                self._ready(user)

    def _check_ended(self) -> None:
        if self._open <= 0:
            self._ended.set()

    def _waiting_text(self, step: Step) -> str:
        if step.needs:
            return f"waiting for step {', '.join(step.needs)} (workflow run #{self.act.run.id})"
        return f"waiting for workflow run #{self.act.run.id} to start"

    def _step_job(self, step: Step) -> tuple[Job, tuple[str, ...]]:
        """The job a step's runs are made from, and the hosts they run on."""
        eng = self.engine
        host = self.act.run.host
        if step.job is not None:
            base = eng.config.jobs[step.job]
            name = base.name
            overlap = "queue" if base.overlap == "skip" else base.overlap
        else:
            d = eng.config.defaults
            label = f"push {step.push['src']} -> {step.push['dest']}" if step.push else ""
            base = Job(name="", command=step.command or label, push=step.push,
                       timeout=d.timeout, kill_grace=d.kill_grace, cwd=step.cwd)
            name = f"{self.spec.name}.{step.name}"
            overlap = "allow"
        targets = step.targets or (base.targets if step.job is not None
                                   else self.job.step_targets)
        targets = targets.replace("{host}", host)
        retry = base.retry
        if step.retries is not None or step.retry_backoff is not None:
            retry = dataclasses.replace(
                retry, retries=retry.retries if step.retries is None else step.retries,
                backoff=retry.backoff if step.retry_backoff is None else step.retry_backoff)
        job = dataclasses.replace(
            base, name=name, overlap=overlap, targets=targets, retry=retry,
            timeout=step.timeout if step.timeout_set else base.timeout,
            env={**self.job.env, **base.env, **step.env}, schedule=None,
            rollout=step.rollout or base.rollout, parent=self.act.run.id, step=step.name,
            alert_on=base.alert_on if step.job is not None else ())
        return job, eng._targets(targets)

    def _step_env(self, step: Step, hosts: tuple[str, ...]) -> dict[str, str]:
        """What a step's runs get besides their job's environment: the outputs of every
        step it needs (directly or not), and where to write its own."""
        env: dict[str, str] = {}
        if self._with_outputs:
            above = self._ancestors.get(step.name)
            if above is None:
                above = self._ancestors[step.name] = set(self.spec.ancestors(step.name))
            steps = self.record["steps"]
            for earlier in self._with_outputs:
                if earlier in above:
                    env.update(steps[earlier]["outputs"])
        env.update({"FLEETDECK_WORKFLOW": self.spec.name,
                    "FLEETDECK_WORKFLOW_RUN_ID": str(self.act.run.id),
                    "FLEETDECK_STEP": step.name,
                    "FLEETDECK_WORKFLOW_HOST": self.act.run.host})
        if hosts == (LOCAL_HOST,):
            env["FLEETDECK_OUTPUT"] = f"{self._out_dir}/{step.name}.out"
        return env

    def _outputs(self, name: str, hosts: tuple[str, ...]) -> dict[str, str]:
        if hosts != (LOCAL_HOST,):
            return {}
        outputs, problems = read_outputs(f"{self._out_dir}/{name}.out")
        for problem in problems:
            self.note(f"step {name}: {problem}")
        return outputs

    async def _gate(self, name: str, gate: Gate) -> None:
        """Wait for a person's decision, on disk before the step starts or ends."""
        eng = self.engine
        st = self.record["steps"][name]
        run = self.act.run
        st["state"] = "awaiting_approval"
        st["approval"] = {"state": "waiting", "by": list(gate.by), "asked_at": eng.clock(),
                          "timeout": gate.timeout, "allow_self": gate.allow_self}
        fut: asyncio.Future[tuple[str, str, str]] = asyncio.get_running_loop().create_future()
        self.gates[name] = fut
        for child in self._steps[name].acts:
            child.run.reason = f"awaiting approval of step {name} by {gate.describe()}"
        self._held()
        self.note(f"step {name} awaits approval by {gate.describe()}"
                  + (f" (times out in {gate.timeout:g}s)" if gate.timeout else ""))
        self._flush()
        await eng._commit_now()
        eng.approval_changed(run, name, "waiting", "")
        try:
            decision, who, reason = await asyncio.wait_for(asyncio.shield(fut), gate.timeout)
        except TimeoutError:
            decision, who, reason = "timed_out", "", ""
        finally:
            self.gates.pop(name, None)
            self._held()
        now = eng.clock()
        approval = st["approval"]
        approval.update(state=decision, decided_at=now)
        if who:
            approval.update(decided_by=who, reason=reason)
        st["state"] = "pending"
        self._flush()
        await eng._commit_now()  # the decision on disk before anything follows from it
        done = self.recorded.pop(name, None)
        if done is not None:
            done.set()
        eng.approval_changed(run, name, decision, who)
        s = self._steps[name]
        if decision == "approved":
            self.note(f"step {name} approved by {who}" + (f": {reason}" if reason else ""))
            self._go(name)
            return
        if decision == "rejected":
            state, why = "rejected", f"rejected by {who}" + (f": {reason}" if reason else "")
        elif decision == "timed_out":
            why = f"no approval within {gate.timeout:g}s (on_timeout={gate.on_timeout})"
            state = "failed" if gate.on_timeout == "fail" else "skipped"
            eng.audit(Actor(os.getuid(), "fleetdeck", "fleetdeck (gate timeout)"),
                      "approval timed out", [f"#{run.id}", name], why)
        else:
            state, why = "cancelled", reason or "cancelled"
        self._skip_runs(s, why)
        self.note(f"step {name} {state}: {why}")
        self._end(name, state, why, now, upstream_failed=state == "failed")
        self._check_ended()

    def _held(self) -> None:
        """The workflow run shows `awaiting_approval` while any of its gates waits."""
        run = self.act.run
        if self.gates:
            waiting = ", ".join(sorted(self.gates))
            run.state = RunState.AWAITING_APPROVAL.value
            run.reason = f"step {waiting} awaits approval"
        elif run.state == RunState.AWAITING_APPROVAL.value:
            run.state, run.reason = RunState.RUNNING.value, ""

    # --------------------------------------------------------------------- helpers ----
    def _forward(self, step: str, many: bool) -> Any:
        def forward(host: str, stream: str, line: str) -> None:
            self.on_line(stream, f"[{step}{' ' + host if many else ''}] {line}")
        return forward

    def note(self, text: str) -> None:
        self.on_line("fleetdeck", f"[fleetdeck] {text}")

    def _save(self) -> None:
        """The record is saved soon (a 1,000-step record is not rewritten per step)."""
        if self._save_timer is None:
            self._save_timer = asyncio.get_running_loop().call_later(SAVE_EVERY, self._flush)

    def _flush(self) -> None:
        if self._save_timer is not None:
            self._save_timer.cancel()
            self._save_timer = None
        self.engine._save_active(self.act)
