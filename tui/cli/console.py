"""`console` (and no command at all): the Textual console, attached to a running daemon
when one holds the state directory."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from tui.cli.common import CLIError


def add_parsers(sub: Any) -> None:
    c = sub.add_parser("console", help="open the console (the default with no command)")
    c.set_defaults(func=cmd_console)


def stacks_on_request(state_dir: Path) -> None:
    """`kill -USR1 PID` writes every thread's Python stack to <state>/console-stacks.txt:
    a console that hangs (it has, at exit, now and then) can say where, without a
    debugger and without stopping it."""
    import faulthandler
    import signal

    fd = os.open(state_dir / "console-stacks.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                 0o600)  # private, as the whole state directory is
    stacks = os.fdopen(fd, "a")  # open for the process's life
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)


def cmd_console(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    import asyncio

    from core.enginelog import setup_logging

    if not sys.stdout.isatty() and not os.environ.get("FLEETDECK_FORCE_CONSOLE"):
        raise CLIError("the console needs a terminal; for headless use: fleetdeck daemon")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    from core.control.client import daemon_pid

    engine = None
    handoff = None
    pid = daemon_pid(state_dir)
    if pid is not None:  # a daemon holds this state: attach to it, never start a second
        from core.control.attached import AttachedEngine

        engine = AttachedEngine(config, state_dir, pid)
    elif sys.stdout.isatty():
        from tui import handoff as handing

        # before any thread: the parent waits, the child is the console (tui/handoff.py)
        handoff = handing.split()
    setup_logging(state_dir, fmt=args.log_format)
    from tui.app import FleetdeckApp  # textual loads only here

    app = FleetdeckApp(config, state_dir, read_only=args.read_only, theme=args.theme,
                       engine=engine)
    app.handoff = handoff
    stacks_on_request(state_dir)
    return asyncio.run(_console(app, config, state_dir))


async def _console(app: Any, config: Any, state_dir: Path) -> int:
    """The console; then, when the person handed its runs over, the daemon."""
    from tui.handoff import HAND_OFF

    await app.run_async()
    if app.return_value != HAND_OFF or app.handoff is None:
        if app.handoff is not None:
            app.handoff.close()
        return app.return_code or 0
    from core.daemon import Daemon
    from tui.cli.daemon import serve_until_stopped, stop_on_signals
    from tui.quit import in_flight_text

    daemon = Daemon(config, state_dir, engine=app.engine)
    stop = stop_on_signals()
    await daemon.start()  # the control socket is up before the next launch looks for it
    pid = os.getpid()
    app.handoff.detach(
        f"fleetdeck: {in_flight_text(app.engine.in_flight())} handed to a background "
        f"daemon (pid {pid}); it goes on with the schedule. `fleetdeck` attaches to it; "
        f"`kill {pid}` stops it (what still runs is recorded as cancelled).")
    await serve_until_stopped(daemon, stop)
    return 0
