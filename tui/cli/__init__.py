"""The `fleetdeck` command line: one module per command group (see main.py)."""

from tui.cli.main import main

__all__ = ["main"]
