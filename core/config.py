"""TOML configuration -> typed, validated Config.

Every mistake becomes a ConfigIssue naming the file, the key path and what is wrong,
so `check-config` can print them all at once and a reload can refuse a bad file whole.
"""

from __future__ import annotations

import ast
import datetime
import difflib
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.durations import DurationError, parse_duration

OVERLAP_POLICIES = ("skip", "queue", "allow", "replace")
MISFIRE_POLICIES = ("skip", "run_once", "run_all")
LOCAL_HOST = "local"


@dataclass(frozen=True)
class Host:
    name: str
    address: str = ""
    port: int = 22
    user: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    # SSH: unset fields are left to ~/.ssh/config (HostName, User, Port, IdentityFile,
    # ProxyJump); `explicit` names the keys the inventory wrote itself
    identity_file: str | None = None  # private key path (~ expanded)
    jump_host: str | None = None  # an inventory host name, or [user@]host[:port]
    known_hosts: str | None = None  # an extra known_hosts file trusted for this host
    explicit: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL_HOST


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


@dataclass(frozen=True)
class Config:
    path: Path | None  # None for the built-in default
    hosts: dict[str, Host]
    jobs: dict[str, Job]
    defaults: Defaults = field(default_factory=Defaults)
    engine: EngineSettings = field(default_factory=EngineSettings)
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> key(s), for the console
    theme: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)  # core.health.config.CheckSpec
    sources: dict[str, Any] = field(default_factory=dict)  # core.logs.sources.SourceSpec
    rules: dict[str, Any] = field(default_factory=dict)  # core.logs.rules.RuleSpec
    alerting: Any = None  # core.alerts.config.AlertingConfig: [alerts], [notifiers], [maintenance]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: where (file, line if known, key path) and what."""

    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """Raised with every issue found; str() is one line per issue."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


# ------------------------------------------------------------------------------ paths ---
def default_config_path() -> Path:
    """$XDG_CONFIG_HOME/fleetdeck/config.toml (XDG_CONFIG_HOME defaults to ~/.config)."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "fleetdeck" / "config.toml"


def default_state_dir() -> Path:
    """$XDG_STATE_HOME/fleetdeck (XDG_STATE_HOME defaults to ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "fleetdeck"


# --------------------------------------------------------------------------- loading ---
def load_config(path: Path | None = None) -> Config:
    """Read and validate a config file; raise ConfigError listing every issue.

    With no path, the default location is used, and when nothing is there the
    built-in default config is returned. An explicit path must exist.
    """
    if path is None:
        path = default_config_path()
        if not path.exists():
            return builtin_config()
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(source, "", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigIssue(source, "", "is a directory, not a file")]) from None
    except OSError as e:
        raise ConfigError([ConfigIssue(source, "", f"cannot read: {e.strerror or e}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError([ConfigIssue(source, "", "not valid UTF-8 text", line)]) from None
    config, issues = _parse(text, source, path)
    if issues:
        raise ConfigError(issues)
    return config


def parse_config_text(text: str, source: str = "<config>") -> Config:
    """Validate config text (not read from a file); Config.path is None."""
    config, issues = _parse(text, source, None)
    if issues:
        raise ConfigError(issues)
    return config


def check_config(path: Path | None) -> list[ConfigIssue]:
    """Every issue in a config file; [] when it is valid."""
    try:
        load_config(path)
    except ConfigError as e:
        return list(e.issues)
    return []


def builtin_config() -> Config:
    """The config used when there is no file: exactly what `fleetdeck init` writes out."""
    from core.default_config import DEFAULT_CONFIG_TOML

    return parse_config_text(DEFAULT_CONFIG_TOML, "<built-in config>")


# ------------------------------------------------------------------------ validation ---
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_NAME_HINT = "use letters, digits, '_', '.' and '-', starting with a letter or digit"

_TOP_KEYS = ("theme", "engine", "defaults", "hosts", "jobs", "keys", "checks",
             "alerts", "notifiers", "maintenance", "sources", "rules")
_ENGINE_KEYS = ("max_concurrent_runs", "history_retention", "log_retention_bytes")
_DEFAULTS_KEYS = ("timeout", "kill_grace", "retries", "retry_backoff", "retry_backoff_max",
                  "overlap", "misfire", "misfire_grace", "timezone")
_HOST_KEYS = ("address", "port", "user", "tags", "groups", "identity_file", "jump_host",
              "known_hosts")
_JOB_KEYS = ("command", "targets", "schedule", "timezone", "jitter", "timeout", "kill_grace",
             "retries", "retry_backoff", "retry_backoff_max", "overlap", "misfire",
             "misfire_grace", "env", "cwd", "tags", "enabled", "description", "alert_on",
             "on_change", "change_debounce")

_Path = tuple[str, ...]
_MISSING: Any = object()


def _key_path(path: _Path) -> str:
    return ".".join(p if _BARE_KEY_RE.fullmatch(p) else json.dumps(p) for p in path)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    if isinstance(value, datetime.datetime):
        return "date-time"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    return type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Reads one parsed document into typed values, collecting every issue on the way."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = _LineIndex(text)
        self.issues: list[ConfigIssue] = []

    def add(self, path: _Path, message: str) -> None:
        self.issues.append(
            ConfigIssue(self.source, _key_path(path), message, self.lines.find(path)))

    def wrong_type(self, path: _Path, expected: str, value: object) -> None:
        self.add(path, f"expected {expected}, got {_type_name(value)}")

    # -- shapes --
    def table(self, value: object, path: _Path) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.wrong_type(path, "a table", value)
        return None

    def known_keys(self, table: dict[str, Any], known: tuple[str, ...], path: _Path) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.add(path + (key,), f"unknown key '{key}'{hint}")

    def name_ok(self, name: str, kind: str, path: _Path) -> bool:
        if NAME_RE.fullmatch(name):
            return True
        self.add(path, f"invalid {kind} name {name!r}; {_NAME_HINT}")
        return False

    # -- scalars: each returns `default` when the key is absent or its value is wrong --
    def string(self, t: dict[str, Any], key: str, path: _Path, default: Any,
               *, nonempty: bool = True) -> Any:
        value = t.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.wrong_type(path + (key,), "a string", value)
            return default
        if nonempty and not value.strip():
            self.add(path + (key,), f"{key} must not be empty")
            return default
        return value

    def integer(self, t: dict[str, Any], key: str, path: _Path, default: int,
                *, minimum: int = 0, maximum: int | None = None) -> int:
        value = t.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not _is_int(value):
            self.wrong_type(path + (key,), "an integer", value)
            return default
        if value < minimum:
            if minimum == 0:
                self.add(path + (key,), f"{key} must not be negative, got {value}")
            else:
                self.add(path + (key,), f"{key} must be at least {minimum}, got {value}")
            return default
        if maximum is not None and value > maximum:
            self.add(path + (key,), f"{key} must be at most {maximum}, got {value}")
            return default
        return value

    def boolean(self, t: dict[str, Any], key: str, path: _Path, default: bool) -> bool:
        value = t.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.wrong_type(path + (key,), "true or false", value)
            return default
        return value

    def duration(self, t: dict[str, Any], key: str, path: _Path, default: Any,
                 *, allow_none: bool = False) -> Any:
        """Seconds from "90s"/"5m"/a number; with allow_none, "none" means no limit (None)."""
        value = t.get(key, _MISSING)
        if value is _MISSING:
            return default
        if allow_none and isinstance(value, str) and value.strip().lower() == "none":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            expected = "a duration like '90s'" + (" or 'none'" if allow_none else "")
            self.wrong_type(path + (key,), expected, value)
            return default
        try:
            seconds = parse_duration(value)
        except DurationError as e:
            self.add(path + (key,), str(e))
            return default
        if not math.isfinite(seconds):
            self.add(path + (key,), f"duration must be finite, got {value!r}")
            return default
        if allow_none and seconds == 0:
            self.add(path + (key,), f"{key} must be more than 0; write 'none' for no limit")
            return default
        return seconds

    def choice(self, t: dict[str, Any], key: str, path: _Path, default: str,
               choices: tuple[str, ...]) -> str:
        value = self.string(t, key, path, _MISSING, nonempty=False)
        if value is _MISSING:
            return default
        if value not in choices:
            self.add(path + (key,), f"{key} must be one of {', '.join(choices)}, got {value!r}")
            return default
        return value

    def timezone(self, t: dict[str, Any], key: str, path: _Path, default: Any) -> Any:
        value = self.string(t, key, path, _MISSING)
        if value is _MISSING:
            return default
        if not _zone_exists(value):
            self.add(path + (key,), f"unknown time zone {value!r}; use an IANA name "
                                    "like 'Europe/Berlin' or 'UTC'")
            return _BAD_ZONE
        return value

    def str_map(self, t: dict[str, Any], key: str, path: _Path,
                key_re: re.Pattern[str] | None = None, what: str = "key") -> dict[str, str]:
        value = t.get(key, _MISSING)
        if value is _MISSING:
            return {}
        if not isinstance(value, dict):
            self.wrong_type(path + (key,), "a table", value)
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if key_re is not None and not key_re.fullmatch(k):
                self.add(path + (key, k), f"invalid {what} {k!r}")
            elif not isinstance(v, str):
                self.wrong_type(path + (key, k), "a string", v)
            else:
                out[k] = v
        return out

    def str_list(self, t: dict[str, Any], key: str, path: _Path, *, names: str = "") -> tuple[
            str, ...]:
        value = t.get(key, _MISSING)
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            self.wrong_type(path + (key,), "an array of strings", value)
            return ()
        out: list[str] = []
        for item in value:
            if not isinstance(item, str):
                self.add(path + (key,), f"expected an array of strings, got a {_type_name(item)} "
                                        "in it")
            elif names and not self.name_ok(item, names, path + (key,)):
                pass
            elif item not in out:
                out.append(item)
        return tuple(out)


_BAD_ZONE = "\0bad zone"  # a timezone already reported as wrong; skip it when checking schedules


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _parse(text: str, source: str, path: Path | None) -> tuple[Config, list[ConfigIssue]]:
    """The Config a text describes (meaningful only when no issues) and every issue in it."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return _EMPTY, [_syntax_issue(e, text, source)]
    c = _Checker(source, text)
    c.known_keys(doc, _TOP_KEYS, ())
    theme = c.string(doc, "theme", (), None)
    engine = _read_engine(c, doc)
    defaults = _read_defaults(c, doc)
    hosts = _read_hosts(c, doc)
    jobs = _read_jobs(c, doc, defaults, hosts)
    keys = c.str_map(doc, "keys", ())
    for k, v in keys.items():
        if not v.strip():
            c.add(("keys", k), "key binding must not be empty")
    from core.alerts.config import read_alerting
    from core.health.config import read_checks

    checks = read_checks(c, doc, hosts)
    alerting = read_alerting(c, doc, hosts)
    from core.logs.rules import read_rules
    from core.logs.sources import read_sources

    sources = read_sources(c, doc, hosts)
    rules = read_rules(c, doc, sources)
    config = Config(path=path, hosts=hosts, jobs=jobs, defaults=defaults, engine=engine,
                    keys=keys, theme=theme, checks=checks, alerting=alerting,
                    sources=sources, rules=rules)
    # top to bottom, as a person reads the file; issues without a line last
    issues = sorted(c.issues, key=lambda i: (i.line is None, i.line or 0))
    return config, issues


_EMPTY = Config(path=None, hosts={}, jobs={})


def _section(c: _Checker, doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, _MISSING)
    if value is _MISSING:
        return {}
    return c.table(value, (key,)) or {}


def _read_engine(c: _Checker, doc: dict[str, Any]) -> EngineSettings:
    t = _section(c, doc, "engine")
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


def _read_defaults(c: _Checker, doc: dict[str, Any]) -> Defaults:
    t = _section(c, doc, "defaults")
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


def _read_hosts(c: _Checker, doc: dict[str, Any]) -> dict[str, Host]:
    hosts: dict[str, Host] = {LOCAL_HOST: Host(LOCAL_HOST)}
    for name, value in _section(c, doc, "hosts").items():
        p = ("hosts", name)
        if name == LOCAL_HOST:
            c.add(p, "local is built in; it needs no [hosts.local] table")
            continue
        ok = c.name_ok(name, "host", p)
        t = c.table(value, p)
        if t is None:
            continue
        c.known_keys(t, _HOST_KEYS, p)
        host = Host(
            name=name,
            address=c.string(t, "address", p, name),  # default: the name, resolved by SSH
            port=c.integer(t, "port", p, 22, minimum=1, maximum=65535),
            user=c.string(t, "user", p, None),
            tags=c.str_map(t, "tags", p),
            groups=c.str_list(t, "groups", p, names="group"),
            identity_file=c.string(t, "identity_file", p, None),
            jump_host=c.string(t, "jump_host", p, None),
            known_hosts=c.string(t, "known_hosts", p, None),
            explicit=tuple(k for k in _HOST_KEYS if k in t),
        )
        if ok:
            hosts[name] = host
    _check_jump_hosts(c, hosts)
    return hosts


_JUMP_RE = re.compile(r"(?:[^@\s:]+@)?[A-Za-z0-9_.-]+(?::\d{1,5})?")


def _check_jump_hosts(c: _Checker, hosts: dict[str, Host]) -> None:
    """A jump host is an inventory host or [user@]host[:port]; no loops through hosts."""
    for host in hosts.values():
        jump = host.jump_host
        if jump is None:
            continue
        p = ("hosts", host.name, "jump_host")
        if jump == host.name:
            c.add(p, "a host cannot be its own jump host")
        elif jump in hosts:
            if jump == LOCAL_HOST:
                c.add(p, "local cannot be a jump host")
            elif hosts[jump].jump_host is not None:
                c.add(p, f"jump host '{jump}' has a jump host itself; chains are not "
                         "supported")
        elif not _JUMP_RE.fullmatch(jump):
            c.add(p, f"invalid jump host {jump!r}; use an inventory host name or "
                     "[user@]host[:port]")


def _read_jobs(c: _Checker, doc: dict[str, Any], defaults: Defaults,
               hosts: dict[str, Host]) -> dict[str, Job]:
    groups = {g for h in hosts.values() for g in h.groups}
    jobs: dict[str, Job] = {}
    for name, value in _section(c, doc, "jobs").items():
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
            zone = None if timezone == _BAD_ZONE else timezone
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
            env=c.str_map(t, "env", p, _ENV_NAME_RE, "environment variable name"),
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


def _read_on_change(c: _Checker, t: dict[str, Any], p: _Path) -> tuple[str, ...]:
    paths = c.str_list(t, "on_change", p)
    for path in paths:
        if not path.startswith(("/", "~")):
            c.add(p + ("on_change",), f"on_change paths must be absolute, got {path!r}")
            return ()
    return tuple(os.path.expanduser(x) for x in paths)


def _read_alert_on(c: _Checker, t: dict[str, Any], p: _Path) -> tuple[str, ...]:
    from core.alerts.config import read_alert_on

    return read_alert_on(c, t, p)


def _check_targets(c: _Checker, targets: str, path: _Path, hosts: dict[str, Host],
                   groups: set[str]) -> None:
    from core.remote.inventory import check_pattern

    for problem in check_pattern(targets, hosts):
        c.add(path, problem)


def _check_schedule(c: _Checker, text: str, timezone: str | None, path: _Path) -> None:
    try:
        from core.jobs.schedule import parse_schedule
    except ImportError:  # the schedule module is not there yet; the engine will say so
        return
    try:
        parse_schedule(text, timezone)
    except ValueError as e:  # ScheduleError is a ValueError
        c.add(path, str(e) or f"bad schedule {text!r}")


# ---------------------------------------------------------------- TOML syntax errors ---
_POS_RE = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")
_TWICE_RE = re.compile(r"Cannot declare \((.*)\) twice")


def _syntax_issue(e: tomllib.TOMLDecodeError, text: str, source: str) -> ConfigIssue:
    raw = str(e)
    m = _POS_RE.search(raw)
    msg = raw[: m.start()] if m else raw
    if m and m.group(1):
        line: int | None = int(m.group(1))
        col: int | None = int(m.group(2))
    else:
        line, col = max(1, text.count("\n") + (0 if text.endswith("\n") else 1)), None
    twice = _TWICE_RE.match(msg)
    if twice:
        try:
            parts = tuple(ast.literal_eval("(" + twice.group(1) + ")"))
        except (ValueError, SyntaxError):
            parts = ()
        if parts:
            return ConfigIssue(source, _key_path(parts), "table declared twice", line)
    if msg.startswith("Cannot overwrite a value") and line is not None:
        lines = text.splitlines()
        here = lines[line - 1] if line <= len(lines) else ""
        header = _LineIndex.header_key(here)
        if header:
            return ConfigIssue(source, _key_path(header),
                               "table conflicts with a value defined earlier", line)
        key = _LineIndex.statement_key(here)
        if key:
            index = _LineIndex(text)
            sec = next((sc for sc in index.sections if (line, key) in sc.keys), None)
            full = (sec.parts if sec else ()) + key
            return ConfigIssue(source, _key_path(full), "key defined twice", line)
        return ConfigIssue(source, "", "a key or table is defined twice", line)
    if msg.startswith("Illegal character '\\n'"):
        msg = "unexpected end of line (an unclosed string?)"
    elif msg.startswith("Unterminated string"):
        msg = "unterminated string"
    else:
        msg = msg[:1].lower() + msg[1:]
    where = f" at column {col}" if col is not None else (" at end of file" if not m or not
                                                            m.group(1) else "")
    return ConfigIssue(source, "", f"invalid TOML: {msg}{where}", line)


# ----------------------------------------------------------------- key path -> line ---
_KEY_PART_RE = re.compile(r"""\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*""")


@dataclass
class _Section:
    line: int | None  # header line; None for the root
    parts: _Path
    keys: list[tuple[int, _Path]] = field(default_factory=list)


class _LineIndex:
    """A best-effort map from key paths to source lines (tomllib keeps no positions)."""

    def __init__(self, text: str) -> None:
        self.sections: list[_Section] = [_Section(None, ())]
        in_string: str | None = None
        for n, line in enumerate(text.splitlines(), start=1):
            if in_string:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = self.header_key(line)
            if header is not None:
                self.sections.append(_Section(n, header))
            else:
                key = self.statement_key(line)
                if key:
                    self.sections[-1].keys.append((n, key))
            for delim in ('"""', "'''"):
                if line.count(delim) % 2 == 1:
                    in_string = delim
                    break

    @staticmethod
    def parse_key(s: str) -> tuple[_Path, str]:
        """A dotted key at the start of s, and what follows it."""
        parts: list[str] = []
        pos = 0
        while True:
            m = _KEY_PART_RE.match(s, pos)
            if not m or m.end() == pos:
                return (), s
            bare, basic, literal = m.groups()
            parts.append(bare if bare is not None else basic if basic is not None else literal)
            pos = m.end()
            if pos < len(s) and s[pos] == ".":
                pos += 1
                continue
            return tuple(parts), s[pos:]

    @classmethod
    def header_key(cls, line: str) -> _Path | None:
        s = line.strip()
        if not s.startswith("["):
            return None
        inner = s[2:] if s.startswith("[[") else s[1:]
        parts, rest = cls.parse_key(inner)
        if not parts or not rest.lstrip().startswith("]"):
            return None
        return parts

    @classmethod
    def statement_key(cls, line: str) -> _Path:
        s = line.strip()
        if not s or s[0] in "#[":
            return ()
        parts, rest = cls.parse_key(s)
        return parts if parts and rest.lstrip().startswith("=") else ()

    def find(self, path: _Path) -> int | None:
        for sec in self.sections:
            if sec.line is not None and sec.parts == path:
                return sec.line
        below = [  # a table declared only through its sub-tables
            s.line for s in self.sections
            if s.line is not None and len(s.parts) > len(path) and s.parts[: len(path)] == path
        ]
        for i in range(len(path) - 1, -1, -1):
            prefix, rest = path[:i], path[i:]
            matching = [s for s in self.sections if s.parts == prefix]
            best: tuple[int, int] | None = None  # (matched length, line)
            for sec in matching:
                for n, key in sec.keys:
                    k = min(len(key), len(rest))
                    if key[:k] == rest[:k] and (best is None or k > best[0]):
                        best = (k, n)
            if best is not None:
                return best[1]
            if below:
                return below[0]
            for sec in matching:
                if sec.line is not None:
                    return sec.line
        return None
