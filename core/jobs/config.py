"""The [engine], [defaults] and [jobs] sections: typed Job records and the engine's settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from core.config import BAD_ZONE, ENV_NAME_RE, Checker, KeyPath, section
from core.remote.config import LOCAL_HOST, Host

OVERLAP_POLICIES = ("skip", "queue", "allow", "replace")
MISFIRE_POLICIES = ("skip", "run_once", "run_all")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 0  # extra attempts after the first
    backoff: float = 10.0  # seconds before the first retry; doubles each time
    backoff_max: float = 600.0  # cap on one wait
    jitter: float = 0.1  # +/- fraction of each wait, so retries of many runs spread out


@dataclass(frozen=True)
class Job:
    name: str
    command: str
    targets: str = LOCAL_HOST
    schedule: str | None = None  # raw text as written: cron, "every 30s", "at ...", "@hourly"
    timezone: str | None = None  # IANA name; None means the host's zone
    jitter: float = 0.0  # seconds
    timeout: float | None = None  # seconds; None means no limit
    kill_grace: float = 10.0  # seconds between SIGTERM and SIGKILL on timeout/cancel
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    overlap: str = "skip"
    misfire: str = "run_once"
    misfire_grace: float = 60.0  # seconds late an occurrence may still run as if on time
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True
    description: str = ""
    alert_on: tuple[str, ...] = ()  # "failed", "missed": open an alert (core/alerts/manager.py)
    on_change: tuple[str, ...] = ()  # local paths or globs: a change runs the job
    change_debounce: float = 1.0  # seconds: a burst of writes runs it once


@dataclass(frozen=True)
class Defaults:
    timeout: float | None = 3600.0
    kill_grace: float = 10.0
    retries: int = 0
    retry_backoff: float = 10.0
    retry_backoff_max: float = 600.0
    overlap: str = "skip"
    misfire: str = "run_once"
    misfire_grace: float = 60.0
    timezone: str | None = None


@dataclass(frozen=True)
class EngineSettings:
    max_concurrent_runs: int = 16
    history_retention: int = 50_000  # runs kept; older segments and their logs are pruned
    log_retention_bytes: int = 50 * 1024 * 1024  # one run log is capped at this size



_ENGINE_KEYS = ("max_concurrent_runs", "history_retention", "log_retention_bytes")
_DEFAULTS_KEYS = ("timeout", "kill_grace", "retries", "retry_backoff", "retry_backoff_max",
                  "overlap", "misfire", "misfire_grace", "timezone")
_JOB_KEYS = ("command", "targets", "schedule", "timezone", "jitter", "timeout", "kill_grace",
             "retries", "retry_backoff", "retry_backoff_max", "overlap", "misfire",
             "misfire_grace", "env", "cwd", "tags", "enabled", "description", "alert_on",
             "on_change", "change_debounce")



def read_engine(c: Checker, doc: dict[str, Any]) -> EngineSettings:
    t = section(c, doc, "engine")
    p = ("engine",)
    c.known_keys(t, _ENGINE_KEYS, p)
    d = EngineSettings()
    return EngineSettings(
        max_concurrent_runs=c.integer(t, "max_concurrent_runs", p, d.max_concurrent_runs,
                                      minimum=1),
        history_retention=c.integer(t, "history_retention", p, d.history_retention, minimum=1),
        log_retention_bytes=c.integer(t, "log_retention_bytes", p, d.log_retention_bytes,
                                      minimum=1),
    )


def read_defaults(c: Checker, doc: dict[str, Any]) -> Defaults:
    t = section(c, doc, "defaults")
    p = ("defaults",)
    c.known_keys(t, _DEFAULTS_KEYS, p)
    d = Defaults()
    return Defaults(
        timeout=c.duration(t, "timeout", p, d.timeout, allow_none=True),
        kill_grace=c.duration(t, "kill_grace", p, d.kill_grace),
        retries=c.integer(t, "retries", p, d.retries),
        retry_backoff=c.duration(t, "retry_backoff", p, d.retry_backoff),
        retry_backoff_max=c.duration(t, "retry_backoff_max", p, d.retry_backoff_max),
        overlap=c.choice(t, "overlap", p, d.overlap, OVERLAP_POLICIES),
        misfire=c.choice(t, "misfire", p, d.misfire, MISFIRE_POLICIES),
        misfire_grace=c.duration(t, "misfire_grace", p, d.misfire_grace),
        timezone=c.timezone(t, "timezone", p, d.timezone),
    )


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
        c.known_keys(t, _JOB_KEYS, p)
        command = c.string(t, "command", p, None)
        if "command" not in t:
            c.add(p, "missing required key 'command'")
        targets = c.string(t, "targets", p, LOCAL_HOST)
        if "targets" in t:
            _check_targets(c, targets, p + ("targets",), hosts, groups)
        schedule = c.string(t, "schedule", p, None)
        timezone = c.timezone(t, "timezone", p, defaults.timezone)
        if schedule is not None:
            zone = None if timezone == BAD_ZONE else timezone
            _check_schedule(c, schedule, zone, p + ("schedule",))
        job = Job(
            name=name,
            command=command or "",
            targets=targets,
            schedule=schedule,
            timezone=timezone,
            jitter=c.duration(t, "jitter", p, 0.0),
            timeout=c.duration(t, "timeout", p, defaults.timeout, allow_none=True),
            kill_grace=c.duration(t, "kill_grace", p, defaults.kill_grace),
            retry=RetryPolicy(
                retries=c.integer(t, "retries", p, defaults.retries),
                backoff=c.duration(t, "retry_backoff", p, defaults.retry_backoff),
                backoff_max=c.duration(t, "retry_backoff_max", p, defaults.retry_backoff_max),
            ),
            overlap=c.choice(t, "overlap", p, defaults.overlap, OVERLAP_POLICIES),
            misfire=c.choice(t, "misfire", p, defaults.misfire, MISFIRE_POLICIES),
            misfire_grace=c.duration(t, "misfire_grace", p, defaults.misfire_grace),
            env=c.str_map(t, "env", p, ENV_NAME_RE, "environment variable name"),
            cwd=c.string(t, "cwd", p, None),
            tags=c.str_list(t, "tags", p),
            enabled=c.boolean(t, "enabled", p, True),
            description=c.string(t, "description", p, "", nonempty=False),
            alert_on=_read_alert_on(c, t, p),
            on_change=_read_on_change(c, t, p),
            change_debounce=c.duration(t, "change_debounce", p, 1.0),
        )
        if ok:
            jobs[name] = job
    return jobs


def _read_on_change(c: Checker, t: dict[str, Any], p: KeyPath) -> tuple[str, ...]:
    paths = c.str_list(t, "on_change", p)
    for path in paths:
        if not path.startswith(("/", "~")):
            c.add(p + ("on_change",), f"on_change paths must be absolute, got {path!r}")
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


def _check_schedule(c: Checker, text: str, timezone: str | None, path: KeyPath) -> None:
    try:
        from core.jobs.schedule import parse_schedule
    except ImportError:  # the schedule module is not there yet; the engine will say so
        return
    try:
        parse_schedule(text, timezone)
    except ValueError as e:  # ScheduleError is a ValueError
        c.add(path, str(e) or f"bad schedule {text!r}")


