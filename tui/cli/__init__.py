"""The `fleetdeck` command line: one module per command group (see main.py)."""

try:
    from tui.cli.main import main
except KeyboardInterrupt:  # a Ctrl-C while fleetdeck still loads: quiet, as a later one
    raise SystemExit(130) from None

__all__ = ["main"]
