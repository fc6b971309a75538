"""The `fleetdeck` command: global options, one sub-parser per command group, and the one
place that turns a person's mistake into a line on stderr and exit status 2.

Headless commands print with rich and call the same engine methods the console calls.
Textual is imported only when the console opens.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any

from core.config import ConfigError
from core.paths import default_config_path, default_state_dir
from tui.cli.common import (
    EXIT_CANCELLED,
    EXIT_USAGE,
    CLIError,
    err,
    option_of,
    os_error_line,
    path_arg,
    state_dir_of,
)

# Each command group's module and the commands it adds, in `--help`'s order. A command
# imports its own module only (all of them cost ~20 ms at every start, a tenth of a
# 10-host fan-out's own work); `--help` and a word that is no command build them all.
GROUPS = (
    ("console", ("console",)),
    ("demo", ("demo",)),
    ("health", ("health",)),
    ("daemon", ("daemon", "reload", "audit")),
    ("status", ("status",)),
    ("jobs", ("jobs", "run", "runs", "logs", "pause", "resume", "cancel")),
    ("schedule", ("schedule",)),
    ("configfile", ("check-config", "init", "config-schema")),
    ("fanouts", ("hosts", "fanouts")),
    ("fanout", ("fanout",)),
    ("transfer", ("push", "pull")),
    ("hostkeys", ("trust-ca",)),
    ("alerts", ("alerts", "ack", "silence", "silences", "unsilence")),
    ("workflows", ("workflow", "approvals", "approve", "reject", "retry", "remediate")),
    ("cluster", ("cluster",)),
)
# the top-level options that take a value: the word after one is not the command
_VALUED = ("--config", "--state-dir", "--log-format", "--theme")


def command_of(argv: list[str]) -> str | None:
    """The command word of a command line (as argparse will find it: the first word
    that is no option, nor an option's value), or None when there is none."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--":
            return None
        elif word.startswith("-"):  # argparse takes any unambiguous prefix: --conf FILE
            skip = "=" not in word and len(word) > 2 and sum(
                o.startswith(word) for o in _VALUED) == 1
        else:
            return word
    return None


def group_module(name: str) -> Any:
    return importlib.import_module(f"tui.cli.{name}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command`, only its group's sub-parsers (any other
    command word is then unknown to it: main() builds all when the word is no command)."""
    p = argparse.ArgumentParser(
        prog="fleetdeck",
        description="Keyboard-driven operations console: jobs, schedules, runs and logs.",
    )
    p.add_argument("--config", type=path_arg, default=None, metavar="FILE",
                   help="config file (default: $XDG_CONFIG_HOME/fleetdeck/config.toml, here "
                        f"{_home(default_config_path())}; the built-in config when no file "
                        "is there)")
    p.add_argument("--state-dir", type=path_arg, default=None, metavar="DIR",
                   help="state directory (default: $XDG_STATE_HOME/fleetdeck, here "
                        f"{_home(default_state_dir())})")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="format of fleetdeck's own log (default: text)")
    p.add_argument("--version", action=_VersionAction, nargs=0,
                   help="show program's version number and exit")
    p.add_argument("--read-only", action="store_true",
                   help="console: look, but run, pause and cancel nothing")
    p.add_argument("--theme", help="console theme: dark, light, high-contrast, ansi, or "
                                   "yours (default: the config's `theme`, else dark; ansi "
                                   "over SSH)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, commands in GROUPS:
        if command is None or command in commands:
            group_module(name).add_parsers(sub)
    return p


class _VersionAction(argparse.Action):
    """--version, looked up only when asked (importlib.metadata costs ~20 ms at start)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kw: Any) -> None:
        print(f"fleetdeck {_version()}")
        parser.exit()


def _home(path: Path) -> str:
    """A path under the home folder as ~/..., as a person writes it."""
    try:
        return f"~/{path.relative_to(Path.home())}"
    except ValueError:
        return str(path)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fleetdeck")
    except Exception:
        return "0+unknown"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    word = command_of(argv)
    known = any(word in commands for _, commands in GROUPS)
    try:  # a Ctrl-C while the command's module loads: quiet, as a later one
        parser = build_parser(word if known else None)
        if not known:
            _unknown_option(parser, argv, word)
        args = _parse(parser, argv)
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    try:
        return _dispatch(args)
    except CLIError as e:
        err(str(e))
        return EXIT_USAGE
    except ConfigError as e:
        if e.os_error is not None:  # not a mistake in the file: it could not be read
            path = e.issues[0].file if e.issues else None
            err(os_error_line(e.os_error, path, *option_of(args, e.os_error.filename or path)))
            return EXIT_USAGE
        for issue in e.issues:
            print(str(issue), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except BrokenPipeError:
        # `fleetdeck logs 12 | head`: the reader went away; that is not an error
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except OSError as e:
        # the last resort for a file or folder that failed wherever it was touched (the
        # state directory, its lock, a run's log, audit.jsonl): one line, no traceback
        if e.filename is None:
            raise  # no path to name: a bug, and its traceback is the report
        err(os_error_line(e, None, *option_of(args, e.filename)))
        return EXIT_USAGE


_OPTIONS = (*_VALUED, "--version", "--read-only", "--help", "-h")


def _unknown_option(parser: argparse.ArgumentParser, argv: list[str], word: str | None) -> None:
    """`fleetdeck -c FILE runs`: argparse names FILE as the unknown command; the mistake
    is the option before it."""
    for arg in argv[:argv.index(word)] if word in argv else argv:
        name = arg.split("=", 1)[0]
        if arg == "--" or not arg.startswith("-") or len(arg) < 2:
            continue
        if not any(o.startswith(name) for o in _OPTIONS if name.startswith("--") or o == name):
            from core.config import did_you_mean

            hint = did_you_mean(name, _OPTIONS, "; fleetdeck --help lists them")
            parser.error(f"unknown option {name}{hint}")


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Everything after the first `--` is a fan-out's command, whatever options came
    between the pattern and it (`fanout web[1-3] --gather -- uptime`)."""
    head = argv[:argv.index("--")] if "--" in argv else argv
    for arg in head:  # argparse reads `-1h` as an option (there is none such), then
        if re.fullmatch(r"-\d+(\.\d+)?[a-z]+", arg):  # asks for the duration it left out
            parser.error(f"{arg}: a duration is not negative (e.g. {arg[1:]})")
    if "--" not in argv or "fanout" not in argv[:argv.index("--")]:
        return parser.parse_args(argv)  # `run -- a`: argparse's own `--`
    cut = argv.index("--")
    args = parser.parse_args(argv[:cut])
    tail = argv[cut + 1:]
    if args.command != "fanout":
        if tail:
            parser.error(f"unexpected arguments after --: {' '.join(tail)}")
        return args
    args.remote_command = [*(args.remote_command or []), *tail]
    return args


def _dispatch(args: argparse.Namespace) -> int:
    """Each sub-parser names its command (`set_defaults(func=...)`); most take the loaded
    config and the state directory, the few that read no config (`needs_config=False`)
    take the arguments alone. No command: the console."""
    func: Any = getattr(args, "func", None) or group_module("console").cmd_console
    if not getattr(args, "needs_config", True):
        return func(args)
    from core.fleetconfig import load_config
    from tui.keymap import BINDING_IDS

    return func(args, load_config(args.config, key_ids=BINDING_IDS), state_dir_of(args))
