"""The Hosts screen: a real monitor on real listeners through Pilot, and snapshots of a
monitor fed fixed samples on a fixed clock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from core.fleetconfig import Config
from core.health.config import CheckSpec
from core.health.damping import Damper
from core.health.monitor import CheckState, HealthMonitor
from core.health.probes import CRIT, DOWN, OK, WARN, Sample
from core.jobs.config import EngineSettings
from core.remote.config import Host
from tests.helpers import NOW, console_app, pilot_until, ready
from tui.app import FleetdeckApp
from tui.screens.hosts import HostDetailScreen, HostsScreen, sparkline
from tui.widgets.common import NavTable
from tui.widgets.preview import WIDE_FROM

pytestmark = pytest.mark.usefixtures("utc")  # the snapshots show times of day

FAST = {"interval": 0.2, "timeout": 0.5, "fail": (2, 2), "recover": (1, 1)}


def rows(table: NavTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_hosts_screen_live(state_dir: Path) -> None:
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    hosts = {"local": Host("local"), "web1": Host("web1", address="127.0.0.1"),
             "db1": Host("db1", address="127.0.0.1")}
    checks = {"listener": CheckSpec("listener", "tcp", targets="web1", port=port, **FAST),
              "db-port": CheckSpec("db-port", "tcp", targets="db1", port=1, **FAST),
              # cpu >= 0% is crossed on any machine: local answers, over a threshold
              "system": CheckSpec("system", "metrics", targets="local",
                                  thresholds={"cpu": (0.0, 0.0)}, **FAST)}
    cfg = Config(path=None, hosts=hosts, jobs={}, engine=EngineSettings(), checks=checks)
    app = console_app(cfg, state_dir)
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            await ready(pilot)
            assert app.engine.health is not None  # the console attached the monitor
            health = app.engine.health
            await pilot_until(pilot, lambda: health.states["db-port@db1"].state == "down",
                              "db1 down")
            def title() -> str:  # the Overview's health line, once it is composed
                found = app.screen.query("#health-title")
                return str(found.first(Static).render()) if found else ""

            await pilot_until(pilot, lambda: "1 unhealthy: db1" in title()
                              and "1 over thresholds: local" in title(),
                              "the overview names the unhealthy and the busy host")
            await pilot.press("5")
            await pilot_until(pilot, lambda: isinstance(app.screen, HostsScreen),
                              "the hosts screen")
            screen = app.screen

            def judged() -> list[list[str]]:  # every host past pending, local's CPU read
                got = rows(screen.table)
                return got if len(got) == 3 and all(r[1] != "pending" for r in got) and any(
                    r[0] == "local" and r[2].endswith("%") for r in got) else []

            await pilot_until(pilot, judged, "three hosts judged")
            got = rows(screen.table)
            assert got[0][:2] == ["db1", "down"] and got[0][-1] == "db-port"  # worst first
            assert {r[0]: r[1] for r in got} == {"db1": "down", "web1": "up",
                                                 "local": "up · crit"}
            local = next(r for r in got if r[0] == "local")
            assert local[2].endswith("%")  # CPU from psutil
            assert local[-1] == "system"  # the check over its threshold, on an up host
            await pilot.press("slash", "w", "e", "b", "enter")
            assert [r[0] for r in rows(screen.table)] == ["web1"]
            await pilot.press("escape")
            await pilot.press("s")  # sort by host name
            assert [r[0] for r in rows(screen.table)] == ["db1", "local", "web1"]
            await pilot.press("g", "enter")
            await pilot.pause()
            detail = app.screen
            assert isinstance(detail, HostDetailScreen) and detail.host == "db1"
            check = rows(detail.table)[0]
            assert check[:3] == ["db-port", "tcp", "down"]
            assert check[-1] == "tcp 127.0.0.1:1: connection refused"
            await pilot.press("escape")
            await pilot_until(pilot, lambda: app.screen is screen, "back on the hosts screen")
            await pilot.press("f")  # a fan-out on the selected host, prefilled
            await pilot.pause()
            assert app.screen.query_one("#pattern").value == "db1"
            await pilot.press("escape", "5", "enter", "f")  # and from a host's own page
            await pilot.pause()
            assert app.screen.query_one("#pattern").value == "db1"
    finally:
        listener.close()


def seeded_monitor(engine: Any) -> HealthMonitor:
    """A real monitor with no loops, fed fixed samples on a fixed clock."""
    clock = [NOW - 3600.0]
    mon = HealthMonitor({}, clock=lambda: clock[0])
    mon.engine = engine
    fleet = {"web01": (12, 40, 61), "web02": (35, 55, 62), "web03": (97, 91, 64),
             "db1": (55, 71, 88), "db2": (None, None, None)}
    for i, (name, (cpu, mem, disk)) in enumerate(fleet.items()):
        spec = CheckSpec("system", "metrics", targets=name, fail=(2, 3), recover=(1, 1))
        st = CheckState(spec, name, Damper(spec.fail, spec.recover), since=clock[0])
        mon.states[st.key] = st
        for k in range(40):
            at = NOW - 3600 + k * 90
            if cpu is None:
                sample = Sample(DOWN, "unreachable over SSH: connection refused", at=at)
            else:
                c = min(100.0, cpu * (0.5 + (k % 7) / 6))
                status = CRIT if c >= 98 else WARN if c >= 90 else OK
                limit = {CRIT: " ≥ 98%", WARN: " ≥ 90%"}.get(status, "")
                sample = Sample(status, f"cpu {c:.0f}%{limit}", c,
                                {"cpu": round(c, 1), "memory": mem, "disk": disk,
                                 "load1": round(c / 40, 2), "cores": 4}, at)
            clock[0] = at
            mon._judge(st, sample, at)  # noqa: SLF001
        del i
    return mon


def make_seeded(tmp_path: Path) -> FleetdeckApp:
    hosts = {"local": Host("local"), **{n: Host(n, address="10.0.0.1") for n in
                                        ("web01", "web02", "web03", "db1", "db2")}}
    cfg = Config(path=None, hosts=hosts, jobs={}, engine=EngineSettings())
    app = console_app(cfg, tmp_path / "state", clock=lambda: NOW)
    app.seeded = seeded_monitor(app.engine)  # no checks, no loops: added once it runs
    return app


def test_sparkline_scales_into_eight_levels() -> None:
    assert sparkline([0, 50, 100, None, 99]) == "▁▅█ █"
    assert sparkline(list(range(100)), width=4) == "████"


def before_hosts(*keys: str):
    async def run_before(pilot) -> None:
        app = await ready(pilot)
        app.engine.add_service(app.seeded)  # after the start: never started, only read
        await pilot.press("5", *keys)
        if keys:
            await pilot_until(pilot, lambda: isinstance(app.screen, HostDetailScreen)
                              and app.screen.table.row_count > 0, "the host's checks")
        else:
            await pilot_until(pilot, lambda: isinstance(app.screen, HostsScreen)
                              and app.screen.table.row_count == 5, "the five hosts")
            if app.size.width >= WIDE_FROM:  # the preview pane shows the host under the cursor
                await pilot_until(pilot, lambda: app.screen.preview_key is not None and
                                  app.screen.preview_key == app.screen.table.selected_key(),
                                  "the preview of the first host")
        await pilot.pause()

    return run_before


def test_hosts_snapshot(snap_compare, tmp_path) -> None:
    assert snap_compare(make_seeded(tmp_path), terminal_size=(140, 40),
                        run_before=before_hosts())


def test_hosts_snapshot_small(snap_compare, tmp_path) -> None:
    assert snap_compare(make_seeded(tmp_path), terminal_size=(80, 24),
                        run_before=before_hosts())


def test_host_detail_snapshot(snap_compare, tmp_path) -> None:
    assert snap_compare(make_seeded(tmp_path), terminal_size=(120, 30),
                        run_before=before_hosts("enter"))


async def test_hosts_without_checks_are_listed_and_open(state_dir: Path) -> None:
    """No [checks]: the inventory still shows (a person opens a host, fans out from
    it), with the hint saying how to get health; not an empty table."""
    cfg = Config(path=None, hosts={"web1": Host(name="web1", address="127.0.0.1"),
                                   "db1": Host(name="db1", address="127.0.0.1")}, jobs={})
    app = console_app(cfg, state_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await pilot.press("5")
        await pilot_until(pilot, lambda: isinstance(app.screen, HostsScreen), "hosts shown")
        table = app.screen.query_one("#table", NavTable)
        await pilot_until(pilot, lambda: table.row_count == 2, "the inventory listed")
        assert [r[:2] for r in rows(table)] == [["db1", "no checks"], ["web1", "no checks"]]
        assert "No health checks configured" in str(
            app.screen.query_one("#hint", Static).render())
        await pilot.press("enter")
        await pilot_until(pilot, lambda: isinstance(app.screen, HostDetailScreen),
                          "a host opened")
        assert app.screen.host == "db1"
