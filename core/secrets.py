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


MAX_SECRET_BYTES = 64 * 1024  # a key or a token; /dev/zero is a file too


def read_secret_file(path: str) -> str:
    """A ${file:PATH} secret's value: the file's text without its last newline; a
    SecretError naming the file when it may not hold one or cannot be used as one."""
    problem = file_problem(path)
    if problem:
        raise SecretError(f"secret file {problem}")
    full = os.path.expanduser(path)
    try:
        with open(full, "rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
    except OSError as e:
        raise SecretError(f"secret file {full}: {e.strerror or e}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(f"secret file {full}: larger than {MAX_SECRET_BYTES // 1024} KB")
    if b"\0" in data:  # no environment variable, header or password can carry one
        raise SecretError(f"secret file {full}: holds a NUL byte")
    try:
        return data.decode("utf-8").rstrip("\n")
    except UnicodeDecodeError:
        raise SecretError(f"secret file {full}: not UTF-8 text") from None


def resolve(text: str, found: list[str], env: Mapping[str, str] | None = None) -> str:
    """``text`` with its references filled in; each value is added to ``found`` (and,
    for a value of several lines, each of its lines: output is masked line by line)."""
    env = os.environ if env is None else env

    def sub(m: re.Match[str]) -> str:
        path, name = m.group(1), m.group(2)
        if path is not None:
            value = read_secret_file(path)
        else:
            value = env.get(name)
            if value is None:
                raise SecretError(f"environment variable {name} is not set")
        found.extend(part for part in {value, *value.splitlines()}
                     if len(part.strip()) >= MIN_MASKED)
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
