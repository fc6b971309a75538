"""Workflows run by a real engine on real processes: a DAG in dependency order, failure
paths (`when`), outputs passed on, approval gates (approve, reject, self-approval,
timeout), retry from what did not succeed, cancel, and the record in history."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from core.api import Actor
from core.fleetconfig import parse_config_text
from core.jobs.active import EngineError
from tests.helpers import until_async

ALICE = Actor(os.getuid(), "alice", "cli")
BOB = Actor(os.getuid(), "bob", "cli")


def _marks(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _step(name: str, command: str, **kw: str) -> str:
    extra = "".join(f"{k} = {v}\n" for k, v in kw.items())
    return f'[[workflows.wf.steps]]\nname = "{name}"\ncommand = {json.dumps(command)}\n{extra}\n'


async def _run(engine, name="wf", actor=ALICE):
    (run,) = await engine.run_job(name, actor=actor)
    return run


async def test_a_diamond_runs_in_dependency_order(start_engine, tmp_path):
    log = tmp_path / "order"
    mark = f"echo start-$FLEETDECK_STEP >> {log}; sleep 0.1; echo end-$FLEETDECK_STEP >> {log}"
    cfg = parse_config_text(
        "[workflows.wf]\n" + _step("a", mark) + _step("b", mark, needs='["a"]')
        + _step("c", mark, needs='["a"]') + _step("d", mark, needs='["b", "c"]'))
    engine, _ = await start_engine(cfg, scheduling=False)
    run = await _run(engine)
    done = await engine.wait_run(run["id"])
    assert done["state"] == "succeeded", done
    seen = _marks(log)
    at = {w: i for i, w in enumerate(seen)}
    assert seen[:2] == ["start-a", "end-a"]
    assert at["start-b"] > at["end-a"] and at["start-c"] > at["end-a"]
    assert at["start-d"] > at["end-b"] and at["start-d"] > at["end-c"]
    assert seen[-1] == "end-d"
    steps = done["workflow"]["steps"]
    assert [steps[n]["state"] for n in "abcd"] == ["succeeded"] * 4
    # the steps' runs are children of the workflow run in history
    children = [engine.get_run(steps[n]["runs"][0]) for n in "abcd"]
    assert [(c["parent"], c["step"], c["job"], c["trigger"]) for c in children] == [
        (run["id"], n, f"wf.{n}", "workflow") for n in "abcd"]
    listed = {r["id"] for r in engine.list_runs(limit=None)}
    assert {run["id"], *(c["id"] for c in children)} <= listed


async def test_a_failure_skips_its_dependents_and_runs_the_failure_steps(start_engine,
                                                                          tmp_path):
    log = tmp_path / "ran"
    mark = f"echo $FLEETDECK_STEP >> {log}"
    cfg = parse_config_text(
        "[workflows.wf]\n" + _step("a", mark) + _step("b", mark + "; exit 3", needs='["a"]')
        + _step("c", mark, needs='["b"]') + _step("d", mark, needs='["c"]')
        + _step("cleanup", mark, needs='["d"]', when='"failure"')
        + _step("report", mark, needs='["d"]', when='"always"')
        + _step("celebrate", mark, needs='["a"]', when='"failure"'))
    engine, _ = await start_engine(cfg, scheduling=False)
    done = await engine.wait_run((await _run(engine))["id"])
    assert done["state"] == "failed"
    assert done["reason"].startswith("step b failed:") and "exit code 3" in done["reason"]
    steps = done["workflow"]["steps"]
    assert {n: s["state"] for n, s in steps.items()} == {
        "a": "succeeded", "b": "failed", "c": "skipped", "d": "skipped",
        "cleanup": "succeeded", "report": "succeeded", "celebrate": "skipped"}
    assert steps["c"]["reason"] == "step b did not succeed"
    for name in ("c", "d", "celebrate"):  # recorded at the start, never started
        (skipped,) = [engine.get_run(i) for i in steps[name]["runs"]]
        assert (skipped["state"], skipped["started_at"]) == ("skipped", None)
        assert skipped["reason"] == steps[name]["reason"]
    assert sorted(_marks(log)) == ["a", "b", "cleanup", "report"]


async def test_outputs_reach_every_later_step(start_engine, tmp_path):
    out = tmp_path / "seen"
    cfg = parse_config_text(
        "[workflows.wf]\n"
        + _step("build", 'echo "VERSION=1.2.3" >> $FLEETDECK_OUTPUT; '
                         'echo "not a pair" >> $FLEETDECK_OUTPUT; '
                         'echo "IMAGE=app:${VERSION:-x}" >> $FLEETDECK_OUTPUT')
        + _step("test", "true", needs='["build"]')
        + _step("deploy", f'echo "$VERSION $IMAGE" > {out}', needs='["test"]'))
    engine, rec = await start_engine(cfg, scheduling=False)
    run = await _run(engine)
    done = await engine.wait_run(run["id"])
    assert done["state"] == "succeeded", done
    assert out.read_text().strip() == "1.2.3 app:x"
    assert done["workflow"]["steps"]["build"]["outputs"] == {"VERSION": "1.2.3",
                                                             "IMAGE": "app:x"}
    lines = [e.line for e in rec.of("output_line") if e.run_id == run["id"]]
    assert "[fleetdeck] step build: output line 2 ignored: not KEY=VALUE" in lines


GATED = ("[workflows.wf]\n" + _step("drain", "true")
         + _step("deploy", "echo deployed", needs='["drain"]',
                 approve='{ by = ["alice", "bob"]%s }')
         + _step("undrain", "true", needs='["deploy"]'))


async def _waiting(engine, run_id):
    await until_async(lambda: engine.get_run(run_id)["state"] == "awaiting_approval",
                      "the run to wait for its approval")


async def test_approval_by_another_person_releases_the_gate(start_engine):
    engine, rec = await start_engine(parse_config_text(GATED % ""), scheduling=False)
    run = await _run(engine, actor=ALICE)
    await _waiting(engine, run["id"])
    steps = engine.get_run(run["id"])["workflow"]["steps"]
    assert steps["drain"]["state"] == "succeeded"
    assert steps["deploy"]["state"] == "awaiting_approval"
    (held,) = [engine.get_run(i) for i in steps["deploy"]["runs"]]
    assert (held["state"], held["started_at"]) == ("queued", None)
    assert held["reason"] == "awaiting approval of step deploy by alice, bob"
    assert engine.list_approvals()[0]["step"] == "deploy"
    with pytest.raises(EngineError, match="alice requested run .* cannot approve it too"):
        await engine.approve(run["id"], actor=ALICE)
    assert engine.get_run(run["id"])["state"] == "awaiting_approval"  # nothing changed
    with pytest.raises(EngineError, match="carol may not approve"):
        await engine.approve(run["id"], actor=Actor(os.getuid(), "carol", "cli"))
    got = await engine.approve(run["id"], reason="change 42", actor=BOB)
    assert got == {"id": run["id"], "job": "wf", "step": "deploy", "decision": "approved",
                   "by": "bob"}
    with pytest.raises(EngineError, match="already approved by bob"):
        await engine.approve(run["id"], actor=BOB)
    done = await engine.wait_run(run["id"])
    assert done["state"] == "succeeded"
    approval = done["workflow"]["steps"]["deploy"]["approval"]
    assert (approval["state"], approval["decided_by"], approval["reason"]) == (
        "approved", "bob", "change 42")
    states = [e.state for e in rec.of("approval_changed")]
    assert states == ["waiting", "approved"]
    trail = [(r["action"], r["detail"]) for r in engine.audit_trail()]
    assert ("approve refused", "alice requested run #1 and cannot approve it too; ask "
            "another of alice, bob") in trail
    assert ("approve", "change 42") in trail


async def test_a_rejection_fails_the_step_and_skips_what_follows(start_engine):
    engine, _ = await start_engine(parse_config_text(GATED % ""), scheduling=False)
    run = await _run(engine, actor=ALICE)
    await _waiting(engine, run["id"])
    await engine.reject(run["id"], step="deploy", reason="not tonight", actor=BOB)
    done = await engine.wait_run(run["id"])
    steps = done["workflow"]["steps"]
    assert done["state"] == "failed"
    assert (steps["deploy"]["state"], steps["deploy"]["reason"]) == (
        "rejected", "rejected by bob: not tonight")
    assert steps["undrain"]["state"] == "skipped"
    with pytest.raises(EngineError, match="not awaiting approval: step deploy was already "
                                          "rejected by bob"):
        await engine.approve(run["id"], actor=BOB)


async def test_a_gate_that_times_out_fails_the_step(start_engine):
    cfg = parse_config_text(GATED % ', timeout = "1s"')
    engine, rec = await start_engine(cfg, scheduling=False)
    run = await _run(engine, actor=ALICE)
    done = await engine.wait_run(run["id"])
    steps = done["workflow"]["steps"]
    assert done["state"] == "failed"
    assert steps["deploy"]["state"] == "failed"
    assert steps["deploy"]["reason"] == "no approval within 1s (on_timeout=fail)"
    assert steps["undrain"]["state"] == "skipped"
    assert [engine.get_run(i)["state"] for i in steps["deploy"]["runs"]] == ["skipped"]
    assert [e.state for e in rec.of("approval_changed")] == ["waiting", "timed_out"]


async def test_retry_runs_again_only_what_did_not_succeed(start_engine, tmp_path):
    log, flag = tmp_path / "ran", tmp_path / "fixed"
    mark = f"echo $FLEETDECK_STEP >> {log}"
    cfg = parse_config_text(
        "[workflows.wf]\n" + _step("a", mark) + _step("b", mark, needs='["a"]')
        + _step("c", f"{mark}; test -e {flag}", needs='["a"]')
        + _step("d", mark, needs='["b", "c"]'))
    engine, _ = await start_engine(cfg, scheduling=False)
    first = await engine.wait_run((await _run(engine))["id"])
    assert first["state"] == "failed"
    flag.touch()
    again = await engine.retry_workflow(first["id"], actor=BOB)
    done = await engine.wait_run(again["id"])
    assert done["state"] == "succeeded"
    assert sorted(_marks(log)) == ["a", "b", "c", "c", "d"]  # a and b ran once
    steps = done["workflow"]["steps"]
    assert steps["a"]["kept_from"] == first["id"] and steps["b"]["kept_from"] == first["id"]
    assert steps["a"]["runs"] == first["workflow"]["steps"]["a"]["runs"]
    assert done["workflow"]["resumed_from"] == first["id"]
    with pytest.raises(EngineError, match="succeeded; nothing to retry"):
        await engine.retry_workflow(done["id"], actor=BOB)


async def test_cancel_stops_the_running_steps_process_groups(start_engine, tmp_path):
    pidfile = tmp_path / "pid"
    cfg = parse_config_text("[workflows.wf]\n"
                            + _step("long", f"sh -c 'echo $$ > {pidfile}; sleep 60' & wait")
                            + _step("after", "true", needs='["long"]'))
    engine, _ = await start_engine(cfg, scheduling=False)
    run = await _run(engine)
    await until_async(lambda: pidfile.exists() and pidfile.read_text().strip(),
                      "the step's process to start")
    pid = int(pidfile.read_text())
    await engine.cancel_run(run["id"], actor=BOB)
    done = await engine.wait_run(run["id"])
    assert done["state"] == "cancelled"
    steps = done["workflow"]["steps"]
    assert steps["long"]["state"] == "cancelled" and steps["after"]["state"] == "cancelled"
    child = engine.get_run(steps["long"]["runs"][0])
    assert child["state"] == "cancelled"

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await until_async(gone, "the step's grandchild to be killed")


async def test_a_workflow_is_a_job_for_listing_and_history(start_engine):
    cfg = parse_config_text("[workflows.wf]\nschedule = \"@daily\"\n" + _step("a", "true"))
    engine, _ = await start_engine(cfg, scheduling=False)
    info = engine.get_job("wf")
    assert info["schedule_text"] and info["command"] == "workflow of 1 steps"
    done = await engine.wait_run((await _run(engine))["id"])
    assert engine.get_job("wf")["last_run"]["state"] == "succeeded"
    assert engine.get_job("wf")["last_run"]["id"] == done["id"]
    # a step's own run does not stand in for the workflow's result
    assert [r["job"] for r in engine.list_runs(job="wf")] == ["wf"]


async def test_steps_can_run_configured_jobs_with_overrides(start_engine, tmp_path):
    out = tmp_path / "out"
    cfg = parse_config_text(
        f'[jobs.report]\ncommand = "echo report-$FLEETDECK_STEP >> {out}; exit 1"\n'
        "retries = 0\n\n[workflows.wf]\n"
        '[[workflows.wf.steps]]\nname = "r"\njob = "report"\nretries = 1\n'
        'retry_backoff = "0s"\n')
    engine, _ = await start_engine(cfg, scheduling=False)
    done = await engine.wait_run((await _run(engine))["id"])
    assert done["state"] == "failed"
    child = engine.get_run(done["workflow"]["steps"]["r"]["runs"][0])
    assert child["job"] == "report" and child["attempt"] == 2
    assert out.read_text().split() == ["report-r", "report-r"]


async def test_the_workflow_timeout_stops_it(start_engine):
    cfg = parse_config_text('[workflows.wf]\ntimeout = "1s"\n' + _step("slow", "sleep 30"))
    engine, _ = await start_engine(cfg, scheduling=False)
    done = await asyncio.wait_for(engine.wait_run((await _run(engine))["id"]), 60)
    assert done["state"] == "timed_out"
    assert done["workflow"]["steps"]["slow"]["state"] == "cancelled"
