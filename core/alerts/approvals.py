"""Workflows in the alert book: an approval that waits is an alert (so every notifier
announces it, once, through the outbox, and the on-call sees it among the alerts), and
resolves when a person decides or the gate times out; a remediation run started from an
alert is linked on it."""

from __future__ import annotations

from typing import Any

from core.alerts.book import AlertBook, AlertError, AlertNotFound, Change


def approval_alert(book: AlertBook, event: Any, now: float) -> list[Change]:
    key = f"approval:{event.run_id}:{event.step}"
    if event.state == "waiting":
        who = ", ".join(event.by)
        asked = f" (requested by {event.requested_by})" if event.requested_by else ""
        detail = (f"workflow run #{event.run_id} step {event.step} awaits approval by {who}"
                  f"{asked}: fleetdeck approve {event.run_id}")
        return book._open_alert(key, "approval", event.workflow, event.host, "warn",
                                detail, now, "waiting", "approval")
    done = {"approved": f"approved by {event.decided_by}",
            "rejected": f"rejected by {event.decided_by}",
            "timed_out": "no approval in time"}.get(event.state, event.state)
    return book._resolve(key, now, done)


def link_remediation(book: AlertBook, alert_id: int, run_id: int, who: str,
                     now: float) -> Change:
    alert = book._get(alert_id)
    if alert is None:
        raise AlertNotFound(f"no alert #{alert_id}")
    runs = list(alert.get("remediation_runs") or [])
    if run_id in runs:
        raise AlertError(f"run #{run_id} is already linked on alert #{alert_id}")
    alert["remediation_runs"] = [*runs, run_id]
    book._note(alert, now, "remediation", f"workflow run #{run_id} started by {who}")
    book._save(alert)
    return Change("updated", alert)
