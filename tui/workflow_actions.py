"""The console's workflow verbs (mixed into FleetdeckApp): approve or reject a step,
retry a workflow run, propose an alert's remediation. Each a worker: the screen never
waits on the engine."""

from __future__ import annotations

from typing import Any

from textual import work


class WorkflowActions:
    """The app's workflow verbs."""

    def decide_approval(self, verb: str, run_id: int, step: str, reason: str) -> None:
        app: Any = self
        if app._guard(f"{verb} workflow steps"):  # noqa: SLF001
            self._decide(verb, run_id, step, reason)

    @work(group="actions")
    async def _decide(self, verb: str, run_id: int, step: str, reason: str) -> None:
        app: Any = self
        from core.jobs.active import EngineError

        try:
            got = await getattr(app.engine, verb)(run_id, step, reason, actor=app.actor)
        except EngineError as e:
            app.notify(str(e), severity="error")
            return
        app.notify(f"run #{run_id}: step {got['step']} {got['decision']}")

    def retry_workflow(self, run_id: int) -> None:
        app: Any = self
        if app._guard("retry workflows"):  # noqa: SLF001
            self._retry(run_id)

    @work(group="actions")
    async def _retry(self, run_id: int) -> None:
        app: Any = self
        from core.jobs.active import EngineError

        try:
            run = await app.engine.retry_workflow(run_id, actor=app.actor)
        except EngineError as e:
            app.notify(str(e), severity="error")
            return
        app.notify(f"workflow run #{run['id']} retries #{run_id}")
        app.open_run(run["id"])

    def propose_remediation(self, alert: dict[str, Any]) -> None:
        """Ask first, naming the workflow, the host and its gates; then run it."""
        app: Any = self
        config = app.engine.config
        name = config.remediation(alert["kind"], alert["source"])
        if name is None or name not in config.jobs:
            app.notify(f"alert #{alert['id']} names no remediation", severity="warning")
            return
        if not app._guard("run remediations"):  # noqa: SLF001
            return
        spec = config.jobs[name].workflow
        gates = [s.name for s in spec.steps if s.approve is not None]
        from tui.screens.dialogs import ConfirmScreen

        detail = "steps: " + " → ".join(spec.order)
        if gates:
            detail += f"; approval before {', '.join(gates)}"

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._remediate(alert["id"])

        app.push_screen(ConfirmScreen(f"Run {name} for alert #{alert['id']} on "
                                      f"{alert['target']}?", detail), confirmed)

    @work(group="actions")
    async def _remediate(self, alert_id: int) -> None:
        app: Any = self
        from core.jobs.active import EngineError

        try:
            run = await app.engine.remediate(alert_id, actor=app.actor)
        except (EngineError, ValueError) as e:
            app.notify(str(e), severity="error")
            return
        app.notify(f"alert #{alert_id}: {run['job']} started as run #{run['id']} on "
                   f"{run['host']}")
        app.open_run(run["id"])
