"""The ZONE column of `fleetdeck jobs`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import FLEETDECK, cli_env

CONFIG = """
[jobs.m]
command = "true"
schedule = "every 1m"
misfire = "run_once"

[jobs.berlin]
command = "true"
schedule = "0 3 * * *"
timezone = "Europe/Berlin"

[jobs.manual]
command = "true"
"""


def fd(tmp_path: Path, state_dir: Path, *args: str,
       tz: str | None = None) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    env = cli_env(tmp_path)
    if tz is not None:
        env["TZ"] = tz
    return subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state_dir),
                           *args], capture_output=True, text=True, timeout=60, env=env)


def test_jobs_show_each_jobs_zone(tmp_path):
    state_dir = tmp_path / "state"
    proc = fd(tmp_path, state_dir, "jobs", tz="Asia/Tokyo")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["JOB", "SCHEDULE", "ZONE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "Asia/Tokyo" in rows["m"]  # no timezone: the host's
    assert rows["berlin"].split()[1:6] == ["daily", "at", "03:00", "Europe/Berlin", "in"]
    assert "Tokyo" not in rows["manual"] and "Berlin" not in rows["manual"]
    listed = json.loads(fd(tmp_path, state_dir, "jobs", "--json", tz="Asia/Tokyo").stdout)
    assert {j["name"]: j["timezone"] for j in listed} == {
        "m": "Asia/Tokyo", "berlin": "Europe/Berlin", "manual": None}
