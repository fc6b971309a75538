"""Availability apart from thresholds, end to end on real things: a TCP listener (up), a
closed port (down: connection refused), this machine's metrics through psutil against a
threshold it surely crosses (cpu >= 0%), the alerts they open, and `fleetdeck health`."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.fleetconfig import Config
from core.health.config import CheckSpec
from core.jobs.config import EngineSettings
from core.remote.config import Host
from tests.helpers import FLEETDECK, cli_env, until_async

FAST = {"interval": 0.2, "timeout": 2.0, "fail": (2, 2), "recover": (1, 1)}


def closed_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def listener() -> Iterator[int]:
    """A real listening socket: the kernel completes connections to it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


async def test_busy_host_is_up_over_a_threshold_and_a_refused_port_is_down(
        start_engine, listener) -> None:
    from core.services import attach_alerts, attach_health

    port = closed_port()
    checks = {
        "system": CheckSpec("system", "metrics", targets="local",
                            thresholds={"cpu": (0.0, 0.0)}, **FAST),
        "listener": CheckSpec("listener", "tcp", targets="local", port=listener, **FAST),
        "app": CheckSpec("app", "tcp", targets="web1", port=port, **FAST),
    }
    hosts = {"local": Host("local"), "web1": Host("web1", address="127.0.0.1")}
    cfg = Config(path=None, hosts=hosts, jobs={}, engine=EngineSettings(), checks=checks)
    engine, _ = await start_engine(cfg, scheduling=False, before_start=lambda e: (
        attach_alerts(e, deliver=False), attach_health(e)))
    mon = engine.health

    await until_async(lambda: len(engine.alerts.list_alerts()) == 2, "two alerts")
    await until_async(lambda: mon.states["listener@local"].state == "up", "the listener up")
    alerts = {a["source"]: a for a in engine.alerts.list_alerts()}
    busy, refused = alerts["system"], alerts["app"]
    # the threshold: its own severity, what crossed what, on a host that answers
    assert (busy["condition"], busy["severity"], busy["cause"]) == ("crit", "crit", "cpu ≥ 0%")
    assert busy["detail"].startswith("cpu ") and busy["detail"].endswith("% ≥ 0%")
    # down: why, in words
    assert (refused["condition"], refused["severity"]) == ("down", "crit")
    assert refused["detail"] == f"tcp 127.0.0.1:{port}: connection refused"
    assert refused["cause"] == "connection refused"
    assert mon.states["system@local"].state == "crit"
    rows = {r["host"]: r for r in mon.hosts()}
    assert (rows["local"]["state"], rows["local"]["level"]) == ("up", "crit")
    assert (rows["web1"]["state"], rows["web1"]["level"]) == ("down", "ok")
    assert [r["host"] for r in mon.hosts()] == ["web1", "local"]  # down first


def test_health_cli_tells_down_from_over_a_threshold(tmp_path: Path, listener: int) -> None:
    port = closed_port()
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f"""
[hosts.web1]
address = "127.0.0.1"

[checks.system]
kind = "metrics"
targets = "local"
cpu = [0, 0]

[checks.listener]
kind = "tcp"
targets = "local"
port = {listener}

[checks.app]
kind = "tcp"
targets = "web1"
port = {port}
""")
    base = [*FLEETDECK, "--config", str(cfg), "--state-dir", str(tmp_path / "state"), "health"]
    env = cli_env(tmp_path)
    proc = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=60,
                          env=env)
    assert proc.returncode == 1, proc.stderr
    rows = {r["check"]: r for r in json.loads(proc.stdout)}
    assert {c: r["status"] for c, r in rows.items()} == {
        "system": "crit", "listener": "ok", "app": "down"}
    assert rows["app"]["detail"] == f"tcp 127.0.0.1:{port}: connection refused"
    assert rows["system"]["cause"] == "cpu ≥ 0%"

    proc = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1, proc.stderr
    lines = [ln.split() for ln in proc.stdout.splitlines() if ln.strip()]
    assert [ln[:4] for ln in lines[1:4]] == [["web1", "app", "tcp", "down"],
                                             ["local", "system", "metrics", "crit"],
                                             ["local", "listener", "tcp", "ok"]]
    assert proc.stdout.splitlines()[-1] == (
        "down (a probe failed): web1; up, over a threshold: local")
