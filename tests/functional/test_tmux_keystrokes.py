"""How many keys an incident takes, counted in a real terminal (tmux) over the demo fleet:
the console opened on a history with a failed run, a fan-out with hosts not ok and alerts
firing, then each task from the screen a person is on.

Goals: the last failed run's output ≤ 3 keys; rerun every host not ok of the last
fan-out ≤ 2 from the fan-out screen; ack every firing alert ≤ 3; a down host's reason ≤ 3.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import FLEETDECK, ROOT, cli_env
from tests.tmux import COVERING, Tmux, look

# a quick check of the demo's two dead hosts: their alerts fire seconds after launch
QUICK = '''
[checks.quick-ssh]
description = "The dead demo hosts, looked at every second (a test's addition)."
kind = "ssh"
targets = "db3,batch2"
interval = "1s"
timeout = "2s"
fail = [1, 1]

[jobs.release-check]
description = "Is the release on the database hosts? (a test's addition: db3 is down)"
command = "test -d /"
targets = "db1,db3"
'''


@pytest.fixture
def demo(tmp_path):
    """The demo fleet in its own process, its config with the quick check, and a history
    made through the CLI: release-check failed on db3, a fan-out with a host not ok."""
    fleet = subprocess.Popen([sys.executable, "-m", "core.demo", "serve", "--dir",
                              str(tmp_path / "demo")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=cli_env(tmp_path), cwd=ROOT)
    assert fleet.stdout is not None
    line = fleet.stdout.readline().split()
    assert line and line[0] == "ready", line
    config = tmp_path / "demo" / "config.toml"
    config.write_text(config.read_text() + QUICK)
    state = tmp_path / "state"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*FLEETDECK, "--config", str(config), "--state-dir", str(state),
                               *args], capture_output=True, text=True, timeout=120,
                              env=cli_env(tmp_path), cwd=ROOT)

    ran = cli("run", "release-check")
    assert ran.returncode != 0  # db3 is down: its run fails
    fan = cli("fanout", "db1,db3", "--connect-timeout", "3s", "--", "df", "-h", "/")
    assert fan.returncode == 3, fan.stdout + fan.stderr
    yield config, state, cli
    fleet.stdin.close()  # the fleet stops when its parent's pipe closes
    fleet.wait(30)


@pytest.mark.parametrize(("size", "name"), COVERING)
def test_an_incident_in_few_keys(demo, tmp_path, size, name):
    config, state, cli = demo
    args, extra = look(name)
    env = {k: v for k, v in cli_env(tmp_path).items()
           if k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "PYTHONPATH", "PATH", "HOME")}
    t = Tmux(tmp_path, *size, env={**env, **extra})
    try:
        t.start([sys.executable, "-m", "tui.cli", "--config", str(config), "--state-dir",
                 str(state), *args], cwd=ROOT)
        t.wait_for("Overview", "the console")
        t.wait_for("alerts firing", "the dead hosts' alerts in the status bar")

        # the last failed run's output: Tab to the failing runs (what fires has the
        # focus), Enter: 2 keys
        t.keys("Tab", "Enter")
        t.wait_for(lambda s: "release-check" in s and "failed" in s and "db3" in s,
                   "the failed run's output")
        t.keys("Escape")

        # a down host's reason: the Hosts screen, the worst first, Enter: 2 keys
        t.keys("5", "Enter")
        t.wait_for(lambda s: "connection refused" in s or "unreachable" in s,
                   "why the host is down")
        t.keys("Escape")

        # rerun every host not ok of the last fan-out, from the fan-out screen: R, y
        t.keys("6")
        t.wait_for("df -h /", "the last fan-out on the fan-out screen")
        before = json.loads(cli("fanouts", "--json").stdout)
        t.keys("R")
        t.wait_for("not ok", "the question with the count of each class")
        t.keys("y")

        def rerun() -> bool:
            out = json.loads(cli("fanouts", "--json").stdout)
            return len(out) == len(before) + 1

        t.wait_for(lambda s: rerun(), "a new fan-out of the hosts not ok")

        # ack every firing alert: 7, *, a: 3 keys. The demo goes on opening alerts (its
        # log rule fires on error bursts): the ones firing before the keys must all be
        # acknowledged; one that opens after them may fire
        firing = {a["id"] for a in json.loads(cli("alerts", "--json").stdout)
                  if a["status"] == "firing"}
        assert firing
        t.keys("7")
        t.type("*")
        t.keys("a")

        def all_acked(_s: str) -> bool:
            alerts = json.loads(cli("alerts", "--json").stdout)
            return all(a["status"] != "firing" for a in alerts if a["id"] in firing)

        t.wait_for(all_acked, "every alert that was firing acknowledged")
    finally:
        t.stop()
