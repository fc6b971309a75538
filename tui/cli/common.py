"""What every command of the CLI shares: the one-line error, exit codes, the console to
print on, and the read-only view of the state. Nothing here imports a command module."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.api import Actor
from core.paths import default_state_dir

EXIT_USAGE = 2
EXIT_TIMED_OUT = 124  # as timeout(1)
EXIT_CANCELLED = 130
EXIT_NOT_RUN = 3  # skipped or interrupted: the command did not finish

ACTOR = Actor.local("cli")  # a person at this terminal


class CLIError(Exception):
    """A one-line error for a person; exits 2."""


def console() -> Any:  # rich is light enough, but keep start-up lean for `--help`
    from rich.console import Console

    return Console(highlight=False)


def err(message: str) -> None:
    print(f"fleetdeck: {message}", file=sys.stderr)


def state_dir_of(args: argparse.Namespace) -> Path:
    return args.state_dir or default_state_dir()


def engine_errors() -> tuple[type[Exception], ...]:
    from core.jobs.active import EngineError
    from core.store import StateLocked

    return (EngineError, StateLocked)


def view(config: Any, state_dir: Path) -> Any:
    """An engine over the state, read-only: listings work while a daemon runs."""
    from core.jobs.engine import Engine

    engine = Engine(config, state_dir)
    engine.open_view()
    return engine


def run_id(text: str) -> int:
    try:
        value = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a run id: {text!r} (e.g. 42)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a run id: {text!r}")
    return value


def on_engine(config: Any, state_dir: Path, log_format: str, work: Any) -> int:
    """Run `work(engine)` on the engine this state directory has: the daemon's when one
    runs (the one decision, core.control.connect), else this process's own."""
    import asyncio  # commands that only read or print start without it

    from core.enginelog import setup_logging

    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    setup_logging(state_dir, fmt=log_format)

    async def main() -> int:
        from core.control.connect import open_engine

        engine = await open_engine(config, state_dir)
        try:
            return await work(engine)
        finally:
            await engine.stop()

    try:
        return asyncio.run(main())
    except engine_errors() as e:
        raise CLIError(str(e)) from None
