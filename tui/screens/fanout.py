"""Fan-out: one command on many hosts, watched host by host as it lands.

A target pattern (with a live count of the hosts it resolves to) and a command; Enter
asks for confirmation naming the host count (a stronger one for commands that look
destructive), then the grid fills as hosts connect, run and finish. Enter on a host
streams its output; `b` groups identical outputs (as clush -b does), each with a diff
against the largest group; `R` runs again on the hosts of the selected host's class,
over the open connections; `x` cancels one host; `t` trusts the unknown host keys shown;
`p` browses past fan-outs. Those other screens are in tui/screens/fanout_results.py.

The command field takes the CLI's options first (`--serial 1,25% --max-fail 1 --become
-K -- CMD`, tui/screens/fanout_rollout.py): a rolling fan-out shows each host's batch,
and a canary batch asks before the rest goes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Static

from core.events import Event, FanOutBatch, FanOutDone, FanOutHost, FanOutStarted
from core.jobs.active import EngineError
from core.remote.inventory import resolve_targets
from tui.palette import style
from tui.screens.base import RUN_EVENTS, FleetScreen
from tui.screens.dialogs import ConfirmScreen
from tui.screens.fanout_results import (
    STATE_ORDER,
    GatheredScreen,
    HostOutputScreen,
    PastFanOutsScreen,
    counts_text,
    fanout_of,
    host_state,
)
from tui.screens.fanout_rollout import (
    PasswordScreen,
    held_question,
    parse_typed,
    rollout_state,
)
from tui.widgets.common import NavTable

FANOUT_EVENTS = (FanOutStarted, FanOutHost, FanOutBatch, FanOutDone)
ACTIVE = ("pending", "connecting", "running")


class FanOutScreen(FleetScreen):
    TITLE_TEXT = "6 Fan-out"
    DEFAULT_CSS = """
    FanOutScreen #form { height: 3; }
    FanOutScreen #pattern { width: 1fr; }
    FanOutScreen #command { width: 2fr; }
    FanOutScreen #resolved { height: 1; padding: 0 1; color: $text-muted; }
    FanOutScreen #summary { height: 1; padding: 0 1; }
    """
    BINDINGS = [
        Binding("n", "new", "New", id="fanout.new"),
        Binding("enter", "open", "Output", id="fanout.open"),
        Binding("b", "gathered", "Gathered (-b)", id="fanout.gathered"),
        Binding("R", "rerun_not_ok", "Re-run not ok", id="fanout.rerun_not_ok"),
        Binding("r", "rerun", "Re-run class", id="fanout.rerun"),
        Binding("x", "cancel_host", "Cancel host", id="fanout.cancel_host"),
        Binding("t", "trust", "Trust keys", id="fanout.trust"),
        Binding("p", "past", "Past", id="fanout.past"),
        Binding("escape", "leave_form", "Back", show=False, id="fanout.leave_form"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.fanout_id: int | None = None
        self.current: dict[str, Any] | None = None
        self.resolved: list[str] = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="form"):
            yield Input(placeholder="target pattern: web[01-05], @db, role=cache, !web05",
                        id="pattern")
            yield Input(placeholder="command, e.g. uptime (Enter runs it); options first: "
                                    "--serial 1,25% --max-fail 1 --become -K -- CMD",
                        id="command")
        yield Static("n: new fan-out (type a target pattern, then a command)", id="resolved")
        yield Static("", id="summary")
        table = NavTable(id="hosts")
        self._columns(table, rolling=False)
        yield table

    _rolling = False  # the grid has a BATCH column

    def _columns(self, table: NavTable, *, rolling: bool) -> None:
        self._rolling = rolling
        table.clear(columns=True)
        for key, label in (("host", "HOST"), *((("batch", "BATCH"),) if rolling else ()),
                           ("state", "STATE"), ("exit", "EXIT"), ("time", "TIME"),
                           ("lines", "LINES"), ("reason", "REASON")):
            table.add_column(label, key=key)

    def on_mount(self) -> None:
        super().on_mount()
        # the grid has the focus, so number keys still switch screens; `n` starts typing
        self.query_one(NavTable).focus()
        self.set_interval(0.5, self._check_end)

    _drawn_live = False  # the summary on screen says "running…"

    def _check_end(self) -> None:
        """Drawn as running but no longer live: draw its end. FanOutDone can come a beat
        before the fan-out leaves the live set, and no event follows to redraw it."""
        if self._drawn_live and self.fanout_id is not None and self.fleet.engine_ready \
                and not self.fleet.engine.fanout_live(self.fanout_id):
            self.refresh_data()

    # ------------------------------------------------------------------ the form ----
    def prefill(self, pattern: str | None, command: str | None) -> None:
        if not self.query("#pattern"):  # not composed yet: when it is
            self.call_after_refresh(self.prefill, pattern, command)
            return
        if pattern is not None:
            self.query_one("#pattern", Input).value = pattern
        if command is not None:
            self.query_one("#command", Input).value = command
        self.query_one("#command" if pattern else "#pattern", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "pattern":
            self._resolve(event.value)

    def _resolve(self, pattern: str) -> None:
        label = self.query_one("#resolved", Static)
        self.resolved = []
        if not pattern.strip():
            label.update("n: new fan-out (type a target pattern, then a command)")
            return
        if not self.fleet.engine_ready:
            label.update("the engine is starting…")
            return
        from core.remote.inventory import TargetError, fold_hosts

        try:
            self.resolved = resolve_targets(pattern, self.fleet.engine.config.hosts)
        except TargetError as e:
            label.update(Text(str(e), style=style("bad")))
            return
        n = len(self.resolved)
        label.update(Text(f"{n} host{'s' if n != 1 else ''}: {fold_hosts(self.resolved)}"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "pattern":
            self.query_one("#command", Input).focus()
            return
        if event.input.id == "command":
            self.start()

    def action_new(self) -> None:
        self.query_one("#pattern", Input).focus()

    def action_leave_form(self) -> None:
        if isinstance(self.focused, Input):
            self.query_one(NavTable).focus()

    def start(self) -> None:
        from core.remote.fanouts import looks_destructive

        pattern = self.query_one("#pattern", Input).value.strip()
        try:
            typed = parse_typed(self.query_one("#command", Input).value)
        except ValueError as e:
            self.notify(str(e), severity="error")
            return
        command = typed.command
        if not self.fleet.guard("fan out"):
            return
        self._resolve(pattern)
        if not self.resolved:
            self.notify("the pattern names no hosts", severity="error")
            return
        if not command:
            self.notify("type a command to run", severity="error")
            return
        n = len(self.resolved)
        hosts = f"{n} host{'s' if n != 1 else ''}"
        if looks_destructive(command):
            question = f"DESTRUCTIVE? Run `{command}` on {hosts}?"
            detail = ("This looks like it removes, stops or reboots something. "
                      f"Hosts: {', '.join(self.resolved[:12])}{' …' if n > 12 else ''}")
        else:
            question, detail = f"Run `{command}` on {hosts}?", ", ".join(self.resolved[:12])
        how = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in typed.params().items()
                       if k != "hold_canary")
        if how:
            question = question.rstrip("?") + f" ({how})?"

        def confirmed(ok: bool | None) -> None:
            if not ok:
                return
            if not typed.ask_password:
                self._start(pattern, command, **typed.params())
                return

            def given(password: str | None) -> None:
                if password is not None:
                    self._start(pattern, command, **typed.params(), become_password=password)

            self.app.push_screen(PasswordScreen(typed.become or "root"), given)

        self.app.push_screen(ConfirmScreen(question, detail, strong=looks_destructive(command)),
                             confirmed)

    def _act(self, action: Callable[[], Any], then: Callable[[Any], None] | None = None
             ) -> None:
        """Call a fan-out action. An attached console's go to the daemon and are
        coroutines: those are awaited in a worker, so the screen never waits."""
        try:
            result = action()
        except (ValueError, KeyError, EngineError) as e:
            self.notify(str(e), severity="error")
            return
        if not inspect.isawaitable(result):
            if then is not None:
                then(result)
            return

        async def finish() -> None:
            try:
                value = await result
            except (ValueError, KeyError, EngineError) as e:
                self.notify(str(e), severity="error")
                return
            if then is not None:
                then(value)

        self.run_worker(finish(), group="fanout-action")

    def _start(self, pattern: str, command: str, **kw: Any) -> None:
        def started(rec: dict[str, Any]) -> None:
            self.show_fanout(rec["id"])
            self.query_one(NavTable).focus()

        self._act(lambda: self.fleet.engine.fanout_start(pattern, command, **kw,
                                                        actor=self.fleet.actor), started)

    # ------------------------------------------------------------------ the grid ----
    def show_fanout(self, fanout_id: int) -> None:
        self.fanout_id = fanout_id
        self.refresh_data()

    def refresh_data(self) -> None:
        super().refresh_data()
        if self.fanout_id is None and self.fleet.engine_ready:
            latest = self.fleet.engine.fanout_list(1)  # opened: the last fan-out, at once
            self.fanout_id = latest[0]["id"] if latest else None
        if not self.fleet.engine_ready or self.fanout_id is None or not self.is_mounted \
                or not self.query("#summary"):
            return  # (a daemon's answer can arrive as the screen is built or torn down)
        self.current = self.fleet.engine.fanout_get(self.fanout_id)
        if self.current is None:
            return
        self._draw()

    def _draw(self) -> None:
        rec = self.current
        assert rec is not None
        live = self.fleet.engine.fanout_live(rec["id"])
        self._drawn_live = live
        head = Text()
        head.append(f"#{rec['id']} ", style="bold")
        head.append(f"{rec['pattern']} -- {rec['command']}   ")
        head.append_text(counts_text(rec["hosts"]))
        head.append("   running…" if live else f"   {rec.get('state', '')}", style=style("muted"))
        roll = rec.get("rollout")
        if roll:
            head.append(f"   {rollout_state(roll)}", style=style("notice" if roll.get(
                "held") or roll.get("stopped") else "muted"))
        self.query_one("#summary", Static).update(head)
        table = self.query_one(NavTable)
        selected = table.selected_key()
        if bool(roll) != self._rolling:
            self._columns(table, rolling=bool(roll))
        table.clear()
        order = {s: i for i, s in enumerate(STATE_ORDER)}
        rows = sorted(rec["hosts"].values(), key=lambda r: (
            r.get("batch") or 0, order.get(r["state"], 99), r["host"]))
        for r in rows:
            dur = r.get("duration")
            batch = (Text(f"{r.get('batch') or '-'}/{roll.get('batches')}"),) if roll else ()
            table.add_row(Text(r["host"], style="bold"), *batch, host_state(r["state"]),
                          Text("-" if r.get("exit_code") is None else str(r["exit_code"])),
                          Text("-" if dur is None else f"{dur:.1f}s"),
                          Text(str(r.get("lines", 0))),
                          Text(r.get("reason") or "", style=style("muted")), key=r["host"])
        if selected is not None:
            for i, r in enumerate(rows):
                if r["host"] == selected:
                    table.move_cursor(row=i, animate=False)
                    break

    WATCHES = (*RUN_EVENTS, *FANOUT_EVENTS)

    def engine_events(self, events: list[Event]) -> None:
        super().engine_events(events)
        if self.fanout_id is None:
            return
        mine = [e for e in events if isinstance(e, FANOUT_EVENTS)
                and fanout_of(e) == self.fanout_id]
        if mine:
            self.refresh_data()
            if any(isinstance(e, FanOutBatch) and e.phase == "held" for e in mine):
                self._ask_to_go_on()
            if any(isinstance(e, FanOutDone) for e in mine):
                rec = self.current or {}
                self.notify(f"fan-out #{self.fanout_id} done: "
                            f"{counts_text(rec.get('hosts', {})).plain}")

    def _ask_to_go_on(self) -> None:
        """The canary batch ended: go on with the rest, or cancel them."""
        rec = self.current
        if rec is None:
            return
        fid = rec["id"]
        question, detail = held_question(rec)

        def answered(ok: bool | None) -> None:
            if ok:
                self._act(lambda: self.fleet.engine.fanout_proceed(fid, actor=self.fleet.actor))
            else:
                self._act(lambda: self.fleet.engine.fanout_cancel(fid, actor=self.fleet.actor))

        self.app.push_screen(ConfirmScreen(question, detail), answered)

    def _selected(self) -> dict[str, Any] | None:
        key = self.query_one(NavTable).selected_key()
        if key is None or self.current is None:
            return None
        return self.current["hosts"].get(key)

    def action_open(self) -> None:
        if isinstance(self.focused, Input):
            return
        r = self._selected()
        if r is not None and self.fanout_id is not None:
            self.app.push_screen(HostOutputScreen(self.fanout_id, r["host"]))

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()

    def action_gathered(self) -> None:
        if self.fanout_id is not None:
            self.app.push_screen(GatheredScreen(self.fanout_id))

    def action_rerun(self) -> None:
        r = self._selected()
        if r is None or self.current is None or not self.fleet.guard("re-run"):
            return
        state = r["state"]
        if state in ACTIVE:
            self.notify(f"{r['host']} is still {state}", severity="warning")
            return
        names = [h for h, x in self.current["hosts"].items() if x["state"] == state]
        fid = self.current["id"]

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._rerun(fid, [state])

        self.app.push_screen(ConfirmScreen(
            f"Re-run `{self.current['command']}` on the {len(names)} {state} host"
            f"{'s' if len(names) != 1 else ''}?", ", ".join(names[:12])), confirmed)

    def action_rerun_not_ok(self) -> None:
        """Every host that did not end ok (but those a host key refused) as one new
        fan-out; the question shows how many of each class."""
        from core.remote.classes import NEEDS_A_PERSON, NOT_OK, NOT_OK_CLASSES

        cur = self.current
        if cur is None or not self.fleet.guard("re-run"):
            return
        hosts = cur["hosts"]
        if any(x["state"] in ACTIVE for x in hosts.values()):
            self.notify("the fan-out is still running", severity="warning")
            return
        counts = {c: sum(1 for x in hosts.values() if x["state"] == c) for c in NOT_OK_CLASSES}
        counts = {c: n for c, n in counts.items() if n}
        held = {c: n for c in NEEDS_A_PERSON
                if (n := sum(1 for x in hosts.values() if x["state"] == c))}
        if not counts:
            self.notify("every host ended ok" if not held else
                        "only hosts a host key refused are left: t trusts unknown keys",
                        severity="information" if not held else "warning")
            return
        total = sum(counts.values())
        fid = cur["id"]

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._rerun(fid, [NOT_OK])

        detail = ", ".join(f"{n} {c}" for c, n in counts.items())
        if held:
            detail += "; left out: " + ", ".join(f"{n} {c}" for c, n in held.items())
        self.app.push_screen(ConfirmScreen(
            f"Re-run `{cur['command']}` on the {total} host{'s' if total != 1 else ''} "
            f"not ok of {len(hosts)}?", detail), confirmed)

    def _rerun(self, fid: int, classes: list[str]) -> None:
        """A rerun; one that ran with a sudo password asks for it again (the fan-out
        kept it only while it ran)."""
        def go(password: str | None = None) -> None:
            self._act(lambda: self.fleet.engine.fanout_rerun(
                fid, classes, password, actor=self.fleet.actor),
                lambda rec: self.show_fanout(rec["id"]))

        rec = self.current or {}
        if not rec.get("become_asked"):
            go()
            return
        self.app.push_screen(PasswordScreen(rec.get("become") or "root"),
                             lambda pw: go(pw) if pw is not None else None)

    def action_cancel_host(self) -> None:
        r = self._selected()
        if r is None or self.fanout_id is None or not self.fleet.guard("cancel hosts"):
            return
        if r["state"] not in ACTIVE:
            self.notify(f"{r['host']} is not running (it is {r['state']})", severity="warning")
            return
        fid, host = self.fanout_id, r["host"]

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._act(lambda: self.fleet.engine.fanout_cancel_host(fid, host,
                                                                      actor=self.fleet.actor))

        self.app.push_screen(ConfirmScreen(
            f"Cancel {host} in fan-out #{fid}?",
            "Its remote command is stopped; the other hosts go on."), confirmed)

    def action_trust(self) -> None:
        if self.current is None or not self.fleet.guard("trust host keys"):
            return
        unknown = {h: r.get("fingerprint") for h, r in self.current["hosts"].items()
                   if r["state"] == "host_key_unknown" and r.get("fingerprint")}
        if not unknown:
            self.notify("no host presented an unknown key", severity="warning")
            return
        fid = self.current["id"]
        lines = "\n".join(f"{h}: {fp}" for h, fp in sorted(unknown.items()))

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._act(lambda: self.fleet.engine.fanout_trust(fid, sorted(unknown),
                                                                 actor=self.fleet.actor),
                          lambda rec: self.show_fanout(rec["id"]))

        self.app.push_screen(ConfirmScreen(
            f"Trust these {len(unknown)} host key{'s' if len(unknown) != 1 else ''} and "
            "run again on those hosts?",
            lines + "\n\nHost keys signed by an SSH certificate authority? Trust the CA "
            "once instead: fleetdeck trust-ca CA.pub --hosts PATTERN"), confirmed)

    def action_past(self) -> None:
        def chosen(fid: int | None) -> None:
            if fid is not None:
                self.show_fanout(fid)
                self.query_one(NavTable).focus()

        self.app.push_screen(PastFanOutsScreen(), chosen)
