"""The demo keeps every screen moving: logs written on demo hosts and locally (with
bursts of errors a rule counts), and a local service that goes away and comes back (a
check that flaps). Run here with a quick rhythm; the demo's own is slower."""

from __future__ import annotations

import asyncio
import random
import socket

from core.demo import FLEET, DemoFleet
from core.demo_live import BURST, LOG_HOSTS, DemoLive, Rhythm
from core.fleetconfig import load_config
from tests.helpers import until_async


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_logs_grow_errors_burst_and_the_service_flaps(tmp_path):
    tasks: list[asyncio.Task] = []
    live = DemoLive(tmp_path, random.Random(7), Rhythm(
        line_every=(0.01, 0.03), burst_every=0.5, burst_lines=3, service_up=0.5,
        service_down=0.5))
    await live.start(lambda coro: tasks.append(asyncio.ensure_future(coro)))
    try:
        port = live.flap_port
        assert listening(port)
        await until_async(lambda: not listening(port), "the service to go away")
        await until_async(lambda: listening(port), "the service to come back")
        await until_async(lambda: BURST in live.log_path("web01").read_text(),
                          "an error burst on web01")
        for host in (*LOG_HOSTS, "local"):
            await until_async(lambda h=host: live.log_path(h).read_text().count("\n") > 3,
                              f"lines in {host}'s log")
    finally:
        for t in tasks:
            t.cancel()
        await live.stop()


async def test_the_demo_config_has_log_sources_rules_and_a_flapping_check(tmp_path):
    fleet = DemoFleet(tmp_path / "demo", FLEET, seed=3)
    path = await fleet.start()
    try:
        config = load_config(path)  # raises on any config error
        assert {f"{h}-app" for h in LOG_HOSTS} | {"deploy"} <= set(config.sources)
        assert {"web-errors", "web-5xx"} <= set(config.rules)
        flap = config.checks["api-flap"]
        assert flap.kind == "tcp" and flap.port == fleet.live.flap_port
    finally:
        await fleet.stop()
