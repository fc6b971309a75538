"""The built-in default config, as the commented TOML file `fleetdeck init` writes out.

builtin_config() parses exactly this text, so the file a person edits and the config
fleetdeck runs without one never drift apart. Every key's comment is its declaration's
doc (core/schema.py): the template, the reader and `fleetdeck config-schema` say the
same thing in the same words.
"""

from __future__ import annotations

from typing import Any

from core.alerts.config import ALERTS, MAINTENANCE, NOTIFIER
from core.cluster.config import CLUSTER
from core.health.config import CHECK
from core.jobs.config import DEFAULTS, ENGINE, JOB
from core.logs.rules import RULE
from core.logs.sources import SOURCE
from core.remote.config import GROUP, HOST
from core.schema import Section
from core.workflows.config import WORKFLOW

COLUMN = 31  # where a key's comment starts
WIDTH = 100


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and "\n" in value:
        return "'''\n" + value + "'''"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return "'" + value + "'" if '"' in value else '"' + value + '"'
    return str(value)


def _table(section: Section, header: str, values: dict[str, Any], *,
           commented: bool = False, every_key: bool = False) -> str:
    """A table: its set keys, each with its doc; with every_key, the others commented out
    with their defaults (or an example), so every option shows in one place."""
    hash_ = "# " if commented else ""
    lines = [f"{hash_}[{header}]"]
    for key in section.keys:
        if key.name in values:
            text = f"{hash_}{key.name} = {_value(values[key.name])}"
        elif every_key:
            text = f"# {key.name} = {key.template_example()}"
        else:
            continue
        if "\n" in text:
            lines.append(text)
        elif max(len(text) + 1, COLUMN) + len(key.doc) + 2 > WIDTH:
            lines += [f"{hash_ or '# '}{key.doc}:", text]  # a long doc goes above
        else:
            lines.append(text.ljust(COLUMN - 1) + f" # {key.doc}")
    return "\n".join(lines) + "\n"


_STEPS = """\
# [[workflows.deploy.steps]]    # each step: a name, and command, job = "NAME" or push
# name = "ship"
# job = "deploy-app"
# needs = ["drain"]             # steps that must end first
# approve = { by = ["alice", "@oncall"], timeout = "30m", on_timeout = "fail" }
# when = "success"              # or failure, always
# (KEY=VALUE lines a step writes to $FLEETDECK_OUTPUT reach later steps; a step also
# takes targets, timeout, retries, retry_backoff, env, cwd, serial, max_fail)
"""

_HEADER = """\
# fleetdeck configuration.
#
# Check it after editing:   fleetdeck check-config
# Every option's meaning:   fleetdeck config-schema   (a JSON Schema; TOML editors use it)
# Durations are strings: "250ms", "30s", "5m", "1h30m", "2d" (or a bare number of seconds).
# Lines starting with '#' are the other options, with their defaults: uncomment and edit.

# theme = "dark"
"""

_FLAKY = """\
if [ $(( $(date +%s) % 3 )) -eq 0 ]; then
  echo "flaky-check: simulated failure" >&2
  exit 1
fi
echo "flaky-check: all good"
"""


def render() -> str:
    parts = [
        _HEADER,
        _table(ENGINE, "engine", {"max_concurrent_runs": 16}, every_key=True),
        _table(DEFAULTS, "defaults", {k.name: k.default for k in DEFAULTS.keys
                                      if k.default is not None}, every_key=True),
        "# Hosts to run on over SSH. `local` (this machine, no SSH) is built in.\n"
        + _table(HOST, "hosts.web01", {"address": "10.0.0.5", "user": "deploy",
                                       "tags": {"role": "web"}, "groups": ["web", "eu"]},
                 commented=True, every_key=True),
        _table(GROUP, "groups.web", {"become": "root", "forks": 10}, commented=True,
               every_key=True),
        _table(CHECK, "checks.local-system", {
            "description": "CPU, memory, disk and load of this machine (the Hosts screen, "
                           "key 5).",
            "kind": "metrics", "targets": "local", "interval": "10s", "cpu": [90, 98],
            "memory": [90, 97], "disk": [85, 95], "fail": [3, 5]}),
        "# Every check option (kinds: metrics, tcp, http, process, command, ssh):\n"
        + _table(CHECK, "checks.api", {"kind": "http", "targets": "@web",
                                       "url": "http://{address}:8080/health"},
                 commented=True, every_key=True),
        "# Jobs: the table key is the job's name (letters, digits, '_', '.', '-').\n"
        "# Only `command` is required; a job without a schedule runs on demand only.\n"
        + _table(JOB, "jobs.heartbeat", {
            "description": "Proves fleetdeck is alive: one line every 30 seconds.",
            "command": 'echo "heartbeat from $(uname -n) at $(date +%Y-%m-%dT%H:%M:%S%z)"',
            "schedule": "every 30s", "timeout": "10s"}),
        _table(JOB, "jobs.disk-report", {"description": "Disk usage of the root file system.",
                                         "command": "df -h /", "schedule": "every 5m",
                                         "timeout": "1m"}),
        _table(JOB, "jobs.flaky-check", {
            "description": "Fails about one run in three, to show failures and retries.",
            "command": _FLAKY, "schedule": "every 1m", "timeout": "30s", "retries": 1,
            "retry_backoff": "5s"}),
        "# Every job option:\n"
        + _table(JOB, "jobs.backup", {"command": "/usr/local/bin/backup --all",
                                      "schedule": "0 3 * * *"},
                 commented=True, every_key=True),
        "# Workflows: steps with `needs` (a DAG), run as one; scheduled, listed and run like\n"
        "# a job (every job key above but command and targets). `fleetdeck run deploy`.\n"
        + _table(WORKFLOW, "workflows.deploy", {
            "description": "Drain, deploy with a person's approval, check, undrain.",
            "targets": "{host}", "timeout": "2h"}, commented=True)
        + _STEPS,
        "# Alerts (checks down or over a threshold, log rules, failing jobs); notifiers deliver.\n"
        + _table(ALERTS, "alerts", {"repeat": "30m"}, commented=True, every_key=True),
        _table(NOTIFIER, "notifiers.slack", {"kind": "webhook", "url": "${SLACK_WEBHOOK_URL}",
                                             "slack": True}, commented=True, every_key=True),
        _table(MAINTENANCE, "maintenance.nightly-db", {"targets": "@db",
                                                       "schedule": "0 2 * * *",
                                                       "duration": "1h"},
               commented=True, every_key=True),
        "# Logs to follow, and rules that turn matching lines into alerts.\n"
        + _table(SOURCE, "sources.app", {"path": "/var/log/app/*.log"}, commented=True,
                 every_key=True),
        _table(RULE, "rules.app-errors", {"sources": ["app"], "threshold": "> 10 in 60s",
                                          "level": "error"}, commented=True, every_key=True),
        "# A cluster of daemons on one Redis: one leader schedules, each occurrence runs once.\n"
        + _table(CLUSTER, "cluster", {"redis": "redis://127.0.0.1:6379/0"}, commented=True,
                 every_key=True),
        "# Key bindings in the console: binding id -> key(s); `?` in the console lists them.\n"
        "# [keys]\n# \"app.quit\" = \"ctrl+q,q\"\n# \"jobs.run\" = \"r\"\n",
    ]
    return "\n".join(parts)


DEFAULT_CONFIG_TOML = render()
