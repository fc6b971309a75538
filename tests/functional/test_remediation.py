"""Remediation from an alert: a check names a workflow; on its alert the workflow runs on
the alert's host (over SSH, an in-process server per host), and the alert links the run.
An approval that waits is an alert too, resolved when a person decides."""

from __future__ import annotations

import os

import pytest

from core.api import Actor
from core.fleetconfig import parse_config_text
from core.jobs.active import EngineError
from core.remote.runs import close_engine_pool, set_engine_pool
from core.services import attach_services
from tests.helpers import check_down, until_async
from tests.sshd import USER, exec_servers, make_pool

BOB = Actor(os.getuid(), "bob", "console")


@pytest.fixture
async def remote(tmp_path):
    async with exec_servers(tmp_path, 2) as got:
        yield got


def _config(servers, extra: str = ""):
    hosts = "".join(f'[hosts.w{i + 1}]\naddress = "127.0.0.1"\nport = {s.port}\n'
                    f'user = "{USER}"\ngroups = ["web"]\n\n' for i, s in enumerate(servers))
    return parse_config_text(
        hosts + '[checks.web]\nkind = "tcp"\ntargets = "@web"\nport = 9\n'
        'remediation = "restart-web"\n\n[workflows.restart-web]\n'
        '[[workflows.restart-web.steps]]\nname = "restart"\n'
        'command = "echo restarted on port $TEST_SERVER_PORT"\n' + extra)


async def test_a_remediation_runs_on_the_alerts_host_and_is_linked(remote, start_engine):
    keys, known, servers = remote
    engine, rec = await start_engine(_config(servers), scheduling=False,
                                     before_start=lambda e: attach_services(e, ("alerts",)))
    set_engine_pool(engine, make_pool(keys, known))
    try:
        engine.bus.publish(check_down("web", "w2", "connection refused"))
        alert = (await rec.wait_for(lambda e: e.kind == "alert_changed")).alert
        run = await engine.remediate(alert["id"], actor=BOB)
        assert (run["job"], run["host"], run["trigger"]) == ("restart-web", "w2", "remediation")
        done = await engine.wait_run(run["id"])
        assert done["state"] == "succeeded", done
        assert done["workflow"]["alert"] == alert["id"]
        (child_id,) = done["workflow"]["steps"]["restart"]["runs"]
        child = engine.get_run(child_id)
        assert child["host"] == "w2"
        log = engine.run_log_path(child_id).read_text()
        assert log.strip() == f"restarted on port {servers[1].port}"
        linked = engine.get_alert(alert["id"])
        assert linked["remediation_runs"] == [run["id"]]
        assert linked["history"][-1]["detail"] == f"workflow run #{run['id']} started by bob"
        trail = engine.audit_trail()
        assert (trail[-1]["action"], trail[-1]["detail"]) == (
            "remediate", f"restart-web on w2: #{run['id']}")
    finally:
        await close_engine_pool(engine)


async def test_an_alert_without_remediation_says_so(remote, start_engine):
    keys, known, servers = remote
    cfg = _config(servers)
    engine, rec = await start_engine(cfg, scheduling=False,
                                     before_start=lambda e: attach_services(e, ("alerts",)))
    engine.bus.publish(check_down("other", "w1"))
    alert = (await rec.wait_for(lambda e: e.kind == "alert_changed")).alert
    with pytest.raises(EngineError, match=rf"alert #{alert['id']} \(check other\) names no "
                                          "remediation"):
        await engine.remediate(alert["id"], actor=BOB)


async def test_a_waiting_approval_is_an_alert_until_decided(remote, start_engine):
    keys, known, servers = remote
    cfg = _config(servers, 'needs = []\n\n[[workflows.restart-web.steps]]\nname = "after"\n'
                           'command = "true"\nneeds = ["restart"]\n'
                           'approve = { by = ["bob"] }\n')
    engine, rec = await start_engine(cfg, scheduling=False,
                                     before_start=lambda e: attach_services(e, ("alerts",)))
    set_engine_pool(engine, make_pool(keys, known))
    try:
        engine.bus.publish(check_down("web", "w1"))
        alert = (await rec.wait_for(lambda e: e.kind == "alert_changed")).alert
        run = await engine.remediate(alert["id"], actor=Actor(os.getuid(), "alice", "cli"))
        gate = (await rec.wait_for(lambda e: e.kind == "alert_changed"
                                   and e.alert["kind"] == "approval")).alert
        assert gate["detail"] == (f"workflow run #{run['id']} step after awaits approval by "
                                  f"bob (requested by alice): fleetdeck approve {run['id']}")
        assert gate["target"] == "w1" and gate["state"] == "firing"
        await engine.approve(run["id"], actor=BOB)
        await until_async(lambda: engine.get_alert(gate["id"])["state"] == "resolved",
                          "the approval alert to resolve")
        assert (await engine.wait_run(run["id"]))["state"] == "succeeded"
    finally:
        await close_engine_pool(engine)
