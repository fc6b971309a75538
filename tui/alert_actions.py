"""The console's alert verbs (mixed into FleetdeckApp) and its bell.

Kept apart from the Alerts screen so the app can offer them without loading that screen
at start-up. Each verb is a worker: the screen never waits on the engine.
"""

from __future__ import annotations

from typing import Any

from textual import work

from core.durations import format_duration, parse_duration
from core.events import AlertChanged
from tui import commands as cmds


def ring_for(events: list[Any]) -> bool:
    """The console's bell: a new alert that is firing (not silenced, not in maintenance)."""
    return any(isinstance(e, AlertChanged) and e.action in ("opened", "notified")
               and e.alert.get("status") == "firing" for e in events)


class AlertActions:
    """The app's alert verbs (mixed into FleetdeckApp): each a worker, never blocking."""

    def open_alert(self, alert_id: int) -> None:
        app: Any = self
        from core.jobs.active import EngineError

        try:
            alert = app.engine.get_alert(alert_id)
        except (ValueError, EngineError) as e:
            app.notify(str(e), severity="error")
            return
        from tui.screens.alerts import AlertDetailScreen

        app.push_screen(AlertDetailScreen(alert, app.clock()))

    # the `:` commands (tui/commands.py finds `cmd_<name>` on the app)
    def cmd_ack(self, alert: str) -> None:
        self.ack_alert(cmds.parse_alert_id(alert))

    def cmd_silence(self, target: str, duration: str) -> None:
        self.silence(target, duration)

    def cmd_unsilence(self, target: str) -> None:
        self.unsilence(target)

    def guard_action(self, verb: str) -> bool:
        app: Any = self
        return app._guard(verb)  # noqa: SLF001

    def ack_alert(self, alert_id: int) -> None:
        if self.guard_action("acknowledge alerts"):
            self._ack_alert(alert_id)

    @work(group="actions")
    async def _ack_alert(self, alert_id: int) -> None:
        app: Any = self
        from core.jobs.active import EngineError

        try:
            alert = await app.engine.ack_alert(alert_id, actor=app.actor)
        except (ValueError, EngineError) as e:
            app.notify(str(e), severity="error")
            return
        app.notify(f"alert #{alert_id} acknowledged by {alert['acked_by']}")

    def ack_alert_group(self, alert_id: int) -> None:
        """Acknowledge a group: every firing member, in one action."""
        if self.guard_action("acknowledge alerts"):
            self._ack_alert_group(alert_id)

    @work(group="actions")
    async def _ack_alert_group(self, alert_id: int) -> None:
        app: Any = self
        from core.jobs.active import EngineError

        try:
            group = await app.engine.ack_alert_group(alert_id, actor=app.actor)
        except (ValueError, EngineError) as e:
            app.notify(str(e), severity="error")
            return
        n = len(group["acknowledged"])
        app.notify(f"alert group #{alert_id}: {n} alert{'s' if n != 1 else ''} acknowledged")

    def silence(self, target: str, duration: str) -> None:
        if self.guard_action("silence alerts"):
            self._silence(target, duration)

    @work(group="actions")
    async def _silence(self, target: str, duration: str) -> None:
        app: Any = self
        from core.jobs.active import EngineError

        try:
            rec = await app.engine.silence(target, duration, actor=app.actor)
        except (ValueError, EngineError) as e:
            app.notify(str(e), severity="error")
            return
        app.notify(f"silenced {rec['target']} for {format_duration(parse_duration(duration))}")

    def unsilence(self, target: str) -> None:
        if self.guard_action("end silences"):
            self._unsilence(target)

    @work(group="actions")
    async def _unsilence(self, target: str) -> None:
        app: Any = self
        from core.jobs.active import EngineError

        try:
            rec = await app.engine.unsilence(target, actor=app.actor)
        except (ValueError, EngineError) as e:
            app.notify(str(e), severity="error")
            return
        app.notify(f"silence on {rec['target']} ended")
