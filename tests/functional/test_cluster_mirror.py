"""The cluster's history on a node (core/cluster/mirror.py), on a real redis-server and
a real engine's store: the other nodes' reports become runs of this history (with
their origin and the tail of their log), a report sent twice is copied once, and a node
back after Redis trimmed reports it never copied says so."""

from __future__ import annotations

import json

import pytest

from core.cluster.mirror import META_KEY, Mirror
from core.cluster.workqueue import WorkQueue
from core.fleetconfig import parse_config_text
from tests.redisd import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def _report(server: RedisServer, node: str, run_id: int, state: str = "succeeded") -> str:
    doc = {"id": run_id, "job": "hello", "host": "local", "command": "echo hi",
           "trigger": "schedule", "occurrence": 1000.0 + run_id, "state": state,
           "reason": "", "queued_at": 1.0, "started_at": 2.0, "finished_at": 3.0,
           "exit_code": 0, "attempts": [], "claim": f"{node} 1", "node": node,
           "log": f"{node}:/var/lib/x/{run_id}.log", "log_tail": f"hi from {node}\n"}
    return server.client.xadd("fleetdeck:results", {"run": json.dumps(doc)}).decode()


async def test_reports_are_copied_once_with_their_origin(tmp_path, redis_server,
                                                        start_engine) -> None:
    from redis.asyncio import from_url

    cfg = parse_config_text('[jobs.hello]\ncommand = "echo hi"\n')
    engine, _rec = await start_engine(cfg, scheduling=False)
    client = from_url(redis_server.url)
    try:
        mirror = Mirror(engine, WorkQueue(client, "fleetdeck", "b"))
        _report(redis_server, "a", 7)
        _report(redis_server, "b", 3)  # this node's own: not copied
        _report(redis_server, "a", 7)  # the same report again (an answer lost)
        _report(redis_server, "c", 9, "failed")
        assert await mirror.catch_up() == 2
        runs = engine.list_runs(limit=10)
        assert sorted((r["origin"], r["node"], r["state"]) for r in runs) == [
            ("a#7", "a", "succeeded"), ("c#9", "c", "failed")]
        copy = next(r for r in runs if r["origin"] == "a#7")
        assert copy["claim"] == "a 1" and copy["occurrence"] == 1007.0
        log = engine.run_log_path(copy["id"]).read_text()
        assert log == ("[fleetdeck] ran on a as run #7; its whole log is "
                       "a:/var/lib/x/7.log\nhi from a\n")
        assert engine.store.meta()[META_KEY] == mirror.last
        assert await mirror.catch_up() == 0  # nothing new
    finally:
        await client.aclose()


async def test_a_node_back_after_reports_were_trimmed_says_so(tmp_path, redis_server,
                                                              start_engine) -> None:
    from redis.asyncio import from_url

    cfg = parse_config_text('[jobs.hello]\ncommand = "echo hi"\n')
    engine, rec = await start_engine(cfg, scheduling=False)
    client = from_url(redis_server.url)
    try:
        seen = _report(redis_server, "a", 1)
        engine.store.set_meta(META_KEY, seen)  # copied up to here before it went away
        for i in range(2, 6):
            _report(redis_server, "a", i)
        # Redis kept only the last 2
        redis_server.client.xtrim("fleetdeck:results", maxlen=2, approximate=False)
        mirror = Mirror(engine, WorkQueue(client, "fleetdeck", "b"))
        assert await mirror.catch_up() == 2
        notice = await rec.wait_for(lambda e: e.kind == "engine_notice")
        assert notice.message.startswith("cluster history: some runs the other nodes "
                                         "reported while this node was away")
        again = Mirror(engine, WorkQueue(client, "fleetdeck", "b"))
        assert await again.catch_up() == 0  # not said again when nothing was lost
    finally:
        await client.aclose()
