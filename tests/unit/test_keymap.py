"""tui/keymap.py lists every binding id the console declares, no more and no less: the
list `[keys]` is checked against without loading Textual."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from textual.binding import Binding

import tui
from tui.keymap import ACTING_IDS, BINDING_IDS


def declared_ids() -> set[str]:
    ids = set()
    for info in pkgutil.walk_packages(tui.__path__, "tui."):
        if info.name.startswith("tui.cli"):
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                for b in vars(obj).get("BINDINGS") or ():
                    if isinstance(b, Binding) and b.id:
                        ids.add(b.id)
    return ids


def test_the_keymap_is_every_binding_id() -> None:
    assert set(BINDING_IDS) == declared_ids()
    assert ACTING_IDS <= set(BINDING_IDS)  # a renamed id would show again when read-only


def test_every_binding_has_an_id() -> None:
    missing = []
    for info in pkgutil.walk_packages(tui.__path__, "tui."):
        if info.name.startswith("tui.cli"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                missing += [f"{name}: {b.key}" for b in vars(obj).get("BINDINGS") or ()
                            if isinstance(b, Binding) and not b.id]
    assert missing == []
