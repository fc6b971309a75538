"""Every person's action is audited exactly once, by the engine, with the right actor,
whichever way it came: the console, the standalone CLI, the CLI beside a daemon, or the
raw control socket. (Reload is a daemon's: it has no standalone path.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from core.api import current_user
from core.audit import AuditLog
from core.control.client import call
from core.fleetconfig import load_config
from tests.helpers import (
    FLEETDECK,
    cli_env,
    console_app,
    notices,
    pilot_until,
    ready,
    start_daemon,
    stop_daemon,
    until,
    until_async,
)
from tests.sshd import USER, Sshd, make_keys, require_sshd

# what each path does: three runs (hello, long, boom), a cancel of `long`, pause and
# resume, an ack and a silence, a fan-out to local and one to the new host (whose key is
# then trusted: on the CLI by --trust-new-host-keys, elsewhere by trusting the key the
# person was shown, which re-runs it there)
ACTIONS = {"run": 3, "cancel": 1, "pause": 1, "resume": 1, "ack": 1, "silence": 1,
           "fan-out": 2, "trust host key": 1}


@pytest.fixture(scope="module")
def new_host(tmp_path_factory):
    """A real sshd whose host key no known_hosts holds yet (to be trusted)."""
    binary = require_sshd()
    root = tmp_path_factory.mktemp("audit-sshd")
    keys = make_keys(root / "keys")
    sshd = Sshd(binary, root / "sshd", keys, keys.host_path).start()
    yield sshd, keys
    sshd.stop()


def write_config(tmp_path: Path, new_host) -> Path:
    sshd, keys = new_host
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f"""
[hosts.new1]
address = "127.0.0.1"
port = {sshd.port}
user = "{USER}"
identity_file = "{keys.client_path}"

[jobs.hello]
command = "echo hello"

[jobs.long]
command = "sleep 60"

[jobs.boom]
command = "exit 3"
alert_on = ["failed"]
""")
    return cfg


def env_for(tmp_path: Path) -> dict[str, str]:
    env = cli_env(tmp_path)
    env["HOME"] = str(tmp_path / "home")  # no known_hosts of the person running the tests
    env.pop("SSH_AUTH_SOCK", None)
    return env


def audit_rows(state: Path) -> list[dict[str, Any]]:
    return AuditLog(state).read()


def assert_once_each(state: Path, actions: dict[str, int], via: str) -> None:
    """Exactly one row per action done, each with this user and this way in."""
    rows = audit_rows(state)
    assert Counter(r["action"] for r in rows) == Counter(actions), rows
    for r in rows:
        assert r["user"] == current_user() and r["uid"] == os.getuid(), r
        if via.endswith(" "):  # a socket peer: its pid varies
            assert r["via"].startswith(via), r
        else:
            assert r["via"] == via, r


def cli(cfg: Path, state: Path, env: dict, *args: str, check: bool = True,
        timeout: float = 90) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state), *args],
                         capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert out.returncode in (0, 1), out.stderr
    return out


def cli_actions(cfg: Path, state: Path, env: dict) -> None:
    """Each action as a person types it."""
    cli(cfg, state, env, "run", "hello")
    # cancel: Ctrl-C on a running `fleetdeck run` cancels its run
    proc = subprocess.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                             "run", "long"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def long_runs() -> bool:
        if any(r["state"] == "running" for r in runs_of(cfg, state, env, "long")):
            return True
        assert proc.poll() is None, "long never ran"
        return False

    until(long_runs, "long to run")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130, proc.stderr.read() if proc.stderr else ""
    cli(cfg, state, env, "pause", "hello")
    cli(cfg, state, env, "resume", "hello")
    assert cli(cfg, state, env, "run", "boom", check=False).returncode == 3
    alert = json.loads(cli(cfg, state, env, "alerts", "--json").stdout)[0]
    cli(cfg, state, env, "ack", str(alert["id"]))
    cli(cfg, state, env, "silence", "boom", "1h")
    cli(cfg, state, env, "fanout", "local", "--", "true")
    trusted = cli(cfg, state, env, "fanout", "new1", "--trust-new-host-keys", "--", "true")
    assert "trusted the new host key of new1" in trusted.stderr


def runs_of(cfg: Path, state: Path, env: dict, job: str) -> list[dict[str, Any]]:
    out = cli(cfg, state, env, "runs", "--job", job, "--json")
    return json.loads(out.stdout)


def test_the_standalone_cli_audits_each_action_once(tmp_path, new_host) -> None:
    cfg, state, env = write_config(tmp_path, new_host), tmp_path / "state", env_for(tmp_path)
    cli_actions(cfg, state, env)
    assert_once_each(state, ACTIONS, "cli")
    reload = cli(cfg, state, env, "reload", check=False)
    assert reload.returncode == 2 and "no daemon is running" in reload.stderr


def test_the_cli_beside_a_daemon_is_audited_by_the_daemon_once(tmp_path, new_host) -> None:
    cfg, state, env = write_config(tmp_path, new_host), tmp_path / "state", env_for(tmp_path)
    proc = start_daemon(cfg, state, env)
    try:
        cli_actions(cfg, state, env)
        cli(cfg, state, env, "reload")
    finally:
        stop_daemon(proc)
    # the daemon knows the CLI by its socket credentials, not by what it says
    assert_once_each(state, {**ACTIONS, "reload": 1}, "socket pid ")


def test_the_raw_socket_is_audited_once_per_request(tmp_path, new_host) -> None:
    cfg, state, env = write_config(tmp_path, new_host), tmp_path / "state", env_for(tmp_path)
    proc = start_daemon(cfg, state, env)
    try:
        asyncio.run(socket_actions(state))
    finally:
        stop_daemon(proc)
    assert_once_each(state, {**ACTIONS, "fan-out rerun": 1, "reload": 1},
                     f"socket pid {os.getpid()}")


async def socket_actions(state: Path) -> None:
    await call(state, "run_job", {"name": "hello"})
    (run,) = await call(state, "run_job", {"name": "long"})
    await wait(lambda: call(state, "get_run", {"run_id": run["id"]}),
               lambda r: r["state"] == "running", "long to run")
    await call(state, "cancel_run", {"run_id": run["id"]})
    await call(state, "pause_job", {"name": "hello"})
    await call(state, "resume_job", {"name": "hello"})
    await call(state, "run_job", {"name": "boom"})
    alerts = await wait(lambda: call(state, "list_alerts", {}), bool, "boom's alert")
    await call(state, "ack_alert", {"alert_id": alerts[0]["id"]})
    await call(state, "silence", {"target": "boom", "duration": "1h"})
    await finished(state, await call(state, "fanout_start",
                                     {"pattern": "local", "command": "true"}))
    rec = await finished(state, await call(state, "fanout_start",
                                           {"pattern": "new1", "command": "true"}))
    assert rec["hosts"]["new1"]["state"] == "host_key_unknown"
    await finished(state, await call(state, "fanout_trust",
                                     {"fanout_id": rec["id"], "hosts": ["new1"]}))
    await call(state, "reload", {})


async def wait(ask: Any, ok: Any, what: str) -> Any:
    """Ask the daemon until its answer is ``ok``; that answer."""
    async def answer() -> Any:
        value = await ask()
        return value if ok(value) else None

    return await until_async(answer, what)


async def finished(state: Path, rec: dict[str, Any]) -> dict[str, Any]:
    return await wait(lambda: call(state, "fanout_get", {"fanout_id": rec["id"]}),
                      lambda r: r is not None and r.get("finished_at"),
                      f"fan-out #{rec['id']} to finish")


async def test_the_console_audits_each_action_once(tmp_path, new_host) -> None:
    cfg, state = write_config(tmp_path, new_host), tmp_path / "state"
    app = console_app(load_config(cfg), state)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        engine = app.engine
        app.execute("run hello")
        app.execute("run long")
        runs = await pilot_until(pilot, lambda: [r for r in engine.list_runs(job="long")
                                                 if r["state"] == "running"], "long running")
        app.cancel_run(runs[0]["id"])  # asks first
        await pilot.pause()
        await pilot.press("y")
        await pilot_until(pilot, lambda: engine.get_run(runs[0]["id"])["state"] == "cancelled",
                          "the cancel")
        app.execute("pause hello")
        await pilot_until(pilot, lambda: engine.get_job("hello")["paused"], "the pause")
        app.execute("resume hello")
        await pilot_until(pilot, lambda: not engine.get_job("hello")["paused"], "the resume")
        app.execute("run boom")
        alerts = await pilot_until(pilot, lambda: engine.list_alerts(), "boom's alert")
        app.execute(f"ack {alerts[0]['id']}")
        await pilot_until(pilot, lambda: engine.list_alerts()[0]["status"] == "acknowledged",
                          "the ack")
        app.execute("silence boom 1h")
        await pilot_until(pilot, lambda: "silence" in [r["action"] for r in audit_rows(state)],
                          "the silence")
        # the Fan-out screen's calls, as its keys make them
        rec = await engine.fanout_start("local", "true", actor=app.actor)
        await pilot_until(pilot, lambda: engine.fanout_get(rec["id"])["finished_at"], "fan-out")
        rec = await engine.fanout_start("new1", "true", actor=app.actor)
        await pilot_until(pilot, lambda: engine.fanout_get(rec["id"])["finished_at"], "fan-out 2")
        await engine.fanout_trust(rec["id"], ["new1"], actor=app.actor)
        app.execute("reload")  # a console of its own has no daemon to reload: said, no row
        await pilot_until(pilot, lambda: "only a daemon does" in " ".join(notices(app)),
                          "the reload refused")
        await pilot_until(pilot, lambda: not engine.queue(), "the runs to end")
    assert_once_each(state, {**ACTIONS, "fan-out rerun": 1}, "console")

