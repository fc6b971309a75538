"""Alerts: what is firing, what someone took, what is kept quiet, and for how long.

`a` acknowledges (no more reminders), `s` silences (asks for a target and a duration),
Enter shows the alert: its transitions, the notifications sent, and the earlier alerts of
the same check on the same target.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from core.durations import DurationError, format_duration, parse_duration
from core.events import AlertChanged
from tui.fmt import fmt_age
from tui.palette import style
from tui.screens.base import TableScreen

AGE_REFRESH = 30.0  # seconds
STATUS_MARKS = {"firing": "●", "acknowledged": "◐", "silenced": "○", "maintenance": "⚒",
                "resolved": "✓"}


def status_cell(status: str) -> Text:
    return Text(f"{STATUS_MARKS.get(status, ' ')} {status}", style=style(status))


def alert_cells(a: dict[str, Any], now: float) -> tuple[Text, ...]:
    note = Text(a["detail"])
    if a["status"] == "acknowledged":
        note = Text.assemble((f"ack by {a['acked_by']} · ", style("muted")), note)
    elif a["quiet"]:
        note.append(f" · {a['quiet']}", style=style("muted"))
    return (Text(f"#{a['id']}"), status_cell(a["status"]), Text(a["what"], style="bold"),
            Text(a["severity"], style=style("crit" if a["severity"] == "crit" else "warn")),
            Text(fmt_age(a["opened_at"], now)), note)


class AlertsScreen(TableScreen):
    TITLE_TEXT = "7 Alerts"
    COLUMNS = (("id", "ALERT"), ("status", "STATUS"), ("what", "WHAT"), ("sev", "SEV"),
               ("age", "OPENED"), ("note", "DETAIL"))
    BINDINGS = [
        Binding("enter", "open", "Details", id="alerts.open"),
        Binding("a", "ack", "Ack", id="alerts.ack"),
        Binding("s", "silence", "Silence", id="alerts.silence"),
    ]

    def compose_body(self) -> ComposeResult:
        yield from super().compose_body()
        yield Static("", id="alerts-empty", classes="muted")

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(AGE_REFRESH, self._tick)  # ages move on with no event

    def _tick(self) -> None:
        if self.is_current:
            self.refresh_data()

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        now = self.now()
        alerts = self.fleet.engine.list_alerts()
        self._alerts = {str(a["id"]): a for a in alerts}
        self.set_rows([(str(a["id"]), alert_cells(a, now),
                        " ".join(str(a[k]) for k in ("id", "status", "what", "severity",
                                                     "detail", "quiet")))
                       for a in alerts])
        firing = sum(1 for a in alerts if a["status"] == "firing")
        self.query_one("#alerts-empty", Static).update(
            "no open alerts — all quiet" if not alerts else
            f"{firing} firing · {len(alerts) - firing} acknowledged or quiet")

    def engine_events(self, events: list[Any]) -> None:
        if any(isinstance(e, AlertChanged) for e in events):
            self.refresh_data()

    def _selected(self) -> dict[str, Any] | None:
        key = self.table.selected_key()
        return getattr(self, "_alerts", {}).get(key) if key else None

    def action_open(self) -> None:
        alert = self._selected()
        if alert is not None:
            self.fleet.open_alert(alert["id"])

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()

    def action_ack(self) -> None:
        alert = self._selected()
        if alert is not None:
            self.fleet.ack_alert(alert["id"])

    def action_silence(self) -> None:
        alert = self._selected()
        if alert is None or not self.fleet.guard_action("silence alerts"):
            return
        target = f"{alert['source']}@{alert['target']}"

        def done(answer: tuple[str, str] | None) -> None:
            if answer:
                self.fleet.silence(*answer)

        self.app.push_screen(SilenceScreen(target), done)


class SilenceScreen(ModalScreen[tuple[str, str] | None]):
    """Asks what to silence (prefilled with the alert's check@host) and for how long."""

    DEFAULT_CSS = """
    SilenceScreen { align: center middle; }
    SilenceScreen > Vertical { width: 64; max-width: 95%; height: auto; border: thick $warning;
                               background: $surface; padding: 1 2; }
    SilenceScreen Input { margin-bottom: 1; }
    SilenceScreen #error { color: $error; height: auto; }
    SilenceScreen #keys { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="silence.cancel")]

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Silence notifications"), id="question")
            yield Label("check, host, check@host or #ID:")
            yield Input(self.target, id="target")
            yield Label("for how long (e.g. 30m, 2h, 1d):")
            yield Input(placeholder="2h", id="duration")
            yield Label("", id="error")
            yield Label("Enter: silence   Esc: cancel", id="keys")

    def on_mount(self) -> None:
        self.query_one("#duration", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        target = self.query_one("#target", Input).value.strip()
        text = self.query_one("#duration", Input).value.strip()
        error = self.query_one("#error", Label)
        if not target or any(ch.isspace() for ch in target):
            error.update("name one check, host, check@host or #ID")
            self.query_one("#target", Input).focus()
            return
        try:
            seconds = parse_duration(text)
        except DurationError as e:
            error.update(str(e))
            self.query_one("#duration", Input).focus()
            return
        if seconds <= 0:
            error.update("a silence needs a duration above 0, e.g. '2h'")
            return
        self.dismiss((target, text))

    def action_cancel(self) -> None:
        self.dismiss(None)


class AlertDetailScreen(ModalScreen[None]):
    """One alert: its transitions, notifications and the earlier alerts of its check."""

    DEFAULT_CSS = """
    AlertDetailScreen { align: center middle; }
    AlertDetailScreen > VerticalScroll { width: 95%; max-width: 120; height: 90%;
        border: round $primary; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape", "close", "Close", id="alert.close"),
                Binding("q", "close", "Close", show=False, id="alert.quit")]

    def __init__(self, alert: dict[str, Any], now: float) -> None:
        super().__init__()
        self.alert = alert
        self.now = now

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._body(), id="alert-body")

    def _body(self) -> Group:
        a, now = self.alert, self.now
        head = Text(f"#{a['id']} {a['what']}", style="bold")
        head.append("   ")
        head.append_text(status_cell(a["status"]))
        head.append(f"   {a['severity']}")
        facts = Text(f"opened {fmt_age(a['opened_at'], now)}"
                     + (f" · resolved {fmt_age(a['resolved_at'], now)}"
                        if a["resolved_at"] else f" · open for {format_duration(a['age'])}")
                     + (f" · acknowledged by {a['acked_by']}" if a["acked_by"] else "")
                     + (f" · {a['quiet']}" if a["quiet"] else ""), style=style("muted"))
        detail = Text(a["detail"] or "")
        history = Table(title="History", title_justify="left", box=None,
                        header_style="bold", expand=True)
        for col in ("WHEN", "WHAT", "DETAIL"):
            history.add_column(col)
        for h in reversed(a["history"]):
            history.add_row(fmt_age(h["at"], now), h["what"], h["detail"])
        parts: list[Any] = [head, facts, detail, Text(""), history]
        if a.get("notifications"):
            sent = Table(title="Notifications", title_justify="left", box=None,
                         header_style="bold", expand=True)
            for col in ("NOTIFIER", "EVENT", "STATE", "TRIES", "LAST ERROR"):
                sent.add_column(col)
            for n in a["notifications"]:
                sent.add_row(n["notifier"], n["event"], n["state"], str(n["attempts"]),
                             n["last_error"])
            parts += [Text(""), sent]
        if a.get("related"):
            earlier = Table(title="Earlier alerts of this check here", title_justify="left",
                            box=None, header_style="bold", expand=True)
            for col in ("ALERT", "OPENED", "LASTED", "DETAIL"):
                earlier.add_column(col)
            for r in a["related"]:
                earlier.add_row(f"#{r['id']}", fmt_age(r["opened_at"], now),
                                format_duration(r["age"]), r["detail"])
            parts += [Text(""), earlier]
        parts += [Text(""), Text("Esc: back", style=style("muted"))]
        return Group(*parts)

    def action_close(self) -> None:
        self.dismiss(None)
