"""Snapshots of a workflow run's screen (a finished run seeded with fixed times: one
step failed, the failure path ran, the rest skipped), at 80x24 and 160x48 (the preview
beside the steps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.fleetconfig import parse_config_text
from core.jobs.runs import Run
from core.store import Store
from core.workflows.record import new_record, set_step
from tests.helpers import NOW, console_app, pilot_until, ready
from tui.screens.workflow import WorkflowScreen
from tui.widgets.preview import WIDE_FROM

pytestmark = pytest.mark.usefixtures("utc")

CONFIG = parse_config_text("""
[workflows.deploy]
[[workflows.deploy.steps]]
name = "drain"
command = "lb-drain web01"
[[workflows.deploy.steps]]
name = "ship"
command = "deploy-app"
needs = ["drain"]
approve = { by = ["alice", "@oncall"] }
[[workflows.deploy.steps]]
name = "check"
command = "curl -fsS http://web01/health"
needs = ["ship"]
[[workflows.deploy.steps]]
name = "rollback"
command = "deploy-app --rollback"
needs = ["check"]
when = "failure"
[[workflows.deploy.steps]]
name = "undrain"
command = "lb-undrain web01"
needs = ["check"]
""")

# step: state, seconds after the start it began, duration, reason, output
STEPS = {
    "drain": ("succeeded", 0, 2.0, "", ["draining web01", "0 connections left"]),
    "ship": ("succeeded", 95, 30.0, "", ["pulling app:1.4.2", "restarted"]),
    "check": ("failed", 126, 5.0, "run #4 failed: exit code 22",
              ["curl: (22) The requested URL returned error: 503"]),
    "rollback": ("succeeded", 132, 20.0, "", ["rolled back to app:1.4.1"]),
    "undrain": ("skipped", None, None, "step check did not succeed", []),
}


def seed(state_dir: Path) -> int:
    store = Store.open(state_dir)
    start = NOW - 600
    parent = Run(id=store.next_run_id(), job="deploy", host="local",
                 command="workflow of 5 steps", trigger="manual", state="failed",
                 reason="step check failed: run #4 failed: exit code 22", queued_at=start,
                 started_at=start, finished_at=start + 160, exit_code=1,
                 requested_by="bob")
    record = new_record(CONFIG.jobs["deploy"].workflow, "local")
    for name, (state, at, took, reason, output) in STEPS.items():
        st = record["steps"][name]
        run = Run(id=store.next_run_id(), job=f"deploy.{name}", host="local", command="-",
                  trigger="workflow", state=state, reason=reason, queued_at=start,
                  started_at=None if at is None else start + at,
                  finished_at=start + (at or 0) + (took or 0),
                  exit_code=None if at is None else (22 if state == "failed" else 0),
                  parent=parent.id, step=name)
        store.add_run(run)
        store.log_path(run.id).write_text("".join(f"{line}\n" for line in output))
        st["runs"] = [run.id]
        if at is not None:
            st["started_at"] = start + at
        set_step(st, state, reason, start + (at or 0) + (took or 0))
    record["steps"]["ship"]["approval"] = {
        "state": "approved", "by": ["alice", "@oncall"], "asked_at": start + 2,
        "decided_by": "alice", "decided_at": start + 94, "reason": "CHG-7"}
    parent.workflow = record
    store.add_run(parent)
    store.commit()
    store.close()
    return parent.id


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_workflow_screen_snapshot(snap_compare, tmp_path, size):
    state = tmp_path / "state"
    run_id = seed(state)
    app = console_app(CONFIG, state, clock=lambda: NOW)

    async def run_before(pilot) -> None:
        await ready(pilot)
        app.open_run(run_id)
        await pilot_until(pilot, lambda: isinstance(app.screen, WorkflowScreen)
                          and app.screen.query("#table")
                          and app.screen.table.row_count == 5, "the steps")
        if app.size.width >= WIDE_FROM:
            await pilot_until(pilot, lambda: app.screen.preview_key is not None,
                              "the preview")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
