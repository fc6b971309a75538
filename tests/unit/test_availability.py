"""Availability apart from thresholds: a failed probe is `down`, a threshold crossed is
`warn`/`crit` on an answering target. The damper, the judging of real psutil metrics
against thresholds this machine surely crosses (or surely does not), and the words a
down sample says."""

from __future__ import annotations

import asyncio
from typing import Any

from core.events import CheckChanged, EventBus
from core.health.config import CheckSpec
from core.health.damping import CRIT, DOWN, PENDING, UP, WARN, Damper
from core.health.metrics import Rates, local_metrics
from core.health.monitor import CheckState, HealthMonitor
from core.health.probes import Sample, command_status
from core.health.sampling import judge_metrics, ssh_down
from core.remote.classes import HostClass
from core.remote.ssh import SSHError


def feed(d: Damper, *statuses: str) -> list[str | None]:
    return [d.add(s) for s in statuses]


def test_a_threshold_never_makes_a_check_down() -> None:
    d = Damper(fail=(3, 5), recover=(2, 3))
    assert feed(d, "crit", "crit") == [None, CRIT]  # answered twice, both crit
    assert feed(d, *["crit"] * 20) == [None] * 20  # however long it lasts
    assert d.state == CRIT


def test_levels_go_up_with_fail_and_down_with_recover() -> None:
    d = Damper(fail=(2, 3), recover=(2, 3))
    assert feed(d, "ok", "ok") == [None, UP]
    assert feed(d, "warn", "warn") == [None, WARN]
    assert feed(d, "crit", "crit") == [None, CRIT]
    assert feed(d, "warn") == [None]  # one better sample is not enough
    assert feed(d, "warn") == [WARN]  # two of the last three below crit
    assert feed(d, "ok", "ok") == [None, UP]
    assert feed(d, "warn", "ok", "ok", "crit", "ok", "ok") == [None] * 6  # one in three: up


def test_down_is_counted_apart_from_levels() -> None:
    d = Damper(fail=(2, 3), recover=(2, 3))
    # out of pending (or down) by the answers that count for recovering, and to the
    # level they agree on
    assert feed(d, "crit", "ok") == [None, UP]
    assert feed(d, "down", "down") == [None, DOWN]
    assert feed(d, "crit", "crit") == [None, CRIT]  # answering again, both crit
    assert feed(d, "down", "warn", "down") == [None, None, DOWN]  # levels leave down alone
    d2 = Damper(fail=(2, 2), recover=(1, 1))
    assert feed(d2, "crit") == [CRIT]
    assert d2.state != PENDING


def test_command_exit_codes_are_a_verdict_only_when_it_exited() -> None:
    assert [command_status(c) for c in (0, 1, 2, 3, None)] == [
        "ok", "warn", "crit", "crit", "down"]


def test_real_metrics_judged_against_thresholds() -> None:
    m = local_metrics(Rates())  # this machine, through psutil
    crossed = judge_metrics(m, {"cpu": (0.0, 0.0), "memory": (0.0, 100.0)})
    assert crossed.status == "crit"  # cpu >= 0% is always crossed
    cpu, mem = crossed.detail.split("; ")
    assert cpu == f"cpu {m.cpu:.0f}% ≥ 0%"  # what crossed what
    assert mem == f"memory {m.memory:.0f}% ≥ 0%"  # a warn beside it (memory is never 100%)
    assert crossed.cause == "cpu ≥ 0%"  # the worst level's crossings, no values: no host
    assert crossed.metrics["cores"] >= 1
    fine = judge_metrics(m, {"disk": (100.0, 100.0), "load": (1000.0, 1000.0)})
    assert fine.status == "ok" and fine.cause == "" and fine.detail.startswith("cpu ")
    load = judge_metrics(m, {"load": (0.0, 1000.0)})
    assert load.status == "warn" and load.detail.endswith("≥ 0 per core")


def test_ssh_failures_say_why_in_words() -> None:
    refused = ssh_down(SSHError(HostClass.UNREACHABLE, "connection refused"), "db3",
                       "127.0.0.1")
    assert (refused.status, refused.detail, refused.cause) == (
        "down", "unreachable over SSH: connection refused",
        "unreachable over SSH: connection refused")
    dns = ssh_down(SSHError(HostClass.UNREACHABLE, "cannot resolve db3.example: Name or "
                                                   "service not known"), "db3", "db3.example")
    assert dns.detail.startswith("unreachable over SSH: cannot resolve db3.example")
    assert dns.cause == "unreachable over SSH"  # the text names the host: the class in words
    auth = ssh_down(SSHError(HostClass.AUTH_FAILED, "authentication failed as deploy"),
                    "db3", "10.0.0.3")
    assert auth.detail == "SSH login failed: authentication failed as deploy"
    assert "_" not in auth.detail and "Error" not in auth.detail


class _Engine:
    def __init__(self) -> None:
        self.bus = EventBus()
        self.actions: list[str] = []

    async def run_action(self, name: str, *a: Any, **kw: Any) -> dict:
        self.actions.append(name)
        return {}


async def test_a_check_over_its_threshold_stays_up_and_no_watchdog_runs() -> None:
    now = [1000.0]
    spec = CheckSpec("sys", "metrics", fail=(2, 3), recover=(1, 1), restart="true",
                     thresholds={"cpu": (0.0, 0.0)})
    mon = HealthMonitor({}, clock=lambda: now[0])
    mon.engine = engine = _Engine()
    changes: list[CheckChanged] = []
    engine.bus.subscribe(lambda e: changes.append(e) if isinstance(e, CheckChanged) else None)
    st = CheckState(spec, "web1", Damper(spec.fail, spec.recover))
    mon.states[st.key] = st
    m = local_metrics(Rates())
    for _ in range(5):
        now[0] += 10
        sample = judge_metrics(m, spec.thresholds)
        sample.at = now[0]
        mon._judge(st, sample, now[0])  # noqa: SLF001
    await asyncio.sleep(0)
    assert [(c.old, c.new, c.severity) for c in changes] == [("pending", "crit", "crit")]
    assert changes[-1].detail == f"cpu {m.cpu:.0f}% ≥ 0%" and changes[-1].cause == "cpu ≥ 0%"
    assert engine.actions == []  # the watchdog restarts what is down, not what is busy
    (row,) = mon.hosts()
    assert (row["state"], row["level"], row["failing"]) == ("up", "crit", ["sys"])
    now[0] += 10
    mon._judge(st, Sample("down", "unreachable over SSH: connection refused", at=now[0],  # noqa: SLF001
                          cause="unreachable over SSH: connection refused"), now[0])
    now[0] += 10
    mon._judge(st, Sample("down", "unreachable over SSH: connection refused", at=now[0],  # noqa: SLF001
                          cause="unreachable over SSH: connection refused"), now[0])
    await asyncio.sleep(0)
    assert (changes[-1].new, changes[-1].cause) == (
        "down", "unreachable over SSH: connection refused")
    assert engine.actions == ["watchdog:sys"]
    (row,) = mon.hosts()
    assert (row["state"], row["level"]) == ("down", "ok")
