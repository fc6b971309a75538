"""One registry of named commands: the `:` command line and the palette both read it.

A command names an app method (`cmd_<name>`) and how many arguments it takes, so the
same verbs are typed, searched in the palette and bound to keys without a second list.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


class CommandError(ValueError):
    """A command line that cannot be run; one line for the person."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    args: tuple[str, ...] = ()  # argument names, all required
    optional: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    acts: bool = False  # changes something: refused in a read-only console
    destructive: bool = False  # asks for confirmation first
    rest: str = ""  # name of a trailing free-form part (any number of words)

    @property
    def usage(self) -> str:
        parts = [self.name, *(a.upper() for a in self.args),
                 *(f"[{a.upper()}]" for a in self.optional),
                 *([f"[-- {self.rest.upper()}]"] if self.rest else [])]
        return " ".join(parts)


COMMANDS: tuple[Command, ...] = (
    Command("overview", "triage: what is failing, what is running, what is next",
            aliases=("o", "home")),
    Command("jobs", "jobs with schedules, next fire and last result"),
    Command("queue", "queued and running runs, and why they wait"),
    Command("runs", "run history; optionally of one job", optional=("job",),
            aliases=("history",)),
    Command("hosts", "host health: state, CPU, memory, disk, load, trends, failing checks"),
    Command("fanout", "one command on many hosts: :fanout @web -- uptime",
            optional=("pattern",), rest="command"),
    Command("alerts", "firing, acknowledged and silenced alerts"),
    Command("logs", "the log sources, merged and live"),
    Command("audit", "who did what, when, through what"),
    Command("cluster", "the cluster's nodes: leader and term, load, heartbeat"),
    Command("missed", "occurrences missed while fleetdeck was down: ran late or skipped"),
    Command("ack", "acknowledge an alert: no more reminders", args=("alert",), acts=True),
    Command("silence", "hold notifications for a check, host, check@host or #ID",
            args=("target", "duration"), acts=True),
    Command("unsilence", "end the silences on a target now (as it was silenced)",
            args=("target",), acts=True),
    Command("log", "open a run's output", args=("run",), aliases=("open",)),
    Command("run", "run a job now", args=("job",), acts=True),
    Command("pause", "pause a job's schedule", args=("job",), acts=True),
    Command("resume", "resume a paused job", args=("job",), acts=True),
    Command("cancel", "cancel a queued or running run", args=("run",), acts=True,
            destructive=True),
    Command("reload", "the daemon re-reads its config (an attached console)", acts=True),
    Command("theme", "switch theme (no name: list them)", optional=("name",)),
    Command("help", "keys of the current screen, then every : command", aliases=("?",)),
    Command("quit", "leave the console (a standalone engine stops with it)",
            aliases=("q", "q!", "exit")),
)

_BY_NAME: dict[str, Command] = {}
for _c in COMMANDS:
    _BY_NAME[_c.name] = _c
    for _a in _c.aliases:
        _BY_NAME[_a] = _c


def find(name: str) -> Command | None:
    return _BY_NAME.get(name)


def parse(line: str) -> tuple[Command, list[str]]:
    """`run backup` -> (Command run, ["backup"]); errors say what to type instead."""
    text = line.strip().removeprefix(":").strip()
    if not text:
        raise CommandError("empty command; try :help or :jobs")
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise CommandError(f"cannot read {text!r}: {e}") from None
    name, args = words[0], words[1:]
    cmd = find(name)
    if cmd is None:
        from core.config import did_you_mean

        hint = did_you_mean(name, _BY_NAME, "; :help lists the commands")
        raise CommandError(f"unknown command :{name}{hint}")
    if len(args) < len(cmd.args):
        raise CommandError(f"usage: :{cmd.usage}")
    if cmd.rest:  # `:fanout @web -- uptime -l`: the words after `--` are one argument
        tail = ""
        if "--" in args:
            cut = args.index("--")
            args, tail = args[:cut], text.split(" -- ", 1)[1].strip() if " -- " in text \
                else " ".join(args[cut + 1:])
        if len(args) > len(cmd.args) + len(cmd.optional):
            raise CommandError(f"too many arguments; usage: :{cmd.usage}")
        return cmd, [*args, *([None] * (len(cmd.args) + len(cmd.optional) - len(args))),
                     *([tail] if tail else [])]
    if len(args) > len(cmd.args) + len(cmd.optional):
        raise CommandError(f"too many arguments; usage: :{cmd.usage}")
    return cmd, args


def id_number(text: str) -> int | None:
    """An id as people write it (12 or #12), else None: ASCII digits only (int() also
    reads '٣', '1_0' and ' 3'), at least 1. The CLI and the console read ids this way."""
    digits = text.removeprefix("#")
    if digits.isascii() and digits.isdigit() and int(digits) >= 1:
        return int(digits)
    return None


def parse_id(text: str, what: str = "a run id", example: int = 42) -> int:
    number = id_number(text)
    if number is None:
        raise CommandError(f"not {what}: {text!r} (e.g. {example})")
    return number


def parse_run_id(text: str) -> int:
    return parse_id(text)


def parse_alert_id(text: str) -> int:
    return parse_id(text, "an alert id", 12)
