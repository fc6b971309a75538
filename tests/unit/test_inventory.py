"""Target patterns: node sets, groups, tags, globs, exclusions; folding names back."""

from __future__ import annotations

import pytest

from core.config import ConfigError
from core.fleetconfig import parse_config_text
from core.remote.config import Host
from core.remote.inventory import (
    TargetError,
    check_pattern,
    expand_nodeset,
    fold_hosts,
    resolve_targets,
    split_items,
)


def inventory() -> dict[str, Host]:
    hosts = {"local": Host("local")}
    for i in range(1, 21):
        name = f"web{i:02d}"
        groups = ("web", "canary") if i in (1, 2) else ("web",)
        hosts[name] = Host(name, tags={"role": "web", "dc": "eu" if i <= 10 else "us"},
                           groups=groups)
    for i in (1, 2, 3, 7):
        hosts[f"db{i}"] = Host(f"db{i}", tags={"role": "db"}, groups=("db",))
    hosts["cache.eu"] = Host("cache.eu", tags={"role": "cache"})
    hosts["cache.us"] = Host("cache.us", tags={"role": "cache"})
    return hosts


H = inventory()


@pytest.mark.parametrize("text,expected", [
    ("web[01-03]", ["web01", "web02", "web03"]),
    ("db[1-3,7]", ["db1", "db2", "db3", "db7"]),
    ("n[8-11]", ["n8", "n9", "n10", "n11"]),
    ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
    ("plain", ["plain"]),
    ("web[007]", ["web007"]),
    ("web[01-05/2]", ["web01", "web03", "web05"]),  # ClusterShell's step, as nodeset -e
    ("web[01-3]", ["web01", "web02", "web03"]),
])
def test_expand_nodeset(text, expected):
    assert expand_nodeset(text) == expected


@pytest.mark.parametrize("text,message", [
    ("web[01-", "unclosed '['"),
    ("web[3-1]", "runs backwards"),
    ("web[a-b]", "bad range 'a-b'"),
    ("web]1", "unmatched ']'"),
    ("web[1-999999999]", "too large"),
    ("web[1-03]", "the padding of 1 and 03 differs; write e.g. 01-03"),  # as nodeset
    ("web[1-5/0]", "the step must be 1 or more"),
])
def test_bad_nodesets(text, message):
    with pytest.raises(TargetError, match=message.replace("[", r"\[")):
        expand_nodeset(text)


def test_split_items_keeps_commas_inside_brackets():
    assert split_items(" db[1-3,7] , @web,, !web07 ") == ["db[1-3,7]", "@web", "!web07"]


@pytest.mark.parametrize("pattern,expected", [
    ("web[01-03]", ["web01", "web02", "web03"]),
    ("db[1-3,7]", ["db1", "db2", "db3", "db7"]),
    ("@db", ["db1", "db2", "db3", "db7"]),
    ("role=cache", ["cache.eu", "cache.us"]),
    ("*.eu", ["cache.eu"]),
    ("@web,!web[03-20]", ["web01", "web02"]),
    ("@web,!@canary,!dc=us,!web[04-10]", ["web03"]),
    ("db7, local, db1", ["db7", "local", "db1"]),  # as written: the first is the canary
    ("web02,@canary", ["web02", "web01"]),  # each part in inventory order, once
    ("@db,db1,db*", ["db1", "db2", "db3", "db7"]),  # no duplicates
    ("role=c*", ["cache.eu", "cache.us"]),
    ("*,!web*,!db*", ["cache.eu", "cache.us"]),  # globs never pick `local`
    ("local", ["local"]),
])
def test_resolve(pattern, expected):
    assert resolve_targets(pattern, H) == expected


@pytest.mark.parametrize("pattern,message", [
    ("web99", "unknown host 'web99'"),
    ("web[19-22]", "unknown hosts 'web[21-22]' (in 'web[19-22]')"),
    ("@nope", "unknown group '@nope'"),
    ("role=mail", "no host has tag role=mail"),
    ("*.asia", "'*.asia' matches no host"),
    ("@canary,!web0[1-2]", "matches no host after exclusions"),
    ("!web07", "only excludes"),
    ("@web,!web99", "unknown host 'web99'"),  # a typo in an exclusion is caught too
    (" , ", "targets must name at least one host"),
    ("!", "needs something to exclude"),
    ("role=", "needs key=value"),
    # ClusterShell's operators between sets: said plainly (it was "unknown hosts
    # 'web01!web02,...'" or "unknown group '@web&role=db'")
    ("web0[1-2]!web02", "'web0[1-2]!web02': '!' between sets is not supported"),
    ("@web&role=db", "'&' between sets is not supported; list items with commas"),
])
def test_resolve_errors(pattern, message):
    with pytest.raises(TargetError, match=_re(message)):
        resolve_targets(pattern, H)


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_check_pattern_lists_every_problem():
    assert check_pattern("web99,@nope,web01", H) == ["unknown host 'web99'",
                                                    "unknown group '@nope'"]
    assert check_pattern("@web", H) == []


@pytest.mark.parametrize("names,folded", [
    ([f"web{i:02d}" for i in range(1, 19)], "web[01-18]"),
    (["web01", "web02", "web04", "db3"], "db3,web[01-02,04]"),
    (["n9", "n10", "n11"], "n[9-11]"),
    (["web01", "web10", "web11"], "web[01,10-11]"),
    (["alpha", "beta"], "alpha,beta"),
    (["cache.eu"], "cache.eu"),
    (["r1n1", "r1n2", "r2n1"], "r1n[1-2],r2n1"),
    (["a1.eu", "a2.eu", "a1.us"], "a[1-2].eu,a1.us"),
    ([], ""),
])
def test_fold_hosts(names, folded):
    assert fold_hosts(names) == folded


def test_fold_then_expand_round_trips():
    names = [f"web{i:03d}" for i in (1, 2, 3, 9, 10, 99, 100)] + ["x7", "x8", "local"]
    folded = fold_hosts(names)
    back = [n for item in split_items(folded) for n in expand_nodeset(item)]
    assert sorted(back) == sorted(names)


CONFIG = """
[hosts.web01]
groups = ["web"]
tags = { role = "web" }
[hosts.web02]
groups = ["web"]
identity_file = "~/.ssh/deploy"
jump_host = "bastion"
[hosts.bastion]
address = "10.0.0.1"
known_hosts = "/etc/fleet/known_hosts"
[jobs.x]
command = "true"
targets = "%s"
"""


def test_config_validates_targets_with_the_inventory_parser():
    cfg = parse_config_text(CONFIG % "web[01-02],!role=web")
    assert resolve_targets(cfg.jobs["x"].targets, cfg.hosts) == ["web02"]
    web02 = cfg.hosts["web02"]
    assert (web02.identity_file, web02.jump_host) == ("~/.ssh/deploy", "bastion")
    assert web02.explicit == ("groups", "identity_file", "jump_host")
    assert cfg.hosts["bastion"].known_hosts == "/etc/fleet/known_hosts"
    with pytest.raises(ConfigError) as e:
        parse_config_text(CONFIG % "web[01-03]")
    assert str(e.value) == ("<config>:14: jobs.x.targets: unknown host 'web03' "
                            "(in 'web[01-03]')")
    with pytest.raises(ConfigError, match=r"bad range 'x' in 'web\[x\]'"):
        parse_config_text(CONFIG % "web[x]")


@pytest.mark.parametrize("jump,message", [
    ("web02", "has a jump host itself"),
    ("web01", "its own jump host"),
    ("local", "local cannot be a jump host"),
    ("bad host!", "invalid jump host"),
])
def test_config_jump_host_errors(jump, message):
    text = f'[hosts.web01]\njump_host = "{jump}"\n[hosts.web02]\njump_host = "x.example:22"\n'
    with pytest.raises(ConfigError, match=message):
        parse_config_text(text)
