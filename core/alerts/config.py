"""`[alerts]`, `[notifiers.<name>]` and `[maintenance.<name>]`: typed and validated.

Read with the config module's `Checker`, so every mistake is one line naming the file,
line and key path. Secrets never live here: headers and URLs keep their `${ENV}`
references as written, expanded only when a notification is sent (core/alerts/notifiers.py).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from core.confguard import clip
from core.config import Checker, check_backoff, check_references
from core.remote.config import Host
from core.schema import Key, Section

NOTIFIER_KINDS = ("webhook", "command")
NOTIFY_EVENTS = ("firing", "resolved", "reminder")
JOB_ALERT_ON = ("failed", "missed")

ALERTS = Section("alerts", "alerting: reminders and notification delivery", (
    Key("repeat", "duration", "remind of a firing, unacknowledged alert this often"),
    Key("retry_backoff", "duration", "first wait after a failed delivery; doubles", "5s",
        minimum=0.1),
    Key("retry_backoff_max", "duration", "the longest wait between delivery tries", "5m",
        minimum=0.1),
    Key("give_up_after", "duration", "a notification undelivered this long is dropped", "1d",
        minimum=1.0),
    Key("resolved_retention", "integer", "resolved alerts kept on record", 1000, minimum=1,
        maximum=1_000_000),
    Key("group_window", "duration", "a check's alerts of one cause within this: one group "
        "(0: off)", "60s"),
))
NOTIFIER = Section("notifiers", "where notifications go", (
    Key("kind", "string", "how they are sent", choices=NOTIFIER_KINDS, required=True),
    Key("url", "string", "webhook: the URL (${ENV} and ${file:PATH} filled in at send time)"),
    Key("headers", "string-map",
        "webhook: extra headers (${ENV} and ${file:PATH} filled in at send time)",
        example='{ Authorization = "Bearer ${ALERT_TOKEN}" }'),
    Key("slack", "boolean", "webhook: a Slack body {\"text\": ...}", False),
    Key("command", "string", "command: run with the notification as JSON on stdin"),
    Key("events", "strings", "which transitions it is told of", list(NOTIFY_EVENTS)),
    Key("repeat", "duration", "its own reminder interval; default: [alerts] repeat"),
    Key("timeout", "duration", "one delivery attempt's limit", "10s", minimum=0.1),
    Key("enabled", "boolean", "false: nothing is sent", True),
), named=True)
MAINTENANCE = Section("maintenance", "maintenance windows: alerts recorded, not notified", (
    Key("targets", "pattern", "the hosts it covers; default: every target"),
    Key("checks", "strings", "check, rule or job names; default: every one"),
    Key("start", "instant", "a one-off window's start"),
    Key("end", "instant", "a one-off window's end"),
    Key("schedule", "schedule", "a recurring window's start times (cron)"),
    Key("duration", "duration", "how long each recurring window lasts"),
    Key("timezone", "zone", "the zone of start, end and schedule"),
    Key("reason", "text", "said in the console and the notifications", ""),
), named=True)


@dataclass(frozen=True)
class AlertSettings:
    repeat: float | None = None  # default reminder interval while unacknowledged
    retry_backoff: float = 5.0  # first wait after a failed delivery; doubles each time
    retry_backoff_max: float = 300.0
    give_up_after: float = 86400.0  # a notification still undelivered after this is dropped
    resolved_retention: int = 1000  # resolved alerts kept on record
    group_window: float = 60.0  # same check and cause across hosts: one group (0: off)


@dataclass(frozen=True)
class NotifierConfig:
    name: str
    kind: str  # webhook | command
    url: str = ""  # may hold ${ENV} references
    headers: dict[str, str] = field(default_factory=dict)  # values may hold ${ENV}
    slack: bool = False  # body {"text": ...} as Slack's incoming webhooks want
    command: str = ""
    events: tuple[str, ...] = NOTIFY_EVENTS
    repeat: float | None = None  # reminder interval; None: [alerts] repeat
    timeout: float = 10.0
    enabled: bool = True


@dataclass(frozen=True)
class MaintenanceConfig:
    name: str
    targets: str | None = None  # a target pattern; None: every target
    hosts: tuple[str, ...] = ()  # what `targets` resolved to
    checks: tuple[str, ...] = ()  # check, rule or job names; (): every check
    start: float | None = None  # one-off window
    end: float | None = None
    schedule: str | None = None  # recurring window: cron start times ...
    duration: float = 0.0  # ... each lasting this long
    timezone: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class AlertingConfig:
    settings: AlertSettings = field(default_factory=AlertSettings)
    notifiers: dict[str, NotifierConfig] = field(default_factory=dict)
    maintenance: dict[str, MaintenanceConfig] = field(default_factory=dict)


_MISSING: Any = object()


def read_alerting(c: Checker, doc: dict[str, Any], hosts: dict[str, Host]) -> AlertingConfig:
    """The alerting part of a parsed config document; issues go to `c`."""
    return AlertingConfig(
        settings=_read_settings(c, doc),
        notifiers=_read_notifiers(c, doc),
        maintenance=_read_maintenance(c, doc, hosts),
    )


def read_alert_on(c: Checker, t: dict[str, Any], path: tuple[str, ...]) -> tuple[str, ...]:
    """A job's `alert_on = ["failed", "missed"]`."""
    values = c.str_list(t, "alert_on", path)
    for v in values:
        if v not in JOB_ALERT_ON:
            c.add(path + ("alert_on",), f"alert_on items must be one of "
                                        f"{', '.join(JOB_ALERT_ON)}, got {clip(v)}")
    return tuple(v for v in values if v in JOB_ALERT_ON)


def _table(c: Checker, doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, _MISSING)
    if value is _MISSING:
        return {}
    return c.table(value, (key,)) or {}


def _repeat(c: Checker, t: dict[str, Any], path: tuple[str, ...], default: Any) -> Any:
    value = c.duration(t, "repeat", path, default, allow_none=True)
    if value is not None and value is not default and value < 60:
        c.add(path + ("repeat",), f"repeat must be at least 1m, got {clip(t['repeat'])}")
        return default
    return value


def _read_settings(c: Checker, doc: dict[str, Any]) -> AlertSettings:
    t = _table(c, doc, "alerts")
    p = ("alerts",)
    c.known_keys(t, ALERTS.names(), p)
    d = AlertSettings()
    backoff = c.read(t, ALERTS["retry_backoff"], p)
    backoff_max = c.read(t, ALERTS["retry_backoff_max"], p)
    check_backoff(c, t, p, backoff, backoff_max)
    return AlertSettings(
        repeat=_repeat(c, t, p, d.repeat),
        retry_backoff=backoff,
        retry_backoff_max=backoff_max,
        give_up_after=c.read(t, ALERTS["give_up_after"], p),
        resolved_retention=c.read(t, ALERTS["resolved_retention"], p, d.resolved_retention),
        group_window=c.duration(t, "group_window", p, d.group_window),
    )


def _read_notifiers(c: Checker, doc: dict[str, Any]) -> dict[str, NotifierConfig]:
    out: dict[str, NotifierConfig] = {}
    for name, value in _table(c, doc, "notifiers").items():
        p = ("notifiers", name)
        ok = c.name_ok(name, "notifier", p)
        t = c.table(value, p)
        if t is None:
            continue
        c.known_keys(t, NOTIFIER.names(), p)
        if "kind" not in t:
            c.add(p, "missing required key 'kind' (webhook or command)")
            continue
        kind = c.choice(t, "kind", p, "", NOTIFIER_KINDS)
        url = c.string(t, "url", p, "")
        command = c.string(t, "command", p, "")
        for key in ("url", "headers", "slack", "command"):
            wanted = "command" if key == "command" else "webhook"
            if key in t and kind and kind != wanted:
                c.add(p + (key,), f"{key} is for {wanted} notifiers; a {kind} notifier "
                                  f"does not use it")
        if kind == "webhook":
            if not url:
                c.add(p, "a webhook notifier needs 'url'")
            elif not re.match(r"(https?://|\$\{)", url):
                c.add(p + ("url",), "url must start with http:// or https:// "
                                    "(or be an ${ENV} or ${file:PATH} reference)")
            elif not re.match(r"(https?://[^/\s?#]+[^\s]*|\$\{.*)$", url):
                c.add(p + ("url",), f"{clip(url)}: no host, or a space in it")
        if kind == "command" and not command:
            c.add(p, "a command notifier needs 'command'")
        headers = c.str_map(t, "headers", p, re.compile(r"[A-Za-z0-9-]+"), "header name")
        check_references(c, p + ("headers",), headers)
        check_references(c, p + ("url",), url)
        events = c.str_list(t, "events", p) if "events" in t else NOTIFY_EVENTS
        if "events" in t and not events and t.get("enabled") is not False:
            c.add(p + ("events",), "a notifier told of nothing; leave 'events' out for all "
                                   "of them, or set enabled = false")
        for e in events:
            if e not in NOTIFY_EVENTS:
                c.add(p + ("events",), f"events items must be one of "
                                       f"{', '.join(NOTIFY_EVENTS)}, got {clip(e)}")
        n = NotifierConfig(
            name=name, kind=kind, url=url, headers=headers,
            slack=c.boolean(t, "slack", p, False), command=command,
            events=tuple(e for e in events if e in NOTIFY_EVENTS),
            repeat=_repeat(c, t, p, None),
            timeout=c.read(t, NOTIFIER["timeout"], p),
            enabled=c.boolean(t, "enabled", p, True),
        )
        if ok and kind:
            out[name] = n
    return out


def _instant(c: Checker, t: dict[str, Any], key: str, path: tuple[str, ...],
             timezone: str | None) -> float | None:
    """A TOML date-time or a text like '2026-12-01 03:00' as epoch seconds."""
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return None
    from zoneinfo import ZoneInfo

    from core.jobs.schedule import ScheduleError, local_timezone_name, parse_schedule

    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(timezone or local_timezone_name()))
        return value.timestamp()
    if not isinstance(value, str):
        c.wrong_type(path + (key,), "a date-time like '2026-12-01 03:00'", value)
        return None
    try:
        sched = parse_schedule(f"at {value}", timezone)
    except ScheduleError:
        c.add(path + (key,), f"bad date-time {clip(value)}; write e.g. '2026-12-01 03:00'")
        return None
    return sched.next_after(float("-inf"))


def _read_maintenance(c: Checker, doc: dict[str, Any],
                      hosts: dict[str, Host]) -> dict[str, MaintenanceConfig]:
    from core.remote.inventory import TargetError, check_pattern, resolve_targets

    out: dict[str, MaintenanceConfig] = {}
    for name, value in _table(c, doc, "maintenance").items():
        p = ("maintenance", name)
        ok = c.name_ok(name, "maintenance window", p)
        t = c.table(value, p)
        if t is None:
            continue
        c.known_keys(t, MAINTENANCE.names(), p)
        before = len(c.issues)
        targets = c.string(t, "targets", p, None)
        resolved: tuple[str, ...] = ()
        if targets is not None:
            problems = check_pattern(targets, hosts)
            for problem in problems:
                c.add(p + ("targets",), problem)
            if not problems:
                try:
                    resolved = tuple(resolve_targets(targets, hosts))
                except TargetError as e:
                    c.add(p + ("targets",), str(e))
        checks = c.str_list(t, "checks", p, names="check")
        if targets is None and not checks:
            c.add(p, "a maintenance window needs 'targets', 'checks' or both")
        timezone = c.timezone(t, "timezone", p, None)
        zone = timezone if timezone and not timezone.startswith("\0") else None
        start = _instant(c, t, "start", p, zone)
        end = _instant(c, t, "end", p, zone)
        schedule = c.string(t, "schedule", p, None)
        said = len(c.issues)
        duration = c.duration(t, "duration", p, 0.0)
        said_duration = len(c.issues) > said  # a bad duration is said once, where it is
        if schedule is not None:
            if "start" in t or "end" in t:
                c.add(p, "use either 'schedule' with 'duration' or 'start' with 'end', "
                         "not both")
            if "duration" not in t:
                c.add(p, "a recurring window needs 'duration', e.g. '2h'")
            elif not duration and not said_duration:
                c.add(p + ("duration",), "duration must be more than 0, e.g. '2h'")
            from core.jobs.schedule import ScheduleError, parse_schedule

            try:
                parse_schedule(schedule, zone)
            except ScheduleError as e:
                c.add(p + ("schedule",), str(e))
        elif "start" not in t or "end" not in t:
            c.add(p, "a maintenance window needs 'start' and 'end', or 'schedule' and "
                     "'duration'")
        elif start is not None and end is not None and end <= start:
            c.add(p + ("end",), "end must be after start")
        if ok and len(c.issues) == before:
            out[name] = MaintenanceConfig(
                name=name, targets=targets, hosts=resolved, checks=checks, start=start,
                end=end, schedule=schedule, duration=duration, timezone=zone,
                reason=c.string(t, "reason", p, "", nonempty=False))
    return out
