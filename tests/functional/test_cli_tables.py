"""The CLI's tables at the width they are printed in: every row one line, no line wider
than COLUMNS, the long text cut with an ellipsis and the narrow columns whole; piped with
no COLUMNS, nothing is cut. Real processes over a real state directory."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

from core.alerts.book import AlertBook
from tests.helpers import FLEETDECK, cli_env

LONG_DIR = ("/nonexistent/a-rather-long-folder-name-for-the-deploy-checkout/releases/"
            "2026-11-22T12-00-00Z/current")
LONG_REASON = f"cannot start: no such file or directory: {LONG_DIR}"

CONFIG = f"""
[jobs.nightly-database-backup]
command = "true"
cwd = "{LONG_DIR}"
schedule = "30 2 * * 1-5"
timezone = "Europe/Berlin"

[jobs.hello]
command = "echo hello"

[hosts.web-frontend-eu-west-01]
address = "10.20.30.41"
port = 2222
user = "deploy"
groups = ["web", "frontend", "eu-west", "canary", "tier-one"]
tags = {{ role = "web", dc = "eu-west-1", rack = "r17", owner = "team-storefront" }}

[hosts.db1]
address = "10.20.30.51"
groups = ["db"]
"""


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs (two failed with a long reason), a fan-out and two alerts."""
    root = tmp_path_factory.mktemp("tables")
    (root / "config.toml").write_text(CONFIG)
    for job in ("nightly-database-backup", "hello", "nightly-database-backup"):
        run(root, None, "run", job)
    run(root, None, "fanout", "local", "--", "echo a command long enough to be cut at "
        "eighty columns; exit 3")
    book = AlertBook(root / "state", None, time.time)
    book.check_changed("http-api", "web-frontend-eu-west-01", "up", "down", time.time(),
                       "HTTP 503 from https://storefront.example.com/healthz after 9.8 s: "
                       "upstream connect error or disconnect/reset before headers")
    book.check_changed("disk", "db1", "up", "down", time.time(), "disk / 96% >= 95%")
    book.close()
    return root


def run(root: Path, columns: int | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(root)
    env.pop("COLUMNS")
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([*FLEETDECK, "--config", str(root / "config.toml"), "--state-dir",
                           str(root / "state"), *args],
                          capture_output=True, text=True, timeout=60, env=env)


# command, the first cell of each row, what a row must show whole at any width
TABLES = [
    (("runs",), ["#3", "#2", "#1"], ["nightly-database-backup", "failed"]),
    (("jobs",), ["nightly-database-backup", "hello"], ["nightly-database-backup"]),
    (("alerts",), ["#2", "#1"], ["web-frontend-eu-west-01", "firing"]),
    (("hosts",), ["local", "web-frontend-eu-west-01", "db1"], ["10.20.30.41"]),
    (("fanouts",), ["#1"], ["1 failed"]),
    (("fanouts", "1"), ["local"], ["failed", "exit code 3"]),
]


@pytest.mark.parametrize("columns", [80, 160])
@pytest.mark.parametrize("command,firsts,whole", TABLES, ids=[" ".join(t[0]) for t in TABLES])
def test_every_row_is_one_line_within_columns(history, columns, command, firsts, whole):
    out = run(history, columns, *command)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(cell_len(line) <= columns for line in lines), \
        "\n".join(f"{cell_len(line):4} {line}" for line in lines)
    header = next(i for i, line in enumerate(lines) if line.split()[:1] in (
        ["RUN"], ["JOB"], ["ID"], ["HOST"]))
    rows = lines[header + 1: header + 1 + len(firsts)]
    assert [r.split()[0] for r in rows] == firsts, out.stdout  # one line each, in order
    for word in whole:
        assert any(word in r for r in rows), (word, out.stdout)  # narrow columns uncut
    if len(lines) > header + 1 + len(firsts):  # what follows is not a row of the table
        assert lines[header + 1 + len(firsts)].split()[0] not in firsts


@pytest.mark.parametrize("columns", [80, 160])
def test_a_long_reason_is_cut_with_an_ellipsis(history, columns):
    rows = run(history, columns, "runs").stdout.splitlines()
    failed = [r for r in rows if r.startswith("#3 ")][0]
    assert "cannot start: no such file" in failed and failed.endswith("…")
    assert LONG_DIR not in failed
    assert cell_len(failed) <= columns


def test_at_eighty_columns_the_columns_a_person_can_spare_go_first(history):
    header = run(history, 80, "runs").stdout.splitlines()[0].split()
    assert header[:4] == ["RUN", "JOB", "HOST", "STATE"] and header[-1] == "REASON"
    assert "EXIT" not in header  # the reason says the exit code
    wide = run(history, 160, "runs").stdout.splitlines()[0].split()
    assert wide == ["RUN", "JOB", "HOST", "STATE", "EXIT", "STARTED", "DURATION", "REASON"]


def test_piped_without_columns_nothing_is_cut(history):
    out = run(history, None, "runs").stdout
    assert out.count(LONG_REASON) == 2
    assert "…" not in out
    assert all(line == line.rstrip() for line in out.splitlines())  # nothing trails


def test_json_is_untouched_by_the_width(history):
    import json

    narrow = json.loads(run(history, 40, "runs", "--json").stdout)
    assert narrow[0]["reason"] == LONG_REASON
    assert narrow == json.loads(run(history, None, "runs", "--json").stdout)


def test_a_long_name_is_cut_rather_than_pushing_out_every_other_column(tmp_path):
    """A generated job name of 119 characters used to leave `runs` at 80 columns with
    JOB and two letters of STATE: no run id, no reason."""
    name = "nightly-" + "-".join(["reindex"] * 14)
    (tmp_path / "config.toml").write_text(f'[jobs.{name}]\ncommand = "exit 3"\n')
    assert run(tmp_path, None, "run", name).returncode == 3  # the run's own exit code
    lines = run(tmp_path, 80, "runs").stdout.splitlines()
    assert lines[0].split() == ["RUN", "JOB", "HOST", "STATE", "STARTED", "REASON"]
    row = lines[1]
    assert row.startswith("#1 ") and "local" in row and "failed" in row
    assert row.endswith("exit code 3") and cell_len(row) <= 80
    cut = row.split()[1]
    assert cut.endswith("…") and name.startswith(cut[:-1]) and len(cut) >= 30
    assert name in run(tmp_path, 200, "runs").stdout  # room for it: whole


def test_a_failed_probe_is_down_in_sev_as_in_the_console(history):
    """The console and the README say `down` for a probe that failed; the CLI said
    `crit`, the severity a threshold would have."""
    rows = {line.split()[0]: line.split() for line in run(history, 160, "alerts").stdout
            .splitlines()[1:]}
    assert rows["#1"][rows["#1"].index("web-frontend-eu-west-01") + 1] == "down"
    assert rows["#2"][rows["#2"].index("db1") + 1] == "down"
