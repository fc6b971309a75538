"""Colour as a real terminal receives it: the console (`fleetdeck demo`) in tmux, at 80x24
and at 160x48.

NO_COLOR=1 (no-color.org): no colour escape at all, only attributes; the ansi theme: only
the terminal's 16 colours, never the 256-colour cube or RGB. Each is checked twice: in the
pane tmux shows (`capture-pane -e`), and in the bytes the console wrote (`pipe-pane`),
over the overview, jobs, runs, hosts and alerts screens. Every wait is on what the screen
shows, never on a clock.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.tmux import SIZES, Tmux

SGR = re.compile(r"\x1b\[([0-9;:]*)m")
ATTRIBUTES = {0, 1, 3, 4, 7, 22, 23, 24, 27}  # reset, bold, italic, underline, reverse, offs
# tmux's capture-pane writes 39/49 ("default colour") where a cell goes back to the
# default; they name no colour. The console's own bytes carry none of them.
PANE_DEFAULTS = {39, 49}
SIXTEEN = ({*range(30, 38), 39, *range(40, 48), 49, *range(90, 98), *range(100, 108)}
           | ATTRIBUTES | {2, 5, 8, 9, 21, 25, 28, 29})
SCREENS = [("1", "1 Overview", "Failing in the last"), ("2", "2 Jobs", "SCHEDULE"),
           ("4", "4 Runs", "RUN"), ("5", "5 Hosts", "web01"), ("7", "7 Alerts", "ALERT")]


def sgr_codes(text: str) -> list[int | str]:
    """Every SGR parameter in `text`; an extended colour (38;5;n, 48;2;r;g;b) is kept
    whole as a string, so it can never pass for plain numbers."""
    out: list[int | str] = []
    for params in SGR.findall(text):
        parts = re.split("[;:]", params) if params else ["0"]
        i = 0
        while i < len(parts):
            p = int(parts[i] or 0)
            if p in (38, 48, 58):
                kind = parts[i + 1] if i + 1 < len(parts) else ""
                n = 3 if kind == "5" else 5 if kind == "2" else 2
                out.append(";".join(parts[i:i + n]))
                i += n
                continue
            out.append(p)
            i += 1
    return out


def test_sgr_codes_reads_extended_colours_whole():
    assert sgr_codes("\x1b[1;38;5;237;48;2;1;2;3m\x1b[m\x1b[97;44m") == [
        1, "38;5;237", "48;2;1;2;3", 0, 97, 44]


def run_console(tmp_path: Path, args: list[str], env: dict[str, str],
                size: tuple[int, int] = (80, 24)) -> tuple[Tmux, Path]:
    """The demo console in tmux, its output recorded from its first byte: it waits for
    a file that appears once the recording is on."""
    for name in ("home", "state", "config"):
        (tmp_path / name).mkdir()
    env = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), **env}
    gate, raw = tmp_path / "go", tmp_path / "raw.out"
    command = " ".join([sys.executable, "-m", "tui.cli", *args, "demo", "--dir",
                        str(tmp_path / "demo")])
    term = Tmux(tmp_path, *size, env=env)
    term.start(["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; exec {command}"],
               cwd=Path(__file__).resolve().parents[2])
    term.record(raw)
    gate.touch()
    return term, raw


def visit_screens(term: Tmux) -> list[str]:
    """The pane, with escapes, on each screen once it shows its title and its content."""
    term.wait_for(" queued", "the engine started (the status bar counts the queue)")
    panes = []
    for key, title, content in SCREENS:
        term.keys(key)
        term.wait_for(lambda s, t=title, c=content: t in s and c in s, f"{title}: {content}")
        panes.append(term.screen(escapes=True))
    return panes


def not_allowed(text: str, allowed: set[int]) -> list[int | str]:
    return sorted({c for c in sgr_codes(text) if c not in allowed}, key=str)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_color_draws_no_colour(tmp_path, size):
    term, raw = run_console(tmp_path, [], {"NO_COLOR": "1"}, size)
    try:
        panes = visit_screens(term)
        for (_, title, _), pane in zip(SCREENS, panes, strict=True):
            assert not not_allowed(pane, ATTRIBUTES | PANE_DEFAULTS), (title, pane)
        hosts = panes[3]  # a table with rows: its selected row is reverse, not coloured
        assert 7 in sgr_codes(hosts), hosts
        sent = raw.read_bytes().decode("utf-8", "replace")
        assert sgr_codes(sent), "the recording caught the console's output"
        assert not not_allowed(sent, ATTRIBUTES)
    finally:
        term.stop()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ansi_theme_draws_sixteen_colours(tmp_path, size):
    term, raw = run_console(tmp_path, ["--theme", "ansi"], {"TERM": "xterm-256color"}, size)
    try:
        panes = visit_screens(term)
        for (_, title, _), pane in zip(SCREENS, panes, strict=True):
            assert not not_allowed(pane, SIXTEEN), (title, pane)
        sent = raw.read_bytes().decode("utf-8", "replace")
        codes = sgr_codes(sent)
        assert any(isinstance(c, int) and 30 <= c <= 37 for c in codes), "colour is drawn"
        assert not not_allowed(sent, SIXTEEN)
    finally:
        term.stop()


