"""The whole configuration: every package's section read from one TOML file into `Config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.alerts.config import read_alerting
from core.config import ConfigError, ConfigIssue, read_document
from core.health.config import read_checks
from core.jobs.config import Defaults, EngineSettings, Job, read_defaults, read_engine, read_jobs
from core.logs.rules import read_rules
from core.logs.sources import read_sources
from core.paths import default_config_path
from core.remote.config import Host, read_hosts

_TOP_KEYS = ("theme", "engine", "defaults", "hosts", "jobs", "keys", "checks",
             "alerts", "notifiers", "maintenance", "sources", "rules")


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



def _parse(text: str, source: str, path: Path | None) -> tuple[Config, list[ConfigIssue]]:
    """The Config a text describes (meaningful only when no issues) and every issue in it."""
    doc, c = read_document(text, source)
    if doc is None:
        return _EMPTY, c.issues
    c.known_keys(doc, _TOP_KEYS, ())
    theme = c.string(doc, "theme", (), None)
    engine = read_engine(c, doc)
    defaults = read_defaults(c, doc)
    hosts = read_hosts(c, doc)
    jobs = read_jobs(c, doc, defaults, hosts)
    keys = c.str_map(doc, "keys", ())
    for k, v in keys.items():
        if not v.strip():
            c.add(("keys", k), "key binding must not be empty")
    checks = read_checks(c, doc, hosts)
    alerting = read_alerting(c, doc, hosts)
    sources = read_sources(c, doc, hosts)
    rules = read_rules(c, doc, sources)
    config = Config(path=path, hosts=hosts, jobs=jobs, defaults=defaults, engine=engine,
                    keys=keys, theme=theme, checks=checks, alerting=alerting,
                    sources=sources, rules=rules)
    # top to bottom, as a person reads the file; issues without a line last
    issues = sorted(c.issues, key=lambda i: (i.line is None, i.line or 0))
    return config, issues



_EMPTY = Config(path=None, hosts={}, jobs={})
