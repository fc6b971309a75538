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


# ----------------------------------------------------------------- reading a file ---
PIPE_WAIT = 5.0  # seconds a named pipe may take to bring its first bytes


class SilentPipe(Exception):
    """A named pipe nothing wrote to in time."""


def read_capped(path: Path, cap: int) -> bytes:
    """At most `cap` + 1 bytes of a file a person named (/dev/zero is a file too: more
    than `cap` is the caller's "too large"). A named pipe in a folder is read once
    something writes to it within PIPE_WAIT, else SilentPipe, not a hang; a shell's pipe
    (`<(sops -d ...)`, /dev/stdin) has its writer already and may take its time."""
    import errno
    import select
    import stat

    named_pipe = stat.S_ISFIFO(os.stat(path).st_mode) and \
        "pipe:[" not in os.path.realpath(path)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if named_pipe else 0))
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if named_pipe:  # poll, not a thread's timed wait: those hang under libfaketime
            waiting = select.poll()
            waiting.register(fd, select.POLLIN | select.POLLHUP)
            if not waiting.poll(int(PIPE_WAIT * 1000)):
                raise SilentPipe(f"{path}: nothing writes to the pipe")
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            try:
                return f.read(cap + 1)
            except OSError as e:
                raise OSError(e.errno, e.strerror, str(path)) from None
    finally:
        os.close(fd)
