"""The console on workflows, through Pilot over a real engine: a workflow run opens on
its steps; `a` approves the waiting step with a typed reason (audited as the console's
user); `f` on an alert runs its remediation after a confirmation and opens the run."""

from __future__ import annotations

import os

from core.api import Actor, user_name
from core.fleetconfig import parse_config_text
from tests.helpers import check_down, column, console_app, notices, pilot_until, ready
from tui.screens.alerts import AlertDetailScreen
from tui.screens.dialogs import ConfirmScreen
from tui.screens.workflow import ReasonScreen, WorkflowScreen

ME = user_name(os.getuid())
ALICE = Actor(os.getuid(), "alice", "cli")

CONFIG = f"""
[checks.api]
kind = "tcp"
port = 9
remediation = "fix-api"

[workflows.fix-api]
[[workflows.fix-api.steps]]
name = "look"
command = "echo looked"
[[workflows.fix-api.steps]]
name = "restart"
command = "echo restarted"
needs = ["look"]
approve = {{ by = ["{ME}"] }}
[[workflows.fix-api.steps]]
name = "verify"
command = "echo verified"
needs = ["restart"]
"""


async def test_approve_a_waiting_step_from_the_workflow_screen(tmp_path):
    app = console_app(parse_config_text(CONFIG), tmp_path / "state")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        (run,) = await app.engine.run_job("fix-api", actor=ALICE)
        await pilot_until(pilot, lambda: app.engine.get_run(run["id"])["state"]
                          == "awaiting_approval", "the gate")
        app.open_run(run["id"])
        await pilot_until(pilot, lambda: isinstance(app.screen, WorkflowScreen)
                          and app.screen.query("#table"), "the workflow screen")
        screen = app.screen
        await pilot_until(pilot, lambda: column(screen.table, 1)[:2] == [
            "✓ succeeded", "  awaiting_approval"], "the steps' states")
        assert [c.strip() for c in column(screen.table, 0)] == ["look", "⊘ restart",
                                                                 "verify"]
        await pilot.press("a")
        await pilot_until(pilot, lambda: isinstance(app.screen, ReasonScreen), "the reason")
        await pilot.press(*"ok by me", "enter")
        done = await app.engine.wait_run(run["id"])
        assert done["state"] == "succeeded"
        approval = done["workflow"]["steps"]["restart"]["approval"]
        assert (approval["decided_by"], approval["reason"]) == (ME, "ok by me")
        await pilot_until(pilot, lambda: column(screen.table, 1) == ["✓ succeeded"] * 3,
                          "the screen to follow")
        assert f"run #{run['id']}: step restart approved" in notices(app)


async def test_fix_on_an_alert_runs_its_remediation(tmp_path):
    cfg = parse_config_text(CONFIG.replace(f'approve = {{ by = ["{ME}"] }}', ""))
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        app.engine.bus.publish(check_down("api", "local", "connection refused"))
        await pilot_until(pilot, lambda: app.engine.list_alerts(), "the alert")
        alert = app.engine.list_alerts()[0]
        app.open_alert(alert["id"])
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertDetailScreen),
                          "the alert's detail")
        await pilot.press("f")
        await pilot_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert app.screen.question == f"Run fix-api for alert #{alert['id']} on local?"
        await pilot.press("y")
        await pilot_until(pilot, lambda: isinstance(app.screen, WorkflowScreen),
                          "the remediation run's screen")
        run_id = app.screen.run["id"]
        done = await app.engine.wait_run(run_id)
        assert done["state"] == "succeeded" and done["trigger"] == "remediation"
        assert app.engine.get_alert(alert["id"])["remediation_runs"] == [run_id]
