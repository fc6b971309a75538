"""`fleetdeck demo`: the console on a simulated fleet (see core/demo.py).

The fleet's SSH servers run in a child process, so they never compete with the console's
event loop; the child stops when its stdin pipe closes, so it cannot outlive us.

    fleetdeck demo [--dir DIR]        # the console on the demo inventory
    fleetdeck demo --fleet-only       # only the fleet, for the CLI from another shell

`--fleet-only` prints commands a person can paste into any shell, anywhere: absolute
paths, every word quoted for the shell, this interpreter named, and PYTHONPATH only
when fleetdeck cannot be imported without it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from tui.cli.common import CLIError, path_arg
from tui.cli.console import cmd_console

START_TIMEOUT = 30.0


def add_parsers(sub: Any) -> None:
    d = sub.add_parser("demo", help="open the console on a simulated fleet of loopback SSH hosts")
    d.add_argument("--dir", type=path_arg, default=None,
                   help="demo folder: keys, inventory, and the state unless --state-dir "
                        "is given (default: $XDG_STATE_HOME/fleetdeck/demo)")
    d.add_argument("--fleet-only", action="store_true",
                   help="start only the fleet; print commands to use it from another "
                        "shell; stop on Ctrl-C")
    d.set_defaults(func=cmd_demo, needs_config=False)


def cmd_demo(args: argparse.Namespace) -> int:
    from core.demo import READY, default_demo_dir
    from core.fleetconfig import load_config

    # absolute: the inventory's key and known_hosts paths, and the commands printed,
    # must not depend on the directory this was started in
    folder: Path = (args.dir or default_demo_dir()).absolute()
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
        state_dir: Path = (args.state_dir or folder / "state").absolute()
        if args.fleet_only:
            base = [*fleetdeck_command(), "--config", str(config_path),
                    "--state-dir", str(state_dir)]
            try:  # from the first line on: a Ctrl-C right after it is a clean stop too
                print(f"demo fleet up ({config_path}). From another shell, try:\n"
                      f"  {shlex.join([*base, 'fanout', '*', '--', 'uptime'])}\n"
                      f"  {shlex.join([*base, 'console'])}\n"
                      "Ctrl-C stops it.", flush=True)
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


def fleetdeck_command() -> list[str]:
    """How another shell runs this very fleetdeck: the `fleetdeck` script beside this
    interpreter when it runs with it, else the interpreter with `-m tui.cli`; prefixed
    with `env PYTHONPATH=...` when fleetdeck is not importable from elsewhere without it
    (a source checkout run with `python -m tui.cli`)."""
    here = Path(sys.executable)
    script = here.parent / "fleetdeck"
    command = [str(script)] if _runs_with(script, here) else [str(here), "-m", "tui.cli"]
    root = _source_root()
    if not _importable_elsewhere(root):
        return ["env", f"PYTHONPATH={root}", *command]
    return command


def _runs_with(script: Path, interpreter: Path) -> bool:
    """Whether `script` is a console script run by an interpreter of the same folder as
    `interpreter` (a venv's bin/python and bin/python3 are one)."""
    try:
        with script.open("rb") as f:
            first = f.readline(4096)
    except OSError:
        return False
    if not (os.access(script, os.X_OK) and first.startswith(b"#!/")):
        return False
    return Path(os.fsdecode(first[2:].split()[0])).parent == interpreter.parent


def _source_root() -> Path:
    import tui

    return Path(tui.__file__).resolve().parent.parent


def _importable_elsewhere(root: Path) -> bool:
    """Whether this interpreter imports this same fleetdeck from `/`, with no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        out = subprocess.run([sys.executable, "-c", "import tui; print(tui.__file__)"],
                             cwd="/", env=env, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    found = out.stdout.strip()
    return out.returncode == 0 and bool(found) and Path(found).resolve().parent.parent == root


def _first_line(proc: subprocess.Popen[str]) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(START_TIMEOUT):
            return ""
    return proc.stdout.readline().strip()
