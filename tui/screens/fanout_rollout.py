"""A fan-out's options typed in the console, and the questions a rolling one asks.

The command field takes the CLI's options first, ended by `--`, so the same words work
in both places: `--serial 1,25% --max-fail 1 --become -K -- systemctl restart app`.
A canary plan (`--serial 1,...`) stops after its first batch and asks before the rest
goes; `-K` asks for the sudo password in a field that shows nothing of it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

OPTIONS = ("--serial", "--max-fail", "--pause-between", "--become", "-K",
           "--ask-become-pass")


@dataclass
class TypedFanOut:
    """What the command field said: the command, and the options before it."""

    command: str
    serial: str | None = None
    max_fail: str | None = None
    pause_between: str | None = None
    become: str | None = None
    ask_password: bool = False

    @property
    def canary(self) -> bool:
        from core.remote.rollout import make_rollout

        return make_rollout(self.serial, self.max_fail, self.pause_between).has_canary

    def params(self) -> dict[str, Any]:
        """The engine's fanout_start parameters these options set."""
        p: dict[str, Any] = {k: v for k, v in (
            ("serial", self.serial), ("max_fail", self.max_fail),
            ("pause_between", self.pause_between), ("become", self.become)) if v}
        if self.serial and self.canary:
            p["hold_canary"] = True  # the console asks before the rest goes
        return p


def parse_typed(text: str) -> TypedFanOut:
    """The command field; ValueError (one line) naming a bad option."""
    from core.remote.become import valid_user
    from core.remote.rollout import RolloutError, make_rollout

    text = text.strip()
    if not text.startswith("-"):
        return TypedFanOut(text)
    head, sep, command = text.partition(" -- ")
    if not sep:
        if text.rstrip().endswith(" --") or text == "--":
            head, command = text.rstrip().removesuffix("--"), ""
        else:
            raise ValueError("options go before `--` and the command: "
                             "--serial 2 -- uptime")
    try:
        words = shlex.split(head)
    except ValueError as e:
        raise ValueError(f"options: {e}") from None
    typed = TypedFanOut(command.strip())
    i = 0
    while i < len(words):
        w = words[i]
        takes = w in ("--serial", "--max-fail", "--pause-between")
        if w not in OPTIONS:
            raise ValueError(f"unknown option {w!r}; one of {', '.join(OPTIONS)}")
        if takes:
            if i + 1 >= len(words):
                raise ValueError(f"{w} needs a value")
            setattr(typed, w[2:].replace("-", "_"), words[i + 1])
            i += 2
            continue
        if w == "--become":
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if nxt and not nxt.startswith("-"):
                if not valid_user(nxt):
                    raise ValueError(f"--become: invalid user name {nxt!r}")
                typed.become = nxt
                i += 2
                continue
            typed.become = "root"
        else:
            typed.ask_password = True
        i += 1
    try:
        make_rollout(typed.serial, typed.max_fail, typed.pause_between)
    except RolloutError as e:
        raise ValueError(f"--{e}") from None
    return typed


def rollout_state(roll: dict[str, Any]) -> str:
    """Where a rolling fan-out is, for the summary line."""
    where = f"batch {roll.get('batch', 0)}/{roll.get('batches', 0)}"
    if roll.get("stopped"):
        return f"{where}: stopped: {roll['stopped']}"
    if roll.get("held"):
        return f"{where}: canary done, waiting for you to go on"
    return where


def held_question(rec: dict[str, Any]) -> tuple[str, str]:
    """The question when a canary batch has ended: how it went, and what goes next."""
    hosts = rec.get("hosts", {})
    roll = rec.get("rollout") or {}
    first = [r for r in hosts.values() if r.get("batch") == 1]
    ok = sum(1 for r in first if r.get("state") == "ok")
    rest = sum(1 for r in hosts.values() if (r.get("batch") or 0) > 1)
    bad = [f"{r['host']} {r['state']}" for r in first if r.get("state") != "ok"]
    question = (f"Canary of fan-out #{rec['id']}: {ok} of {len(first)} ok. Go on with the "
                f"other {rest} host{'s' if rest != 1 else ''} "
                f"({roll.get('batches', 1) - 1} more batches)?")
    detail = "No: the rest end cancelled; the canary's output is on the grid (Enter)."
    if bad:
        detail = "Not ok: " + ", ".join(bad[:8]) + ". " + detail
    return question, detail


class PasswordScreen(ModalScreen[str | None]):
    """The sudo password for a fan-out: typed once, shown as dots, kept by nobody but
    the fan-out it is given to."""

    DEFAULT_CSS = """
    PasswordScreen { align: center middle; }
    PasswordScreen > Vertical { width: 60; height: auto; border: thick $primary;
                                background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="password.cancel")]

    def __init__(self, user: str) -> None:
        super().__init__()
        self.user = user

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"sudo password to become {self.user} on the hosts "
                         "(Enter gives it, Esc cancels):")
            yield Input(password=True, id="become-password")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value
        event.input.value = ""  # not left in a widget
        self.dismiss(value)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
