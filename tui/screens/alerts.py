"""Alerts: what is firing, what someone took, what is kept quiet, and for how long.

`a` acknowledges (no more reminders), `s` silences (asks for a target and a duration),
Enter shows the alert: its transitions, the notifications sent, and the earlier alerts of
the same check on the same target.

An alert group (one check, one cause, several hosts: core/alerts/groups.py) is one row,
"check system: cpu ≥ 98% on 11 hosts", with its hosts in DETAIL; Enter or `+` shows its
members under it (and hides them again), `a` on it acknowledges every member.
"""

from __future__ import annotations

import re
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
from tui.screens.cells import age_cell, severity_cell
from tui.widgets.table import Column

RUN_REF = re.compile(r"\brun #(\d+)")  # how a job's alert names its run
AGE_REFRESH = 30.0  # seconds
YOUNG = 120.0  # an alert younger than this shows its age in seconds
STATUS_MARKS = {"firing": "●", "acknowledged": "◐", "silenced": "○", "maintenance": "⚒",
                "resolved": "✓"}


def status_cell(status: str) -> Text:
    return Text(f"{STATUS_MARKS.get(status, ' ')} {status}", style=style(status))


def _text(a: dict[str, Any]) -> str:
    """What the `/` filter matches in an alert's row."""
    return " ".join(str(a[k]) for k in ("id", "status", "what", "severity", "detail", "quiet"))


def group_cells(lead: int, members: list[dict[str, Any]], now: float,
                expanded: bool) -> tuple[Text, ...]:
    """One row for a group: what its members share, how many, their hosts."""
    first = members[0]
    statuses = [m["status"] for m in members]
    status = next((s for s in STATUS_MARKS if s in statuses), statuses[0])  # worst first
    hosts = [m["target"] for m in members]
    shown = ", ".join(hosts[:6]) + (f", … (+{len(hosts) - 6})" if len(hosts) > 6 else "")
    acked = statuses.count("acknowledged")
    note = Text(shown)
    if acked and acked < len(members):
        note = Text.assemble((f"{acked} acknowledged · ", "dim"), note)
    worst = max(members, key=lambda m: (m.get("condition") == "down", m["severity"] == "crit"))
    return (Text(f"{'▾' if expanded else '▸'} #{lead}", style="bold"), status_cell(status),
            Text(f"check {first['source']}: {first.get('cause') or first['detail']} on "
                 f"{len(members)} hosts", style="bold"),
            severity_cell(worst), age_cell(min(m["opened_at"] for m in members), now),
            note)


def alert_cells(a: dict[str, Any], now: float, member: bool = False) -> tuple[Text, ...]:
    note = Text(a["detail"])
    if a["status"] == "acknowledged":
        note = Text.assemble((f"ack by {a['acked_by']} · ", style("muted")), note)
    elif a["quiet"]:
        note.append(f" · {a['quiet']}", style=style("muted"))
    return (Text(f"  └ #{a['id']}" if member else f"#{a['id']}"), status_cell(a["status"]),
            Text(a["what"], style="bold"),
            severity_cell(a), age_cell(a["opened_at"], now), note)


class AlertsScreen(TableScreen):
    TITLE_TEXT = "7 Alerts"
    COLUMNS = (Column("id", "ALERT", 1, "I"), Column("status", "STATUS", 1, "S"),
               Column("what", "WHAT", 1, "W", shrink=True), Column("sev", "SEV", 2, "V"),
               Column("age", "OPENED", 3, "A"), Column("note", "DETAIL", 4, shrink=True))
    KEY_PREFIX = "alerts"
    _drawn_at = 0.0  # when the table was last drawn
    _youngest: float | None = None  # when the newest open alert opened
    BINDINGS = [
        Binding("enter", "open", "Details", id="alerts.open"),
        Binding("plus", "expand", "Members", id="alerts.expand"),
        Binding("a", "ack", "Ack", id="alerts.ack"),
        Binding("s", "silence", "Silence", id="alerts.silence"),
        Binding("f", "remediate", "Fix", id="alerts.remediate"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.expanded: set[int] = set()  # the groups whose members are shown
        self._groups: dict[str, list[dict[str, Any]]] = {}  # row key -> its members
        self._alerts: dict[str, dict[str, Any]] = {}

    def compose_body(self) -> ComposeResult:
        yield from super().compose_body()
        yield Static("", id="alerts-empty", classes="muted")

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(1.0, self._tick)  # ages move on with no event

    def _tick(self) -> None:
        """Ages by the second while an alert is young (they are shown in seconds: "0.8s
        ago" must not stand still for 30 s mid-incident), else every AGE_REFRESH."""
        if not self.is_current:
            return
        now = self.now()
        young = self._youngest is not None and now - self._youngest < YOUNG
        if young or now - self._drawn_at >= AGE_REFRESH:
            self.refresh_data()

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready:
            return
        now = self.now()
        alerts = self.fleet.engine.list_alerts()
        self._drawn_at = now
        self._youngest = max((a["opened_at"] for a in alerts), default=None)
        self._alerts = {str(a["id"]): a for a in alerts}
        self.set_rows(self._rows_of(alerts, now))
        firing = sum(1 for a in alerts if a["status"] == "firing")
        self.query_one("#alerts-empty", Static).update(
            "no open alerts — all quiet" if not alerts else
            f"{firing} firing · {len(alerts) - firing} acknowledged or quiet")

    WATCHES = (AlertChanged,)

    def engine_events(self, events: list[Any]) -> None:
        if any(isinstance(e, AlertChanged) for e in events):
            self.refresh_data()

    def _rows_of(self, alerts: list[dict[str, Any]], now: float
                 ) -> list[tuple[str, tuple[Any, ...], str]]:
        """A row per alert, but one per group of two or more listed members (where its
        first member is), its members under it when expanded."""
        by_group: dict[int, list[dict[str, Any]]] = {}
        for a in alerts:
            if a.get("group") is not None:
                by_group.setdefault(a["group"], []).append(a)
        self._groups = {}
        rows, done = [], set()
        for a in alerts:
            members = by_group.get(a.get("group"), [])  # type: ignore[arg-type]
            if len(members) < 2:
                rows.append((str(a["id"]), alert_cells(a, now), _text(a)))
                continue
            lead = a["group"]
            if lead in done:
                continue
            done.add(lead)
            members = sorted(members, key=lambda m: m["id"])  # in the order they joined
            key = f"g{lead}"
            self._groups[key] = members
            open_ = lead in self.expanded
            rows.append((key, group_cells(lead, members, now, open_),
                         " ".join(_text(m) for m in members)))
            if open_:
                rows += [(str(m["id"]), alert_cells(m, now, member=True), _text(m))
                         for m in members]
        return rows

    def _selected(self) -> dict[str, Any] | None:
        key = self.table.selected_key()
        return self._alerts.get(key) if key else None

    def action_open(self) -> None:
        key = self.table.selected_key()
        if key in self._groups:
            self.action_expand()
            return
        alert = self._selected()
        if alert is not None:
            self.fleet.open_alert(alert["id"])

    def action_expand(self) -> None:
        """Show a group's members under it, or hide them."""
        key = self.table.selected_key()
        if not key or not (key in self._groups or key in self._alerts):
            return
        lead = int(key[1:]) if key in self._groups else self._alerts[key].get("group")
        if lead is None or f"g{lead}" not in self._groups:
            return
        self.expanded ^= {lead}
        self.refresh_data()
        self.table.move_cursor(row=[k for k, _c, _t in self._rows].index(f"g{lead}"))

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()

    def action_ack(self) -> None:
        """The marked alerts and groups (or the one under the cursor): the firing ones."""
        keys = self.chosen_keys()
        acked = 0
        for key in keys:
            if key in self._groups:
                self.fleet.ack_alert_group(int(key[1:]))
                acked += 1
            elif key in self._alerts and (len(keys) == 1
                                          or self._alerts[key]["status"] == "firing"):
                self.fleet.ack_alert(self._alerts[key]["id"])
                acked += 1
        if len(keys) > 1:
            self.clear_marks()
            self.notify(f"acknowledging {acked} of {len(keys)} marked (the firing ones)")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "remediate":  # shown where the config names remediations at all
            config = self.fleet.engine.config
            return any(getattr(s, "remediation", None) for table in (
                config.checks, config.rules, config.jobs) for s in table.values())
        return super().check_action(action, parameters)

    def action_remediate(self) -> None:
        """The alert under the cursor: its check's, rule's or job's remediation, asked
        first (one key from the list: on call, the fix comes with the alert)."""
        alert = self._selected()
        if alert is None:
            key = self.table.selected_key()
            alert = self._alerts.get(key[1:]) if key and key in self._groups else None
        if alert is not None:
            self.fleet.propose_remediation(alert)

    def action_silence(self) -> None:
        alerts = []
        for key in self.chosen_keys():
            if key in self._groups:  # a group row: its members (it did nothing)
                alerts += self._groups[key]
            elif key in self._alerts:
                alerts.append(self._alerts[key])
        if not alerts or not self.fleet.guard("silence alerts"):
            return
        targets = list(dict.fromkeys(f"{a['source']}@{a['target']}" for a in alerts))

        def done(answer: tuple[str, str] | None) -> None:
            if not answer:
                return
            target, duration = answer
            for t in (targets if target == ", ".join(targets) else [target]):
                self.fleet.silence(t, duration)
            self.clear_marks()

        self.app.push_screen(SilenceScreen(", ".join(targets)), done)


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
            yield Input("2h", id="duration", select_on_focus=True)  # a real default
            yield Label("", id="error")
            yield Label("Enter: silence   Esc: cancel", id="keys")

    def on_mount(self) -> None:
        self.query_one("#duration", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        target = self.query_one("#target", Input).value.strip()
        text = self.query_one("#duration", Input).value.strip()
        error = self.query_one("#error", Label)
        # the marked alerts' targets as offered ("a@x, b@y") go as they are, one each
        if not target or target != self.target and any(ch.isspace() for ch in target):
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
                Binding("q", "close", "Close", show=False, id="alert.quit"),
                Binding("a", "ack", "Ack", id="alert.ack"),
                Binding("s", "silence", "Silence", id="alert.silence"),
                Binding("o", "open_run", "Open run", id="alert.open_run"),
                Binding("f", "remediate", "Fix", id="alert.remediate")]

    def __init__(self, alert: dict[str, Any], now: float) -> None:
        super().__init__()
        self.alert = alert
        self.now = now

    # the verbs of the Alerts screen, on the alert shown; the body follows its changes
    def action_ack(self) -> None:
        if self.alert["status"] != "firing":
            self.notify(f"alert #{self.alert['id']} is {self.alert['status']}, not firing")
            return
        self.app.ack_alert(self.alert["id"])  # type: ignore[attr-defined]

    def action_silence(self) -> None:
        target = f"{self.alert['source']}@{self.alert['target']}"
        if not self.app.guard("silence alerts"):  # type: ignore[attr-defined]
            return

        def done(answer: tuple[str, str] | None) -> None:
            if answer:
                self.app.silence(*answer)  # type: ignore[attr-defined]

        self.app.push_screen(SilenceScreen(target), done)

    def run_id(self) -> int | None:
        """The run a job's alert is about: the newest "run #N" it mentions."""
        texts = [self.alert.get("detail") or ""] + [
            h.get("detail") or "" for h in reversed(self.alert.get("history") or [])]
        for text in texts:
            found = RUN_REF.search(text)
            if found:
                return int(found.group(1))
        return None

    def action_open_run(self) -> None:
        run_id = self.run_id()
        if run_id is None:
            self.notify("this alert is not about a run", severity="warning")
            return
        self.app.open_run(run_id)  # type: ignore[attr-defined]

    def _remediation(self) -> str | None:
        return self.app.engine.config.remediation(  # type: ignore[attr-defined]
            self.alert["kind"], self.alert["source"])

    def action_remediate(self) -> None:
        self.app.propose_remediation(self.alert)  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "remediate":
            return self._remediation() is not None
        if action == "open_run":
            return self.run_id() is not None
        if action == "ack":
            return self.alert["status"] == "firing"
        return True

    def engine_events(self, events: list[Any]) -> None:
        """The alert changed (acknowledged, silenced, resolved): shown as it is now."""
        if any(isinstance(e, AlertChanged) and e.alert.get("id") == self.alert["id"]
               for e in events):
            try:
                self.alert = self.app.engine.get_alert(self.alert["id"])  # type: ignore[attr-defined]
            except Exception:
                return
            self.now = self.app.clock()  # type: ignore[attr-defined]
            self.query_one("#alert-body", Static).update(self._body())
            self.refresh_bindings()

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._body(), id="alert-body")

    def _body(self) -> Group:
        a, now = self.alert, self.now
        head = Text(f"#{a['id']} {a['what']}", style="bold")
        head.append("   ")
        head.append_text(status_cell(a["status"]))
        head.append("   ")
        head.append_text(severity_cell(a))
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
        keys = "a ack · s silence · " if a["status"] == "firing" else "s silence · "
        fix = self._remediation()
        if fix is not None:
            parts[2:2] = [Text(f"remediation: {fix} (f runs it on {a['target']})"
                               + (" · runs: " + ", ".join(f"#{i}" for i in
                                                          a["remediation_runs"])
                                  if a.get("remediation_runs") else ""),
                               style=style("muted"))]
            keys += "f fix · "
        if self.run_id() is not None:
            keys += "o open the run · "
        parts += [Text(""), Text(keys + "Esc back", style=style("muted"))]
        return Group(*parts)

    def action_close(self) -> None:
        self.dismiss(None)
