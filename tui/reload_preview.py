"""What a reload would change, asked before the console sends it: the config file in
force read fresh from disk, and the fires it adds and removes in the next 24 hours
against the config in force (core/jobs/preview.py). Plain functions, no Textual: the
app runs them in a thread and shows the answer in a confirmation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.config import ConfigError
from core.fleetconfig import load_config
from core.jobs.preview import diff_fires, local_label
from core.jobs.zones import local_timezone_name
from tui.keymap import BINDING_IDS

WINDOW = 86400  # the fires compared: the next 24 hours
SHOW_FIRES = 10  # fire lines in the confirmation; the rest are counted
SHOW_ERRORS = 3


@dataclass
class ReloadPreview:
    path: Path
    errors: list[str] = field(default_factory=list)  # the new file's first errors
    question: str = ""
    detail: str = ""


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")
    return f" ({shown})" if names else ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def preview_reload(path: Path, current: Any, now: float, window: float = WINDOW) -> ReloadPreview:
    """Read `path` again and compare its jobs' fires in (now, now + window] with
    `current` (the Config in force)."""
    out = ReloadPreview(path)
    try:
        new = load_config(path, key_ids=BINDING_IDS)
    except ConfigError as e:
        out.errors = [str(i) for i in e.issues]
        return out
    old_jobs, new_jobs = current.jobs, new.jobs
    added = sorted(set(new_jobs) - set(old_jobs))
    removed = sorted(set(old_jobs) - set(new_jobs))
    changed = sorted(n for n in set(old_jobs) & set(new_jobs) if old_jobs[n] != new_jobs[n])
    diffs = diff_fires(old_jobs, new_jobs, now, now + window)
    host = ZoneInfo(local_timezone_name())
    plus = sum(len(d.added) for d in diffs.values())
    minus = sum(len(d.removed) for d in diffs.values())
    lines = [f"jobs: {len(added)} added{_names(added)}, {len(removed)} removed"
             f"{_names(removed)}, {len(changed)} changed{_names(changed)}",
             f"+{_plural(plus, 'fire')}, -{_plural(minus, 'fire')} in the next 24h"]
    marked = sorted([(t, "+", name, d.new_zone or host) for name, d in diffs.items()
                     for t in d.added]
                    + [(t, "-", name, d.old_zone or host) for name, d in diffs.items()
                       for t in d.removed], key=lambda m: (m[0], m[1] == "+", m[2]))
    for t, sign, name, zone in marked[:SHOW_FIRES]:
        lines.append(f"  {sign} {name}  {local_label(t, zone)}")
    if len(marked) > SHOW_FIRES:
        lines.append(f"  … and {len(marked) - SHOW_FIRES} more (fleetdeck schedule diff "
                     "lists them all)")
    if not added and not removed and not changed and not diffs:
        lines.append("no job changes; other sections may")
    out.question = f"Reload {path}?"
    out.detail = "\n".join(lines)
    return out


def errors_notice(preview: ReloadPreview) -> str:
    """The one notice for a file that would be rejected: its first errors."""
    n = len(preview.errors)
    first = "; ".join(preview.errors[:SHOW_ERRORS]) + (" …" if n > SHOW_ERRORS else "")
    return f"not reloading {preview.path}: {_plural(n, 'error')}: {first}"
