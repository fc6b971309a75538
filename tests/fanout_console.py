"""The fan-out screen's test fleet: in-process SSH servers on loopback (three answer,
one port is closed, one host has a key nobody knows), a console on them, and the steps
its tests share. The fixtures `console_fleet` and `fanout_app` are registered by
tests/conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from core.fleetconfig import Config
from core.jobs.config import EngineSettings
from core.remote.config import Host
from core.remote.runs import set_engine_pool
from tests.helpers import console_app, keys, pilot_until, ready
from tests.sshd import closed_port, host, make_keys, make_pool, start_servers
from tui.app import FleetdeckApp
from tui.screens.fanout import FanOutScreen
from tui.widgets.common import NavTable


@pytest.fixture
async def console_fleet(tmp_path: Path):
    k = make_keys(tmp_path / "keys")
    known = tmp_path / "known"
    servers = await start_servers(k, 3, known)
    # a host whose key nobody has seen: its own key, written to no known_hosts file
    import asyncssh

    stranger = (await start_servers(k, 1, tmp_path / "elsewhere",
                                    host_key=asyncssh.generate_private_key("ssh-ed25519")))[0]
    yield k, known, servers, stranger
    for s in [*servers, stranger]:
        await s.stop()


def fleet_config(servers: list[Any], stranger: Any) -> Config:
    hosts = [host(f"app{i + 1}", s.port, groups=("app",)) for i, s in enumerate(servers)]
    hosts.append(host("app4", closed_port(), groups=("app",)))
    hosts.append(host("new1", stranger.port))
    return Config(path=None, hosts={"local": Host("local"), **{h.name: h for h in hosts}},
                  jobs={}, engine=EngineSettings())


@pytest.fixture
def fanout_app(console_fleet, state_dir: Path):
    k, known, servers, stranger = console_fleet

    def make(**kw: Any) -> FleetdeckApp:
        return console_app(fleet_config(servers, stranger), state_dir, **kw)

    return make, k, known


async def open_screen(pilot: Any, k: Any, known: Path) -> FanOutScreen:
    app = await ready(pilot)
    set_engine_pool(app.engine, make_pool(k, known, connect_timeout=2))
    await pilot.press("6")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, FanOutScreen)
    return screen


async def type_into(pilot: Any, widget_id: str, text: str) -> None:
    field = pilot.app.screen.query_one(f"#{widget_id}", Input)
    field.focus()
    field.value = ""
    await pilot.press(*keys(text))
    await pilot.pause()


def grid(screen: FanOutScreen) -> dict[str, str]:
    table = screen.query_one(NavTable)
    state = [str(c.label) for c in table.columns.values()].index("STATE")
    out = {}
    for i in range(table.row_count):
        row = table.get_row_at(i)
        out[str(row[0])] = str(row[state])
    return out


async def finished(pilot: Any, screen: FanOutScreen) -> dict[str, str]:
    """The grid once the fan-out has ended and the screen has drawn its end."""
    fanouts = pilot.app.engine.fanouts

    def drawn() -> bool:
        fid = screen.fanout_id
        if fid is None or fanouts.is_live(fid):
            return False
        summary = str(screen.query_one("#summary", Static).render())
        final = {h: r["state"] for h, r in fanouts.get(fid)["hosts"].items()}
        return summary.startswith(f"#{fid} ") and "running…" not in summary \
            and grid(screen) == final

    await pilot_until(pilot, drawn, "the fan-out's end on screen")
    return grid(screen)
