"""A real terminal for end-to-end tests: the console runs inside tmux (its own server
socket, a fixed size), keys are typed with short realistic delays through `send-keys`,
and the screen is read back with `capture-pane`, as a person at a terminal would see it.

tmux tests skip when tmux is absent, except in CI (CI=true), where they fail loudly
(.ci/run installs it)."""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from tests.helpers import WAIT, require_tool

TYPING_DELAY = 0.04  # between keys: a fast typist
SIZES = [(80, 24), (160, 48)]
# how the console looks: (theme argument, environment); every end-to-end test runs in each
LOOKS = {"dark": (["--theme", "dark"], {}), "ansi": (["--theme", "ansi"], {}),
         "no-color": (["--theme", "dark"], {"NO_COLOR": "1"})}
MATRIX = [(size, look, f"{size[0]}x{size[1]}-{look}") for size in SIZES for look in LOOKS]
TERMINALS = [pytest.param(size, look, id=name) for size, look, name in MATRIX]
# each size, each look at both sizes but dark: for the longest test (a whole incident,
# 27 s), where the full matrix would cost a minute more and dark is drawn at both sizes
# by every other terminal test
COVERING = [pytest.param(size, look, id=f"{size[0]}x{size[1]}-{look}")
            for size, look in (((80, 24), "dark"), ((160, 48), "ansi"), ((80, 24), "ansi"),
                               ((80, 24), "no-color"), ((160, 48), "no-color"))]
# the same, as one value each: for a fixture's params
TERMINAL_PAIRS = [pytest.param((size, look), id=name) for size, look, name in MATRIX]


def look(name: str) -> tuple[list[str], dict[str, str]]:
    """The console's arguments and environment for a look of LOOKS."""
    args, env = LOOKS[name]
    return list(args), dict(env)


def require_tmux() -> str:
    return require_tool("tmux", "tmux")


class Tmux:
    """One tmux server and session running one command at width x height."""

    def __init__(self, folder: Path, width: int = 80, height: int = 24,
                 env: Mapping[str, str] | None = None) -> None:
        self.binary = require_tmux()
        self.folder = folder
        self.width, self.height = width, height
        self.socket = f"fd-test-{uuid.uuid4().hex[:12]}"
        self.env = dict(env or {})
        self.started = False

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, "-L", self.socket, *args], capture_output=True,
                              text=True, check=check, timeout=30)

    def start(self, argv: Sequence[str], cwd: Path | None = None) -> Tmux:
        """Start `argv` in a new session; TERM as a modern terminal has it."""
        env = {"TERM": "xterm-256color", "COLORTERM": "", "LANG": "C.UTF-8", **self.env}
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        unset = " ".join(f"-u {k}" for k in ("NO_COLOR", "FORCE_COLOR", "TMUX")
                         if k not in env)
        line = f"cd {shlex.quote(str(cwd or self.folder))} && exec env {unset} {exports} " \
               + " ".join(shlex.quote(a) for a in argv)
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(self.width),
                   "-y", str(self.height), line)
        self._tmux("set-option", "-t", "t", "remain-on-exit", "on")
        self._tmux("set-option", "-s", "escape-time", "10")
        self.started = True
        return self

    def record(self, path: Path) -> None:
        """From now on, every byte the program writes to the terminal is appended to
        `path` (tmux pipe-pane): what it sent, before tmux's own rendering of it."""
        self._tmux("pipe-pane", "-t", "t", f"cat >> {shlex.quote(str(path))}")

    def keys(self, *names: str, delay: float = TYPING_DELAY) -> None:
        """Press keys by tmux name (`Enter`, `Escape`, `C-c`, `Up`, `Tab`), one by one. A
        name tmux does not know is typed as text: use `type()` for `:` and the like."""
        for name in names:
            self._tmux("send-keys", "-t", "t", name)
            time.sleep(delay)

    def type(self, text: str, delay: float = TYPING_DELAY) -> None:
        """Type text literally, a character at a time."""
        for ch in text:
            self._tmux("send-keys", "-t", "t", "-l", ch)
            time.sleep(delay)

    def screen(self, escapes: bool = False) -> str:
        """What the terminal shows now (`escapes`: with SGR colour/style sequences)."""
        args = ["capture-pane", "-p", "-t", "t"] + (["-e"] if escapes else [])
        return self._tmux(*args).stdout

    def scrollback(self) -> str:
        """Everything the terminal holds: the screen and the lines scrolled off its top."""
        return self._tmux("capture-pane", "-p", "-t", "t", "-S", "-").stdout

    def wait_for(self, predicate: str | Callable[[str], bool], what: str = "",
                 timeout: float = WAIT) -> str:
        """The screen once it shows `predicate` (a text, or a test on the screen)."""
        test = (lambda s: predicate in s) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        shown = ""
        while time.monotonic() < deadline:
            shown = self.screen()
            if test(shown):
                return shown
            if self.exited():  # one last look: the exit may be what was awaited
                if test(shown):
                    return shown
                break
            time.sleep(0.05)
        raise AssertionError(f"the terminal never showed {what or predicate!r}; it shows:\n"
                             f"{shown}")

    def exited(self) -> bool:
        res = self._tmux("display-message", "-p", "-t", "t", "#{pane_dead}", check=False)
        return res.stdout.strip() == "1"

    def stop(self) -> None:
        if self.started:
            self._tmux("kill-server", check=False)
            self.started = False
