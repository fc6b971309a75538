"""Jobs with remote targets: one run per host, over SSH, with the engine's rules."""

from __future__ import annotations

import pytest

from core.fleetconfig import Config
from core.jobs.config import EngineSettings
from core.remote.config import Host
from core.remote.runs import close_engine_pool, set_engine_pool
from tests.helpers import job
from tests.sshd import closed_port, exec_servers, host, make_pool


@pytest.fixture
async def remote(tmp_path):
    async with exec_servers(tmp_path, 2) as got:
        yield got


def config(hosts: list[Host], *jobs) -> Config:
    return Config(path=None, hosts={"local": Host("local"), **{h.name: h for h in hosts}},
                  jobs={j.name: j for j in jobs}, engine=EngineSettings())


async def test_a_job_runs_once_per_remote_host(remote, start_engine, state_dir):
    keys, known, (a, b) = remote
    hosts = [host("a", a.port, groups=("app",)), host("b", b.port, groups=("app",))]
    cfg = config(hosts, job("hello", 'echo "hi from $FLEETDECK_JOB"; exit $E',
                            targets="@app,local", env={"E": "0"}))
    engine, rec = await start_engine(cfg, scheduling=False)
    pool = make_pool(keys, known)
    set_engine_pool(engine, pool)
    try:
        runs = await engine.run_job("hello")
        done = [await engine.wait_run(r["id"]) for r in runs]
    finally:
        await close_engine_pool(engine)
    assert [(r["host"], r["state"]) for r in done] == [  # in the order targets names them
        ("a", "succeeded"), ("b", "succeeded"), ("local", "succeeded")]
    for r in done:
        assert engine.run_log_path(r["id"]).read_text() == "hi from hello\n"
    assert pool.opened == 2


async def test_remote_timeout_and_retry_of_an_unreachable_host(remote, start_engine):
    keys, known, (a, _) = remote
    hosts = [host("a", a.port), host("gone", closed_port())]
    cfg = config(hosts,
                 job("slow", "sleep 30", targets="a", timeout=0.5, kill_grace=1.0),
                 job("flaky", "true", targets="gone", retries=1, backoff=0.05))
    engine, rec = await start_engine(cfg, scheduling=False)
    set_engine_pool(engine, make_pool(keys, known, connect_timeout=1))
    try:
        (slow,) = await engine.run_job("slow")
        (flaky,) = await engine.run_job("flaky")
        slow = await engine.wait_run(slow["id"])
        flaky = await engine.wait_run(flaky["id"])
    finally:
        await close_engine_pool(engine)
    assert slow["state"] == "timed_out"
    assert slow["reason"] == "timed out after 0.5s; stopped on the host"
    assert flaky["state"] == "failed" and flaky["attempt"] == 2
    assert flaky["reason"] == "unreachable: connection refused"
    assert [a["state"] for a in flaky["attempts"]] == ["failed", "failed"]
    assert len(rec.of("run_retrying")) == 1


async def test_an_occurrence_that_failed_on_one_host_is_the_job_s_news(remote, start_engine,
                                                                       state_dir):
    """The job's last result sums its hosts up: one failing host of three makes it
    "1/3 failed", and the Overview's "jobs whose last run failed" lists it."""
    from core.jobs.runs import last_run_summary

    keys, known, (a, b) = remote
    hosts = [host("a", a.port, groups=("app",)), host("b", b.port, groups=("app",))]
    # fails where the server is b: TEST_SERVER_PORT says which in-process server runs it
    cfg = config(hosts, job("deploy", f'test "$TEST_SERVER_PORT" != {b.port}',
                            targets="local,@app"))
    engine, _rec = await start_engine(cfg, scheduling=False)
    pool = make_pool(keys, known)
    set_engine_pool(engine, pool)
    try:
        runs = await engine.run_job("deploy")
        done = {r["host"]: (await engine.wait_run(r["id"]))["state"] for r in runs}
        assert done == {"local": "succeeded", "a": "succeeded", "b": "failed"}
        last = engine.get_job("deploy")["last_run"]
        assert last["state"] == "failed" and last_run_summary(last) == "1/3 failed"
        # the next request is a new result, not merged into that one
        cfg_ok = [await engine.wait_run(r["id"]) for r in await engine.run_job("deploy")]
        assert len(cfg_ok) == 3
        last = engine.get_job("deploy")["last_run"]
        assert len(last["hosts"]) == 3 and last_run_summary(last) == "1/3 failed"
    finally:
        await close_engine_pool(engine)
