"""Themes: the files in `themes/` plus any the person drops in the config directory.

A theme file is TOML naming the colours of a Textual theme. A bad file is reported
in one line (file and what is wrong) and skipped; it never stops the console.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from rich.color import ColorSystem, ColorType
from rich.segment import Segment
from rich.style import Style
from textual.color import Color, ColorParseError
from textual.filter import LineFilter, Monochrome, NoColor
from textual.theme import Theme

from core.paths import themes_dir

COLOUR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
               "background", "surface", "panel", "boost")
OTHER_KEYS = {"name": str, "dark": bool, "ansi": bool, "luminosity_spread": float,
              "text_alpha": float, "variables": dict}
BUILTIN_ORDER = ("dark", "light", "high-contrast", "ansi")


class ThemeError(ValueError):
    """One line: the file and what is wrong with it."""


@dataclass
class ThemeSet:
    themes: dict[str, Theme]
    errors: list[str]


def _colour(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ThemeError(f"{where}: expected a colour string, got {type(value).__name__}")
    try:
        Color.parse(value)  # ansi_red as well: ansi_bogus crashed the console
    except ColorParseError:
        raise ThemeError(f"{where}: not a colour: {value!r}") from None
    return value


def parse_theme(text: str, source: str) -> Theme:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ThemeError(f"{source}: invalid TOML: {e}") from None
    kwargs: dict[str, object] = {}
    for key, value in data.items():
        if key in COLOUR_KEYS:
            kwargs[key] = _colour(value, f"{source}: {key}")
        elif key in OTHER_KEYS:
            want = OTHER_KEYS[key]
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want):
                raise ThemeError(f"{source}: {key}: expected {want.__name__}, "
                                 f"got {type(value).__name__}")
            if want is float and not 0.0 <= value <= 1.0:  # nan crashed the console
                raise ThemeError(f"{source}: {key}: expected a number from 0 to 1, "
                                 f"got {value!r}")
            kwargs[key] = value
        else:
            allowed = ", ".join((*COLOUR_KEYS, *OTHER_KEYS))
            raise ThemeError(f"{source}: unknown key {key!r} (allowed: {allowed})")
    if "name" not in kwargs or not str(kwargs["name"]).strip():
        raise ThemeError(f"{source}: a theme needs a name")
    if "primary" not in kwargs:
        raise ThemeError(f"{source}: a theme needs a primary colour")
    variables = kwargs.get("variables") or {}
    for k, v in dict(variables).items():  # type: ignore[call-overload]
        if not isinstance(v, str):
            raise ThemeError(f"{source}: variables.{k}: expected a string")
        _variable(str(k), v, f"{source}: variables.{k}")
    return Theme(**kwargs)  # type: ignore[arg-type]


def _variable(name: str, value: str, where: str) -> None:
    """A CSS variable's value as Textual's own have them: text-style flags for a
    `*-style`, else a colour (`auto 87%` and `initial` too). A bad one made every
    widget's stylesheet fail at start: the console died with two CSS error panels."""
    if name.endswith("-style"):
        from textual.css.constants import VALID_STYLE_FLAGS

        wrong = [w for w in value.split() if w not in VALID_STYLE_FLAGS]
        if wrong or not value.strip():
            raise ThemeError(f"{where}: not a text style: {value!r} (e.g. bold, "
                             f"underline, reverse, none)")
        return
    if value.strip() == "initial" or re.fullmatch(r"\s*auto(\s+\d{1,3}%)?\s*", value):
        return
    alpha = re.fullmatch(r"\s*(.+?)\s+\d{1,3}%\s*", value)  # "#81a1c1 35%", as Nord has
    _colour(alpha.group(1) if alpha else value, where)


MAX_THEME_BYTES = 64 * 1024  # a theme is a few lines


def load_theme_file(path: Path) -> Theme:
    try:
        if not path.is_file():  # a FIFO named *.toml hung the console on a blank screen
            raise ThemeError(f"{path}: not a regular file")
        with path.open("rb") as f:
            data = f.read(MAX_THEME_BYTES + 1)
        if len(data) > MAX_THEME_BYTES:
            raise ThemeError(f"{path}: larger than {MAX_THEME_BYTES // 1024} KB; a theme "
                             "is a few lines")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ThemeError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    return parse_theme(text, str(path))


def builtin_theme_files() -> list[Path]:
    folder = resources.files("themes")
    return [Path(str(folder / f"{name}.toml")) for name in BUILTIN_ORDER]


def user_theme_dir() -> Path:
    return themes_dir()


def load_themes(extra_dir: Path | None = None) -> ThemeSet:
    """Built-in themes, then the person's (which may replace a built-in by name)."""
    themes: dict[str, Theme] = {}
    errors: list[str] = []
    files = builtin_theme_files()
    folder = extra_dir or user_theme_dir()
    if folder.is_dir():
        files += sorted(folder.glob("*.toml"))
    for path in files:
        try:
            theme = load_theme_file(path)
        except ThemeError as e:
            errors.append(str(e))
            continue
        themes[theme.name] = theme
    return ThemeSet(themes, errors)


def default_theme_name() -> str:
    """Over SSH the terminal's own palette is the safe choice; locally, dark."""
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return "ansi"
    return "dark"


def builtin_theme(name: str) -> Theme:
    """One of the themes shipped in `themes/` (a user file of that name is not read)."""
    return load_theme_file(Path(str(resources.files("themes") / f"{name}.toml")))


def stylesheet_path() -> Path:
    return Path(str(resources.files("themes") / "app.tcss"))


# ------------------------------------------------------------------------- NO_COLOR --
def no_color_requested(environ: Mapping[str, str] | None = None) -> bool:
    """NO_COLOR as no-color.org defines it: set and not empty. (Textual's own test is
    "set", which an empty NO_COLOR= meant to unset would trip.)"""
    return bool((os.environ if environ is None else environ).get("NO_COLOR"))


_NO_ATTRS = Style(dim=False)


@lru_cache(1024)
def _uncoloured(style: Style) -> Style:
    return style.without_color + _NO_ATTRS


class CurrentTheme:
    """An App mixin: ``current_theme`` without Textual's copy of every registered theme on
    each call. Styles are looked up per cell drawn; 500 changing rows made that copy a
    second of every refresh."""

    _current: tuple[str, Theme] | None = None

    @property
    def current_theme(self) -> Theme:
        name = self.theme  # type: ignore[attr-defined]
        if self._current is None or self._current[0] != name:
            self._current = (name, super().current_theme)  # type: ignore[misc]
        return self._current[1]

    def register_theme(self, theme: Theme) -> None:
        self._current = None
        super().register_theme(theme)  # type: ignore[misc]

    def unregister_theme(self, theme_name: str) -> None:
        self._current = None
        super().unregister_theme(theme_name)  # type: ignore[misc]


class StripColour(LineFilter):
    """Drops every colour (and dim, which many terminals draw as invisible) from what
    the console draws, keeping bold, reverse, underline and italic.

    Textual's NO_COLOR filter turns colours into greys (Monochrome), which a terminal
    gets as 256-colour SGR: grey on grey is not "no colour", and often unreadable."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, None if style is None else _uncoloured(style), control)
                for text, style, control in segments]


@lru_cache(1024)
def _sixteen(style: Style) -> Style:
    colour, back = style.color, style.bgcolor
    if colour is not None and colour.type in _WIDE:
        colour = colour.downgrade(ColorSystem.STANDARD)
    if back is not None and back.type in _WIDE:
        back = back.downgrade(ColorSystem.STANDARD)
    return style + Style(color=colour, bgcolor=back)


_WIDE = (ColorType.EIGHT_BIT, ColorType.TRUECOLOR)


class SixteenColours(LineFilter):
    """While an `ansi` theme is in force, any colour that is not one of the terminal's 16
    becomes the nearest of them: the theme's own colours are all ANSI, but Textual's
    widgets hard-code a few (the command palette's borders and icon are RGB black and
    green), and blends of ANSI colours come out as RGB."""

    def __init__(self, app: Any) -> None:  # no super().__init__: `enabled` follows the theme
        self._app = app

    @property  # type: ignore[override]
    def enabled(self) -> bool:
        return bool(self._app.current_theme.ansi) and not self._app.no_color

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, None if style is None else _sixteen(style), control)
                for text, style, control in segments]


def apply_colour_mode(app: Any, environ: Mapping[str, str] | None = None) -> None:
    """Sets the app's NO_COLOR state from the environment and its output filters to
    match: with NO_COLOR, StripColour in place of Textual's grey filters; without it,
    none of them (an empty NO_COLOR= is no request). SixteenColours keeps an ansi theme
    to the terminal's palette. Called once, before the first paint; the stylesheet's
    `:nocolor` rules and `tui.palette` read `app.no_color`. (`App._filters` is Textual's
    list of output filters; it has no public setter.)"""
    wanted = no_color_requested(environ)
    app.no_color = wanted
    ours = (Monochrome, NoColor, StripColour, SixteenColours)
    filters = [f for f in app._filters if not isinstance(f, ours)]
    filters.append(StripColour() if wanted else SixteenColours(app))
    app._filters = filters
