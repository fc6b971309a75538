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


_OPENED = re.compile(r"\$\{([^}]*)(\}?)")


def reference_problem(text: str, *, strict: bool = True) -> str | None:
    """What is wrong with the references in `text`, checked when the config is read
    (they are filled in later, where a mistake would fail a run or a delivery): an empty
    or relative file path (the daemon's working folder is not the person's); `strict`
    (a URL, a header, a password: nothing else makes sense there), also a `${` that
    makes no reference. Free text (an env value) may hold `${app.dir}` for another
    program: `reference_doubt` says so, as a warning."""
    for m in _OPENED.finditer(text):
        inner = m.group(1)
        if m.group(2) and inner.startswith("file:"):
            path = inner[5:]
            if not path.strip():
                return "${file:}: no path (write ${file:/path/to/secret})"
            if not os.path.isabs(os.path.expanduser(path)):
                return f"${{file:{path}}}: the path must be absolute (or start with ~)"
    return reference_doubt(text) if strict else None


def reference_doubt(text: str) -> str | None:
    """A `${` in `text` that fleetdeck leaves as written (unclosed, or no NAME and no
    file: inside), which may be a mistake."""
    for m in _OPENED.finditer(text):
        inner, closed = m.group(1), m.group(2)
        if not closed:
            return f"{clip_ref(m.group(0))}: no closing '}}' (write ${{NAME}} or " \
                   f"${{file:/path}})"
        if not inner.startswith("file:") and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*",
                                                                inner):
            return f"{clip_ref(m.group(0))}: not a reference; fleetdeck fills in ${{NAME}} " \
                   f"(an environment variable) and ${{file:PATH}} only"
    return None


def clip_ref(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


def file_problem(path: str) -> str | None:
    """Why ``path`` may not hold a secret (not a private file of this user), or None."""
    path = os.path.expanduser(path)
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
            value = Path(path).expanduser().read_text(encoding="utf-8").rstrip("\n")
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
