"""Privilege escalation on a host: a command run through `sudo` as another user.

Without a password, `sudo -n` (never prompts: a password it would need fails the host
at once). With one, `sudo -S -p ''` reads it from the channel: the password goes to the
command's stdin as its first line and nowhere else (not the command line, an event, the
record or a log). The command prints a marker first once it runs as the user; a host
that ends without it did not get past sudo and ends `become_failed`, with sudo's own
words as the reason.
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # reading a config must not load the SSH client
    from core.remote.commands import LineSink

_SUDO_NOISE = ("[sudo]", "Sorry, try again.", "sudo:", "Password:")
_USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?", re.IGNORECASE)


def valid_user(name: str) -> bool:
    """A user name sudo -u can take (POSIX-ish: no spaces, no options)."""
    return bool(_USER_RE.fullmatch(name))


@dataclass(frozen=True)
class Become:
    """Whom to become; the password, when sudo needs one (never printed)."""

    user: str = "root"
    password: str | None = field(default=None, repr=False, compare=False)

    def wrap(self, command: str, kill_grace: float = 2.0) -> tuple[str, str]:
        """The command line that runs `command` as the user, and the marker it prints
        first. Its stdin is /dev/null, as a command's always is: a password sudo did not
        need (a cached credential) is never read by the command.

        The login user cannot signal a process of root's, so the stop is done on the far
        side of sudo too: sudo passes the wrapper's TERM on to a shell of the user's,
        which TERMs the command's process group and KILLs it after the grace (the
        wrapper's own KILL only reaches sudo)."""
        mark = "FLEETDECK-BECOME-" + secrets.token_hex(8)
        grace = max(1, int(kill_grace + 0.999))
        inner = (f"echo {mark}; "
                 "if command -v setsid >/dev/null; then setsid sh -c \"$0\" </dev/null & "
                 "else sh -c \"$0\" </dev/null & fi; c=$!; "
                 f"trap 'kill -TERM -$c 2>/dev/null || kill -TERM $c; sleep {grace}; "
                 "kill -KILL -$c 2>/dev/null || kill -KILL $c' TERM HUP INT; "
                 "wait $c; r=$?; wait $c 2>/dev/null; exit $r")
        how = "-S -p ''" if self.password is not None else "-n"
        return (f"sudo {how} -H -u {shlex.quote(self.user)} -- sh -c {shlex.quote(inner)} "
                f"{shlex.quote(command)}", mark)


class BecomeLines:
    """Lines of a command run through sudo: the marker is dropped and says the user was
    become; stderr before it is sudo's (kept for the reason, not shown as output)."""

    def __init__(self, mark: str, on_line: LineSink) -> None:
        self.mark = mark
        self.on_line = on_line
        self.became = False
        self._before: list[tuple[str, str]] = []

    def __call__(self, stream: str, line: str) -> None:
        if not self.became:
            if stream == "stdout" and line == self.mark:
                self.became = True
                for s, held in self._before:  # the command's own early stderr
                    if not held.startswith(_SUDO_NOISE):
                        self.on_line(s, held)
                self._before.clear()
                return
            self._before.append((stream, line))
            return
        self.on_line(stream, line)

    def reason(self) -> str:
        """Why sudo refused, in its words (or what is likely, when it said nothing)."""
        said = [line.strip() for _, line in self._before if line.strip()]
        words = " ".join(said)
        if "a password is required" in words or "a terminal is required" in words:
            return "sudo needs a password: give --ask-become-pass (-K)"
        if "incorrect password" in words or "Sorry, try again" in words or \
                "no password was provided" in words:
            return "sudo: incorrect password"
        if "command not found" in words or "sudo: not found" in words:
            return "sudo is not installed on the host"
        last = next((s for s in reversed(said) if s.startswith("sudo:")), None)
        return last or (said[-1] if said else "sudo ended before the command ran")
