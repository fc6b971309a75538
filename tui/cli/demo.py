"""`fleetdeck demo`: the console on a simulated fleet (see core/demo.py).

The fleet's SSH servers run in a child process, so they never compete with the console's
event loop; the child stops when its stdin pipe closes, so it cannot outlive us.

    fleetdeck demo [--dir DIR]        # the console on the demo inventory
    fleetdeck demo --fleet-only       # only the fleet, for the CLI from another shell
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from tui.cli.common import CLIError
from tui.cli.console import cmd_console

START_TIMEOUT = 30.0


def add_parsers(sub: Any) -> None:
    d = sub.add_parser("demo", help="open the console on a simulated fleet of loopback SSH hosts")
    d.add_argument("--dir", type=Path, default=None,
                   help="demo folder: keys, inventory, and the state unless --state-dir "
                        "is given (default: $XDG_STATE_HOME/fleetdeck/demo)")
    d.add_argument("--fleet-only", action="store_true",
                   help="start only the fleet; print commands to use it from another "
                        "shell; stop on Ctrl-C")
    d.set_defaults(func=cmd_demo, needs_config=False)


def cmd_demo(args: argparse.Namespace) -> int:
    from core.demo import READY, default_demo_dir
    from core.fleetconfig import load_config

    folder: Path = args.dir or default_demo_dir()
    # made here, so a folder that cannot be is main's one line, not a silent child
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.demo", "serve", "--dir", str(folder)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(proc)
        if not line.startswith(f"{READY} "):
            if not line:  # its stdout closed: it is ending; let its stderr say why
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
            detail = (proc.stderr.read() if proc.poll() is not None else "").strip()
            why = detail.splitlines()[-1] if detail else line or "no answer"
            raise CLIError(f"the demo fleet did not start: {why}")
        config_path = Path(line.split(" ", 1)[1].strip())
        state_dir: Path = args.state_dir or folder / "state"
        if args.fleet_only:
            print(f"demo fleet up ({config_path}). From another shell, try:\n"
                  f"  fleetdeck --config {config_path} --state-dir {state_dir} "
                  f"fanout '*' -- uptime\nCtrl-C stops it.", flush=True)
            try:
                proc.wait()
            except KeyboardInterrupt:
                pass
            return 0
        return cmd_console(args, load_config(config_path), state_dir)
    finally:
        if proc.stdin:
            proc.stdin.close()  # the fleet's signal to stop
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _first_line(proc: subprocess.Popen[str]) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(START_TIMEOUT):
            return ""
    return proc.stdout.readline().strip()
