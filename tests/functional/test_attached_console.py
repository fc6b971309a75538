"""Consoles attached to a real daemon: two at once see the same state, an action in one
shows in the other, a lost daemon is said on screen and reattached when it is back."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from textual.widgets import Static

from core.control.attached import AttachedEngine
from core.control.protocol import socket_path
from core.fleetconfig import load_config
from tests.helpers import (
    cli_env,
    console_app,
    has_open,
    pilot_until,
    ready,
    start_daemon,
    stop_daemon,
)
from tui.app import FleetdeckApp
from tui.screens.jobs import JobsScreen


def attached(cfg: Path, state: Path, pid: int) -> FleetdeckApp:
    return console_app(load_config(cfg), state,
                       engine=AttachedEngine(load_config(cfg), state, pid))


def status(app: FleetdeckApp) -> str:
    return str(app.screen.query_one("#status", Static).render())


async def test_two_consoles_see_one_daemon_and_survive_its_restart(daemon) -> None:
    proc, cfg, state, env = daemon
    one, two = attached(cfg, state, proc.pid), attached(cfg, state, proc.pid)
    async with one.run_test(size=(120, 30)) as p1, two.run_test(size=(120, 30)) as p2:
        await ready(p1)
        await ready(p2)
        assert f"attached to pid {proc.pid}" in status(one)
        await p2.press("4")  # the second console watches the runs
        await p1.press("2")
        await p1.pause()
        assert isinstance(one.screen, JobsScreen)
        jobs = one.screen.query_one("#table")
        await pilot_until(p1, lambda: jobs.row_count == 2, "the daemon's jobs listed")
        await p1.press("r")  # run the selected job (hello) in the first console
        await pilot_until(p2, lambda: any(r["job"] == "hello"
                                          for r in two.engine.list_runs(limit=10)),
                          "the run seen by the second console")
        table = two.screen.query_one("#table")
        await pilot_until(p2, lambda: any("hello" in str(table.get_row_at(i))
                                          for i in range(table.row_count)),
                          "the run on the second console's screen")

        await p1.press("9")  # the audit trail names the run, as this user, by socket
        audit = one.screen.query_one("#table")
        await pilot_until(p1, lambda: audit.row_count >= 1, "the audit row")
        row = [str(c) for c in audit.get_row_at(0)]
        assert row[4:6] == ["run", "hello"] and row[3].startswith("socket pid ")
        proc.send_signal(signal.SIGKILL)  # the daemon dies
        proc.wait(10)
        await pilot_until(p1, lambda: not one.engine.connected, "the loss noticed")
        await pilot_until(p1, lambda: "daemon lost, reconnecting" in status(one), "the loss shown")
        assert "daemon lost, reconnecting" in status(one)
        socket_path(state).unlink(missing_ok=True)
        again = start_daemon(cfg, state, env, wait=False)  # the consoles run on meanwhile
        try:
            await pilot_until(p1, lambda: one.engine.connected and two.engine.connected,
                              "both reattached")
            await pilot_until(p1, lambda: f"attached to pid {again.pid}" in status(one),
                              "the new daemon shown")
            assert f"attached to pid {again.pid}" in status(one)
            assert one.engine.daemon_pid == again.pid
        finally:
            stop_daemon(again)


async def test_an_attached_console_sees_and_acks_the_daemons_alerts(tmp_path: Path) -> None:
    import asyncio

    from core.control.client import call
    from tui.screens.alerts import AlertsScreen

    cfg = tmp_path / "fleet.toml"
    cfg.write_text('[jobs.boom]\ncommand = "exit 3"\nalert_on = ["failed"]\n')
    state = tmp_path / "state"
    proc = start_daemon(cfg, state, cli_env(tmp_path))
    try:
        app = attached(cfg, state, proc.pid)
        async with app.run_test(size=(120, 30)) as pilot:
            await ready(pilot)
            await call(state, "run_job", {"name": "boom"})
            await pilot.press("7")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, AlertsScreen)
            table = screen.query_one("#table")
            await pilot_until(pilot, lambda: table.row_count == 1 and "firing" in str(
                table.get_row_at(0)), "the daemon's alert")
            await pilot.press("a")  # acknowledged through the socket, by the daemon
            await pilot_until(pilot, lambda: "acknowledged" in str(table.get_row_at(0)),
                              "the ack")
            assert app.engine.list_alerts()[0]["status"] == "acknowledged"
            await asyncio.sleep(0)
    finally:
        stop_daemon(proc)


async def test_an_attached_console_shows_the_daemons_hosts_logs_and_fanouts(
        tmp_path: Path) -> None:
    """Health, log rings and fan-outs live in the daemon: the attached console's Hosts,
    Logs and Fan-out screens read them over the socket, and a fan-out started in the
    console runs in the daemon (audited there with this user)."""
    from textual.widgets import Input

    from core.audit import AuditLog
    from tui.screens.fanout import FanOutScreen
    from tui.screens.hosts import HostsScreen
    from tui.screens.logs import LogsScreen
    from tui.widgets.common import NavTable

    log_file = tmp_path / "app.log"
    log_file.write_text("")
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f'[checks.system]\nkind = "metrics"\ntargets = "local"\ninterval = "1s"\n'
                   f'[sources.app]\npath = "{log_file}"\n')
    state = tmp_path / "state"
    proc = start_daemon(cfg, state, cli_env(tmp_path))
    try:
        app = attached(cfg, state, proc.pid)
        async with app.run_test(size=(140, 36)) as pilot:
            await ready(pilot)
            await pilot.press("5")
            await pilot.pause()
            assert isinstance(app.screen, HostsScreen)
            table = app.screen.query_one("#table")
            # the daemon's verdict on local: up (a machine busy enough to cross the CPU
            # threshold is "up · crit", never down): it came from the daemon's checks
            await pilot_until(pilot, lambda: table.row_count == 1
                              and str(table.get_row_at(0)[0]) == "local"
                              and str(table.get_row_at(0)[1]).split()[0] == "up",
                              "the daemon's health of local")

            # the daemon follows it from its end once open; the console shows what comes
            await pilot_until(pilot, lambda: has_open(log_file, proc.pid),
                              "the daemon to follow it")
            with log_file.open("a") as f:
                f.write("ERROR: disk full on /var\nINFO all good again\n")
            await pilot.press("8")
            await pilot.pause()
            assert isinstance(app.screen, LogsScreen)
            await pilot_until(pilot, lambda: any("disk full" in t
                                                 for _s, _l, t in app.screen.shown),
                              "the daemon's log line")
            sources = app.screen.query_one("#sources", Static)
            await pilot_until(pilot, lambda: "1 error" in str(sources.render()),
                              "the daemon's level counts")

            await pilot.press("6")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, FanOutScreen)
            for widget_id, text in (("pattern", "local"), ("command", "echo from-$PPID")):
                field = screen.query_one(f"#{widget_id}", Input)
                field.focus()
                field.value = text
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            await pilot.press("y")
            await pilot_until(pilot, lambda: screen.fanout_id is not None,
                              "the fan-out started")
            grid = screen.query_one(NavTable)
            await pilot_until(pilot, lambda: grid.row_count == 1
                              and "ok" in str(grid.get_row_at(0)), "local ok")
            record = await call_daemon(state, "fanout_get", {"fanout_id": screen.fanout_id})
            assert record["hosts"]["local"]["state"] == "ok"
            out = await call_daemon(state, "fanout_output", {"fanout_id": screen.fanout_id,
                                                             "host": "local"})
            assert out.strip() == f"from-{proc.pid}"  # the daemon's child, not ours
            rows = AuditLog(state).read()
            fan = [r for r in rows if r["action"] == "fan-out"]
            assert fan and fan[-1]["via"].startswith("socket pid ") and \
                fan[-1]["targets"] == ["local"]
    finally:
        stop_daemon(proc)


async def call_daemon(state: Path, method: str, params: dict) -> Any:
    from core.control.client import call

    return await call(state, method, params)
