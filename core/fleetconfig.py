"""The whole configuration: every package's section read from one TOML file into `Config`."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.alerts.config import ALERTS, MAINTENANCE, NOTIFIER, read_alerting
from core.cluster.config import CLUSTER, read_cluster
from core.confguard import MAX_FILE_BYTES
from core.config import ConfigError, ConfigIssue, did_you_mean, read_document
from core.health.config import CHECK, read_checks
from core.jobs.config import (
    DEFAULTS,
    ENGINE,
    JOB,
    Defaults,
    EngineSettings,
    Job,
    check_chains,
    read_defaults,
    read_engine,
    read_jobs,
)
from core.logs.rules import RULE, read_rules
from core.logs.sources import SOURCE, read_sources
from core.paths import PIPE_WAIT, SilentPipe, default_config_path, read_capped
from core.remote.config import GROUP, HOST, Group, Host, read_groups, read_hosts
from core.schema import Key, json_schema
from core.workflows.config import WORKFLOW, read_workflows

THEME = Key("theme", "string", "console theme: dark, light, high-contrast, ansi, or a "
            "theme file's name")
SECTIONS = (ENGINE, DEFAULTS, HOST, GROUP, JOB, WORKFLOW, CHECK, ALERTS, NOTIFIER,
            MAINTENANCE, SOURCE, RULE, CLUSTER)
_TOP_KEYS = ("theme", "keys", *(s.name for s in SECTIONS))


def config_schema(key_ids: Collection[str] = ()) -> dict[str, Any]:
    """The JSON Schema of a config file, made from the same declarations the reader uses
    (`fleetdeck config-schema`; TOML editors such as taplo validate with it)."""
    return json_schema(SECTIONS, (THEME,), tuple(key_ids))


@dataclass(frozen=True)
class Config:
    path: Path | None  # None for the built-in default
    hosts: dict[str, Host]
    jobs: dict[str, Job]
    groups: dict[str, Group] = field(default_factory=dict)  # [groups.NAME]: become, forks
    defaults: Defaults = field(default_factory=Defaults)
    engine: EngineSettings = field(default_factory=EngineSettings)
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> key(s), for the console
    theme: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)  # core.health.config.CheckSpec
    sources: dict[str, Any] = field(default_factory=dict)  # core.logs.sources.SourceSpec
    rules: dict[str, Any] = field(default_factory=dict)  # core.logs.rules.RuleSpec
    alerting: Any = None  # core.alerts.config.AlertingConfig: [alerts], [notifiers], [maintenance]
    cluster: Any = None  # core.cluster.config.ClusterConfig: [cluster], or None (one node)

    def remediation(self, kind: str, source: str) -> str | None:
        """The workflow that remediates an alert of `kind` from `source`, if one is named."""
        table = {"check": self.checks, "gave_up": self.checks, "rule": self.rules}.get(
            kind, self.jobs)
        spec = table.get(source)
        return getattr(spec, "remediation", None) if spec is not None else None



# --------------------------------------------------------------------------- loading ---
def load_config(path: Path | None = None, *, key_ids: Collection[str] = ()) -> Config:
    """Read and validate a config file; raise ConfigError listing every issue.

    With no path, the default location is used, and when nothing is there the
    built-in default config is returned. An explicit path must exist. `key_ids`: the
    console's binding ids; a [keys] entry naming another is an error.
    """
    if path is None:
        path = default_config_path()
        if not path.exists() and not path.is_symlink():  # a broken link is a mistake
            return builtin_config()
    path = Path(path)
    return parse_config_text(read_config_text(path), str(path), path=path, key_ids=key_ids)


def read_config_text(path: Path) -> str:
    """A config file's text, read once (a pipe cannot be read twice); ConfigError, one
    line, when it cannot be read or is no text."""
    source = str(path)
    try:
        data = read_capped(path, MAX_FILE_BYTES)
    except SilentPipe:
        raise ConfigError([ConfigIssue(source, "", f"a named pipe nothing writes to (waited "
                                       f"{PIPE_WAIT:g}s); name the file itself")]) from None
    except FileNotFoundError as e:
        what = "file not found"
        if path.is_symlink():
            what = f"a link to {os.readlink(path)}, which does not exist"
        raise ConfigError([ConfigIssue(source, "", what)], e) from None
    except IsADirectoryError as e:
        raise ConfigError([ConfigIssue(source, "", "is a directory, not a file")], e) from None
    except OSError as e:
        raise ConfigError([ConfigIssue(source, "", f"cannot read: {e.strerror or e}")],
                          e) from None
    if len(data) > MAX_FILE_BYTES:
        line = data.count(b"\n", 0, MAX_FILE_BYTES) + 1
        raise ConfigError([ConfigIssue(source, "", f"file is larger than {MAX_FILE_BYTES} "
                                       "bytes (4 MB); a config is far smaller", line)])
    try:  # a byte order mark (some Windows editors write one) is not the config's
        text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError([ConfigIssue(source, "", "not valid UTF-8 text", line)]) from None
    return text


def parse_config_text(text: str, source: str = "<config>", *, path: Path | None = None,
                      key_ids: Collection[str] = ()) -> Config:
    """Validate config text; Config.path is `path`, the file it came from (None: none)."""
    config, issues = _parse(text, source, path, key_ids)
    if issues:
        raise ConfigError(issues)
    return config


def check_config(path: Path | None, *, key_ids: Collection[str] = ()) -> list[ConfigIssue]:
    """Every issue in a config file; [] when it is valid."""
    try:
        load_config(path, key_ids=key_ids)
    except ConfigError as e:
        return list(e.issues)
    return []


def builtin_config() -> Config:
    """The config used when there is no file: exactly what `fleetdeck init` writes out."""
    from core.default_config import DEFAULT_CONFIG_TOML

    return parse_config_text(DEFAULT_CONFIG_TOML, "<built-in config>")



def _parse(text: str, source: str, path: Path | None,
           key_ids: Collection[str] = ()) -> tuple[Config, list[ConfigIssue]]:
    """The Config a text describes (meaningful only when no issues) and every issue in it."""
    doc, c = read_document(text, source)
    if doc is None:
        return _EMPTY, c.issues
    c.known_keys(doc, _TOP_KEYS, ())
    theme = c.string(doc, "theme", (), None)
    engine = read_engine(c, doc)
    defaults = read_defaults(c, doc)
    hosts, groups = read_groups(c, doc, read_hosts(c, doc))
    jobs = read_jobs(c, doc, defaults, hosts)
    jobs.update(read_workflows(c, doc, defaults, hosts, jobs))
    keys = c.str_map(doc, "keys", ())
    for k, v in keys.items():
        if key_ids and k not in key_ids:
            hint = did_you_mean(k, key_ids, " (`?` in the console lists the keys; their ids "
                                            "are in the README)")
            c.add(("keys", k), f"unknown binding id '{k}'{hint}")
        elif not v.strip():
            c.add(("keys", k), "key binding must not be empty")
    checks = read_checks(c, doc, hosts)
    alerting = read_alerting(c, doc, hosts)
    sources = read_sources(c, doc, hosts)
    rules = read_rules(c, doc, sources)
    cluster = read_cluster(c, doc)
    _check_remediations(c, jobs, checks, rules)
    _check_maintenance(c, alerting, {*checks, *rules, *jobs, *sources})
    check_chains(c, jobs)
    config = Config(path=path, hosts=hosts, groups=groups, jobs=jobs, defaults=defaults,
                    engine=engine,
                    keys=keys, theme=theme, checks=checks, alerting=alerting,
                    sources=sources, rules=rules, cluster=cluster)
    # top to bottom, as a person reads the file; issues without a line last
    issues = sorted(c.issues, key=lambda i: (i.line is None, i.line or 0))
    return config, issues



_EMPTY = Config(path=None, hosts={}, jobs={})


def _check_maintenance(c: Any, alerting: Any, names: set[str]) -> None:
    """A window's checks must name something that can alert: a typo covers nothing, and
    the pager rings through the maintenance."""
    for name, window in alerting.maintenance.items():
        for check in window.checks:
            if check not in names:
                hint = did_you_mean(check, sorted(names))
                c.add(("maintenance", name, "checks"),
                      f"no check, rule, job or log source named {check!r}{hint}")


def _check_remediations(c: Any, jobs: dict[str, Job], checks: dict[str, Any],
                        rules: dict[str, Any]) -> None:
    workflows = sorted(n for n, j in jobs.items() if j.workflow is not None)
    for section, table in (("jobs", jobs), ("checks", checks), ("rules", rules)):
        for name, spec in table.items():
            wanted = getattr(spec, "remediation", None)
            if wanted is None:
                continue
            if wanted not in workflows:
                hint = did_you_mean(wanted, workflows)
                c.add((section, name, "remediation"),
                      f"remediation {wanted!r} is no configured workflow{hint}")
