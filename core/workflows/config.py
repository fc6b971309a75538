"""`[workflows.NAME]` and its `[[workflows.NAME.steps]]`: read, checked as a graph (a
cycle named by its path, `needs` naming no step, a `job =` naming no job, duplicate
names, a gate naming nobody), and made into a Job that carries its WorkflowSpec, so a
workflow is scheduled, listed, paused and run like any job."""

from __future__ import annotations

from typing import Any

from core.config import MISSING, Checker, KeyPath, section
from core.jobs.config import (
    JOB,
    ROLLOUT_KEYS,
    Defaults,
    Job,
    RetryPolicy,
    _check_schedule,
    _check_targets,
    _read_alert_on,
    _read_push,
    _read_rollout,
    check_cwd,
)
from core.remote.config import LOCAL_HOST, Host
from core.schema import Key, Section
from core.workflows.spec import ON_TIMEOUT, WHEN, Gate, Step, WorkflowSpec, find_cycle, topological

MAX_STEPS = 5000

_FROM_JOB = ("schedule", "dialect", "dst", "timezone", "overlap", "misfire", "misfire_grace",
             "jitter", "env", "tags", "enabled", "description", "alert_on")
WORKFLOW = Section("workflows", "workflows: steps with dependencies, run as one; the "
                   "table key is the workflow's name (one namespace with jobs)", (
    *(JOB[k] for k in _FROM_JOB),
    Key("targets", "pattern", "where a step without targets runs; {host}: the run's "
        "host (local, or a remediation's alert host)", "{host}"),
    Key("timeout", "duration-or-none", "the whole workflow is stopped after this long",
        "none"),
    Key("steps", "steps", "the steps, each a [[workflows.NAME.steps]] table"),
), named=True)

STEP = Section("steps", "one step of a workflow", (
    Key("name", "string", "the step's name, unique in its workflow", required=True),
    Key("job", "string", "run this configured job (its command, targets, timeout, "
        "retries) as the step"),
    Key("command", "string", "or an inline command (through /bin/sh)",
        max_length=64 * 1024),
    JOB["push"],
    Key("targets", "pattern", "where the step runs; `{host}` is the workflow run's host"),
    Key("needs", "strings", "steps that must end first", []),
    Key("when", "string", "success: after every step it needs succeeded; failure: after "
        "one failed; always: after they all ended", "success", choices=WHEN),
    Key("timeout", "duration-or-none", "a run of the step is stopped after this long"),
    Key("retries", "integer", "extra attempts after a failed run", maximum=100),
    Key("retry_backoff", "duration", "wait before the first retry; doubles each time"),
    Key("env", "string-map", "environment variables added for the step's runs"),
    Key("cwd", "path", "working directory of a local step", max_length=4096),
    JOB["serial"], JOB["max_fail"], JOB["pause_between"],
    Key("approve", "gate", "a person must approve before the step starts: "
        "{ by = [\"alice\", \"@oncall\"], timeout = \"30m\", on_timeout = \"fail\" }"),
))


def read_workflows(c: Checker, doc: dict[str, Any], defaults: Defaults,
                   hosts: dict[str, Host], jobs: dict[str, Job]) -> dict[str, Job]:
    out: dict[str, Job] = {}
    for name, value in section(c, doc, "workflows").items():
        p = ("workflows", name)
        ok = c.name_ok(name, "workflow", p)
        t = c.table(value, p)
        if t is None:
            continue
        c.known_keys(t, WORKFLOW.names(), p)
        if name in jobs:
            c.add(p, f"a job is named {name!r} too; workflows and jobs share one namespace")
            ok = False
        spec = _read_steps(c, t, p, name, hosts, jobs)
        values = {k: c.read(t, JOB[k], p, getattr(defaults, k, MISSING))
                  for k in _FROM_JOB if JOB[k].type in (
                      "string", "text", "boolean", "duration", "strings", "zone")}
        schedule = c.string(t, "schedule", p, None)
        if schedule is not None:
            _check_schedule(c, schedule, values.get("timezone"), p + ("schedule",),
                            values.get("dialect"), values.get("dst") or "vixie")
        targets = c.string(t, "targets", p, "{host}")
        if "targets" in t and "{host}" not in targets:
            _check_targets(c, targets, p + ("targets",), hosts, set())
        timeout = c.duration(t, "timeout", p, None, allow_none=True)
        if spec is None or not ok:
            continue
        values.pop("schedule", None)
        out[name] = Job(
            name=name, command=f"workflow of {len(spec.steps)} steps", targets=LOCAL_HOST,
            schedule=schedule, timeout=timeout, retry=RetryPolicy(retries=0),
            env=c.env_map(t, p),
            alert_on=_read_alert_on(c, t, p), workflow=spec, step_targets=targets,
            **{k: v for k, v in values.items() if k not in ("env", "alert_on")},
        )
    return out


def _read_steps(c: Checker, t: dict[str, Any], p: KeyPath, name: str,
                hosts: dict[str, Host], jobs: dict[str, Job]) -> WorkflowSpec | None:
    raw = t.get("steps")
    if raw is None:
        c.add(p, "a workflow needs steps: [[workflows." + name + ".steps]] tables")
        return None
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        c.wrong_type(p + ("steps",), "an array of tables ([[workflows.NAME.steps]])", raw)
        return None
    if not raw:
        c.add(p + ("steps",), "a workflow needs at least one step")
        return None
    if len(raw) > MAX_STEPS:
        c.add(p + ("steps",), f"{len(raw)} steps; at most {MAX_STEPS}")
        return None
    steps: list[Step] = []
    where: dict[str, KeyPath] = {}
    bad = False
    for i, st in enumerate(raw):
        sp = p + ("steps", f"[{i}]")
        step = _read_step(c, st, sp, hosts, jobs)
        if step is None:
            bad = True
            continue
        if step.name in where:
            c.add(sp + ("name",), f"duplicate step name {step.name!r}: steps"
                                  f"{where[step.name][-1]} has it too")
            bad = True
            continue
        where[step.name] = sp
        steps.append(step)
    for step in steps:
        for need in step.needs:
            if need not in where:
                c.add(where[step.name] + ("needs",),
                      f"step {step.name!r} needs {need!r}, which is no step of this workflow")
                bad = True
            elif need == step.name:
                c.add(where[step.name] + ("needs",), f"step {step.name!r} needs itself")
                bad = True
    if bad:
        return None
    edges = {s.name: s.needs for s in steps}
    cycle = find_cycle(edges)
    if cycle is not None:
        c.add(where[cycle[0]] + ("needs",), "the steps' needs form a cycle: "
              + " -> ".join(cycle))
        return None
    return WorkflowSpec(name, tuple(steps), topological(edges))


def _read_step(c: Checker, st: dict[str, Any], sp: KeyPath, hosts: dict[str, Host],
               jobs: dict[str, Job]) -> Step | None:
    c.known_keys(st, STEP.names(), sp)
    name = c.string(st, "name", sp, None, line=True)
    if name is None:
        c.add(sp, "a step needs a name")
        return None
    if not c.name_ok(name, "step", sp + ("name",)):
        return None
    kinds = [k for k in ("job", "command", "push") if k in st]
    if not kinds:
        c.add(sp, f"step {name!r} has neither `job` nor `command` (nor `push`)")
        return None
    if len(kinds) > 1:
        c.add(sp + (kinds[1],), f"step {name!r} has both `{kinds[0]}` and `{kinds[1]}`; "
                                "give one")
        return None
    job = c.string(st, "job", sp, None, line=True)
    if job is not None and job not in jobs:
        c.add(sp + ("job",), f"step {name!r} runs job {job!r}, which is not configured")
        return None
    targets = c.string(st, "targets", sp, None)
    if targets is not None and "{host}" not in targets:
        _check_targets(c, targets, sp + ("targets",), hosts, set())
    rollout = _read_rollout(c, st, sp) if any(k in st for k in ROLLOUT_KEYS) else None
    timeout = c.duration(st, "timeout", sp, None, allow_none=True)
    retries = c.integer(st, "retries", sp, None) if "retries" in st else None
    check_cwd(c, st, sp, local=targets == LOCAL_HOST)
    return Step(
        name=name, job=job, command=c.string(st, "command", sp, None),
        push=_read_push(c, st, sp), targets=targets,
        needs=c.str_list(st, "needs", sp, names="step"),
        when=c.choice(st, "when", sp, "success", WHEN),
        timeout=timeout, timeout_set="timeout" in st, retries=retries,
        retry_backoff=c.duration(st, "retry_backoff", sp, None),
        env=c.env_map(st, sp),
        cwd=c.string(st, "cwd", sp, None, line=True), rollout=rollout,
        approve=_read_gate(c, st, sp),
    )


def _read_gate(c: Checker, st: dict[str, Any], sp: KeyPath) -> Gate | None:
    value = st.get("approve")
    if value is None:
        return None
    gp = sp + ("approve",)
    if not isinstance(value, dict):
        c.wrong_type(gp, 'a table: { by = ["alice", "@oncall"], timeout = "30m" }', value)
        return None
    c.known_keys(value, ("by", "timeout", "on_timeout", "allow_self"), gp)
    by = c.str_list(value, "by", gp)
    if not by:
        c.add(gp + ("by",), "an approval gate must name who approves: by = [\"alice\", "
                            "\"@oncall\"]")
        return None
    problems = [_approver_problem(who) for who in by]
    for problem in filter(None, problems):
        c.add(gp + ("by",), problem)
    timeout = c.duration(value, "timeout", gp, None, minimum=1.0)
    gate = Gate(by=by, timeout=timeout,
                on_timeout=c.choice(value, "on_timeout", gp, "fail", ON_TIMEOUT),
                allow_self=c.boolean(value, "allow_self", gp, False))
    return None if any(problems) else gate


def _approver_problem(who: str) -> str | None:
    name = who.removeprefix("@")
    if not name or any(ch.isspace() or ch in ",:" for ch in who):
        return f"{who!r} is not a user name or @group"
    return None


def unknown_approver(who: str) -> str | None:
    """Approvals come from this machine's users (the socket's peer): a name no user or
    group has leaves the gate to time out, whoever asks (check-config warns: the config
    may be for another machine)."""
    import grp
    import pwd

    name = who.removeprefix("@")
    try:
        grp.getgrnam(name) if who.startswith("@") else pwd.getpwnam(name)
    except KeyError:
        kind = "group" if who.startswith("@") else "user"
        return f"no {kind} {name!r} on this machine (approvers are its users)"
    return None
