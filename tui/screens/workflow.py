"""One workflow run: its steps as a graph drawn top-down (each after what it needs,
indented by depth), each step's state, runs, time and reason, the selected step's output
in the preview; approve or reject a waiting step, retry from what did not succeed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from core.events import ApprovalChanged
from tui.fmt import fmt_duration, fmt_time
from tui.palette import style
from tui.screens.base import RUN_EVENTS, TableScreen
from tui.screens.cells import state_cell
from tui.widgets.preview import read_tail
from tui.widgets.table import Column

ACTIVE = ("queued", "running", "awaiting_approval")


def depths(record: dict[str, Any]) -> dict[str, int]:
    """Each step's depth: the longest chain of needs above it (roots are 0)."""
    out: dict[str, int] = {}
    for name in record["order"]:  # in order: what it needs came first
        needs = record["steps"][name].get("needs") or []
        out[name] = 1 + max((out.get(n, 0) for n in needs), default=-1)
    return out


class WorkflowScreen(TableScreen):
    COLUMNS = (Column("step", "STEP", 1), Column("state", "STATE", 1),
               Column("needs", "NEEDS", 4), Column("runs", "RUNS", 3),
               Column("started", "STARTED", 5), Column("took", "TOOK", 2),
               Column("reason", "REASON", 3, shrink=True))
    PREVIEW = True
    BINDINGS = [
        Binding("escape", "back", "Back", id="workflow.back"),
        Binding("q", "back", "Back", show=False, id="workflow.quit"),
        Binding("enter", "open", "Step output", id="workflow.open"),
        Binding("a", "approve", "Approve", id="workflow.approve"),
        Binding("x", "reject", "Reject", id="workflow.reject"),
        Binding("R", "retry", "Retry", id="workflow.retry"),
        Binding("c", "cancel", "Cancel", id="workflow.cancel"),
        Binding("o", "log", "Workflow log", id="workflow.log"),
    ]

    def __init__(self, run: dict[str, Any]) -> None:
        super().__init__()
        self.run = run
        self.TITLE_TEXT = f"Workflow run #{run['id']}"

    def compose_body(self) -> ComposeResult:
        yield Static(id="workflow-header")
        yield from super().compose_body()

    @property
    def record(self) -> dict[str, Any]:
        return self.run["workflow"]

    def refresh_data(self) -> None:
        super().refresh_data()
        try:
            self.run = self.fleet.engine.get_run(self.run["id"])
        except Exception:
            return
        self._draw()

    def _draw(self) -> None:
        if not self.query("#table") or not self.query("#workflow-header"):
            return  # not composed yet (its mount draws it), or being taken down
        r, now = self.run, self.now()
        head = Text()
        head.append(f"#{r['id']} {r['job']} on {r['host']}", style="bold")
        head.append("   ")
        head.append_text(state_cell(r["state"]))
        head.append(f"   started {fmt_time(r.get('started_at'), now)}")
        if self.record.get("resumed_from"):
            head.append(f"   retry of #{self.record['resumed_from']}", style=style("muted"))
        if self.record.get("alert"):
            head.append(f"   for alert #{self.record['alert']}", style=style("muted"))
        if r.get("reason"):
            head.append(f"\n{r['reason']}", style=style("muted"))
        self.query_one("#workflow-header", Static).update(head)
        depth = depths(self.record)
        rows = []
        for name in self.record["order"]:
            st = self.record["steps"][name]
            took = None
            if st.get("started_at"):
                took = (st.get("finished_at") or now) - st["started_at"]
            gate = "⊘ " if st.get("gate") else ""
            cells = (Text("  " * depth[name] + gate + name),
                     state_cell(st["state"]),
                     Text(", ".join(st.get("needs") or []) or "-"),
                     Text(", ".join(f"#{i}" for i in st.get("runs") or []) or "-"),
                     Text(fmt_time(st["started_at"], now) if st.get("started_at") else "-"),
                     Text(fmt_duration(took) if took is not None else "-"),
                     Text(self._why(st)))
            rows.append((name, cells, f"{name} {st['state']} {st.get('reason') or ''}"))
        self.set_rows(rows)

    @staticmethod
    def _why(st: dict[str, Any]) -> str:
        a = st.get("approval") or {}
        if st["state"] == "awaiting_approval":
            return "awaiting approval by " + ", ".join(a.get("by") or [])
        if a.get("decided_by") and st["state"] not in ("rejected",):
            return st.get("reason") or f"{a['state']} by {a['decided_by']}"
        return st.get("reason") or ""

    def engine_events(self, events: list[Any]) -> None:
        me = self.run["id"]
        for e in events:
            if isinstance(e, ApprovalChanged):
                hit = e.run_id == me
            elif isinstance(e, RUN_EVENTS):  # a step's run names its workflow run
                run = getattr(e, "run", None)
                hit = run is None or me in (run.get("id"), run.get("parent"))
            else:
                hit = False
            if hit:
                self.refresh_data()
                return

    def preview_of(self, key: str) -> Callable[[], Text]:
        st = self.record["steps"].get(key) or {}
        ids = st.get("runs") or []
        engine = self.fleet.engine
        paths = [(i, engine.run_log_path(i)) for i in ids[-4:]]

        def read() -> Text:
            text = Text(f"step {key}: {st.get('state', '?')}\n", style="bold")
            if st.get("reason"):
                text.append(st["reason"] + "\n")
            if st.get("outputs"):
                text.append("outputs: " + ", ".join(f"{k}={v}" for k, v in
                                                    st["outputs"].items()) + "\n")
            for run_id, path in paths:
                tail = read_tail(path)
                text.append(f"\n#{run_id}\n", style=style("muted"))
                text.append(tail or "(no output)", style="" if tail else style("muted"))
            if not paths:
                text.append("\n(not run)", style=style("muted"))
            return text

        return read

    def _step(self) -> str | None:
        return self.table.selected_key()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_open(self) -> None:
        step = self._step()
        runs = (self.record["steps"].get(step or "") or {}).get("runs") or []
        if runs:
            self.fleet.open_run(runs[-1])
        else:
            self.notify(f"step {step} has not run", severity="warning")

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()

    def action_log(self) -> None:
        from tui.screens.run_log import RunLogScreen

        self.app.push_screen(RunLogScreen(self.run))

    def _waiting_step(self) -> str | None:
        step = self._step()
        steps = self.record["steps"]
        if step and steps.get(step, {}).get("state") == "awaiting_approval":
            return step
        waiting = [n for n, st in steps.items() if st["state"] == "awaiting_approval"]
        return waiting[0] if len(waiting) == 1 else None

    def _decide(self, verb: str) -> None:
        step = self._waiting_step()
        if step is None:
            self.notify("no step of this run awaits approval here", severity="warning")
            return

        def done(reason: str | None) -> None:
            if reason is not None:
                self.fleet.decide_approval(verb, self.run["id"], step, reason)

        self.app.push_screen(ReasonScreen(
            f"{'Approve' if verb == 'approve' else 'Reject'} step {step} of workflow run "
            f"#{self.run['id']} ({self.run['job']} on {self.run['host']})?"), done)

    def action_approve(self) -> None:
        self._decide("approve")

    def action_reject(self) -> None:
        self._decide("reject")

    def action_retry(self) -> None:
        self.fleet.retry_workflow(self.run["id"])

    def action_cancel(self) -> None:
        self.fleet.cancel_run(self.run["id"])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("approve", "reject"):
            return self.run["state"] == "awaiting_approval"
        if action == "retry":
            return self.run["state"] not in (*ACTIVE, "succeeded")
        if action == "cancel":
            return self.run["state"] in ACTIVE
        return super().check_action(action, parameters)


class ReasonScreen(ModalScreen[str | None]):
    """A decision and its reason, typed (for the audit trail); Esc decides nothing."""

    DEFAULT_CSS = """
    ReasonScreen { align: center middle; }
    ReasonScreen > Vertical { width: 70; max-width: 95%; height: auto; border: thick $warning;
                              background: $surface; padding: 1 2; }
    ReasonScreen #question { text-style: bold; }
    ReasonScreen #keys { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="reason.cancel")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question), id="question")
            yield Label("reason (for the audit trail):")
            yield Input(placeholder="e.g. change 4711, checked with the owner", id="reason")
            yield Label("Enter: go ahead   Esc: cancel", id="keys")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
