"""The Run: one execution of a job (or an ad-hoc command) on one host, and its states."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"  # a workflow run held at an approval gate
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in ACTIVE_STATES


ACTIVE_STATES = (RunState.QUEUED, RunState.RUNNING, RunState.AWAITING_APPROVAL)
FINAL_STATES = tuple(s for s in RunState if s.finished)
# "failing lately", as the console's status bar, Overview and `fleetdeck status` count it:
# a run that ended badly (not one a person cancelled) in the last six hours
FAILED_STATES = ("failed", "timed_out", "interrupted")
FAILING_WINDOW = 6 * 3600.0
# the worst first: what one occurrence on several hosts is summed up as
WORST_FIRST = ("failed", "timed_out", "interrupted", "cancelled", "skipped",
               "awaiting_approval", "running", "queued", "succeeded")


def worst_state(states: Any) -> str:
    """The worst of several hosts' states (a failure on one host is the job's news)."""
    seen = set(states)
    return next((s for s in WORST_FIRST if s in seen), "succeeded")


def last_run_summary(last: dict[str, Any] | None) -> str:
    """A job's last occurrence in a few words: "failed", or "1/3 failed" when it ran on
    several hosts and not all ended alike."""
    if not last:
        return "-"
    hosts = last.get("hosts") or {}
    if len(hosts) > 1:
        worst = last["state"]
        n = sum(1 for s in hosts.values() if s == worst)
        if n < len(hosts):
            return f"{n}/{len(hosts)} {worst}"
    return last["state"]


class Trigger(StrEnum):
    SCHEDULE = "schedule"  # an occurrence of the job's schedule
    MANUAL = "manual"  # a person asked: run now
    MISFIRE = "misfire"  # an occurrence caught up after downtime
    WATCHDOG = "watchdog"  # a health check's restart action
    CHANGE = "change"  # files the job watches (on_change) changed
    WORKFLOW = "workflow"  # a step of a workflow run
    AFTER = "after"  # another job's run ended so (after, after_failure)
    REMEDIATION = "remediation"  # a workflow started from an alert


def filter_problem(states: list[str] | None = None,
                   triggers: list[str] | None = None) -> str | None:
    """A runs listing's filter naming a state or trigger there is none of (it would
    list nothing, as if there were no such runs), in words; or None."""
    for given, known, what in ((states, RunState, "state"), (triggers, Trigger, "trigger")):
        for value in given or ():
            if value not in {k.value for k in known}:
                return f"unknown {what} {value!r}; one of {', '.join(k.value for k in known)}"
    return None


@dataclass
class Attempt:
    number: int
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    state: str = RunState.RUNNING.value


@dataclass
class Run:
    """Plain data: what history, events, the CLI and the screen all show of a run."""

    id: int
    job: str
    host: str
    command: str
    trigger: str = Trigger.MANUAL.value
    occurrence: float | None = None  # the scheduled time this run fulfils, if any
    state: str = RunState.QUEUED.value
    reason: str = ""  # why it waits, was skipped, ended this way
    queued_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    attempt: int = 1
    max_attempts: int = 1
    attempts: list[dict[str, Any]] = field(default_factory=list)
    pid: int | None = None
    pgid: int | None = None
    proc_started: float | None = None  # the process's create time, to tell pid reuse apart
    engine_pid: int | None = None
    requested_by: str | None = None
    parent: int | None = None  # a workflow step's run: the workflow run it belongs to
    step: str | None = None  # ... and the step's name
    workflow: dict[str, Any] | None = None  # a workflow run: its steps (core/workflows/)
    claim: str | None = None  # in a cluster: the claim of its occurrence ("NODE TERM")
    node: str | None = None  # in a cluster: the node it ran on
    origin: str | None = None  # a run another node ran, mirrored here: "NODE#ID" there

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        return None if end is None else max(0.0, end - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


MISSED_REASON = "missed while fleetdeck was down"  # core/jobs/dispatch.py


def missed_row(run: dict[str, Any]) -> dict[str, Any] | None:
    """A run as the missed-run review shows it: an occurrence of the downtime run late
    or skipped by the misfire policy (both have the trigger misfire; a skip recorded
    before that says so by its reason); None for any other run."""
    if run["state"] == "skipped" and (run.get("reason") or "").startswith(MISSED_REASON):
        what = "skipped"
        m = re.search(r"misfire=(\w+)", run["reason"])
        policy = m.group(1) if m else None
    elif run.get("trigger") == "misfire":
        what, policy = "ran late", None
    else:
        return None
    return {"job": run["job"], "host": run["host"], "occurrence": run.get("occurrence"),
            "what": what, "policy": policy, "run": run["id"], "state": run["state"],
            "reason": run.get("reason") or ""}


def missed_rows(engine: Any, *, since: float | None = None, limit: int = 500,
                job: str | None = None, states: list[str] | None = None,
                host: str | None = None) -> list[dict[str, Any]]:
    """The missed occurrences (``missed_row``), newest run first, from the index's
    misfire listing; ``since``: scheduled at or after it (a run is queued at or after
    its occurrence, so the listing's own ``since`` loses none)."""
    out = []
    for run in engine.list_runs(job=job, states=states, triggers=[Trigger.MISFIRE.value],
                                since=since, limit=None, host=host):
        row = missed_row(run)
        if row is None or (since is not None and (row["occurrence"] or 0) < since):
            continue
        out.append(row)
        if len(out) >= limit:
            break
    return out
