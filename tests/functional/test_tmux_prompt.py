"""The console in a real terminal (tmux) over the demo fleet, at 80x24 and 160x48: the
`:` prompt shows what is typed, completes, recalls, says errors in its line; the `/`
line shows its text and a count; Esc then `1` typed fast goes to Overview and inserts
nothing; keys typed right after `:` all arrive; the key bar shows `?` and `q`.

Every wait is on what the screen shows (never on the clock), so a busy machine only
makes it slower."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.tmux import TERMINAL_PAIRS, Tmux, look


@pytest.fixture(params=TERMINAL_PAIRS)
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tmux]:
    (width, height), name = request.param
    args, extra = look(name)
    env = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHONPATH": str(ROOT), **extra}
    for folder in ("home", "state", "config"):
        (tmp_path / folder).mkdir()
    term = Tmux(tmp_path, width, height, env=env)
    term.start([sys.executable, "-m", "tui.cli", *args, "demo", "--dir",
                str(tmp_path / "demo")])
    try:
        term.wait_for(lambda s: "1 Overview" in s and " running · " in s, "the console")
        yield term
    finally:
        term.stop()


def bottom(screen: str) -> str:
    """The last line the terminal shows (the prompt, or the key bar)."""
    lines = screen.rstrip("\n").split("\n")
    return lines[-1]


def has_line(pattern: str) -> object:
    return lambda s: any(re.search(pattern, line) for line in s.splitlines())


def test_the_prompt_shows_completes_recalls_and_says_errors(console: Tmux) -> None:
    console.wait_for(lambda s: "? Help" in bottom(s) and "q Quit" in bottom(s),
                     "the key bar with ? and q")
    console.type(":run hea")
    console.wait_for(has_line(r"^ :run hea"), "the typed text")
    console.keys("Tab")
    console.wait_for(has_line(r"^ :run heartbeat\s"), ":run heartbeat completed")
    console.keys("Enter")
    console.wait_for("heartbeat: started run", "the run started")
    console.type(":")
    console.wait_for(has_line(r"^ :command  \(Tab"), "the prompt open (its placeholder)")
    console.keys("Up")
    console.wait_for(has_line(r"^ :run heartbeat"), "the last line recalled")
    console.keys("C-u")  # clear the line, as in a shell
    console.type("frobnicate")
    console.keys("Enter")
    console.wait_for(has_line(r"^ :frobnicate .*unknown command :frobnicate"),
                     "the error in the prompt line")
    console.keys("Escape")
    console.wait_for(lambda s: "? Help" in bottom(s), "the prompt closed")


def test_the_filter_line_shows_text_and_a_count(console: Tmux) -> None:
    console.type("2")
    console.wait_for("2 Jobs │", "the jobs screen")
    console.type("/heart")
    console.wait_for(has_line(r"^ /heart\s.*\b1 of \d+$"), "the filter and its count")
    console.keys("Escape")
    console.wait_for(lambda s: "/heart" not in s, "the filter closed")


def test_esc_then_1_fast_goes_to_overview_and_types_nothing(console: Tmux) -> None:
    console.type("2")
    console.wait_for("2 Jobs │", "the jobs screen")
    console.type(":jo")
    console.wait_for(has_line(r"^ :jo"), "the prompt with text")
    console.keys("Escape", "1", delay=0.01)  # within the terminal's escape delay
    shown = console.wait_for("1 Overview │", "the overview")
    assert "¡" not in shown and ":jo" not in shown
    console.type(":")
    shown = console.wait_for(has_line(r"^ :command  \(Tab"), "an empty prompt")
    assert "¡" not in shown


def test_keys_typed_right_after_colon_all_arrive(console: Tmux) -> None:
    console.type(":run hello", delay=0.005)
    console.wait_for(has_line(r"^ :run hello"), "every key in the prompt")
    console.keys("Escape")
    console.type("6n*", delay=0.005)
    console.wait_for(lambda s: re.search(r"▊  \*\s", s) and re.search(r"^ 12 hosts: ", s, re.M),
                     "`*` in the pattern field, naming every host")
