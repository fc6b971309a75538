"""A crash of the console, reported without what it must not show.

Textual's own report prints the traceback with every frame's local variables, and the
console's locals hold the config (notifier URLs and headers, which carry tokens). This
report has no locals, and every secret the config names (a notifier's URL and header
values, as written and with their `${ENV}` references filled in) is masked. It is also
kept in the state directory (0600), so the person can attach it to a bug report.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from core.secrets import MIN_MASKED, SecretError, longest_first, mask, resolve

MASK = "[redacted]"


def config_secrets(config: Any) -> list[str]:
    """Every value of the config that may be a secret, as written and as expanded."""
    out: list[str] = []
    alerting = getattr(config, "alerting", None)
    for notifier in (getattr(alerting, "notifiers", None) or {}).values():
        for value in (notifier.url, *notifier.headers.values()):
            if value:
                out.append(value)
                with contextlib.suppress(SecretError, OSError):
                    resolve(value, out)  # the values it refers to
    return [s for s in out if len(s) >= MIN_MASKED]


def crash_report(exc: tuple[type[BaseException], BaseException, TracebackType | None] | None,
                 secrets: list[str]) -> str:
    """The traceback of ``exc`` without locals, secrets masked."""
    kind, error, tb = exc or (None, None, None)
    if error is None:
        return "fleetdeck crashed (no exception recorded)\n"
    return mask("".join(traceback.format_exception(kind, error, tb)),
                longest_first(secrets), MASK)


def save_report(state_dir: Path, text: str) -> Path | None:
    """Write the report beside the state (private); None if that fails too."""
    path = Path(state_dir) / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        return None
    return path
