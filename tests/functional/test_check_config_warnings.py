"""`check-config` warns (exit status 0) about a schedule that never fires in the next five
years. The schedules here lie in the past for good: the test holds on any later date."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import FLEETDECK, cli_env

CONFIG = """\
[jobs.once]
command = "true"
schedule = "at 2020-01-01 00:00"
timezone = "UTC"

[jobs.yearly]
command = "true"
schedule = "0 0 12 * * ? 2020"
timezone = "UTC"
enabled = false

[jobs.daily]
command = "true"
schedule = "@daily"

[jobs.manual]
command = "true"
"""


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return subprocess.run([*FLEETDECK, "check-config", str(path)], capture_output=True,
                          text=True, timeout=60, env=cli_env(tmp_path))


def test_a_schedule_that_never_fires_is_a_warning(tmp_path):
    path = tmp_path / "config.toml"
    proc = check(tmp_path, CONFIG)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{path}: ok (2 warnings)"
    assert proc.stderr.splitlines() == [
        f"warning: {path}:3: jobs.once.schedule: never fires: once at 2020-01-01 00:00 UTC "
        "is in the past",
        f"warning: {path}:8: jobs.yearly.schedule: never fires again (daily at 12:00 in "
        "2020 (UTC))",
    ]


def test_no_warning_for_schedules_that_fire(tmp_path):
    proc = check(tmp_path, '[jobs.daily]\ncommand = "true"\nschedule = "@daily"\n'
                           '[jobs.leap]\ncommand = "true"\nschedule = "0 0 29 2 *"\n')
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout.strip().endswith(": ok")


def test_errors_still_exit_2(tmp_path):
    proc = check(tmp_path, CONFIG + '\n[jobs.bad]\ncommand = "true"\nschedule = "61 * * * *"\n')
    assert proc.returncode == 2
    assert "jobs.bad.schedule" in proc.stderr and "Traceback" not in proc.stderr
