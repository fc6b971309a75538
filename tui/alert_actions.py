"""The console's alert verbs (mixed into FleetdeckApp) and its bell.

Kept apart from the Alerts screen so the app can offer them without loading that screen
at start-up. Each verb is a worker: the screen never waits on the engine.
"""

from __future__ import annotations

from typing import Any

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

    def ack_alert(self, alert_id: int) -> None:
        app: Any = self
        app.act("acknowledge alerts", lambda: app.engine.ack_alert(alert_id, actor=app.actor),
                lambda alert: f"alert #{alert_id} acknowledged by {alert['acked_by']}")

    def ack_alert_group(self, alert_id: int) -> None:
        """Acknowledge a group: every firing member, in one action."""
        app: Any = self

        def said(group: dict[str, Any]) -> str:
            n = len(group["acknowledged"])
            return f"alert group #{alert_id}: {n} alert{'s' if n != 1 else ''} acknowledged"

        app.act("acknowledge alerts",
                lambda: app.engine.ack_alert_group(alert_id, actor=app.actor), said)

    def silence(self, target: str, duration: str) -> None:
        app: Any = self
        app.act("silence alerts", lambda: app.engine.silence(target, duration, actor=app.actor),
                lambda rec: f"silenced {rec['target']} for "
                            f"{format_duration(parse_duration(duration))}")

    def unsilence(self, target: str) -> None:
        app: Any = self
        app.act("end silences", lambda: app.engine.unsilence(target, actor=app.actor),
                lambda rec: f"silence on {rec['target']} ended")
