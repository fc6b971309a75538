"""The engine's workflow half (a mixin over the Engine's state): a person approves or
rejects a gate, retries a workflow run from the steps that did not succeed, or starts an
alert's remediation; the approvals waiting, as a read."""

from __future__ import annotations

import asyncio
import grp
import logging
import pwd
from typing import Any

from core.api import Actor
from core.events import ApprovalChanged
from core.jobs.active import ActiveRun, EngineError, run_dict
from core.jobs.runs import Run, RunState, Trigger
from core.remote.config import LOCAL_HOST
from core.workflows.journal import journaled_runs, read_journal
from core.workflows.outputs import run_folder
from core.workflows.record import interrupted, new_record, retry_record, set_step
from core.workflows.spec import FINAL_STEP, Gate

log = logging.getLogger("fleetdeck.engine")

ENGINE_ACTOR = "fleetdeck"


class Workflows:
    """Workflow runs: launched, approved, retried, started from alerts."""

    # the engine's side ---------------------------------------------------------------
    def _workflow_launcher(self, act: ActiveRun) -> Any:
        from core.workflows.runner import WorkflowProcess  # loaded by the first workflow

        def launch(job: Any, env: dict[str, str], on_line: Any) -> WorkflowProcess:
            return WorkflowProcess(self, act, job, env, on_line)
        return launch

    def _new_workflow(self, job: Any, host: str) -> dict[str, Any] | None:
        return new_record(job.workflow, host) if job.workflow is not None else None

    def _save_active(self, act: ActiveRun) -> None:
        assert self.store is not None
        self.store.save_run(act.run)
        self._dirty()

    def _journaled(self, runs: list[Run]) -> dict[int, dict[str, Any]]:
        """The ends the dead engine's workflow runs journaled, by run id."""
        out: dict[int, dict[str, Any]] = {}
        for run in runs:
            if run.workflow:
                out.update(journaled_runs(read_journal(run_folder(self.state_dir, run.id))))
        return out

    def _journaled_end(self, run: Run, info: dict[str, Any]) -> None:
        """A step's run that ended before the engine died, its end in its workflow's
        journal but not yet in its record: recorded as it ended."""
        assert self.store is not None
        run.state = info.get("state") or RunState.INTERRUPTED.value
        run.exit_code = info.get("exit_code")
        run.finished_at = info.get("finished_at") or self.clock()
        note = "recorded from its workflow's journal after fleetdeck died"
        run.reason = f"{info['reason']}; {note}" if info.get("reason") else note
        self.store.save_run(run)

    def _recover_workflow(self, run: Run, reason: str, states: dict[int, str]) -> None:
        """A dead engine's workflow run: the steps its journal ended take that end; its
        steps that were running (by their runs' states, `states`: the record is saved a
        moment after them) or waiting for a person are interrupted."""
        if run.workflow:
            steps = run.workflow["steps"]
            for entry in read_journal(run_folder(self.state_dir, run.id)):
                st = steps.get(entry["step"])
                if st is not None and st["state"] not in FINAL_STEP:
                    set_step(st, entry.get("state") or "interrupted",
                             entry.get("reason") or "", entry.get("at") or self.clock())
                    st["outputs"] = entry.get("outputs") or {}
            names = interrupted(run.workflow, reason, self.clock(), self._state_of, states)
            if names:
                run.reason += f"; steps {', '.join(names)} interrupted: " \
                    f"`fleetdeck retry {run.id}` resumes from them"

    def _state_of(self, run_id: int) -> str:
        assert self.store is not None
        doc = self.store.get_run_record(run_id)
        return doc["state"] if doc is not None else "missing"

    def approval_changed(self, run: Run, step: str, state: str, who: str) -> None:
        """Tell of a gate's change (its record is on disk already)."""
        gate: Gate | None = self.config.jobs[run.job].workflow.step(step).approve \
            if run.job in self.config.jobs and self.config.jobs[run.job].workflow else None
        by = gate.by if gate is not None else ()
        log.info("workflow run #%d step %s: approval %s%s", run.id, step, state,
                 f" by {who}" if who else "", extra={"job": run.job, "run_id": run.id})
        self.bus.publish(ApprovalChanged(run.id, run.job, step, state, tuple(by), who,
                                         run.host, run.requested_by))

    # reads ----------------------------------------------------------------------------
    def list_approvals(self) -> list[dict[str, Any]]:
        """Every gate waiting for a person, oldest first."""
        out = []
        for act in sorted(self._active.values(), key=lambda a: a.run.id):
            proc = act.process
            if not hasattr(proc, "gates"):  # not a workflow run's
                continue
            for step in sorted(proc.gates):
                st = act.run.workflow["steps"][step]  # type: ignore[index]
                a = st.get("approval") or {}
                out.append({"run_id": act.run.id, "workflow": act.run.job, "step": step,
                            "host": act.run.host, "by": a.get("by", []),
                            "asked_at": a.get("asked_at"), "timeout": a.get("timeout"),
                            "requested_by": act.run.requested_by})
        return out

    # actions --------------------------------------------------------------------------
    async def approve(self, run_id: int, step: str | None = None, reason: str = "", *,
                      actor: Actor) -> dict[str, Any]:
        return await self._decide(int(run_id), step, "approved", reason, actor)

    async def reject(self, run_id: int, step: str | None = None, reason: str = "", *,
                     actor: Actor) -> dict[str, Any]:
        return await self._decide(int(run_id), step, "rejected", reason, actor)

    async def _decide(self, run_id: int, step: str | None, decision: str, reason: str,
                      actor: Actor | None) -> dict[str, Any]:
        self._require_started()
        verb = "approve" if decision == "approved" else "reject"
        if actor is None:
            raise EngineError(f"only a person can {verb} a run")
        reason = " ".join(str(reason or "").split())[:500]
        act = self._active.get(run_id)
        proc = act.process if act is not None else None
        if act is None or not hasattr(proc, "gates"):  # not a workflow run's
            run = self._run(run_id)
            raise EngineError(_not_waiting(run))
        if not proc.gates:
            raise EngineError(_not_waiting(act.run))
        if step is None:
            if len(proc.gates) > 1:
                raise EngineError(f"run #{run_id} has {len(proc.gates)} steps awaiting "
                                  f"approval ({', '.join(sorted(proc.gates))}); name one "
                                  "with --step")
            step = next(iter(proc.gates))
        fut = proc.gates.get(step)
        if fut is None or fut.done():
            raise EngineError(_not_waiting(act.run, step))
        gate = proc.spec.step(step).approve
        assert gate is not None
        problem = _may_decide(gate, actor, act.run)
        if problem:
            self.audit(actor, f"{verb} refused", [f"#{run_id}", step], problem)
            raise EngineError(problem)
        self.audit(actor, verb, [f"#{run_id}", step], reason)
        recorded = proc.recorded[step] = asyncio.Event()
        fut.set_result((decision, actor.user, reason))
        await recorded.wait()  # the decision is on disk before the person hears back
        # what the approvals socket may tell another user: not the run's record
        return {"id": run_id, "job": act.run.job, "step": step, "decision": decision,
                "by": actor.user}

    async def retry_workflow(self, run_id: int, *, actor: Actor | None = None
                             ) -> dict[str, Any]:
        """A new run of a finished workflow run that did not succeed: the steps that
        succeeded are kept (never run again), the rest run again (Argo's retry)."""
        self._require_started()
        old = self._run(int(run_id))
        if old.workflow is None:
            raise EngineError(f"run #{run_id} is not a workflow run (a job's run is run "
                              "again with `fleetdeck run`)")
        if old.state in (RunState.QUEUED, RunState.RUNNING, RunState.AWAITING_APPROVAL):
            raise EngineError(f"workflow run #{run_id} is still {old.state}")
        if old.state == RunState.SUCCEEDED:
            raise EngineError(f"workflow run #{run_id} succeeded; nothing to retry")
        job = self._job(old.job)
        if job.workflow is None:
            raise EngineError(f"{old.job} is no longer a workflow")
        ids = [i for st in old.workflow["steps"].values() for i in st.get("runs") or []]
        states = {i: self.get_run(i)["state"] for i in ids}
        record, kept = retry_record(job.workflow, old.workflow, old.id, states)
        who = actor.user if actor is not None else ENGINE_ACTOR
        run = self._create_run(job, old.host, Trigger.MANUAL, old.occurrence, who,
                               workflow=record)
        await self._commit_now()
        self._pump()
        self.audit(actor, "retry", [f"#{old.id}"], f"#{run.id}; kept: {', '.join(kept)}"
                   if kept else f"#{run.id}")
        log.info("workflow run #%d retries #%d (kept: %s)", run.id, old.id,
                 ", ".join(kept) or "nothing", extra={"job": job.name, "run_id": run.id})
        return run_dict(run)

    async def remediate(self, alert_id: int, *, actor: Actor) -> dict[str, Any]:
        """Run the workflow an alert's check, rule or job names, on the alert's host,
        and link the run on the alert."""
        self._require_started()
        alert = self.get_alert(int(alert_id))
        name = self.config.remediation(alert["kind"], alert["source"])
        if name is None:
            raise EngineError(f"alert #{alert_id} ({alert['kind']} {alert['source']}) names "
                              "no remediation")
        job = self.config.jobs.get(name)
        if job is None or job.workflow is None:
            raise EngineError(f"remediation {name!r} is no configured workflow")
        host = self._alert_host(alert)
        who = actor.user if actor is not None else ENGINE_ACTOR
        record = new_record(job.workflow, host, alert=int(alert_id))
        run = self._create_run(job, host, Trigger.REMEDIATION, None, who, workflow=record)
        await self._commit_now()
        self._pump()
        await self._alerts().link_run(int(alert_id), run.id, who)
        self.audit(actor, "remediate", [f"alert #{alert_id}"], f"{name} on {host}: #{run.id}")
        return run_dict(run)

    def _alert_host(self, alert: dict[str, Any]) -> str:
        target = alert.get("target") or LOCAL_HOST
        if target == LOCAL_HOST or target in self.config.hosts:
            return target
        source = self.config.sources.get(target)  # a log rule's alert names its source
        if source is not None and getattr(source, "host", None):
            return source.host
        return LOCAL_HOST


def _not_waiting(run: Run, step: str | None = None) -> str:
    if run.workflow is None:
        return f"run #{run.id} is not a workflow run; nothing to approve"
    if step is not None:
        st = run.workflow["steps"].get(step)
        if st is None:
            return f"workflow run #{run.id} has no step {step!r}"
        a = st.get("approval") or {}
        if a.get("decided_by"):
            return (f"step {step} of run #{run.id} was already {a['state']} by "
                    f"{a['decided_by']}")
        return f"step {step} of run #{run.id} is not awaiting approval (it is {st['state']})"
    decided = [(n, st["approval"]) for n, st in run.workflow["steps"].items()
               if (st.get("approval") or {}).get("decided_by")]
    if decided:
        n, a = decided[-1]
        return (f"run #{run.id} is not awaiting approval: step {n} was already "
                f"{a['state']} by {a['decided_by']}")
    return f"run #{run.id} is not awaiting approval (it is {run.state})"


def _may_decide(gate: Gate, actor: Actor, run: Run) -> str:
    """Why `actor` may not decide this gate, or ''."""
    if not _named(gate, actor.user):
        return f"{actor.user} may not approve this step; the gate names {gate.describe()}"
    if run.requested_by == actor.user and not gate.allow_self:
        return (f"{actor.user} requested run #{run.id} and cannot approve it too; "
                f"ask another of {gate.describe()}")
    return ""


def _named(gate: Gate, user: str) -> bool:
    for who in gate.by:
        if not who.startswith("@"):
            if who == user:
                return True
            continue
        try:
            group = grp.getgrnam(who[1:])
        except KeyError:
            continue
        if user in group.gr_mem:
            return True
        try:
            if pwd.getpwnam(user).pw_gid == group.gr_gid:
                return True
        except KeyError:
            pass
    return False

