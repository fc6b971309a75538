"""The console: a Textual App over one Engine.

The app holds no business logic. It starts the engine in its own event loop, collects
engine events into a buffer that is flushed to the visible screen a few times a second
(never one widget write per event), and turns keys and `:` commands into Engine calls.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding

from core.api import Actor
from core.events import Event
from core.fleetconfig import Config
from core.jobs.active import EngineError
from core.jobs.engine import Engine
from tui import commands as cmds
from tui.alert_actions import AlertActions
from tui.command_palette import FleetProvider
from tui.handoff import Handoff
from tui.keys import KeyGate
from tui.pump import FLUSH_INTERVAL, PREWARM_AFTER, EventPump
from tui.screens.base import FleetScreen
from tui.screens.dialogs import CommandLineScreen, ConfirmScreen, HelpScreen
from tui.screens.overview import OverviewScreen
from tui.theming import (
    CurrentTheme,
    apply_colour_mode,
    default_theme_name,
    load_themes,
    stylesheet_path,
)
from tui.workflow_actions import WorkflowActions

LATER: dict[str, str] = {}  # screens not built yet: their key says so


def _screen(module: str, name: str) -> FleetScreen:
    """A screen class from tui.screens.<module>, imported on first use (faster start)."""
    import importlib

    return getattr(importlib.import_module(f"tui.screens.{module}"), name)()


class FleetdeckApp(EventPump, AlertActions, WorkflowActions, KeyGate, CurrentTheme,
                   App[None]):
    TITLE = "fleetdeck"
    CSS_PATH = str(stylesheet_path())
    COMMANDS = {FleetProvider}
    ENABLE_COMMAND_PALETTE = True
    MODES = {
        "overview": OverviewScreen,
        "jobs": lambda: _screen("jobs", "JobsScreen"),  # loaded when first shown
        "queue": lambda: _screen("queue", "QueueScreen"),
        "runs": lambda: _screen("runs", "RunsScreen"),
        "fanout": lambda: _screen("fanout", "FanOutScreen"),
        "hosts": lambda: _screen("hosts", "HostsScreen"),
        "logs": lambda: _screen("logs", "LogsScreen"),
        "audit": lambda: _screen("audit", "AuditScreen"),
        "alerts": lambda: _screen("alerts", "AlertsScreen"),
    }
    DEFAULT_MODE = "overview"
    BINDINGS = [
        Binding("1", "show('overview')", "Overview", id="app.overview"),
        Binding("2", "show('jobs')", "Jobs", id="app.jobs"),
        Binding("3", "show('queue')", "Queue", id="app.queue"),
        Binding("4", "show('runs')", "Runs", id="app.runs"),
        Binding("5", "show('hosts')", "Hosts", id="app.hosts"),
        Binding("6", "show('fanout')", "Fan-out", id="app.fanout"),
        Binding("7", "show('alerts')", "Alerts", id="app.alerts"),
        Binding("8", "show('logs')", "Logs", id="app.logs"),
        Binding("9", "show('audit')", "Audit", id="app.audit"),
        Binding("colon", "command_line", "Command", id="app.command"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "request_quit", "Quit", id="app.quit_q"),
        Binding("ctrl+q", "request_quit", "Quit", show=False, id="app.quit", priority=True),
        Binding("ctrl+c", "request_quit", "Quit", show=False, id="app.quit_ctrl_c"),
    ]

    def __init__(
        self,
        config: Config,
        state_dir: Path,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        scheduling: bool = True,
        theme: str | None = None,
        engine: Engine | None = None,
    ) -> None:
        super().__init__()
        self.read_only = read_only
        self.clock = clock
        self.scheduling = scheduling
        self.engine = engine or Engine(config, state_dir, clock=clock)
        self.engine_ready = False
        self.engine_error: str | None = None
        self._buffer: list[Event] = []
        self._output_runs: set[int] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._wanted_theme = theme or config.theme
        self.theme_errors: list[str] = []
        self.mode_label = "standalone"
        self.actor = Actor.local("console")  # who this console's actions are audited as
        self.handoff: Handoff | None = None  # tui/handoff.py: set when quitting may hand runs over
        self.handing_off = False
        self._unmasked_switch = False  # a switch to a screen built ahead: no repaint hold
        self._apply_themes()

    # ------------------------------------------------------------------ start / stop --
    def _apply_themes(self) -> None:
        # before the first mount: a theme set later would restyle every widget again
        themes = load_themes()
        self.theme_errors = themes.errors
        for theme in themes.themes.values():
            self.register_theme(theme)
        wanted = self._wanted_theme or default_theme_name()
        if wanted not in themes.themes:
            self.theme_errors.append(f"theme {wanted!r} not found; using dark")
            wanted = "dark"
        self.theme = wanted
        apply_colour_mode(self)  # NO_COLOR: no colour at all, not Textual's greys

    def on_mount(self) -> None:
        keys = self.engine.config.keys
        if keys:
            self.set_keymap(keys)
        for error in self.theme_errors:
            self.notify(error, severity="error", timeout=10)
        self._unsubscribe = self.engine.bus.subscribe(self._on_engine_event)
        self.set_interval(FLUSH_INTERVAL, self._flush_events)
        self.call_after_refresh(self._start_engine)  # first paint first, then the engine
        from tui.quit import on_hangup

        on_hangup(self)

    @work(group="engine", exclusive=True)
    async def _start_engine(self) -> None:
        try:
            if getattr(self.engine, "attached", False):  # a daemon's: its services run there
                await self.engine.start()
                self.engine_ready = True
                self._refresh_screen()
                return
            # loaded here, after the first paint: they cost start-up time
            from core.services import attach_services

            # read-only: this console's own engine looks (checks, logs, alerts) but runs
            # nothing: no schedule, no watchdog restart, no trigger, no notification
            attach_services(self.engine, act=not self.read_only)
            await self.engine.start(scheduling=self.scheduling and not self.read_only)
            if self.engine.alerts is not None and self.scheduling and not self.read_only:
                self.engine.alerts.resolve_gone_checks(self.engine.config)  # as a daemon
        except Exception as e:  # a locked state directory, unreadable state: say so
            self.engine_error = str(e)
            self.exit(message=f"fleetdeck: {e}", return_code=2)
            return
        self.engine_ready = True
        self._refresh_screen()
        if not self.is_headless:
            self.set_timer(PREWARM_AFTER, self._prewarm)

    def _fatal_error(self) -> None:
        """A crash: the traceback without local variables and with the config's secrets
        masked (Textual's own shows every frame's locals), kept in the state directory."""
        import sys

        from rich.text import Text

        from tui.crash import config_secrets, crash_report, save_report

        self.bell()
        exc = sys.exc_info()
        if exc[1] is None and self._exception is not None:  # raised outside an except
            error = self._exception
            exc = (type(error), error, error.__traceback__)
        report = crash_report(exc, config_secrets(self.engine.config))
        path = save_report(self.engine.state_dir, report)
        where = f"; this report is kept in {path}" if path else ""
        self._exit_renderables.append(Text(report + f"fleetdeck crashed{where}\n"))
        self._close_messages_no_wait()

    def action_request_quit(self) -> None:
        """Quit, asking first when that would end runs (tui/quit.py)."""
        from tui.quit import request_quit

        request_quit(self)

    async def action_quit(self) -> None:
        await self.stop_engine()
        self.exit()

    async def stop_engine(self) -> None:
        """Stop following the engine and stop it (a daemon's: only let go of it); what
        was in flight is recorded as the engine's stop records it. Idempotent."""
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self.engine_ready and not self.handing_off:  # handed over: it goes on
            self.engine_ready = False
            await self.engine.stop()

    async def on_unmount(self) -> None:
        await self.stop_engine()

    # --------------------------------------------------------------------- actions ----
    def action_show(self, name: str) -> None:
        if name in LATER:
            self.notify(LATER[name], title=name.capitalize())
            return
        self._unmasked_switch = bool(self._screen_stacks.get(name))
        try:
            self.switch_mode(name)
        finally:
            self._unmasked_switch = False
        # a number key is that screen's list, as k9s's views are: a run's output opened
        # from it earlier is not what `4` means (Esc and Enter walk the drill-down)
        while len(self.screen_stack) > 1 and isinstance(self.screen_stack[-1], FleetScreen) \
                and isinstance(self.screen_stack[-2], FleetScreen):
            self.pop_screen()

    def delay_update(self, delay: float = 0.05) -> None:
        """Textual holds every repaint for 50 ms when it switches modes, to hide a
        screen still being built. The console's screens are built ahead (tui/pump.py):
        a switch to one that is built is drawn at once (50 ms less from key to screen);
        one built on the spot keeps the mask."""
        if not self._unmasked_switch:
            super().delay_update(delay)

    def action_command_line(self) -> None:
        def done(line: str | None) -> None:
            if line:
                self.execute(line)

        self.push_screen(CommandLineScreen(), done)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen))

    def execute(self, line: str) -> None:
        """Run one `:` command line; mistakes become one-line notices."""
        try:
            command, args = cmds.parse(line)
            if command.acts and self.read_only:
                raise cmds.CommandError(f":{command.name} is not allowed in a read-only console")
            handler = getattr(self, f"cmd_{command.name}")
            result = handler(*args)
            if inspect.isawaitable(result):
                self.run_worker(result, group="actions")
        except (cmds.CommandError, EngineError) as e:
            self.notify(str(e), severity="error")

    # -- commands (the `:` verbs); keys on screens call the same methods ---------------
    def cmd_overview(self) -> None:
        self.action_show("overview")

    def cmd_jobs(self) -> None:
        self.action_show("jobs")

    def cmd_queue(self) -> None:
        self.action_show("queue")

    def cmd_runs(self, job: str | None = None) -> None:
        if job is not None and job not in self.engine.config.jobs:
            raise cmds.CommandError(f"no job named {job!r}")
        self.action_show("runs")
        from tui.screens.runs import RunsScreen

        screen = self.screen
        if isinstance(screen, RunsScreen):
            screen.set_job_filter(job)

    def cmd_audit(self) -> None:
        self.action_show("audit")

    def cmd_missed(self) -> None:
        from tui.screens.missed import MissedScreen

        if not isinstance(self.screen, MissedScreen):
            self.push_screen(MissedScreen())

    def cmd_cluster(self) -> None:
        if getattr(self.engine.config, "cluster", None) is None:
            raise cmds.CommandError("no [cluster] in the config: this fleetdeck runs alone")
        from tui.screens.cluster import ClusterScreen

        if not isinstance(self.screen, ClusterScreen):
            self.push_screen(ClusterScreen())

    def cmd_logs(self) -> None:
        self.action_show("logs")

    def cmd_hosts(self) -> None:
        self.action_show("hosts")

    def cmd_fanout(self, pattern: str | None = None, command: str | None = None) -> None:
        self.action_show("fanout")
        from tui.screens.fanout import FanOutScreen

        screen = self.screen
        if isinstance(screen, FanOutScreen) and (pattern or command):
            screen.prefill(pattern, command)

    def cmd_alerts(self) -> None:
        self.action_show("alerts")

    def cmd_log(self, run: str) -> None:
        self.open_run(cmds.parse_run_id(run))

    def cmd_run(self, job: str) -> None:
        self.run_job(job)

    def cmd_pause(self, job: str) -> None:
        self.set_paused(job, True)

    def cmd_resume(self, job: str) -> None:
        self.set_paused(job, False)

    def cmd_cancel(self, run: str) -> None:
        self.cancel_run(cmds.parse_run_id(run))

    async def cmd_reload(self) -> None:
        """Ask first, showing what the file in force would change (read fresh, off the
        event loop); a file with errors is said and not sent."""
        if not self.guard("reload"):
            return
        path = self.engine.config.path
        daemon = getattr(self.engine, "attached", False) or \
            getattr(self.engine, "reloader", None) is not None
        if path is None or not daemon:
            await self._reload()  # the engine says why it cannot
            return
        import asyncio

        from tui.reload_preview import errors_notice, preview_reload

        preview = await asyncio.to_thread(preview_reload, Path(path), self.engine.config,
                                          self.clock())
        if preview.errors:
            self.notify(errors_notice(preview), severity="error", timeout=10)
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.run_worker(self._reload(), group="actions")

        self.push_screen(ConfirmScreen(preview.question, preview.detail), confirmed)

    async def _reload(self) -> None:
        try:
            summary = await self.engine.reload(actor=self.actor)
        except EngineError as e:
            self.notify(str(e), severity="error")
            return
        changed = ", ".join(f"{len(v)} {k}" for k, v in summary.items() if v)
        self.notify(f"reloaded: {changed or 'nothing changed'}")

    def cmd_theme(self, name: str | None = None) -> None:
        names = sorted(n for n in self.available_themes if not n.startswith("textual-")
                       and n not in ("ansi-dark", "ansi-light"))
        if name is None:
            self.notify("themes: " + ", ".join(names) + f" (now: {self.theme})")
            return
        if name not in self.available_themes:
            raise cmds.CommandError(f"no theme {name!r}; one of: {', '.join(names)}")
        self.theme = name
        self._refresh_screen()  # cells carry their role's colour: drawn again in the new one

    def cmd_help(self) -> None:
        self.action_help()

    async def cmd_quit(self) -> None:
        self.action_request_quit()

    # -- engine calls: each is a worker, so the screen never waits on them -------------
    def guard(self, verb: str) -> bool:
        """May this console act now? Says why not (read-only, engine starting)."""
        if self.read_only:
            self.notify(f"read-only console: cannot {verb}", severity="warning")
            return False
        if not self.engine_ready:
            self.notify("the engine is still starting", severity="warning")
            return False
        return True

    def act(self, verb: str, call: Callable[[], Awaitable[Any]], said: Callable[[Any], str],
            then: Callable[[Any], None] | None = None) -> None:
        """One engine action: refused with a notice when the console may not `verb` now,
        else a worker, so the screen never waits on the engine; the outcome (`said` of
        what the engine returned) or the engine's refusal is a notice."""
        if self.guard(verb):
            self._act(call, said, then)

    @work(group="actions")
    async def _act(self, call: Callable[[], Awaitable[Any]], said: Callable[[Any], str],
                   then: Callable[[Any], None] | None) -> None:
        try:
            result = await call()
        except (EngineError, ValueError) as e:
            self.notify(str(e), severity="error")
            return
        self.notify(said(result))
        if then is not None:
            then(result)

    def open_run(self, run_id: int) -> None:
        from tui.screens.run_log import RunLogScreen  # the log viewer loads when first used

        try:
            run = self.engine.get_run(run_id)
        except EngineError as e:
            raise cmds.CommandError(str(e)) from None
        if run.get("workflow"):  # a workflow run: its steps first, its log one key away
            from tui.screens.workflow import WorkflowScreen

            self.push_screen(WorkflowScreen(run))
            return
        self.push_screen(RunLogScreen(run))

    def run_job(self, job: str) -> None:
        if job not in self.engine.config.jobs:
            raise cmds.CommandError(f"no job named {job!r}")
        self.act("run jobs", lambda: self.engine.run_job(job, actor=self.actor),
                 lambda runs: f"{job}: started run " + ", ".join(f"#{r['id']}" for r in runs))

    def set_paused(self, job: str, paused: bool) -> None:
        if job not in self.engine.config.jobs:
            raise cmds.CommandError(f"no job named {job!r}")
        verb = self.engine.pause_job if paused else self.engine.resume_job
        self.act("pause or resume jobs", lambda: verb(job, actor=self.actor),
                 lambda _: f"{job}: {'paused' if paused else 'resumed'}")

    def cancel_run(self, run_id: int) -> None:
        """Cancel after a confirmation naming the run."""
        if not self.guard("cancel runs"):
            return
        try:
            run = self.engine.get_run(run_id)
        except EngineError as e:
            raise cmds.CommandError(str(e)) from None
        if run["state"] not in ("queued", "running", "awaiting_approval"):
            raise cmds.CommandError(f"run #{run_id} is not active (it is {run['state']})")

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._cancel_run(run_id)

        self.push_screen(
            ConfirmScreen(f"Cancel run #{run_id} of {run['job']} on {run['host']}?",
                          "Its process group gets SIGTERM, then SIGKILL."),
            confirmed,
        )

    def cancel_runs(self, run_ids: list[int]) -> None:
        """Cancel the active ones of several runs, after one confirmation."""
        if not self.guard("cancel runs"):
            return
        active = [r for r in (self.engine.get_run(i) for i in run_ids)
                  if r["state"] in ("queued", "running", "awaiting_approval")]
        if not active:
            self.notify("none of the marked runs is active", severity="warning")
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                for r in active:
                    self._cancel_run(r["id"])

        self.push_screen(ConfirmScreen(
            f"Cancel {len(active)} runs?", ", ".join(f"#{r['id']} {r['job']}@{r['host']}"
                                                     for r in active[:12])
            + (" …" if len(active) > 12 else "")), confirmed)

    def _cancel_run(self, run_id: int) -> None:
        self.act("cancel runs", lambda: self.engine.cancel_run(run_id, actor=self.actor),
                 lambda run: f"run #{run_id}: {run['state']}")
