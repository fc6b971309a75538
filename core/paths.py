"""Where fleetdeck keeps things: the XDG config, state and theme folders, decided once."""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    """An XDG base folder: the variable when it is an absolute path, else the fallback."""
    base = os.environ.get(var) or ""
    return Path(base) if base and Path(base).is_absolute() else Path.home() / fallback


def config_dir() -> Path:
    """$XDG_CONFIG_HOME/fleetdeck (XDG_CONFIG_HOME defaults to ~/.config)."""
    return _xdg("XDG_CONFIG_HOME", ".config") / "fleetdeck"


def default_config_path() -> Path:
    """$XDG_CONFIG_HOME/fleetdeck/config.toml."""
    return config_dir() / "config.toml"


def default_state_dir() -> Path:
    """$XDG_STATE_HOME/fleetdeck (XDG_STATE_HOME defaults to ~/.local/state)."""
    return _xdg("XDG_STATE_HOME", ".local/state") / "fleetdeck"


def themes_dir() -> Path:
    """$XDG_CONFIG_HOME/fleetdeck/themes: a person's own theme files."""
    return config_dir() / "themes"


def from_root(path: str) -> bool:
    """A path that names one place whoever reads it: absolute, or from a home (~). A
    relative one would be relative to the daemon's working folder, nobody's choice."""
    return path.startswith(("/", "~"))
