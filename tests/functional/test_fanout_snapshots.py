"""Snapshots of the fan-out screen: a finished fan-out seeded into a real store, fixed
times and clock, so no timing text moves between runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.fleetconfig import Config
from core.jobs.config import EngineSettings
from core.remote.config import Host
from core.store.fanouts import FanOutStore
from tests.helpers import NOW, console_app, pilot_until, ready
from tui.app import FleetdeckApp
from tui.screens.fanout import FanOutScreen
from tui.screens.fanout_results import GatheredScreen
from tui.widgets.common import NavTable

pytestmark = pytest.mark.usefixtures("utc")  # the grid shows times

HOSTS = {f"web{i:02d}": "ok" for i in range(1, 9)} | {
    "web09": "failed", "db1": "ok", "db2": "timed_out", "db3": "unreachable",
    "cache1": "host_key_unknown"}
REASONS = {"failed": "exit code 2", "timed_out": "timed out after 30s; stopped on the host",
           "unreachable": "connection refused",
           "host_key_unknown": "host key unknown: [10.0.0.7]:22 presents ssh-ed25519 "
                               "SHA256:Zm9vYmFyYmF6cXV4cXV1eHh4eHh4eHh4eHh4eHh4eA"}


def seed(state: Path) -> int:
    store = FanOutStore(state)
    fid = store.allocate()
    hosts = {}
    for i, (name, st) in enumerate(HOSTS.items()):
        started = NOW - 60 + i * 0.1
        ran = st in ("ok", "failed", "timed_out")
        hosts[name] = {
            "host": name, "state": st, "exit_code": 0 if st == "ok" else 2 if st == "failed"
            else None, "reason": REASONS.get(st, ""),
            "fingerprint": None, "started_at": started,
            "finished_at": started + (30 if st == "timed_out" else 0.4),
            "lines": 1 if ran else 0, "bytes": 40 if ran else 0, "digest": st,
            "duration": 30.0 if st == "timed_out" else 0.4}
        if ran:
            text = "error: disk full\n" if st == "failed" else \
                " 12:00:01 up 41 days,  load average: 0.08, 0.03, 0.01\n"
            store.log_path(fid, name).write_text(text)
    store.save({"id": fid, "command": "uptime", "pattern": "@web,@db,cache1",
                "requested_by": "ann", "started_at": NOW - 60, "finished_at": NOW - 29,
                "state": "finished", "forks": 64, "timeout": 30.0, "connect_timeout": 10.0,
                "rerun_of": None, "counts": {}, "exit_status": 3, "log_dir": None,
                "hosts": hosts})
    return fid


def make(tmp_path: Path) -> tuple[FleetdeckApp, int]:
    state = tmp_path / "state"
    fid = seed(state)
    hosts = {"local": Host("local"), **{n: Host(n, address="10.0.0.1", groups=(
        "web" if n.startswith("web") else "db" if n.startswith("db") else "cache",))
        for n in HOSTS}}
    config = Config(path=None, hosts=hosts, jobs={}, engine=EngineSettings())
    return console_app(config, state, clock=lambda: NOW), fid


def before(fid: int, *keys: str):
    async def run_before(pilot) -> None:
        app = await ready(pilot)
        await pilot.press("6")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FanOutScreen)
        screen.prefill("@web,@db,cache1", "uptime")
        screen.show_fanout(fid)
        screen.query_one("#hosts").focus()
        await pilot_until(pilot, lambda: screen.query_one(NavTable).row_count == len(HOSTS),
                          "the grid")
        if keys:  # b: the gathered view
            await pilot.press(*keys)
            await pilot_until(pilot, lambda: isinstance(app.screen, GatheredScreen)
                              and app.screen.query_one("#groups").lines, "the groups")
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (140, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", ["grid", "gathered"])
def test_fanout_snapshot(snap_compare, tmp_path, size, view):
    app, fid = make(tmp_path)
    keys = ("b",) if view == "gathered" else ()
    assert snap_compare(app, terminal_size=size, run_before=before(fid, *keys))
