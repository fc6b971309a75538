"""Overview, the triage screen: what is broken and since when, what runs, what is next."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from core.events import AlertChanged, CheckChanged, JobChanged, RunFinished
from core.jobs.runs import FAILED_STATES, FAILING_WINDOW, missed_row
from tui.palette import style
from tui.screens.base import RUN_EVENTS, FleetScreen
from tui.screens.cells import fmt_age, fmt_time, last_run_cell, severity_cell, state_cell
from tui.widgets.common import NavTable
from tui.widgets.table import Column, FleetTable

# the four lists; free text (a detail, a reason, a schedule) is cut with "…" at 80 columns
FIRING = (Column("id", "ALERT"), Column("what", "WHAT"), Column("sev", "SEV"),
          Column("since", "SINCE"), Column("detail", "DETAIL", shrink=True))
FAILING = (Column("id", "RUN"), Column("job", "JOB"), Column("host", "HOST"),
           Column("state", "STATE"), Column("when", "WHEN"),
           Column("reason", "REASON", shrink=True))
BAD_JOBS = (Column("job", "JOB"), Column("state", "LAST"), Column("since", "SINCE"),
            Column("rate", "OK%"), Column("schedule", "SCHEDULE", shrink=True))
NEXT = (Column("job", "JOB"), Column("at", "AT"), Column("in", "IN"),
        Column("schedule", "SCHEDULE", shrink=True))

SHOW_FAILING = 20
SHOW_NEXT = 8
MISSED_WINDOW = 86400  # the hint counts the occurrences of the last day
MISSED_EVERY = 60.0  # seconds: the hint is looked at again at most this often (and on show)


class OverviewScreen(FleetScreen):
    TITLE_TEXT = "1 Overview"
    BINDINGS = [
        Binding("enter", "open", "Open", id="overview.open"),
        Binding("tab", "app.focus_next", "Next list", show=False, id="overview.next"),
        Binding("m", "missed", "Missed runs", id="overview.missed"),
    ]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="overview"):
            # firing alerts come first, and only when there are any
            yield Static("Firing alerts", classes="section", id="alerts-title")
            yield FleetTable(FIRING, id="firing")
            yield Static("Failing in the last 6 hours", classes="section", id="failing-title")
            yield FleetTable(FAILING, id="failing")
            yield Static("Jobs whose last run failed", classes="section", id="jobs-title")
            yield FleetTable(BAD_JOBS, id="bad-jobs")
            yield Static("Next due", classes="section", id="next-title")
            yield FleetTable(NEXT, id="next")
            yield Static("Hosts: …", classes="section muted", id="health-title")
            hint = Static("", classes="section", id="missed-hint")
            hint.display = False  # only when something was missed
            yield hint

    def on_mount(self) -> None:
        self._shown: dict[str, list[Any]] = {}  # the rows each table shows
        self._show_alerts([])
        super().on_mount()
        self.query_one("#failing", NavTable).focus()

    def _show_alerts(self, firing: list[dict[str, Any]]) -> None:
        shown = bool(firing)
        table = self.query_one("#firing", NavTable)
        appeared = shown and not table.display
        self.query_one("#alerts-title", Static).display = shown
        table.display = shown
        if appeared and self.focused is self.query_one("#failing", NavTable):
            table.focus()  # what is firing is what to look at first
        if not shown:
            return
        now = self.now()
        self.query_one("#alerts-title", Static).update(f"Firing alerts ({len(firing)})")
        self._fill("#firing", [
            (f"alert:{a['id']}", (Text(f"#{a['id']}", style=style("firing")),
                                  Text(a["what"], style="bold"), severity_cell(a),
                                  Text(fmt_age(a["opened_at"], now)), Text(a["detail"])))
            for a in firing], "")

    def refresh_data(self) -> None:
        super().refresh_data()
        if not self.fleet.engine_ready or not self.query("#firing"):
            return  # the engine is starting, or the screen is not composed (or torn down)
        engine = self.fleet.engine
        now = self.now()
        if engine.has_service("alerts"):
            self._show_alerts([a for a in engine.list_alerts() if a["status"] == "firing"])
        failing = engine.list_runs(states=list(FAILED_STATES), since=now - FAILING_WINDOW,
                                   limit=SHOW_FAILING)
        # the latest failure first: by when it ended, not by run id (a long run that
        # failed a minute ago started long before later ones)
        failing.sort(key=lambda r: r.get("finished_at") or 0, reverse=True)
        jobs = engine.list_jobs()
        bad_jobs = [j for j in jobs if (j["last_run"] or {}).get("state") in FAILED_STATES]
        due = sorted((j for j in jobs if j["next_fire"]), key=lambda j: j["next_fire"])
        self._fill("#failing", [
            (str(r["id"]), (Text(f"#{r['id']}"), Text(r["job"], style="bold"), Text(r["host"]),
                            state_cell(r["state"]),
                            Text(fmt_age(r.get("finished_at"), now)),
                            Text(r.get("reason") or "")))
            for r in failing
        ], "nothing failed — all quiet")
        self._fill("#bad-jobs", [
            (f"job:{j['name']}", (Text(j["name"], style="bold"),
                                  last_run_cell(j["last_run"]),
                                  Text(fmt_age(j["last_run"].get("finished_at"), now)),
                                  Text("-" if j["success_rate"] is None
                                       else f"{j['success_rate'] * 100:.0f}%"),
                                  Text(j["schedule_text"])))
            for j in bad_jobs
        ], "every job's last run is fine")
        self._fill("#next", [
            (f"job:{j['name']}", (Text(j["name"]), Text(fmt_time(j["next_fire"], now)),
                                  Text(fmt_age(j["next_fire"], now)), Text(j["schedule_text"])))
            for j in due[:SHOW_NEXT]
        ], "nothing scheduled")
        self.query_one("#failing-title", Static).update(
            f"Failing in the last 6 hours ({len(failing)}"
            f"{'+' if len(failing) == SHOW_FAILING else ''})")
        self.query_one("#jobs-title", Static).update(
            f"Jobs whose last run failed ({len(bad_jobs)})")
        self._show_health()
        if time.monotonic() >= self._missed_due:  # a day of history: not on every event
            self._missed_due = time.monotonic() + MISSED_EVERY
            self._show_missed(now)

    WATCHES = (*RUN_EVENTS, JobChanged, AlertChanged, CheckChanged)

    def on_screen_resume(self) -> None:
        self._missed_due = 0.0  # shown again: looked at again
        super().on_screen_resume()

    _missed_due = 0.0

    def _show_missed(self, now: float) -> None:
        """One line when occurrences of the last day were missed (m reviews them)."""
        # counted in the index (every missed occurrence, run late or skipped, has the
        # trigger misfire): no run is read, however long the day's history
        hint = self.query_one("#missed-hint", Static)
        engine, since = self.fleet.engine, now - MISSED_WINDOW
        total = engine.count_runs(triggers=["misfire"], since=since)
        hint.display = bool(total)
        if total:
            skipped = engine.count_runs(triggers=["misfire"], states=["skipped"], since=since)
            hint.update(f"Missed while down (24h): {total} occurrence"
                        f"{'s' if total != 1 else ''}, {total - skipped} ran late, "
                        f"{skipped} skipped — m to review")

    def action_missed(self) -> None:
        self.fleet.execute("missed")

    def _show_health(self) -> None:
        """One line on the fleet: the unhealthy hosts by name, the rest counted."""
        engine = self.fleet.engine
        line = self.query_one("#health-title", Static)
        if not engine.has_service("health"):
            line.update("Hosts: no health checks configured (5 or :hosts to see why)")
            return
        rows = engine.health_hosts()
        bad = [r["host"] for r in rows if r["state"] in ("down", "gave_up")]
        over = [r["host"] for r in rows if r["state"] not in ("down", "gave_up")
                and r.get("level", "ok") != "ok"]  # answering, over a threshold
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        text = Text("Hosts: ")
        for hosts, words, role in ((bad, "unhealthy", "alarm"), (over, "over thresholds", "warn")):
            if hosts:
                text.append(f"{len(hosts)} {words}: {', '.join(hosts[:8])}"
                            f"{' …' if len(hosts) > 8 else ''}", style=style(role))
                text.append(" · ")
        text.append(" · ".join(f"{n} {s}" for s, n in counts.items()
                               if s not in ("down", "gave_up")) or "none")
        line.update(text)

    def engine_events(self, events: list[Any]) -> None:
        if any(isinstance(e, RunFinished) and missed_row(e.run) for e in events):
            self._missed_due = 0.0  # a missed occurrence was just recorded: count again
        if any(isinstance(e, AlertChanged | CheckChanged) for e in events):
            self.refresh_data()
        else:
            super().engine_events(events)

    def _fill(self, selector: str, rows: list[tuple[str, tuple[Any, ...]]], empty: str) -> None:
        shown = self._shown.setdefault(selector, [])
        if rows == shown and rows:
            return  # the same rows again (most events change none of them)
        shown[:] = rows
        table = self.query_one(selector, FleetTable)
        if not rows:
            cells = [Text("")] * len(table.spec)
            cells[min(1, len(cells) - 1)] = Text(empty, style=style("muted"))
            rows = [("empty", tuple(cells))]
        table.show(rows)  # in place, free text cut with "…" to the width there is
        table.styles.height = len(rows) + 1

    def action_open(self) -> None:
        focused = self.focused
        if not isinstance(focused, NavTable):
            return
        key = focused.selected_key()
        if not key or key == "empty":
            return
        if key.startswith("alert:"):
            self.fleet.open_alert(int(key[6:]))
        elif key.startswith("job:"):
            self.fleet.cmd_runs(key[4:])
        else:
            self.fleet.open_run(int(key))

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()
