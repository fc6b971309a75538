"""`--help` of every command says what each option does and its real default: argparse's
own `(default: None)` never shows, and a default the parser holds is the one the help
names."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from tui.cli.main import build_parser


def parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The top parser and every sub-parser under it, however deep (`schedule next`)."""
    todo = [("fleetdeck", build_parser())]
    while todo:
        name, parser = todo.pop(0)
        yield name, parser
        for action in parser._actions:  # noqa: SLF001
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                todo += [(f"{name} {sub}", p) for sub, p in action.choices.items()]


def options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):  # noqa: SLF001
            continue
        yield action


ALL = list(parsers())


def test_every_command_is_walked() -> None:
    names = {n for n, _ in ALL}
    assert {"fleetdeck", "fleetdeck runs", "fleetdeck fanout", "fleetdeck schedule next",
            "fleetdeck demo"} <= names
    assert len(names) > 25


@pytest.mark.parametrize("name,parser", ALL, ids=[n for n, _ in ALL])
def test_help_names_no_none_and_every_real_default(name: str,
                                                   parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    for wrong in ("default: None", "default None", "(None)", "default none"):
        assert wrong not in " ".join(text.split()), (name, wrong)
    for action in options(parser):
        what = f"{name} {'/'.join(action.option_strings) or action.dest}"
        assert action.help, f"{what} has no help"
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or action.const is True:
            continue
        assert f"(default: {default}" in " ".join(action.help.split()) \
            or f"; default: {default}" in action.help, (what, default, action.help)
