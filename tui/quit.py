"""Quitting the console without failing anything: when the console runs its own engine
and runs are in flight, it asks: wait for them (nothing new starts meanwhile), hand them
to a background daemon (tui/handoff.py: the console leaves the terminal and goes on as
the daemon; the next launch attaches), cancel them (recorded as cancelled by the
person), or stay. A console attached to a daemon quits at once: the daemon's runs go
on."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

WAIT, DAEMON, CANCEL = "wait", "daemon", "cancel"


def in_flight_text(counts: dict[str, int]) -> str:
    total = counts["running"] + counts["queued"]
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    return f"{total} run{'s' if total != 1 else ''} in flight ({', '.join(parts)})"


class QuitScreen(ModalScreen[str | None]):
    """The choice, one key each."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; background: $background 0%; }
    QuitScreen > Vertical { width: 76; max-width: 100%; height: auto; border: thick $warning;
                            background: $surface; padding: 1 2; }
    QuitScreen Label { width: 100%; }
    QuitScreen #question { text-style: bold; }
    QuitScreen .choice { margin-top: 1; }
    """
    BINDINGS = [
        Binding("w", "answer('wait')", "Wait", id="quit.wait"),
        Binding("d", "answer('daemon')", "To a daemon", id="quit.daemon"),
        Binding("c", "answer('cancel')", "Cancel runs", id="quit.cancel"),
        Binding("escape", "answer(None)", "Stay", id="quit.stay"),
    ]

    def __init__(self, counts: dict[str, int], *, may_cancel: bool = True,
                 waiting: bool = False, may_hand_off: bool = False) -> None:
        super().__init__()
        self.counts = counts
        self.may_cancel = may_cancel
        self.waiting = waiting
        self.may_hand_off = may_hand_off

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Quit? {in_flight_text(self.counts)}."), id="question")
            wait = "go on waiting" if self.waiting else "wait for them, then quit"
            yield Label(Text(f"w    {wait} (nothing new starts meanwhile)"),
                        classes="choice")
            if self.may_hand_off:
                yield Label(Text("d    hand them to a background daemon; the next fleetdeck "
                                 "attaches"))
            if self.may_cancel:
                yield Label(Text("c    cancel them now, then quit (recorded as cancelled by "
                                 "you)"))
            yield Label(Text("Esc  stay" + (" (they go on, and so does the schedule)"
                                            if not self.waiting else "")))

    def action_answer(self, choice: str | None) -> None:
        if (choice == CANCEL and not self.may_cancel) or (
                choice == DAEMON and not self.may_hand_off):
            return
        self.dismiss(choice)


def request_quit(app: Any) -> None:
    """`q`, ctrl+q, ctrl+c and `:q`: quit now, or ask when quitting would end runs."""
    engine = app.engine
    if not app.engine_ready or getattr(engine, "attached", False):
        app.run_worker(app.action_quit(), group="quit", exclusive=True)
        return
    counts = engine.in_flight()
    if not any(counts.values()):
        app.run_worker(app.action_quit(), group="quit", exclusive=True)
        return
    waiting = getattr(app, "_waiting_to_quit", False)

    def chosen(choice: str | None) -> None:
        if choice == WAIT and not waiting:
            app._waiting_to_quit = True
            app.notify(f"waiting for {in_flight_text(engine.in_flight())} to end; "
                       "q to choose again", timeout=8)
            app.run_worker(_drain_then_quit(app), group="quit", exclusive=True)
        elif choice == DAEMON:
            hand_off(app)
        elif choice == CANCEL:
            app.run_worker(_cancel_then_quit(app), group="quit", exclusive=True)

    app.push_screen(QuitScreen(counts, may_cancel=not app.read_only, waiting=waiting,
                               may_hand_off=app.handoff is not None), chosen)


def hand_off(app: Any) -> None:
    """Leave the engine running and end the console: the process goes on as the daemon
    once Textual has given the terminal back (tui/cli/console.py)."""
    from tui.handoff import HAND_OFF

    app.handing_off = True
    app.exit(result=HAND_OFF)


def on_hangup(app: Any) -> None:
    """The terminal went away (an SSH session dropped, a tmux window killed): nobody is
    left to answer, so the console stops its engine as a quit does (what runs is
    recorded `cancelled`, its process groups ended) instead of dying with runs left
    behind. A console attached to a daemon just goes."""
    import asyncio
    import signal

    async def stop_then_end() -> None:
        await app.stop_engine()  # runs cancelled, state committed, the lock released
        # no terminal is left to restore or draw on, and Textual's exit can wait on it
        # for good: end the process (129: ended by SIGHUP, as a shell reports it)
        os._exit(129)

    def hung_up() -> None:
        if getattr(app, "hung_up", False):  # told twice (the terminal, the waiting parent)
            return
        app.hung_up = True
        app.run_worker(stop_then_end(), group="quit", exclusive=True)

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop = asyncio.get_running_loop()

        def on_signal(_signum: int, _frame: Any) -> None:
            # a plain signal handler, not the loop's: it runs even when the main thread
            # is stuck outside the loop (a console was once left spinning on a closed
            # terminal, its loop blocked); past HANGUP_GRACE the process ends regardless
            end_after(HANGUP_GRACE, 129)
            loop.call_soon_threadsafe(hung_up)

        signal.signal(signal.SIGHUP, on_signal)


def end_after(seconds: float, code: int) -> None:
    """End the process in `seconds` from a thread of its own, whatever the loop does."""
    import threading

    def end() -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.__stdout__.write("\x1b[?1049l\x1b[?25h")  # leave the alternate screen
            sys.__stdout__.flush()
        os._exit(code)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()


async def _drain_then_quit(app: Any) -> None:
    await app.engine.drain()
    await _quit(app)


async def _cancel_then_quit(app: Any) -> None:
    await app.engine.cancel_all(actor=app.actor, why="when the console quit")
    await _quit(app)


EXIT_GRACE = 5.0  # seconds Textual's exit gets before the process ends on its own
HANGUP_GRACE = 10.0  # seconds after SIGHUP: the engine's stop takes well under one


async def _quit(app: Any) -> None:
    """Stop the engine and exit. Textual's exit, asked from a worker after the question
    was dismissed, has been seen to hang now and then (the engine already stopped,
    everything recorded): past EXIT_GRACE the process ends itself, leaving the
    terminal's alternate screen and showing the cursor first."""
    await app.action_quit()
    if not app.is_headless:  # a real terminal only: a headless app's loop is its host's
        end_after(EXIT_GRACE, 0)
