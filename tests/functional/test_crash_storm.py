"""kill -9 at random moments: what a daemon printed stays true, ids and occurrences are
never used twice, no run process is left behind, every state file loads.

The storm (real `fleetdeck daemon` processes, SIGKILL) is tests/storm.py, its checks
tests/storm_checks.py; bench/crash_bench.py runs a longer one. The second test holds the checks
to hand-made discrepancies, so a clean storm means clean state and not blind checks.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from core.jobs.runs import Run
from tests.helpers import until
from tests.storm import Storm
from tests.storm_checks import (
    ROUND_VAR,
    TOKEN_VAR,
    Printed,
    check_finished_saved,
    check_ids_unique,
    check_no_orphans,
    check_occurrences_once,
    parse_run_line,
    state_files,
)
from tui.cli.jobs import run_line

ROUNDS = 10
SEED = 20261122


def test_crash_storm_leaves_state_consistent(tmp_path: Path) -> None:
    result = Storm(tmp_path, rounds=ROUNDS, seed=SEED).run()
    # the storm really ran: lines were read and history was kept (else every check
    # would pass on nothing)
    assert result.finished_printed > 0 and result.runs_in_history > 0, result.table()
    if not result.clean:
        pytest.fail("the crash storm found violations:\n" + result.failure_message(),
                    pytrace=False)


def _run(run_id: int, job: str, state: str, **kw: object) -> Run:
    return Run(id=run_id, job=job, host="local", command="true", state=state, **kw)  # type: ignore[arg-type]


def _printed(round_no: int, run_id: int, job: str, state: str) -> Printed:
    return Printed(round_no, run_id, job, state, f"#{run_id} {job}@local {state}")


def test_the_checks_catch_hand_made_discrepancies(tmp_path: Path) -> None:
    # the daemon's run line, rendered as its console renders it, parses back
    shown = io.StringIO()
    Console(file=shown, width=500, color_system=None).print(run_line(
        {"id": 42, "job": "echo-a", "host": "local", "state": "skipped", "queued_at": 1.0,
         "finished_at": 2.0, "reason": "run #41 still active (overlap=skip)"}))
    parsed = parse_run_line(shown.getvalue(), 3)
    assert parsed is not None and (parsed.run_id, parsed.job, parsed.state) == (
        42, "echo-a", "skipped")

    # (a): finished states must be saved as printed; running ones may end interrupted
    history = [_run(1, "a", "interrupted"), _run(2, "a", "interrupted"),
               _run(3, "b", "interrupted"), _run(4, "a", "succeeded")]
    printed = [_printed(1, 1, "a", "succeeded"), _printed(1, 2, "a", "running"),
               _printed(2, 3, "b", "interrupted"), _printed(2, 4, "a", "succeeded"),
               _printed(2, 5, "a", "skipped")]
    found = check_finished_saved(printed, history)
    assert [v.split(" printed")[0] for v in found] == ["#1", "#5"], found

    # (b): one id printed by two daemons, or for a job history does not hold it for
    printed = [_printed(1, 7, "a", "running"), _printed(1, 7, "a", "succeeded"),
               _printed(1, 8, "a", "skipped"), _printed(2, 8, "b", "running"),
               _printed(2, 9, "a", "running")]
    found = check_ids_unique(printed, [_run(7, "a", "succeeded"), _run(9, "c", "failed")])
    assert [v.split(" ")[0] for v in found] == ["#8", "#9"], found

    # (c): one occurrence twice; manual runs (no occurrence) and other jobs do not count
    history = [_run(1, "a", "interrupted", occurrence=100.0, trigger="schedule"),
               _run(2, "a", "succeeded", occurrence=100.0, trigger="misfire"),
               _run(3, "b", "succeeded", occurrence=100.0, trigger="schedule"),
               _run(4, "a", "succeeded", trigger="manual"),
               _run(5, "a", "succeeded", trigger="manual")]
    found = check_occurrences_once(history)
    assert len(found) == 1 and "#1" in found[0] and "#2" in found[0], found

    # (e): a cut-off file and one an engine moved aside
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True)
    (state / "jobs.json").write_text('{"jobs": {}}')
    (state / "runs" / "runs-000000.json").write_text('{"runs": {"1": {"job"')
    (state / "meta.json.corrupt-1").write_text("x")
    found = state_files(state)
    assert len(found) == 2 and "runs-000000.json" in found[0], found


def test_the_orphan_check_sees_a_live_group_and_not_a_zombie() -> None:
    token = "orphan-check-" + str(os.getpid())
    env = {**os.environ, TOKEN_VAR: token, ROUND_VAR: "1", "FLEETDECK_RUN_ID": "5",
           "FLEETDECK_JOB": "sleeper"}
    proc = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    try:
        history = [_run(5, "sleeper", "interrupted", pgid=proc.pid)]
        found = until(lambda: check_no_orphans(history, token), "the sleeper to be seen")
        assert len(found) == 1 and f"process group {proc.pid}" in found[0], found
        os.killpg(proc.pid, signal.SIGKILL)
        # dead but not reaped: os.killpg(pgid, 0) still succeeds, yet nothing runs
        until(lambda: Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1][0] == "Z",
              "the sleeper to be a zombie")
        assert check_no_orphans(history, token) == []
    finally:
        proc.kill()
        proc.wait()
