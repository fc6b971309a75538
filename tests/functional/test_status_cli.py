"""`fleetdeck status` as a monitoring check asks it: real daemons, real runs holding the
state, real exit codes (0 running, 3 not running, 1 in use by a fleetdeck that is no
daemon)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import FLEETDECK, WAIT, cli_env, start_daemon, stop_daemon, until

CONFIG = """
[jobs.nightly]
command = "true"
schedule = "0 3 * * *"

[jobs.held]
command = "true"
schedule = "*/5 * * * *"

[jobs.fail]
command = "exit 4"

[jobs.wait]
command = "while [ ! -e {gate} ]; do sleep 0.05; done"
"""


def fd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEETDECK, "--config", str(tmp_path / "config.toml"),
                           "--state-dir", str(tmp_path / "state"), *args],
                          capture_output=True, text=True, timeout=WAIT, env=cli_env(tmp_path))


def test_status_of_a_daemon_of_none_and_of_a_state_in_use(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    gate = tmp_path / "gate"
    cfg.write_text(CONFIG.format(gate=gate))
    stopped = fd(tmp_path, "status")
    assert (stopped.returncode, stopped.stdout) == (
        3, f"fleetdeck daemon: not running (state {tmp_path / 'state'})\n")

    daemon = start_daemon(cfg, tmp_path / "state", cli_env(tmp_path))
    try:
        assert fd(tmp_path, "run", "fail").returncode == 4  # through the daemon
        assert fd(tmp_path, "pause", "held").returncode == 0
        out = fd(tmp_path, "status", "--json")
        assert out.returncode == 0, out.stderr
        status = json.loads(out.stdout)
        assert status["running"] and status["pid"] == daemon.pid
        assert status["config"] == str(cfg) and status["state_dir"] == str(tmp_path / "state")
        assert status["since"] > 0  # the process's start (the kernel's clock, not faketime's)
        assert status["jobs"]["total"] == 4 and status["jobs"]["paused"] == 1
        assert status["jobs"]["next"]["job"] == "nightly"  # the paused one does not fire
        assert status["runs"] == {"running": 0, "queued": 0, "failed_6h": 1}
        assert status["alerts"] == {"firing": 0, "quiet": 0}
        text = fd(tmp_path, "status")
        assert text.returncode == 0
        lines = text.stdout.splitlines()
        assert lines[0].startswith(f"fleetdeck daemon: running, pid {daemon.pid}, up ")
        assert "  jobs    4, 1 paused; next nightly at " in text.stdout
        assert "  runs    0 running, 0 queued; 1 failed in the last 6 h" in text.stdout
    finally:
        stop_daemon(daemon)
    assert fd(tmp_path, "status").returncode == 3  # the socket it left is no daemon

    # a `run` with no daemon holds the state itself: in use, but by no daemon
    run = subprocess.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir",
                            str(tmp_path / "state"), "run", "wait"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=cli_env(tmp_path))
    try:
        held = until(lambda: (lambda p: p if p.returncode == 1 else None)(
            fd(tmp_path, "status", "--json")), "the run to hold the state")
        status = json.loads(held.stdout)
        assert not status["running"] and status["held_by"] == run.pid
        assert "run wait" in status["held_by_command"]
        text = fd(tmp_path, "status").stdout
        assert f"the state is in use by pid {run.pid}: " in text
        reload = fd(tmp_path, "reload")  # not "start a daemon": that would be refused
        assert reload.returncode == 2
        assert f"; pid {run.pid} (" in reload.stderr
        assert reload.stderr.endswith(") holds it, and reads its config only when it starts\n")
    finally:
        gate.touch()
        assert run.wait(WAIT) == 0
    assert fd(tmp_path, "status").returncode == 3
