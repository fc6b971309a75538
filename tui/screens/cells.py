"""Table cells as rich Text: states coloured in plain ANSI names, so any theme reads."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from core.jobs.runs import last_run_summary
from tui.fmt import fmt_age, fmt_duration, fmt_rate, fmt_time, severity_word
from tui.palette import style
from tui.widgets.table import SortText

STATE_MARKS = {
    "queued": "…",
    "running": "▶",
    "succeeded": "✓",
    "failed": "✖",
    "timed_out": "◔",
    "cancelled": "■",
    "skipped": "·",
    "interrupted": "!",
}


def state_cell(state: str | None) -> Text:
    if not state:
        return Text("-", style=style("muted"))
    return Text(f"{STATE_MARKS.get(state, ' ')} {state}", style=style(state))


def last_run_cell(last: dict[str, Any] | None) -> Text:
    """A job's last occurrence: its worst state, "1/3 failed" over several hosts."""
    if not last:
        return state_cell(None)
    state = last["state"]
    return Text(f"{STATE_MARKS.get(state, ' ')} {last_run_summary(last)}",
                style=style(state))


def time_cell(ts: float | None, now: float) -> Text:
    """A wall time that sorts by time (not as "09:15:02" against "Nov 28 14:00")."""
    return SortText(fmt_time(ts, now), ts)


def age_cell(ts: float | None, now: float) -> Text:
    """An age ("3m ago") that sorts by the time it counts from."""
    return SortText(fmt_age(ts, now), ts)


def plain(value: Any) -> Text:
    return Text("-" if value is None or value == "" else str(value))


def run_duration(run: dict[str, Any], now: float) -> float | None:
    start = run.get("started_at")
    if start is None:
        return None
    return (run.get("finished_at") or now) - start


def run_cells(run: dict[str, Any], now: float) -> tuple[Text, ...]:
    """A run's row; in a cluster its host says the node it ran on (`web01@n2`)."""
    exit_code = run.get("exit_code")
    return (
        Text(f"#{run['id']}"),
        Text(run["job"]),
        Text(f"{run['host']}@{run['node']}" if run.get("node") else run["host"]),
        state_cell(run["state"]),
        plain(exit_code),
        time_cell(run.get("started_at") or run.get("queued_at"), now),
        SortText(fmt_duration(took := run_duration(run, now)), took),
        Text(run.get("reason") or "", style=style("muted") if run["state"] == "skipped" else ""),
    )


def run_text(run: dict[str, Any]) -> str:
    """What `/` searches in a run row."""
    where = f"{run.get('host') or ''}@{run['node']}" if run.get("node") else run.get("host")
    return " ".join(str(v or "") for v in (run.get("id"), run.get("job"), where,
                                           run.get("state"), run.get("exit_code"),
                                           run.get("reason"), run.get("trigger")))


__all__ = ["age_cell", "fmt_age", "fmt_duration", "fmt_rate", "fmt_time", "plain", "run_cells",
           "run_duration", "run_text", "state_cell", "time_cell"]


def severity_cell(a: dict[str, Any]) -> Text:
    """`down` for a failed probe, else the threshold's severity (warn, crit)."""
    word = severity_word(a)
    return Text(word, style=style(word if word in ("down", "crit") else "warn"))
