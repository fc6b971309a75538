"""A remote job with `serial`, `max_fail` and `pause_between`: an occurrence's runs on
its hosts go in batches through the engine's own queue (each run recorded at once), the
later batches end skipped once max_fail runs failed, and a pause holds the next batch."""

from __future__ import annotations

import pytest

from core.fleetconfig import Config
from core.jobs.config import EngineSettings
from core.remote.config import Host
from core.remote.rollout import make_rollout
from core.remote.runs import close_engine_pool, set_engine_pool
from tests.helpers import job
from tests.sshd import exec_servers, host, make_pool


@pytest.fixture
async def remote(tmp_path):
    async with exec_servers(tmp_path, 5) as got:
        yield got


def config(servers, *jobs) -> Config:
    hosts = [host(f"w{i + 1}", s.port, groups=("web",)) for i, s in enumerate(servers)]
    return Config(path=None, hosts={"local": Host("local"), **{h.name: h for h in hosts}},
                  jobs={j.name: j for j in jobs}, engine=EngineSettings(max_concurrent_runs=16))


async def _run(engine, keys, known, name):
    set_engine_pool(engine, make_pool(keys, known))
    try:
        runs = await engine.run_job(name)
        return [await engine.wait_run(r["id"]) for r in runs]
    finally:
        await close_engine_pool(engine)


async def test_batches_run_one_after_another(remote, start_engine, tmp_path):
    keys, known, servers = remote
    order = tmp_path / "order"
    cmd = (f'echo "start $TEST_SERVER_PORT" >> {order}; sleep 0.2; '
           f'echo "end $TEST_SERVER_PORT" >> {order}')
    cfg = config(servers, job("deploy", cmd, targets="@web",
                              rollout=make_rollout("1,2", None, None)))
    engine, _ = await start_engine(cfg, scheduling=False)
    done = await _run(engine, keys, known, "deploy")
    assert [r["state"] for r in done] == ["succeeded"] * 5
    words = order.read_text().split()
    events = list(zip(words[0::2], words[1::2], strict=True))
    port = {s.port: i + 1 for i, s in enumerate(servers)}
    seen = [(w, port[int(p)]) for w, p in events]
    assert seen[:2] == [("start", 1), ("end", 1)]  # the canary alone, first
    # batch 2 (w2, w3) ends before batch 3 (w4, w5) starts
    ends_2 = max(i for i, (w, h) in enumerate(seen) if w == "end" and h in (2, 3))
    starts_3 = min(i for i, (w, h) in enumerate(seen) if w == "start" and h in (4, 5))
    assert ends_2 < starts_3


async def test_max_fail_skips_the_later_batches(remote, start_engine, tmp_path):
    keys, known, servers = remote
    bad = servers[1].port  # w2, in the first batch of two
    cfg = config(servers, job("deploy", f"test $TEST_SERVER_PORT != {bad}", targets="@web",
                              rollout=make_rollout(2, 1, None)))
    engine, _ = await start_engine(cfg, scheduling=False)
    done = await _run(engine, keys, known, "deploy")
    assert [(r["host"], r["state"]) for r in done] == [
        ("w1", "succeeded"), ("w2", "failed"), ("w3", "skipped"), ("w4", "skipped"),
        ("w5", "skipped")]
    assert done[2]["reason"] == ("not started: the rollout stopped: 1 run failed by batch "
                                 "1 of 3 (max_fail 1)")
    assert done[2]["started_at"] is None


async def test_a_pause_holds_the_next_batch(remote, start_engine):
    keys, known, servers = remote
    cfg = config(servers[:2], job("deploy", "true", targets="@web",
                                  rollout=make_rollout(1, None, "1s")))
    engine, _ = await start_engine(cfg, scheduling=False)
    done = await _run(engine, keys, known, "deploy")
    assert [r["state"] for r in done] == ["succeeded", "succeeded"]
    assert done[1]["started_at"] - done[0]["finished_at"] >= 1.0  # a lower bound only


async def test_a_batch_that_failed_whole_stops_the_rollout(remote, start_engine):
    """As Ansible's serial: with no max_fail, a batch whose every run failed still
    stops the later ones (they end skipped, never started)."""
    keys, known, servers = remote
    bad = {servers[0].port, servers[1].port}  # w1 and w2: the whole first batch
    cmd = " && ".join(f"test $TEST_SERVER_PORT != {p}" for p in sorted(bad))
    cfg = config(servers, job("deploy", cmd, targets="@web",
                              rollout=make_rollout(2, None, None)))
    engine, _ = await start_engine(cfg, scheduling=False)
    done = await _run(engine, keys, known, "deploy")
    assert [(r["host"], r["state"]) for r in done] == [
        ("w1", "failed"), ("w2", "failed"), ("w3", "skipped"), ("w4", "skipped"),
        ("w5", "skipped")]
    assert done[4]["reason"] == ("not started: the rollout stopped: the 2 runs of batch 1 "
                                 "of 3 failed")
