"""Every theme's text reads: WCAG contrast of at least 4.5:1 for each text colour on each
ground the console draws it on (see tui/contrast.py for the pairs and how the ansi theme
is judged: xterm's standard palette, dark profile)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.color import Color

from tui.contrast import MINIMUM, failing, ratio, theme_pairs
from tui.theming import BUILTIN_ORDER, builtin_theme, load_themes, parse_theme

USER_THEME = """
name = "solar"
dark = true
primary = "#268BD2"
secondary = "#2AA198"
accent = "#CB4B16"
warning = "#B58900"
error = "#DC322F"
success = "#859900"
foreground = "#93A1A1"
background = "#002B36"
surface = "#073642"
panel = "#0A4050"
"""


def test_wcag_reference_values():
    assert ratio(Color.parse("#000000"), Color.parse("#FFFFFF")) == pytest.approx(21.0)
    assert ratio(Color.parse("#777777"), Color.parse("#FFFFFF")) == pytest.approx(4.48, abs=0.01)
    assert ratio(Color.parse("#FFFFFF"), Color.parse("#FFFFFF")) == pytest.approx(1.0)


@pytest.mark.parametrize("name", BUILTIN_ORDER)
def test_builtin_theme_text_contrast(name):
    theme = builtin_theme(name)
    pairs = theme_pairs(theme)
    labels = {p.label for p in pairs}
    assert {"foreground on background", "muted on panel", "error on panel",
            "accent on panel", "selected row on cursor"} <= labels
    bad = [f"{p.label}: {p.ratio:.2f}:1" for p in failing(theme)]
    assert not bad, f"theme {name}: under {MINIMUM}:1: {bad}"


def test_user_theme_files_are_measured_too(tmp_path: Path):
    (tmp_path / "solar.toml").write_text(USER_THEME)
    themes = load_themes(tmp_path)
    assert not themes.errors
    for name, theme in themes.themes.items():
        if name in BUILTIN_ORDER:
            continue
        bad = {p.label for p in failing(theme)}
        # the solarized accents on its own base colours are a known low-contrast palette:
        # the measure says so, which is what a person writing a theme needs to hear
        assert "error on panel" in bad and "foreground on background" not in bad


def test_a_low_contrast_theme_fails():
    grey = parse_theme('name = "mist"\nprimary = "#888888"\nforeground = "#999999"\n'
                       'background = "#777777"\nsurface = "#777777"\npanel = "#777777"\n',
                       "mist.toml")
    assert "foreground on background" in {p.label for p in failing(grey)}


def test_the_ansi_theme_is_judged_with_xterm_colours():
    by_label = {p.label: p.ratio for p in theme_pairs(builtin_theme("ansi"))}
    # ansi_bright_red #ff0000 on black, ansi_default text #e5e5e5 on black
    assert by_label["error on background"] == pytest.approx(5.25, abs=0.01)
    assert by_label["foreground on background"] == pytest.approx(17.0, abs=0.5)
