"""A workflow run from start to end: its steps in dependency order, independent ones at
once, each step's runs ordinary runs in history (children of the workflow run), the
gates waited on, outputs passed on. It stands in for the workflow run's process, so the
engine's one attempt loop records it, cancels it and times it out like any run.

Each step's end is written into the workflow run's record and committed before a step
that needs it starts: after a crash, a step on record as ended is never run again.
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
from core.workflows.outputs import output_path, read_outputs
from core.workflows.record import (
    ended_ok,
    result_of,
    set_step,
    step_decision,
)
from core.workflows.spec import FINAL_STEP, Gate, Step, WorkflowSpec

log = logging.getLogger("fleetdeck.engine")


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
        self._children: dict[str, list[ActiveRun]] = {}
        self._task: asyncio.Task[str] | None = None
        self._cancelled = False

    # the process protocol -------------------------------------------------------------
    async def start(self) -> str | None:
        self.engine._running -= 1  # the slot goes back at once: steps take their own
        self.engine._pump()
        self._task = asyncio.ensure_future(self._drive())
        return None

    def cancel(self) -> None:
        self._cancelled = True
        why = self.act.cancel_reason or "the workflow was stopped"
        for acts in self._children.values():
            for child in acts:
                if not child.finished and self.engine._active.get(child.run.id) is child:
                    self.engine._cancel(child, f"{why} (workflow run #{self.act.run.id})")
        for fut in self.gates.values():
            if not fut.done():
                fut.set_result(("cancelled", "", why))

    async def wait(self) -> ProcessOutcome:
        assert self._task is not None
        try:
            timeout = self.job.timeout
            try:
                error = await asyncio.wait_for(asyncio.shield(self._task), timeout)
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
        steps = self.record["steps"]
        running: dict[str, asyncio.Task[None]] = {}
        while True:
            decided = False
            for name in self.spec.order:
                st = steps[name]
                if st["state"] != "pending" or name in running or self._cancelled:
                    continue
                verdict = step_decision(self.spec.step(name), steps)
                if verdict is None:
                    continue  # what it needs has not ended
                run_it, why, upstream = verdict
                if run_it:
                    running[name] = asyncio.ensure_future(self._step(name))
                else:
                    set_step(st, "skipped", why, self.engine.clock(), upstream_failed=upstream)
                    self.note(f"step {name} skipped: {why}")
                    decided = True
            if decided:
                self._save()
            if not running:
                break
            done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
            for name in [n for n, t in running.items() if t in done]:
                task = running.pop(name)
                if task.exception() is not None:  # a bug: the step fails, not the engine
                    log.error("workflow run #%d step %s", self.act.run.id, name,
                              exc_info=task.exception())
                    set_step(steps[name], "failed", f"fleetdeck error: {task.exception()}",
                             self.engine.clock())
                    self._save()
        if self._cancelled:
            now = self.engine.clock()
            for st in steps.values():
                if st["state"] not in FINAL_STEP:
                    set_step(st, "cancelled", self.act.cancel_reason or "cancelled", now)
            self._save()
            await self.engine._commit_now()
            return ""
        await self.engine._commit_now()
        return result_of(self.spec, steps)

    async def _step(self, name: str) -> None:
        step = self.spec.step(name)
        st = self.record["steps"][name]
        if step.approve is not None and not st.get("approval", {}).get("state") == "approved":
            if not await self._gate(name, step.approve):
                return
        if self._cancelled:
            set_step(st, "cancelled", self.act.cancel_reason or "cancelled", self.engine.clock())
            self._save()
            return
        try:
            job, hosts = self._step_job(step)
        except TargetError as e:
            set_step(st, "failed", f"targets: {e}", self.engine.clock())
            self._save()
            await self.engine._commit_now()
            return
        env = self._step_env(step, hosts)
        eng = self.engine
        who = self.act.run.requested_by
        acts: list[ActiveRun] = []
        for host in hosts:
            run = eng._create_run(job, host, Trigger.WORKFLOW, self.act.run.occurrence, who)
            child = eng._active.get(run.id)
            if child is None:  # recorded skipped at once (the job's own overlap)
                st.setdefault("runs", []).append(run.id)
                continue
            child.extra_env = env
            child.on_output = self._forward(name, len(hosts) > 1)
            acts.append(child)
            st.setdefault("runs", []).append(run.id)
        eng._rollouts.plan(acts, job.rollout)
        self._children[name] = acts
        st["state"], st["started_at"] = "running", eng.clock()
        self.note(f"step {name} started: run{'s' if len(st['runs']) > 1 else ''} "
                  + ", ".join(f"#{i}" for i in st["runs"]))
        self._save()
        await eng._commit_now()  # its runs and the step's start on disk before they run
        eng._pump()
        for child in acts:
            await child.wait_done()
        states = [eng.get_run(i) for i in st["runs"]]
        state = worst_state(r["state"] for r in states)
        bad = next((r for r in states if r["state"] == state and state != "succeeded"), None)
        reason = ""
        if bad is not None:
            reason = f"run #{bad['id']}" + (f" on {bad['host']}" if len(states) > 1 else "") \
                + f" {state}" + (f": {bad['reason']}" if bad.get("reason") else "")
        if state == RunState.SUCCEEDED.value:
            st["outputs"] = self._outputs(name, hosts)
        set_step(st, state, reason, eng.clock())
        self.note(f"step {name} {state}" + (f": {reason}" if reason else ""))
        self._save()
        await eng._commit_now()  # durable before anything that needs it starts

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
            base = Job(name="", command=step.command or "", push=step.push,
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
        steps = self.record["steps"]
        for earlier in self.spec.ancestors(step.name):
            env.update(steps[earlier].get("outputs") or {})
        env.update({"FLEETDECK_WORKFLOW": self.spec.name,
                    "FLEETDECK_WORKFLOW_RUN_ID": str(self.act.run.id),
                    "FLEETDECK_STEP": step.name,
                    "FLEETDECK_WORKFLOW_HOST": self.act.run.host})
        if hosts == (LOCAL_HOST,):
            env["FLEETDECK_OUTPUT"] = str(output_path(self.engine.state_dir,
                                                      self.act.run.id, step.name))
        return env

    def _outputs(self, name: str, hosts: tuple[str, ...]) -> dict[str, str]:
        if hosts != (LOCAL_HOST,):
            return {}
        outputs, problems = read_outputs(output_path(self.engine.state_dir,
                                                     self.act.run.id, name))
        for problem in problems:
            self.note(f"step {name}: {problem}")
        return outputs

    async def _gate(self, name: str, gate: Gate) -> bool:
        """Wait for a person's decision; True when the step may start."""
        eng = self.engine
        st = self.record["steps"][name]
        run = self.act.run
        st["state"] = "awaiting_approval"
        st["approval"] = {"state": "waiting", "by": list(gate.by), "asked_at": eng.clock(),
                          "timeout": gate.timeout, "allow_self": gate.allow_self}
        fut: asyncio.Future[tuple[str, str, str]] = asyncio.get_running_loop().create_future()
        self.gates[name] = fut
        self._held()
        self.note(f"step {name} awaits approval by {gate.describe()}"
                  + (f" (times out in {gate.timeout:g}s)" if gate.timeout else ""))
        self._save()
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
        if decision == "approved":
            st["state"] = "pending"
            self.note(f"step {name} approved by {who}" + (f": {reason}" if reason else ""))
        elif decision == "rejected":
            set_step(st, "rejected", f"rejected by {who}" + (f": {reason}" if reason else ""),
                     now)
        elif decision == "timed_out":
            why = f"no approval within {gate.timeout:g}s (on_timeout={gate.on_timeout})"
            set_step(st, "failed" if gate.on_timeout == "fail" else "skipped", why, now,
                     upstream_failed=gate.on_timeout == "fail")
            eng.audit(Actor(os.getuid(), "fleetdeck", "fleetdeck (gate timeout)"),
                      "approval timed out", [f"#{run.id}", name], why)
        else:
            set_step(st, "cancelled", reason or "cancelled", now)
        if decision != "approved":
            self.note(f"step {name} {st['state']}: {st['reason']}")
        self._save()
        await eng._commit_now()
        done = self.recorded.pop(name, None)
        if done is not None:
            done.set()
        eng.approval_changed(run, name, decision, who)
        return decision == "approved"

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
        self.engine._save_active(self.act)


def ended_steps(record: dict[str, Any]) -> list[str]:
    """The steps of a workflow record that ended well (kept by a retry)."""
    return [n for n, st in record["steps"].items() if ended_ok(st)]
