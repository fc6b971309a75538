"""NO_COLOR and the palette: no colour leaves the console, and what colour told apart,
attributes still do."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rich.segment import Segment
from rich.style import Style
from textual.color import Color

from tui.palette import ROLES, no_colour_style, style
from tui.theming import SixteenColours, StripColour, builtin_theme, no_color_requested


@pytest.mark.parametrize(("environ", "wanted"), [
    ({}, False), ({"NO_COLOR": ""}, False), ({"NO_COLOR": "1"}, True),
    ({"NO_COLOR": "0"}, True),  # any non-empty value, as no-color.org says
])
def test_no_color_is_set_and_not_empty(environ, wanted):
    assert no_color_requested(environ) is wanted


def test_strip_colour_keeps_attributes_only():
    styles = [Style(color="#303030", bgcolor="color(234)", bold=True, dim=True),
              Style(color="red", reverse=True), Style(underline=True)]
    out = StripColour().apply([Segment("x", s) for s in styles], Color(0, 0, 0))
    for seg in out:
        assert seg.style.color is None and seg.style.bgcolor is None
        assert not seg.style.dim
    assert [(s.style.bold, s.style.reverse, s.style.underline) for s in out] == [
        (True, None, None), (None, True, None), (None, None, True)]


def test_sixteen_colours_turns_rgb_into_the_terminal_palette():
    app = SimpleNamespace(current_theme=builtin_theme("ansi"), no_color=False)
    flt = SixteenColours(app)
    assert flt.enabled
    (seg,) = flt.apply([Segment("x", Style(color="#00ff00", bgcolor="color(16)"))],
                       Color(0, 0, 0))
    assert seg.style.color.number < 16 and seg.style.bgcolor.number < 16
    app.current_theme = builtin_theme("dark")
    assert not flt.enabled


@pytest.mark.parametrize("role", ["failed", "timed_out", "firing", "down", "crit", "error",
                                  "host_key_changed", "interrupted", "alarm"])
def test_failures_are_bold_without_colour(role):
    assert "bold" in no_colour_style(role)


@pytest.mark.parametrize("role", ["paused", "acknowledged", "warn", "warning", "cancelled"])
def test_warnings_are_underlined_without_colour(role):
    assert "underline" in no_colour_style(role)


def test_no_colour_styles_name_no_colour_and_no_dim():
    for role in ROLES:
        words = set(no_colour_style(role).split())
        assert words <= {"bold", "underline", "reverse", "italic"}, role


def test_a_theme_draws_its_own_colours_and_ansi_its_names():
    dark = SimpleNamespace(no_color=False, current_theme=builtin_theme("dark"))
    ansi = SimpleNamespace(no_color=False, current_theme=builtin_theme("ansi"))
    plain = SimpleNamespace(no_color=True, current_theme=builtin_theme("dark"))
    assert style("failed", dark) == "bold #F95C70"
    assert style("failed", ansi) == "bold bright_red"
    assert style("failed", plain) == "bold"
    for role in ROLES:
        for word in style(role, ansi).split():
            assert not word.startswith("#") and "color(" not in word, (role, word)
