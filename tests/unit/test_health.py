"""Health checks without the network: damping, thresholds, /proc parsing, the watchdog's
limits, all on a fixed clock with samples fed by hand."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.config import ConfigError
from core.events import CheckChanged, EventBus
from core.fleetconfig import parse_config_text
from core.health.config import CheckSpec
from core.health.damping import DOWN, PENDING, UP, Damper
from core.health.metrics import REMOTE_COMMAND, MetricsError, Rates, parse_remote
from core.health.monitor import CheckState, HealthMonitor
from core.health.probes import CRIT, OK, WARN, Sample


def test_damping_needs_n_of_m() -> None:
    d = Damper(fail=(3, 5), recover=(2, 3))
    assert d.state == PENDING
    assert [d.add(x) for x in (True, True)] == [None, UP]
    # two failures among good samples never flip it: a flapping service stays up
    assert [d.add(x) for x in (False, True, False, True, True)] == [None] * 5
    assert [d.add(x) for x in (False, False)] == [None, DOWN]  # 3 of the last 5
    assert [d.add(x) for x in (True, False, True)] == [None, None, UP]


def test_pending_goes_straight_to_down_when_it_starts_failing() -> None:
    d = Damper(fail=(2, 2), recover=(1, 1))
    assert [d.add(False), d.add(False)] == [None, DOWN]


REMOTE = """cpu  100 0 100 800 0 0 0 0 0 0
cpu  150 0 150 900 0 0 0 0 0 0
@@
0.50 0.40 0.30 2/345 999
@@
MemTotal:        1000 kB
MemFree:          100 kB
MemAvailable:     250 kB
SwapTotal:        200 kB
SwapFree:         150 kB
@@
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets
    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0
  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0
@@
4
@@
Filesystem     1024-blocks    Used Available Capacity Mounted on
/dev/sda1         1000000  960000     40000      96% /
tmpfs                1000       0      1000       0% /run
/dev/sdb1         1000000  100000    900000      10% /srv/data dir
@@
Filesystem      Inodes IUsed IFree IUse% Mounted on
/dev/sda1         1000   300   700   30% /
/dev/sdb1         1000     -     -     - /srv/data dir
"""


def test_remote_metrics_parse_in_one_round_trip() -> None:
    assert "/proc/stat" in REMOTE_COMMAND and "df -P -i" in REMOTE_COMMAND
    rates = Rates()
    m = parse_remote(REMOTE, rates, now=100.0)
    assert m.cpu == 50.0  # 100 busy jiffies of 200
    assert (m.load1, m.cores, m.load) == (0.5, 4, 0.125)
    assert (m.memory, m.swap) == (75.0, 25.0)
    assert m.disks == {"/": {"disk": 96.0, "inodes": 30.0}, "/srv/data dir": {"disk": 10.0}}
    assert (m.disk, m.inodes, m.procs) == (96.0, 30.0, 345)
    assert (m.rx, m.tx) == (None, None)  # a rate needs the previous sample
    m2 = parse_remote(REMOTE.replace("1000 10", "3000 10"), rates, now=102.0)
    assert (m2.rx, m2.tx) == (1000.0, 0.0)


def test_unreadable_metrics_are_a_failure_with_a_reason() -> None:
    with pytest.raises(MetricsError, match="sections"):
        parse_remote("cat: /proc/stat: No such file\n", Rates(), 0.0)
    with pytest.raises(MetricsError, match="cannot read metrics"):
        parse_remote(REMOTE.replace("MemTotal", "Nothing"), Rates(), 0.0)


def test_check_config_errors_are_one_line_each() -> None:
    text = """
[hosts.web1]
address = "10.0.0.1"
[checks.api]
kind = "http"
targets = "web1"
url = "ftp://x"
status = [700]
latency = ["1s", "100ms"]
[checks.disk]
kind = "metrics"
disk = [95, 90]
fail = [3]
[checks.svc]
kind = "process"
targets = "web9"
restart_limit = [0, "1m"]
"""
    with pytest.raises(ConfigError) as e:
        parse_config_text(text, "fleet.toml")
    lines = str(e.value).splitlines()
    assert lines == [
        "fleet.toml:7: checks.api.url: url must start with http:// or https://, got 'ftp://x'",
        "fleet.toml:8: checks.api.status: status must be an HTTP status code or a list of "
        "them",
        "fleet.toml:9: checks.api.latency: latency: warn '1s' is above crit '100ms'",
        "fleet.toml:12: checks.disk.disk: disk: warn 95 is above crit 90",
        "fleet.toml:13: checks.disk.fail: fail must be [N, M]: N failing samples of the last "
        "M, e.g. [3, 5]",
        "fleet.toml:14: checks.svc: missing key 'pattern' (a process check needs it)",
        "fleet.toml:16: checks.svc.targets: unknown host 'web9'",
        "fleet.toml:17: checks.svc.restart_limit: restart_limit must be [K, window], K 1..1000, "
        "e.g. [3, \"10m\"]",
    ]


class _Engine:
    """Just what HealthMonitor._judge needs: a bus, run_action, and wait_run, whose
    restarts end when the test says (`end(n)`)."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.actions: list[tuple[str, str, str]] = []
        self.ends: list[asyncio.Event] = []

    async def run_action(self, name: str, command: str, host: str, **kw: Any) -> dict:
        self.actions.append((name, command, host))
        self.ends.append(asyncio.Event())
        return {"id": len(self.actions)}

    async def wait_run(self, run_id: int) -> dict:
        await self.ends[run_id - 1].wait()
        return {"id": run_id, "state": "succeeded"}

    async def end(self, n: int) -> None:
        self.ends[n - 1].set()
        for _ in range(3):
            await asyncio.sleep(0)


async def test_watchdog_restarts_within_limits_then_gives_up(tmp_path: Path) -> None:
    now = [1000.0]
    spec = CheckSpec("svc", "process", pattern="x", fail=(2, 3), recover=(1, 1),
                     restart="systemctl restart x", restart_grace=30.0,
                     restart_limit=(2, 600.0))
    mon = HealthMonitor({}, clock=lambda: now[0])
    mon.engine = engine = _Engine()
    changes: list[tuple[str, str]] = []
    engine.bus.subscribe(lambda e: changes.append((e.old, e.new))
                         if isinstance(e, CheckChanged) else None)
    st = CheckState(spec, "local", Damper(spec.fail, spec.recover))

    def feed(status: str, step: float = 10.0) -> None:
        now[0] += step
        mon._judge(st, Sample(status, "x", at=now[0]), now[0])  # noqa: SLF001

    feed(OK)
    feed(DOWN)
    feed(DOWN)  # down: restart 1
    await asyncio.sleep(0)
    assert changes == [("pending", "up"), ("up", "down")]
    assert engine.actions == [("watchdog:svc", "systemctl restart x", "local")]
    for _ in range(10):  # a slow restart: not judged while it runs, and never a second
        feed(DOWN, 30.0)
    assert len(engine.actions) == 1 and st.state == DOWN
    await engine.end(1)  # it ends: 30 s of grace from now
    feed(DOWN)
    feed(DOWN)  # within the grace: recorded, not judged
    assert len(engine.actions) == 1
    feed(DOWN, 20.0)
    feed(DOWN)  # judged afresh after the grace: still down, restart 2 (no second alert)
    await asyncio.sleep(0)
    assert len(engine.actions) == 2 and changes[-1] == ("up", "down")
    await engine.end(2)
    feed(DOWN, 40.0)
    feed(DOWN)  # a third time within 10 minutes: give up
    await asyncio.sleep(0)
    assert len(engine.actions) == 2
    assert changes[-1] == ("down", "gave_up") and st.state == "gave_up"
    feed(DOWN)
    assert changes[-1] == ("down", "gave_up")  # no more noise while it stays broken
    feed(OK)  # back by itself (or by hand): up
    assert changes[-1] == ("gave_up", "up")
    feed(DOWN)
    feed(DOWN)  # flapping: down again within the window, no third restart
    await asyncio.sleep(0)
    assert len(engine.actions) == 2 and changes[-1] == ("down", "gave_up")
    feed(OK, 600.0)
    feed(DOWN)
    feed(DOWN)  # the window has passed: a restart again
    await asyncio.sleep(0)
    assert len(engine.actions) == 3


def test_thresholds_warn_and_crit() -> None:
    from core.health.probes import latency_status

    assert latency_status(0.1, (0.3, 1.0)) == OK
    assert latency_status(0.5, (0.3, 1.0)) == WARN
    assert latency_status(1.0, (0.3, 1.0)) == CRIT
    assert latency_status(5.0, None) == OK


async def test_the_watchdog_restarts_nothing_in_a_maintenance_window() -> None:
    """A service a person stopped in a maintenance window is not started again behind
    their back; after the window the watchdog acts as before."""
    now = [1000.0]
    spec = CheckSpec("svc", "process", pattern="x", fail=(1, 1), recover=(1, 1),
                     restart="systemctl restart x", restart_grace=0.0,
                     restart_limit=(3, 600.0))
    mon = HealthMonitor({}, clock=lambda: now[0])
    mon.engine = engine = _Engine()
    window = ["patch-web"]

    class Alerts:
        def in_maintenance(self, check: str, target: str) -> str | None:
            return window[0] if (check, target) == ("svc", "local") else None

    engine.alerts = Alerts()  # type: ignore[attr-defined]
    st = CheckState(spec, "local", Damper(spec.fail, spec.recover))
    for status in (OK, DOWN):
        now[0] += 10
        mon._judge(st, Sample(status, "x", at=now[0]), now[0])  # noqa: SLF001
    await asyncio.sleep(0)
    assert engine.actions == [] and st.state == DOWN
    window[0] = None
    for status in (OK, DOWN):
        now[0] += 10
        mon._judge(st, Sample(status, "x", at=now[0]), now[0])  # noqa: SLF001
    await asyncio.sleep(0)
    assert engine.actions == [("watchdog:svc", "systemctl restart x", "local")]
