"""A workflow run's record (`run.workflow` in history): each step's state, runs, times,
outputs and approval; the rules that decide whether a step runs once what it needs has
ended; the workflow's result; and the record a retry starts from."""

from __future__ import annotations

from typing import Any

from core.workflows.spec import FAILED_STEP, FINAL_STEP, Step, WorkflowSpec


def new_record(spec: WorkflowSpec, host: str, *, alert: int | None = None,
               resumed_from: int | None = None) -> dict[str, Any]:
    steps = {}
    for name in spec.order:
        step = spec.step(name)
        steps[name] = {"state": "pending", "needs": list(step.needs), "when": step.when,
                       "runs": [], "reason": "", "started_at": None, "finished_at": None,
                       "outputs": {}, "gate": bool(step.approve)}
    return {"name": spec.name, "host": host, "alert": alert, "resumed_from": resumed_from,
            "order": list(spec.order), "steps": steps}


def set_step(st: dict[str, Any], state: str, reason: str, now: float, *,
             upstream_failed: bool = False) -> None:
    st["state"], st["reason"], st["finished_at"] = state, reason, now
    if upstream_failed:
        st["upstream_failed"] = True


def failed(st: dict[str, Any]) -> bool:
    """A step counts as failed for `when`: it failed, or was skipped for a failure above."""
    return st["state"] in FAILED_STEP or bool(st.get("upstream_failed"))


def step_decision(step: Step, steps: dict[str, Any]) -> tuple[bool, str, bool] | None:
    """Whether a pending step runs, once every step it needs has ended: (run it, why
    not, skipped for a failure above); None while one has not ended."""
    needs = [(n, steps[n]) for n in step.needs]
    if any(st["state"] not in FINAL_STEP for _, st in needs):
        return None
    if step.when == "always":
        return True, "", False
    bad = [n for n, st in needs if failed(st)]
    if step.when == "failure":
        if bad:
            return True, "", False
        return False, "nothing it needs failed (when = \"failure\")", False
    if bad:
        return False, f"step {bad[0]} did not succeed", True
    skipped = [n for n, st in needs if st["state"] != "succeeded"]
    if skipped:
        return False, f"step {skipped[0]} was {steps[skipped[0]]['state']}", False
    return True, "", False


def result_of(spec: WorkflowSpec, steps: dict[str, Any]) -> str:
    """'' when the workflow succeeded, else its reason: the first step (in order) that
    failed. A `when = "failure"` step that ran does not make a failure a success."""
    for name in spec.order:
        st = steps[name]
        if st["state"] in FAILED_STEP:
            return f"step {name} {st['state']}" + (f": {st['reason']}" if st["reason"] else "")
    return ""


def interrupted(record: dict[str, Any], reason: str, now: float,
                state_of: Any, ran: dict[int, str]) -> list[str]:
    """A dead engine's workflow run, its steps brought up to date from their runs (the
    record is saved a moment after them): a step whose runs all ended takes their end;
    one whose run was running (`ran`) or that waited for a person ends `interrupted`.
    `state_of(run_id)`: a run's state in history. Returns the interrupted steps."""
    from core.jobs.runs import worst_state

    out = []
    for name, st in record["steps"].items():
        if st["state"] in FINAL_STEP:
            continue
        ids = st.get("runs") or []
        states = [state_of(i) for i in ids]
        if ids and not any(i in ran for i in ids) and all(
                x in FINAL_STEP and x != "interrupted" for x in states):
            set_step(st, worst_state(states), "", now)  # it ended before the engine died
        elif st["state"] in ("running", "awaiting_approval") or any(i in ran for i in ids):
            if (st.get("approval") or {}).get("state") == "waiting":
                st["approval"]["state"] = "interrupted"
            set_step(st, "interrupted", reason, now)
            out.append(name)
    return out


def retry_record(spec: WorkflowSpec, old: dict[str, Any], old_id: int,
                 runs: dict[int, str]) -> tuple[dict[str, Any], list[str]]:
    """The record a retry of workflow run `old_id` starts from: every step that
    succeeded is kept (not run again) when every step it needs is kept too; the rest
    run again (a cleanup that ran after a failure runs again if the failure comes
    back). A step the dead engine left `running` or `interrupted` whose runs all
    succeeded (`runs`: id -> state in history) counts as succeeded. Returns the record
    and the kept steps."""
    record = new_record(spec, old["host"], alert=old.get("alert"), resumed_from=old_id)
    kept = []
    for name, st in record["steps"].items():
        was = old["steps"].get(name)
        if was is None or any(n not in kept for n in spec.step(name).needs):
            continue
        ids = was.get("runs") or []
        done = was["state"] == "succeeded" or (
            bool(ids) and all(runs.get(i) == "succeeded" for i in ids))
        if done:
            st.update(state="succeeded", runs=list(ids), outputs=dict(was.get("outputs") or {}),
                      started_at=was.get("started_at"), finished_at=was.get("finished_at"),
                      reason=f"kept from run #{old_id}", kept_from=old_id)
            if was.get("approval"):
                st["approval"] = dict(was["approval"])
            kept.append(name)
    return record, kept
