"""The key bar (the bottom line) and the grouping of keys the help screen lists.

At 80 columns the bar used to end at `5 Hosts`: the screen keys, then every screen
number, and `?` never showed. Now the nine screen keys are one entry (`1-9 Screens`),
each entry has a priority, and the lowest go first until the line fits; `?` (help) and
the quit key (`q`, or `^q` where a drill-down takes `q` for Back) always stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.markup import escape
from textual.widgets import Static

from tui.keymap import ACTING_IDS

MUST = 100  # never dropped: help and quit


@dataclass
class Entry:
    key: str
    label: str
    order: int  # where it stands on the line
    priority: int  # the lowest are dropped first when the line is too long
    enabled: bool = True

    @property
    def width(self) -> int:
        return len(self.key) + 1 + len(self.label)

    def markup(self) -> str:
        if self.enabled:
            return f"[b $accent]{escape(self.key)}[/] {escape(self.label)}"
        return f"[$text-muted]{escape(self.key)} {escape(self.label)}[/]"


def is_screen_key(binding: Binding) -> bool:
    return binding.action.startswith(("show(", "app.show("))


def bar_entries(app: Any, active: Any) -> tuple[list[Entry], Entry | None]:
    """The bar's entries from a screen's active bindings, and the palette's apart (it
    goes at the right edge when there is room)."""
    entries: list[Entry] = []
    screens: list[str] = []
    palette: Entry | None = None
    seen: set[str] = set()
    quit_key: Entry | None = None  # a drill-down takes `q` for Back: quit is still said
    for node, binding, enabled, _tip in active.values():
        action = binding.action.removeprefix("app.")
        key = app.get_key_display(binding)
        if action == "command_palette":
            palette = Entry(key, "palette", 999, 0, enabled)
            continue
        if action == "request_quit" and quit_key is None:
            quit_key = Entry(key, binding.description, 400, MUST, enabled)
        if not binding.show or action in seen or (
                getattr(app, "read_only", False) and binding.id in ACTING_IDS):
            continue
        seen.add(action)
        if node is app and is_screen_key(binding):
            screens.append(key)
        elif node is app:
            rank = {"help": (300, MUST), "request_quit": (400, MUST),
                    "command_line": (100, 80)}.get(action, (150, 40))
            entries.append(Entry(key, binding.description, *rank, enabled))
        else:
            n = len([e for e in entries if e.order < 100])
            entries.append(Entry(key, binding.description, n, 74 - 5 * n, enabled))
    if quit_key is not None and "request_quit" not in seen:
        entries.append(quit_key)
    if screens:
        keys = f"{screens[0]}-{screens[-1]}" if len(screens) > 1 else screens[0]
        entries.append(Entry(keys, "Screens", 200, 65))
    return entries, palette


def fit(entries: list[Entry], width: int, gap: int = 2) -> list[Entry]:
    """The entries that fit in `width` columns, dropping the least important first,
    in their order on the line."""
    kept = sorted(entries, key=lambda e: -e.priority)
    while kept and sum(e.width for e in kept) + gap * (len(kept) - 1) > width:
        if kept[-1].priority >= MUST:
            break
        kept.pop()
    return sorted(kept, key=lambda e: e.order)


class KeyBar(Static):
    """The bottom line: the keys of the focused screen, as one line of text.

    Textual's Footer makes a widget per key (and restyles each); that was ~80 ms of the
    console's first paint. This is one widget, redrawn when the bindings change.
    """

    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self.show_keys)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: object) -> None:
        if self.is_attached and screen is self.screen:
            self.show_keys()

    def on_resize(self) -> None:
        self.show_keys()

    def show_keys(self) -> None:
        """Screen keys, `:`, the screens, `?`, `q`; what does not fit is left out, least
        important first; the palette key at the right edge when there is room."""
        width = self.size.width - 2
        entries, palette = bar_entries(self.app, self.screen.active_bindings)
        shown = fit(entries, width)
        text = "  ".join(e.markup() for e in shown)
        used = sum(e.width for e in shown) + 2 * max(0, len(shown) - 1)
        if palette is not None and width - used - palette.width >= 2:
            text += " " * (width - used - palette.width) + palette.markup()
        self.update(text)


PASS_ON = frozenset({"screen.copy_text", "copy", "select_cursor"})
GLOBAL_ORDER = ("command_line", "filter", "help", "request_quit")


def help_sections(app: Any, below: Any) -> list[tuple[str, list[Binding]]]:
    """The keys in force on screen `below`, as the help lists them: this screen's own,
    then the ones that work everywhere (`:`, `/`, `?`, `q`, the screens 1-9), then the
    table's motions, then the generic keys of Textual's widgets (no id) last."""
    from textual.screen import Screen

    here: list[Binding] = []
    everywhere: list[Binding] = []
    motions: list[Binding] = []
    generic: list[Binding] = []
    taken: set[str] = set()
    for node, bindings in below._binding_chain:  # noqa: SLF001 - most specific first
        for key, group in bindings.key_to_bindings.items():
            if key in taken:
                continue
            if all(b.action in PASS_ON for b in group):
                # these reach the screen's own binding of the key as well: copy with
                # nothing selected passes ctrl+c on (quit); a row's Enter is the
                # screen's Enter (open). The screen's is listed, the table's Select only
                # where the screen has none
                generic.extend(b for b in group if b not in generic)
                continue
            taken.add(key)
            for b in group:
                if not b.description and not b.id:
                    continue
                action = b.action.removeprefix("app.")
                if not b.id:
                    generic.append(b)  # Textual's own: focus, cursor keys
                elif node is app or action == "filter":
                    everywhere.append(b)
                elif isinstance(node, Screen):
                    here.append(b)
                else:
                    motions.append(b)

    def rank(b: Binding) -> tuple[int, int]:
        action = b.action.removeprefix("app.")
        if action in GLOBAL_ORDER:
            return (0, GLOBAL_ORDER.index(action))
        return (1 if is_screen_key(b) else 2, 0)

    everywhere.sort(key=rank)
    generic = [b for b in generic if b.action != "select_cursor" or b.key not in taken]
    name = below.__class__.__name__.removesuffix("Screen")
    return [(f"{name} keys", here), ("Everywhere", everywhere),
            ("In the list", motions), ("Widget keys", generic)]
