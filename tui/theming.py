"""Themes: the files in `themes/` plus any the person drops in the config directory.

A theme file is TOML naming the colours of a Textual theme. A bad file is reported
in one line (file and what is wrong) and skipped; it never stops the console.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from textual.color import Color, ColorParseError
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
    if value.startswith("ansi_"):
        return value
    try:
        Color.parse(value)
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
    return Theme(**kwargs)  # type: ignore[arg-type]


def load_theme_file(path: Path) -> Theme:
    try:
        text = path.read_text(encoding="utf-8")
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


def stylesheet_path() -> Path:
    return Path(str(resources.files("themes") / "app.tcss"))
