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


def test_each_command_group_adds_the_commands_main_names_for_it() -> None:
    """main.GROUPS says which module adds a command, so a command imports its own
    only: a command added elsewhere would be unknown to `fleetdeck COMMAND`."""
    from tui.cli.main import GROUPS, group_module

    for name, commands in GROUPS:
        sub = argparse.ArgumentParser().add_subparsers()
        group_module(name).add_parsers(sub)
        assert tuple(sub.choices) == commands, name


@pytest.mark.parametrize(("argv", "word"), [
    (["runs", "--job", "x"], "runs"),
    (["--config", "runs", "fanout", "web", "--", "uptime"], "fanout"),
    (["--conf", "c.toml", "--state-dir=/s", "--read-only", "jobs"], "jobs"),
    (["--st", "/s", "--log-format", "json", "-h"], None),
    (["--", "runs"], None),
    ([], None),
])
def test_the_command_word_is_found_as_argparse_finds_it(argv: list[str], word: str | None
                                                        ) -> None:
    from tui.cli.main import command_of

    assert command_of(argv) == word


def test_a_command_imports_no_other_command_group() -> None:
    import subprocess
    import sys

    from tests.helpers import ROOT

    code = ("import sys\n"
            "from tui.cli.main import build_parser, command_of\n"
            "build_parser(command_of(['--state-dir', '/s', 'fanout', 'web'])).parse_args(\n"
            "    ['--state-dir', '/s', 'fanout', 'web'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('tui.cli.') and\n"
            "             m not in ('tui.cli.main', 'tui.cli.common', 'tui.cli.tables')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "['tui.cli.fanout', 'tui.cli.fanouts']"


@pytest.mark.parametrize("text", ["٣", "1_0", " 3\n", "0", "-1", "1.5", "#", "", "+3"])
def test_an_id_is_written_in_ascii_digits(text: str) -> None:
    """int() reads '٣' as 3 and '1_0' as 10: run, alert and fan-out ids are digits."""
    from tui.cli.common import numbered, run_id

    for parse in (run_id, numbered("a fan-out id", 12)):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
    assert run_id("#42") == run_id("42") == 42
