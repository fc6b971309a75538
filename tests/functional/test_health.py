"""Health checks against real things on loopback: a TCP listener, an HTTP server answering
200, 500 and slowly, a real process watched, killed and restarted by the watchdog, and a
host's metrics read over an in-process SSH server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.events import CheckChanged
from core.fleetconfig import Config
from core.health.config import CheckSpec
from core.health.monitor import HealthMonitor, HealthSample
from core.jobs.config import EngineSettings
from core.remote.config import Host
from core.remote.runs import set_engine_pool
from tests.helpers import until_async
from tests.sshd import host, make_keys, make_pool, start_servers

FAST = {"interval": 0.2, "timeout": 0.5, "fail": (2, 2), "recover": (1, 1)}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/slow":
            time.sleep(3)  # an answer later than the check's timeout: time has to pass
        code, body = {"/ok": (200, b"all ok"), "/err": (500, b"boom")}.get(
            self.path, (200, b"slow but fine"))
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def config(checks: dict[str, CheckSpec], hosts: list[Host] = ()) -> Config:
    return Config(path=None, hosts={"local": Host("local"), **{h.name: h for h in hosts}},
                  jobs={}, engine=EngineSettings(), checks=checks)


async def wait_state(mon: HealthMonitor, key: str, state: str) -> None:
    def how() -> str:
        st = mon.states[key]
        return f"{key} to be {state}: it is {st.state} ({st.last.detail if st.last else '-'})"

    await until_async(lambda: mon.states[key].state == state, how)


async def start_monitor(start_engine: Any, cfg: Config, pool: Any = None,
                        ) -> tuple[Any, HealthMonitor, list]:
    """An engine with a health monitor; `pool` (SSH) is the engine's before the first
    sample (given after, the sampler may already hold the default one)."""
    from core.services import attach_health

    changes: list[CheckChanged] = []
    engine, _ = await start_engine(cfg, scheduling=False, before_start=lambda e: (
        attach_health(e), pool is not None and set_engine_pool(e, pool),
        e.bus.subscribe(lambda ev: changes.append(ev)
                        if isinstance(ev, CheckChanged) else None)))
    return engine, engine.health, changes


async def test_tcp_and_http_probes(start_engine, http_server) -> None:
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{http_server}"
    # a probe's timeout of 1 s: with 0.5 s the test failed once on a busy machine; two
    # timeouts in a row on a starved event loop would turn `ok` or `tcp` down
    probe = {**FAST, "timeout": 1.0}
    checks = {
        "tcp": CheckSpec("tcp", "tcp", port=port, **probe),
        "ok": CheckSpec("ok", "http", url=f"{base}/ok", body="all ok", **probe),
        "err": CheckSpec("err", "http", url=f"{base}/err", **probe),
        "slow": CheckSpec("slow", "http", url=f"{base}/slow", **probe),
        "body": CheckSpec("body", "http", url=f"{base}/ok", regex=r"^nope", **probe),
    }
    engine, mon, changes = await start_monitor(start_engine, config(checks))
    await wait_state(mon, "tcp@local", "up")
    await wait_state(mon, "ok@local", "up")
    assert mon.states["ok@local"].last.detail.startswith("HTTP 200 in ")
    await wait_state(mon, "err@local", "down")
    assert mon.states["err@local"].last.detail.startswith("HTTP 500 from ")
    await wait_state(mon, "slow@local", "down")
    # not "no news": the probe's own deadline, naming the URL
    assert mon.states["slow@local"].last.detail == f"GET {base}/slow: timed out after 1s"
    await wait_state(mon, "body@local", "down")
    assert mon.states["body@local"].last.detail == "HTTP 200, body does not match /^nope/"
    listener.close()
    await listener.wait_closed()
    await wait_state(mon, "tcp@local", "down")
    assert mon.states["tcp@local"].last.detail == f"tcp 127.0.0.1:{port}: connection refused"
    tcp = [(c.old, c.new) for c in changes if c.check == "tcp"]
    assert tcp == [("pending", "up"), ("up", "down")]
    assert all(c.severity == "crit" for c in changes if c.new == "down")


async def test_watchdog_restarts_a_killed_process_then_gives_up(start_engine, tmp_path) -> None:
    marker = f"fleetdeck-svc-{os.getpid()}-{time.monotonic_ns()}"
    script = tmp_path / f"{marker}.sh"  # the service's command line names it
    script.write_text("#!/bin/sh\nwhile :; do sleep 1; done\n")
    script.chmod(0o755)
    proc = subprocess.Popen([str(script)], start_new_session=True)
    allow = tmp_path / "allow-restart"
    allow.touch()
    restart = f'[ -e {allow} ] && setsid {script} >/dev/null 2>&1 < /dev/null &'
    # the grace is what a restarted service has to show up in: generous, for a busy
    # machine (1 s saw a second restart once, the service not yet in the process table)
    spec = CheckSpec("svc", "process", pattern=marker, restart=restart,
                     restart_grace=3.0, restart_limit=(2, 600.0), **FAST)
    engine, mon, changes = await start_monitor(start_engine, config({"svc": spec}))
    try:
        await wait_state(mon, "svc@local", "up")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        await wait_state(mon, "svc@local", "down")
        await wait_state(mon, "svc@local", "up")  # the watchdog started it again
        runs = engine.list_runs(job="watchdog:svc")
        assert [(r["trigger"], r["state"]) for r in runs] == [("watchdog", "succeeded")]
        allow.unlink()  # from now on the restart does not help
        subprocess.run(["pkill", "-KILL", "-f", marker])
        await wait_state(mon, "svc@local", "gave_up")
        assert len(engine.list_runs(job="watchdog:svc")) == 2  # K = 2, then no more
        states = [(c.old, c.new) for c in changes]
        assert states == [("pending", "up"), ("up", "down"), ("down", "up"), ("up", "down"),
                          ("down", "gave_up")]
    finally:
        subprocess.run(["pkill", "-KILL", "-f", marker])


async def test_remote_metrics_over_ssh(start_engine, tmp_path) -> None:
    keys = make_keys(tmp_path / "keys")
    known = tmp_path / "known"
    (server,) = await start_servers(keys, 1, known)
    try:
        spec = CheckSpec("sys", "metrics", targets="db1", interval=0.5, timeout=5.0,
                         fail=(1, 1), recover=(1, 1),
                         thresholds={"disk": (99.5, 99.9), "memory": (99.5, 99.9)})
        cfg = config({"sys": spec}, [host("db1", server.port)])
        engine, mon, changes = await start_monitor(start_engine, cfg, make_pool(keys, known))
        await wait_state(mon, "sys@db1", "up")
        m = mon.states["sys@db1"].last.metrics
        assert 0.0 <= m["cpu"] <= 100.0 and m["cores"] >= 1 and "/" in m["disks"]
        row = mon.hosts()[0]
        assert row["host"] == "db1" and row["state"] == "up" and row["cpu_trend"]
        assert len(server.commands) >= 1  # one round trip per sample
    finally:
        await server.stop()


async def test_maintenance_silences_state_changes(start_engine) -> None:
    spec = CheckSpec("nothing", "tcp", port=1, **FAST)  # nothing listens on port 1
    engine, mon, changes = await start_monitor(start_engine, config({"nothing": spec}))
    await wait_state(mon, "nothing@local", "down")
    samples: list[HealthSample] = []
    engine.bus.subscribe(lambda e: samples.append(e) if isinstance(e, HealthSample) else None)
    assert mon.set_maintenance(target="local", until=time.time() + 60) == 1
    # samples go on, still failing, within the window: no state change comes of them
    await until_async(lambda: len(samples) >= 3, "three samples in maintenance")
    assert mon.states["nothing@local"].state == "maintenance"
    assert [(c.old, c.new) for c in changes] == [("pending", "down"), ("down", "maintenance")]
    mon.set_maintenance(target="local", until=None)
    await wait_state(mon, "nothing@local", "down")


async def test_history_survives_a_restart(start_engine, state_dir: Path) -> None:
    spec = CheckSpec("nothing", "tcp", port=1, **FAST)
    engine, mon, _ = await start_monitor(start_engine, config({"nothing": spec}))
    await wait_state(mon, "nothing@local", "down")
    await engine.stop()
    saved = (state_dir / "health.json").read_text()
    assert '"nothing@local"' in saved
    assert oct((state_dir / "health.json").stat().st_mode & 0o777) == "0o600"
    mon2 = HealthMonitor({"nothing": spec})
    from core.jobs.engine import Engine

    engine2 = Engine(config({"nothing": spec}), state_dir)
    engine2.add_service(mon2)
    await engine2.start(scheduling=False)
    try:
        assert len(mon2.states["nothing@local"].history) >= 2
    finally:
        await engine2.stop()


async def test_a_reload_that_drops_a_down_check_resolves_its_alert(start_engine) -> None:
    import dataclasses

    from core.services import attach_alerts, attach_health

    spec = CheckSpec("nothing", "tcp", port=1, **FAST)  # nothing listens on port 1
    cfg = config({"nothing": spec})
    engine, _ = await start_engine(cfg, scheduling=False, before_start=lambda e: (
        attach_alerts(e, deliver=False), attach_health(e)))
    await wait_state(engine.health, "nothing@local", "down")
    await until_async(engine.alerts.list_alerts, "the alert to open")
    assert [a["status"] for a in engine.alerts.list_alerts()] == ["firing"]
    summary = engine.apply_config(dataclasses.replace(cfg, checks={}))
    assert summary["services"] == ["check nothing"]
    assert engine.health.states == {}
    await until_async(lambda: not engine.alerts.list_alerts(), "the alert to resolve")
    alerts = engine.alerts.list_alerts(include_resolved=True)
    assert [a["status"] for a in alerts] == ["resolved"]
    assert "removed by a config reload" in str(alerts[0])


async def test_restarts_before_a_daemon_restart_count_against_the_limit(start_engine,
                                                                          state_dir) -> None:
    """Two restarts on record within the window (limit 2): down again after the daemon
    came back gives up at once; the count was in memory, and a restart storm got K fresh
    restarts at every daemon restart."""
    from core.jobs.runs import Run
    from core.store import Store

    now = time.time()
    store = Store.open(state_dir)
    for ago in (120.0, 60.0):
        store.add_run(Run(id=store.next_run_id(), job="watchdog:svc", host="local",
                          command="true", trigger="watchdog", state="succeeded",
                          queued_at=now - ago, finished_at=now - ago + 1))
    store.commit()
    store.close()
    spec = CheckSpec("svc", "tcp", port=1, restart="true", restart_limit=(2, 600.0),
                     restart_grace=0.0, **FAST)  # nothing listens on port 1
    engine, mon, changes = await start_monitor(start_engine, config({"svc": spec}))
    await wait_state(mon, "svc@local", "gave_up")
    assert [r["queued_at"] for r in engine.list_runs(job="watchdog:svc", limit=None)] == [
        now - 60.0, now - 120.0]  # no third restart
