"""Secrets referenced, never written: `${NAME}` (an environment variable of the engine)
and `${file:PATH}` (a file only its owner can read) in job environments and notifier
URLs and headers.

The config and everything recorded (history, events, the audit trail) keep the
reference as written; the value is filled in at the moment of use, and whatever a
run prints is masked with every value filled in for it before it reaches its log, its
events or the screen.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

REF_RE = re.compile(r"\$\{(?:file:([^}]+)|([A-Za-z_][A-Za-z0-9_]*))\}")
MASK = "***"
MIN_MASKED = 4  # a shorter value would mask half of every line


class SecretError(ValueError):
    """A reference that cannot be filled in; the message names it, never a value."""


def file_problem(path: str) -> str | None:
    """Why ``path`` may not hold a secret (not a private file of this user), or None."""
    try:
        st = os.stat(path)
    except OSError as e:
        return f"{path}: {e.strerror or e}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: not a regular file"
    if st.st_uid != os.getuid():
        return f"{path}: not owned by you"
    if st.st_mode & 0o077:
        return f"{path}: readable by others (mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it"
    return None


def resolve(text: str, found: list[str], env: Mapping[str, str] | None = None) -> str:
    """``text`` with its references filled in; each value is added to ``found``."""
    env = os.environ if env is None else env

    def sub(m: re.Match[str]) -> str:
        path, name = m.group(1), m.group(2)
        if path is not None:
            problem = file_problem(path)
            if problem:
                raise SecretError(f"secret file {problem}")
            value = Path(path).read_text(encoding="utf-8").rstrip("\n")
        else:
            value = env.get(name)
            if value is None:
                raise SecretError(f"environment variable {name} is not set")
        if len(value) >= MIN_MASKED:
            found.append(value)
        return value

    return REF_RE.sub(sub, text)


def mask(text: str, secrets: list[str], replacement: str = MASK) -> str:
    """``text`` with every secret in it replaced; ``secrets`` as ``longest_first`` gives
    them (so a secret inside a longer one does not leave the rest showing)."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, replacement)
    return text


def longest_first(secrets: list[str]) -> list[str]:
    return sorted({s for s in secrets if s}, key=len, reverse=True)
