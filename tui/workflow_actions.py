"""The console's workflow verbs (mixed into FleetdeckApp): approve or reject a step,
retry a workflow run, propose an alert's remediation. Each a worker: the screen never
waits on the engine."""

from __future__ import annotations

from typing import Any


class WorkflowActions:
    """The app's workflow verbs."""

    def decide_approval(self, verb: str, run_id: int, step: str, reason: str) -> None:
        app: Any = self
        decide = getattr(app.engine, verb)
        app.act(f"{verb} workflow steps",
                lambda: decide(run_id, step, reason, actor=app.actor),
                lambda got: f"run #{run_id}: step {got['step']} {got['decision']}")

    def retry_workflow(self, run_id: int) -> None:
        app: Any = self
        app.act("retry workflows", lambda: app.engine.retry_workflow(run_id, actor=app.actor),
                lambda run: f"workflow run #{run['id']} retries #{run_id}",
                then=lambda run: app.open_run(run["id"]))

    def propose_remediation(self, alert: dict[str, Any]) -> None:
        """Ask first, naming the workflow, the host and its gates; then run it."""
        app: Any = self
        config = app.engine.config
        name = config.remediation(alert["kind"], alert["source"])
        if name is None or name not in config.jobs:
            app.notify(f"alert #{alert['id']} names no remediation", severity="warning")
            return
        if not app.guard("run remediations"):
            return
        spec = config.jobs[name].workflow
        gates = [s.name for s in spec.steps if s.approve is not None]
        from tui.screens.dialogs import ConfirmScreen

        detail = "steps: " + " → ".join(spec.order)
        if gates:
            detail += f"; approval before {', '.join(gates)}"

        def confirmed(ok: bool | None) -> None:
            if ok:
                app.act("run remediations",
                        lambda: app.engine.remediate(alert["id"], actor=app.actor),
                        lambda run: f"alert #{alert['id']}: {run['job']} started as run "
                                    f"#{run['id']} on {run['host']}",
                        then=lambda run: app.open_run(run["id"]))

        app.push_screen(ConfirmScreen(f"Run {name} for alert #{alert['id']} on "
                                      f"{alert['target']}?", detail), confirmed)
