"""Text contrast of a theme, as WCAG 2 measures it, so a theme that cannot be read in a
bright room or on a tired projector fails a test instead of an operator.

Every text colour the console draws (foreground, muted text, and the signal colours:
primary, secondary, accent, error, warning, success) is measured on every background it
draws on (background, surface, panel), plus the log view's error and warning lines and
the selected row (cursor text on the cursor).

The ansi theme draws the terminal's own palette, which nobody can know; it is judged with
the standard xterm values on a dark profile: the default background as colour 0
(#000000) and the default foreground as colour 7 (#e5e5e5).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.color import Color
from textual.theme import Theme

MINIMUM = 4.5  # WCAG 2 AA for normal text

XTERM = {  # xterm's 16 colours (its default resources)
    "black": "#000000", "red": "#cd0000", "green": "#00cd00", "yellow": "#cdcd00",
    "blue": "#0000ee", "magenta": "#cd00cd", "cyan": "#00cdcd", "white": "#e5e5e5",
    "bright_black": "#7f7f7f", "bright_red": "#ff0000", "bright_green": "#00ff00",
    "bright_yellow": "#ffff00", "bright_blue": "#5c5cff", "bright_magenta": "#ff00ff",
    "bright_cyan": "#00ffff", "bright_white": "#ffffff",
}
XTERM_DEFAULT_FG = XTERM["white"]
XTERM_DEFAULT_BG = XTERM["black"]

TEXT = ("foreground", "muted", "primary", "secondary", "accent", "error", "warning",
        "success")
GROUNDS = ("background", "surface", "panel")


@dataclass(frozen=True)
class Pair:
    text: str
    ground: str
    ratio: float

    @property
    def label(self) -> str:
        return f"{self.text} on {self.ground}"


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: Color) -> float:
    """WCAG relative luminance."""
    r, g, b = colour.rgb
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


def ratio(fg: Color, bg: Color) -> float:
    """WCAG contrast ratio, 1 to 21."""
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _ansi(value: str, default: str) -> Color:
    name = value.split()[0][len("ansi_"):]
    return Color.parse(default if name == "default" else XTERM[name])


def resolve(value: str, on: Color, *, default_fg: str = XTERM_DEFAULT_FG) -> Color:
    """A theme variable's value as drawn on `on`: `auto 87%` is Textual's contrast text,
    `#hex 50%` is blended, `transparent` is the ground itself, `ansi_*` is xterm's."""
    words = value.split()
    alpha = float(words[1].rstrip("%")) / 100 if len(words) > 1 else 1.0
    if words[0] == "transparent":
        return on
    if words[0] == "auto":
        return on + on.get_contrast_text(alpha)
    if words[0].startswith("ansi_"):
        return _ansi(words[0], default_fg)
    return on + Color.parse(words[0]).with_alpha(alpha * Color.parse(words[0]).a)


def theme_pairs(theme: Theme) -> list[Pair]:
    """Every text-on-ground pair the console draws in `theme`, measured."""
    from tui.palette import theme_colours

    variables = theme.to_color_system().generate()
    if theme.ansi:
        back = Color.parse(XTERM_DEFAULT_BG)
        grounds = {g: (back if variables[g].startswith(("transparent", "ansi_default"))
                       else resolve(variables[g], back, default_fg=XTERM_DEFAULT_BG))
                   for g in GROUNDS}
    else:
        back = Color.parse(variables["background"])
        grounds = {g: resolve(variables[g], back) for g in GROUNDS}
    colours = theme_colours(theme)
    pairs = []
    for ground, bg in grounds.items():
        for text in TEXT:
            if text == "foreground":
                fg = resolve(variables["foreground"], bg)
            elif theme.ansi:
                fg = _ansi(f"ansi_{colours[text] or 'default'}", XTERM_DEFAULT_FG)
            elif text == "muted":
                from tui.palette import muted_colour

                fg = muted_colour(bg)
            else:
                fg = Color.parse(colours[text])
            pairs.append(Pair(text, ground, ratio(fg, bg)))
    for name in ("text-error", "text-warning"):  # the log view's error and warning lines
        surface = grounds["surface"]
        fg = resolve(variables[name], surface)
        pairs.append(Pair(f"log {name[5:]} line", "surface", ratio(fg, surface)))
    cursor_bg = resolve(variables["block-cursor-background"], back,
                        default_fg=XTERM_DEFAULT_BG)
    cursor_fg = resolve(variables["block-cursor-foreground"], cursor_bg)
    pairs.append(Pair("selected row", "cursor", ratio(cursor_fg, cursor_bg)))
    return pairs


def failing(theme: Theme, minimum: float = MINIMUM) -> list[Pair]:
    """The pairs under `minimum`."""
    return [p for p in theme_pairs(theme) if p.ratio < minimum]
