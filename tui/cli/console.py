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

    stacks = open(state_dir / "console-stacks.txt", "a")  # noqa: SIM115 - open for life
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)


def cmd_console(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.enginelog import setup_logging

    if not sys.stdout.isatty() and not os.environ.get("FLEETDECK_FORCE_CONSOLE"):
        raise CLIError("the console needs a terminal; for headless use: fleetdeck daemon")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    setup_logging(state_dir, fmt=args.log_format)
    from core.control.client import daemon_pid
    from tui.app import FleetdeckApp  # textual loads only here

    engine = None
    pid = daemon_pid(state_dir)
    if pid is not None:  # a daemon holds this state: attach to it, never start a second
        from core.control.attached import AttachedEngine

        engine = AttachedEngine(config, state_dir, pid)
    app = FleetdeckApp(config, state_dir, read_only=args.read_only, theme=args.theme,
                       engine=engine)
    stacks_on_request(state_dir)
    app.run()
    return app.return_code or 0
