"""The console's text styles by meaning (failed, warning, muted…), resolved for the theme
in force, so a screen never names a colour.

One table says what each meaning looks like: a theme colour plus attributes. Three ways
to draw it follow from that table:

- a true-colour theme: the theme's own colour (so its contrast is the theme's, tested in
  `tests/unit/test_theme_contrast.py`);
- the `ansi` theme: the terminal's 16-colour name (`ansi_red` → `red`);
- NO_COLOR: attributes only (bold, underline), so a failure still stands out where no
  colour is drawn at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.color import Color
from textual.theme import Theme


@dataclass(frozen=True)
class Role:
    colour: str  # a theme colour: error, warning, success, primary, secondary, accent, muted
    attrs: str = ""  # attributes in every theme
    plain: str = ""  # attributes with NO_COLOR, where the colour is gone


_BAD = Role("error", "bold", "bold")
_WARN = Role("warning", "", "underline")
_GOOD = Role("success")
_MUTED = Role("muted")

ROLES: dict[str, Role] = {
    # run states
    "queued": Role("secondary"),
    "running": Role("primary", "bold", "bold"),
    "succeeded": _GOOD,
    "failed": _BAD,
    "timed_out": Role("accent", "bold", "bold"),
    "cancelled": _WARN,
    "skipped": _MUTED,
    "interrupted": Role("warning", "bold", "bold underline"),
    # host health and check statuses
    "up": _GOOD, "pending": Role("secondary"), "down": _BAD, "gave_up": _BAD,
    "maintenance": _WARN, "ok": _GOOD, "warn": _WARN, "crit": _BAD,
    # fan-out host results
    "connecting": Role("primary"), "unreachable": Role("error", "", "bold"),
    "auth_failed": Role("error", "", "bold"), "become_failed": Role("error", "", "bold"),
    "host_key_unknown": _WARN,
    "host_key_changed": _BAD, "host_key_revoked": _BAD,
    # alerts
    "firing": _BAD, "acknowledged": _WARN, "silenced": _MUTED, "resolved": _GOOD,
    # log levels
    "error": _BAD, "warning": _WARN, "debug": _MUTED,
    "skipped_lines": Role("muted", "italic", "italic"),
    # everything else
    "muted": _MUTED, "paused": _WARN, "notice": _WARN, "trend": Role("secondary"),
    "bad": Role("error", "", "bold"), "alarm": Role("error", "bold", "bold"),
}
PLAIN_ROLE = Role("")


def _active_app() -> Any:
    """The running console, or None (a style asked for outside an app, as in a test)."""
    from textual._context import active_app

    try:
        return active_app.get()
    except LookupError:
        return None


def no_colour_style(role: str) -> str:
    """The role's look with NO_COLOR: attributes only."""
    return ROLES.get(role, PLAIN_ROLE).plain


def _ansi_name(value: str | None) -> str:
    if not value or not value.startswith("ansi_"):
        return ""
    name = value[len("ansi_"):]
    return "" if name == "default" else name


def theme_colours(theme: Theme) -> dict[str, str]:
    """The theme's text colours by name, as Rich style colours (hex, or an ANSI name for
    the ansi theme). `muted` is Textual's `$text-muted` over the background; in the ansi
    theme it is the terminal's default colour (dim and bright black vanish on many
    palettes)."""
    variables = theme.to_color_system().generate()
    names = ("error", "warning", "success", "primary", "secondary", "accent")
    if theme.ansi:
        out = {n: _ansi_name(getattr(theme, n) or variables.get(n)) for n in names}
        out["muted"] = ""
        return out
    out = {n: Color.parse(getattr(theme, n) or variables[n]).hex for n in names}
    out["muted"] = muted_colour(Color.parse(variables["background"])).hex
    return out


def muted_colour(background: Color) -> Color:
    """Textual's `$text-muted` ("auto 60%") as drawn on `background`."""
    return background + background.get_contrast_text(0.6)


_cache: dict[int, tuple[Theme, dict[str, str]]] = {}


def _styles_for(theme: Theme) -> dict[str, str]:
    hit = _cache.get(id(theme))
    if hit is not None and hit[0] is theme:
        return hit[1]
    colours = theme_colours(theme)
    styles = {name: " ".join(p for p in (role.attrs, colours.get(role.colour, "")) if p)
              for name, role in ROLES.items()}
    _cache[id(theme)] = (theme, styles)
    return styles


def style(role: str, app: Any = None) -> str:
    """The Rich style of `role` in the running console's theme (NO_COLOR: attributes).

    Outside a console (no app): the ansi theme's look, which any terminal can draw."""
    app = app or _active_app()
    if app is None:
        from tui.theming import builtin_theme

        return _styles_for(builtin_theme("ansi")).get(role, "")
    if getattr(app, "no_color", False):
        return no_colour_style(role)
    return _styles_for(app.current_theme).get(role, "")


def source_style(colour: str, app: Any = None) -> str:
    """A log source's own colour (from the config, or the rotation), none with NO_COLOR."""
    app = app or _active_app()
    return "" if app is not None and getattr(app, "no_color", False) else colour
