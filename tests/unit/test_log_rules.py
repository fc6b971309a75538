"""Log rules on a fixed clock: thresholds, sliding windows, field conditions, config."""

from __future__ import annotations

import pytest

from core.config import ConfigError
from core.fleetconfig import parse_config_text
from core.logs.monitor import LogMonitor
from core.logs.rules import RuleError, RuleSpec, parse_field, parse_threshold
from core.logs.sources import SourceSpec


def test_thresholds() -> None:
    t = parse_threshold("> 10 in 60s")
    assert (t.op, t.value, t.percent, t.window) == (">", 10.0, False, 60.0)
    assert parse_threshold(">= 5% in 5m").window == 300.0
    assert str(parse_threshold("> 5% in 5m")) == "> 5% in 300s"
    for bad, why in (("10 in 60s", "write e.g."), ("> 10 in soon", "bad threshold"),
                     ("> 150% in 1m", "above 100%"), ("> 1 in 0s", "more than 0")):
        with pytest.raises(RuleError, match=why):
            parse_threshold(bad)


def test_field_conditions() -> None:
    assert parse_field("status >= 500").holds({"status": "503"})
    assert not parse_field("status >= 500").holds({"status": "404"})
    assert not parse_field("status >= 500").holds({})  # no field, no match
    assert parse_field('user == "root"').holds({"user": "root"})
    assert parse_field("path ~ ^/api/").holds({"path": "/api/v1"})
    with pytest.raises(RuleError):
        parse_field("status >>= 5")


def monitor(rules: dict[str, RuleSpec]) -> tuple[LogMonitor, list]:
    mon = LogMonitor({"app": SourceSpec("app", path="/x",
                                        fields=r"status=(?P<status>\d+)")}, rules)
    mon.configure(mon._sources, mon._rules)  # noqa: SLF001 - no engine: fed by hand
    return mon, []


def test_error_spike_fires_once_and_resolves_when_it_falls_back() -> None:
    spec = RuleSpec("errors", ("app",), parse_threshold("> 3 in 60s"), level="error")
    mon, _ = monitor({"errors": spec})
    t = 1000.0
    mon.ingest("app", [b"INFO ok", b"ERROR one", b"ERROR two", b"ERROR three"], at=t)
    assert mon.evaluate(t) == []  # 3 is not > 3
    mon.ingest("app", [b"level=fatal four", b"WARN not an error"], at=t + 1)
    (fired,) = mon.evaluate(t + 1)
    assert (fired.rule, fired.source, fired.firing, fired.count) == ("errors", "app", True, 4)
    assert mon.evaluate(t + 30) == []  # still firing: no second event
    (back,) = mon.evaluate(t + 60.5)  # the window slid past the burst
    assert (back.firing, back.count) == (False, 1)
    assert mon.sources["app"].counts == {"info": 1, "error": 4, "warning": 1}


def test_share_of_lines_with_a_field_condition() -> None:
    spec = RuleSpec("5xx", ("app",), parse_threshold("> 5% in 5m"),
                    field=parse_field("status >= 500"))
    mon, _ = monitor({"5xx": spec})
    t = 0.0
    mon.ingest("app", [f"GET / status={200}".encode()] * 95, at=t)
    mon.ingest("app", [b"GET / status=503"] * 5, at=t)
    assert mon.evaluate(t) == []  # exactly 5%
    mon.ingest("app", [b"GET / status=500"], at=t + 10)
    (fired,) = mon.evaluate(t + 10)
    assert fired.firing and round(fired.count, 2) == round(600 / 101, 2)


def test_regex_rule_counts_across_sources_when_asked() -> None:
    spec = RuleSpec("refused", ("a", "b"), parse_threshold(">= 2 in 10s"),
                    match="refused", per_source=False)
    mon = LogMonitor({"a": SourceSpec("a", path="/a"), "b": SourceSpec("b", path="/b")},
                     {"refused": spec})
    mon.configure(mon._sources, mon._rules)  # noqa: SLF001
    mon.ingest("a", [b"connect refused"], at=0.0)
    mon.ingest("b", [b"connection refused"], at=1.0)
    (fired,) = mon.evaluate(1.0)
    assert (fired.source, fired.count) == ("a,b", 2)


def test_rule_config_errors_name_their_key() -> None:
    text = """
[sources.app]
path = "/var/log/app.log"
fields = "no groups here"
[sources.web]
host = "web1"
path = "/var/log/x"
[rules.r1]
sources = ["nope"]
threshold = "> ten in 1m"
[rules.r2]
sources = ["app"]
threshold = "> 1 in 1m"
level = "loud"
[rules.r3]
sources = ["app"]
threshold = "> 1 in 1m"
"""
    with pytest.raises(ConfigError) as e:
        parse_config_text(text, "c.toml")
    assert str(e.value).splitlines() == [
        "c.toml:4: sources.app.fields: the regex names no fields; use (?P<name>...)",
        "c.toml:6: sources.web.host: unknown host 'web1'",
        "c.toml:8: rules.r1: a rule needs 'level', 'match' or 'field' to know what to count",
        "c.toml:9: rules.r1.sources: unknown source 'nope'",
        "c.toml:10: rules.r1.threshold: bad threshold '> ten in 1m'; write e.g. "
        "'> 10 in 60s' or '> 5% in 5m'",
        "c.toml:14: rules.r2.level: level must be one of error, warning, info, debug, "
        "got 'loud'",
        "c.toml:15: rules.r3: a rule needs 'level', 'match' or 'field' to know what to count",
    ]
