"""The [engine], [defaults] and [jobs] sections: typed Job records and the engine's settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from core.confguard import clip
from core.config import BAD_ZONE, Checker, KeyPath, check_backoff, did_you_mean, section
from core.paths import from_root
from core.remote.config import LOCAL_HOST, Host
from core.remote.rollout import Rollout
from core.schema import Key, Section

OVERLAP_POLICIES = ("skip", "queue", "allow", "replace")
MISFIRE_POLICIES = ("skip", "run_once", "run_all")
DIALECTS = ("cron", "quartz")
DST_POLICIES = ("vixie", "skip", "all")

ENGINE = Section("engine", "the engine's own limits", (
    Key("max_concurrent_runs", "integer", "runs executing at once, over all jobs and hosts",
        16, minimum=1, maximum=10_000),
    Key("history_retention", "integer", "finished runs kept; older ones (and their logs) "
        "are pruned", 50_000, minimum=1, maximum=100_000_000),
    Key("log_retention_bytes", "integer", "one run's log is cut off at this size",
        50 * 1024 * 1024, minimum=1, maximum=1 << 40),
    Key("approvals_socket", "path", "a second socket where other users of this machine "
        "approve or reject workflow steps (`fleetdeck approve --socket`); it answers "
        "nothing else", example="/run/fleetdeck/approvals.sock"),
    Key("approvals_group", "string", "the approvals socket's group (mode 0660); without "
        "it any local user may connect, and only a gate's `by` may approve",
        example="oncall"),
))

# the keys a job shares with [defaults]: declared once, read in both places
_SHARED = (
    Key("timeout", "duration-or-none", "a run is stopped after this long; 'none' means no "
        "limit", "1h"),
    Key("kill_grace", "duration", "SIGTERM, then SIGKILL this long after (timeout or "
        "cancel)", "10s"),
    Key("retries", "integer", "extra attempts after a failed run", 0, maximum=100),
    Key("retry_backoff", "duration", "wait before the first retry; doubles each time", "10s"),
    Key("retry_backoff_max", "duration", "the longest wait between retries", "10m"),
    Key("overlap", "string", "still running at the next fire", "skip",
        choices=OVERLAP_POLICIES),
    Key("misfire", "string", "fires missed while stopped", "run_once",
        choices=MISFIRE_POLICIES),
    Key("misfire_grace", "duration", "how late a fire may still run as if on time", "1m"),
    Key("timezone", "zone", "IANA zone for schedules; default: this machine's zone"),
)
DEFAULTS = Section("defaults", "what every job takes unless it sets its own", _SHARED)

JOB = Section("jobs", "jobs: the table key is the job's name", (
    Key("command", "string", "what to run (through /bin/sh); required unless `push`",
        max_length=64 * 1024),
    Key("targets", "pattern", "where it runs: 'local', a host, a group '@web', a pattern",
        "local"),
    Key("schedule", "schedule", "when it runs; none: on demand only"),
    Key("dialect", "string", "how a cron expression reads: 5 fields are cron (Vixie), "
        "6-7 are Quartz, unless this says", choices=DIALECTS),
    Key("dst", "string", "daylight-saving rule: vixie (fixed times once, intervals keep "
        "their rhythm), skip (a time that does not exist is skipped), all (every wall-clock "
        "match)", "vixie", choices=DST_POLICIES),
    *_SHARED,
    Key("jitter", "duration", "each fire is delayed by up to this, the same for an "
        "occurrence every time", "0s"),
    Key("env", "string-map", "environment variables added for its runs; ${NAME} and "
        "${file:PATH} (a 0600 file of yours) are filled in at each run, never recorded",
        example='{ BACKUP_TARGET = "s3://bucket/path" }'),
    Key("cwd", "path", "working directory of its runs", example="/srv", max_length=4096),
    Key("tags", "strings", "labels for the console's filters", []),
    Key("enabled", "boolean", "false: never scheduled (still runnable by hand)", True),
    Key("description", "text", "one line for the console", ""),
    Key("alert_on", "strings", "open an alert when a run ends so: failed, missed", []),
    Key("on_change", "strings", "absolute paths or globs: a change runs the job", []),
    Key("change_debounce", "duration", "a burst of changes within this runs it once", "1s"),
    Key("push", "push", "instead of a command: copy files to each target over SFTP, "
        "{ src, dest, mode, owner, backup } as `fleetdeck push` takes them",
        example='{ src = "/srv/app.conf", dest = "/etc/app/" }'),
    Key("serial", "serial", "with several targets: run an occurrence's hosts in batches, "
        "2 at a time, \"25%\", or a list such as \"1,5,25%\" (a canary first)",
        example="1,25%"),
    Key("max_fail", "string", "with serial: after this many failed runs (or a share, "
        "\"10%\"), the later batches end skipped", example="1"),
    Key("pause_between", "duration", "with serial: wait this long between two batches",
        example="30s"),
    Key("remediation", "string", "a workflow its alert offers to run on its host"),
    Key("after", "strings", "run it when a run of one of these jobs succeeds (a chain; "
        "a workflow for more)", []),
    Key("after_failure", "strings", "run it when a run of one of these jobs fails or "
        "times out", []),
), named=True)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = JOB.default("retries")  # extra attempts after the first
    backoff: float = JOB.default("retry_backoff")  # before the first retry; doubles each time
    backoff_max: float = JOB.default("retry_backoff_max")  # cap on one wait
    jitter: float = 0.1  # +/- fraction of each wait, so retries of many runs spread out


@dataclass(frozen=True)
class Job:
    name: str
    command: str
    targets: str = LOCAL_HOST
    schedule: str | None = None  # raw text as written: cron, "every 30s", "at ...", "@hourly"
    timezone: str | None = None  # IANA name; None means the host's zone
    dialect: str | None = None  # cron | quartz; None: by the number of fields
    dst: str = JOB.default("dst")
    jitter: float = JOB.default("jitter")  # seconds
    timeout: float | None = None  # seconds; None means no limit
    kill_grace: float = JOB.default("kill_grace")  # SIGTERM to SIGKILL on timeout/cancel
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    overlap: str = JOB.default("overlap")
    misfire: str = JOB.default("misfire")
    misfire_grace: float = JOB.default("misfire_grace")  # late but still on time
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True
    description: str = ""
    alert_on: tuple[str, ...] = ()  # "failed", "missed": open an alert (core/alerts/)
    on_change: tuple[str, ...] = ()  # local paths or globs: a change runs the job
    change_debounce: float = JOB.default("change_debounce")  # a burst runs it once
    rollout: Rollout | None = None  # serial, max_fail, pause_between (core/jobs/rolling.py)
    push: dict[str, Any] | None = None  # a push instead of a command (core/remote/sftp.py)
    remediation: str | None = None  # a workflow proposed on its alert (core/workflows/)
    workflow: Any = None  # a WorkflowSpec: this "job" is a workflow (core/workflows/)
    step_targets: str = "{host}"  # a workflow's: where its steps run unless they say
    parent: int | None = None  # a workflow step's: the workflow run it belongs to
    step: str | None = None  # a workflow step's: its name
    after: tuple[str, ...] = ()  # jobs whose success runs this one (core/jobs/chains.py)
    after_failure: tuple[str, ...] = ()  # jobs whose failure runs this one


@dataclass(frozen=True)
class Defaults:
    timeout: float | None = DEFAULTS.default("timeout")
    kill_grace: float = DEFAULTS.default("kill_grace")
    retries: int = DEFAULTS.default("retries")
    retry_backoff: float = DEFAULTS.default("retry_backoff")
    retry_backoff_max: float = DEFAULTS.default("retry_backoff_max")
    overlap: str = DEFAULTS.default("overlap")
    misfire: str = DEFAULTS.default("misfire")
    misfire_grace: float = DEFAULTS.default("misfire_grace")
    timezone: str | None = None


@dataclass(frozen=True)
class EngineSettings:
    max_concurrent_runs: int = ENGINE.default("max_concurrent_runs")
    history_retention: int = ENGINE.default("history_retention")
    log_retention_bytes: int = ENGINE.default("log_retention_bytes")
    approvals_socket: str | None = None
    approvals_group: str | None = None


def read_engine(c: Checker, doc: dict[str, Any]) -> EngineSettings:
    t = section(c, doc, "engine")
    p = ("engine",)
    c.known_keys(t, ENGINE.names(), p)
    settings = EngineSettings(**{k.name: c.read(t, k, p) for k in ENGINE.keys})
    sock, group = settings.approvals_socket, settings.approvals_group
    if sock is not None and not sock.startswith("/"):
        c.add(p + ("approvals_socket",), f"must be an absolute path, got {clip(sock)}")
    if group is not None:
        import grp

        try:
            grp.getgrnam(group)
        except KeyError:
            c.add(p + ("approvals_group",), f"no group {clip(group)} on this machine")
    return settings


def read_defaults(c: Checker, doc: dict[str, Any]) -> Defaults:
    t = section(c, doc, "defaults")
    p = ("defaults",)
    c.known_keys(t, DEFAULTS.names(), p)
    values = {k.name: c.read(t, k, p) for k in DEFAULTS.keys}
    check_backoff(c, t, p, values["retry_backoff"], values["retry_backoff_max"])
    return Defaults(**values)


def read_jobs(c: Checker, doc: dict[str, Any], defaults: Defaults,
               hosts: dict[str, Host]) -> dict[str, Job]:
    groups = {g for h in hosts.values() for g in h.groups}
    jobs: dict[str, Job] = {}
    for name, value in section(c, doc, "jobs").items():
        p = ("jobs", name)
        ok = c.name_ok(name, "job", p)
        t = c.table(value, p)
        if t is None:
            continue
        c.known_keys(t, JOB.names(), p)
        shared = {k.name: c.read(t, k, p, getattr(defaults, k.name)) for k in _SHARED}
        simple = {k.name: c.read(t, k, p) for k in JOB.keys
                  if k.type in ("string", "text", "path", "boolean", "duration", "strings")
                  and k.name not in shared
                  and k.name not in ("alert_on", "on_change", *ROLLOUT_KEYS)}
        push = _read_push(c, t, p)
        if "command" not in t and "push" not in t:
            c.add(p, "missing required key 'command'")
        elif "command" in t and "push" in t:
            c.add(p + ("push",), "a job runs a command or a push, not both")
        targets = c.string(t, "targets", p, LOCAL_HOST)
        check_cwd(c, t, p, local=targets == LOCAL_HOST)
        if "targets" in t:
            _check_targets(c, targets, p + ("targets",), hosts, groups)
        schedule = c.string(t, "schedule", p, None)
        check_backoff(c, t, p, shared["retry_backoff"], shared["retry_backoff_max"])
        if schedule is not None:
            zone = None if shared["timezone"] == BAD_ZONE else shared["timezone"]
            _check_schedule(c, schedule, zone, p + ("schedule",), simple["dialect"],
                            simple["dst"], jitter=simple["jitter"] or 0.0)
        job = Job(
            name=name,
            command=simple.pop("command") or (
                f"push {push['src']} -> {push['dest']}" if push else ""),
            push=push,
            targets=targets,
            schedule=schedule,
            retry=RetryPolicy(retries=shared.pop("retries"),
                              backoff=shared.pop("retry_backoff"),
                              backoff_max=shared.pop("retry_backoff_max")),
            env=c.env_map(t, p),
            alert_on=_read_alert_on(c, t, p),
            on_change=_read_on_change(c, t, p),
            rollout=_read_rollout(c, t, p),
            **shared,
            **simple,
        )
        if ok:
            jobs[name] = job
    return jobs


ROLLOUT_KEYS = ("serial", "max_fail", "pause_between")


def check_cwd(c: Checker, t: dict[str, Any], p: KeyPath, *, local: bool) -> None:
    """A local run's working folder is absolute (or from ~): relative to what? The
    daemon's own working folder is nobody's choice. (On a host, relative is from the
    login's home, as ssh has it.)"""
    cwd = t.get("cwd")
    if local and isinstance(cwd, str) and cwd.strip() and not from_root(cwd):
        c.add(p + ("cwd",), f"{clip(cwd)}: write an absolute path (or one from ~)")


def _read_push(c: Checker, t: dict[str, Any], p: KeyPath) -> dict[str, Any] | None:
    from core.remote.transfer import check_push

    value = t.get("push")
    if value is None:
        return None
    if not isinstance(value, dict):
        c.add(p + ("push",), "write a table: { src = \"/srv/app.conf\", dest = \"/etc/app/\" }")
        return None
    problem = check_push(value)
    if problem is not None:
        c.add(p + ("push",), problem)
        return None
    return dict(value)


def _read_rollout(c: Checker, t: dict[str, Any], p: KeyPath) -> Rollout | None:
    """serial (an integer, "25%", "1,5,25%" or a list of them), max_fail, pause_between."""
    from core.remote.rollout import RolloutError, make_rollout

    if not any(k in t for k in ROLLOUT_KEYS):
        return None
    try:
        rollout = make_rollout(t.get("serial"), t.get("max_fail"), t.get("pause_between"))
    except RolloutError as e:
        key = str(e).split(":", 1)[0].replace("-", "_")
        c.add(p + ((key,) if key in ROLLOUT_KEYS else ()), str(e).split(": ", 1)[-1])
        return None
    return rollout


def _read_on_change(c: Checker, t: dict[str, Any], p: KeyPath) -> tuple[str, ...]:
    paths = c.str_list(t, "on_change", p)
    for path in paths:
        if not from_root(path):
            c.add(p + ("on_change",), f"on_change paths must be absolute, got {clip(path)}")
            return ()
    return tuple(os.path.expanduser(x) for x in paths)


def _read_alert_on(c: Checker, t: dict[str, Any], p: KeyPath) -> tuple[str, ...]:
    from core.alerts.config import read_alert_on

    return read_alert_on(c, t, p)


def _check_targets(c: Checker, targets: str, path: KeyPath, hosts: dict[str, Host],
                   groups: set[str]) -> None:
    from core.remote.inventory import check_pattern

    for problem in check_pattern(targets, hosts):
        c.add(path, problem)


def _check_schedule(c: Checker, text: str, timezone: str | None, path: KeyPath,
                    dialect: str | None, dst: str, *, jitter: float = 0.0) -> None:
    from core.jobs.schedule import IntervalSchedule, parse_schedule

    try:
        sched = parse_schedule(text, timezone, dialect=dialect, dst=dst)
    except ValueError as e:  # ScheduleError is a ValueError
        c.add(path, str(e) or f"bad schedule {text!r}")
        return
    if isinstance(sched, IntervalSchedule) and jitter > sched.interval:
        c.add(path[:-1] + ("jitter",), f"jitter ({jitter:g}s) must not be longer than the "
                                       f"interval ({sched.interval:g}s): runs would pile up")


def check_chains(c: Any, jobs: dict[str, Any]) -> None:
    """`check-config`: every name in `after`/`after_failure` is a job; no cycle."""
    names = sorted(jobs)
    bad = False
    for name, job in jobs.items():
        for key in ("after", "after_failure"):
            for other in getattr(job, key):
                if other not in jobs:
                    c.add(("jobs", name, key), f"{key} names {other!r}, which is no job"
                                               f"{did_you_mean(other, names)}")
                    bad = True
    if bad:
        return
    from core.workflows.spec import find_cycle

    edges = {n: tuple(j.after) + tuple(j.after_failure) for n, j in jobs.items()}
    cycle = find_cycle(edges)
    if cycle is not None:
        c.add(("jobs", cycle[0], "after"), "the jobs' after chains form a cycle: "
              + " -> ".join(cycle))
