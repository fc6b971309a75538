"""`schedule next` and `schedule diff`: when schedules fire, and what a new config does to
the fires, before anything runs.

    fleetdeck schedule next EXPR [EXPR ...] [--count N] [--from ISO8601] [--tz ZONE]
                            [--dialect cron|quartz] [--dst vixie|skip|all] [--json]
    fleetdeck schedule diff [--config NEW] [--window 24h] [--from ISO8601] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from core.confguard import clip
from tui.cli.common import CLIError, err, path_arg, state_dir_of

MAX_COUNT = 1000
MAX_WINDOW = 366 * 86400
TEXT_LINES = 20  # fires listed per job and sign in text; --json lists them all
_FROM_HINT = "e.g. 2026-12-01T00:00 or 2026-12-01T00:00+01:00"


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("schedule", help="preview schedules: the next fires, and what a new "
                                        "config changes")
    s.set_defaults(func=cmd_schedule, needs_config=False)
    ssub = s.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND")

    n = ssub.add_parser("next", help="the next fire times of schedule expressions")
    n.add_argument("expressions", nargs="+", metavar="EXPR",
                   help="cron, Quartz, @daily, 'every 30s', 'at 2026-12-01 03:00'")
    n.add_argument("-n", "--count", default="5", metavar="N",
                   help="fires per expression (default: 5)")
    n.add_argument("--from", dest="start", metavar="ISO8601",
                   help="after this time (default: now); without an offset, in --tz")
    n.add_argument("--tz", metavar="ZONE", help="IANA zone (default: this machine's)")
    n.add_argument("--dialect", metavar="cron|quartz",
                   help="how a cron expression reads (default: by its number of fields)")
    n.add_argument("--dst", default="vixie", metavar="vixie|skip|all",
                   help="daylight-saving policy, as a job's `dst` (default: vixie)")
    n.add_argument("--json", action="store_true", help="print the fires as JSON")
    n.set_defaults(func=cmd_next, needs_config=False)

    d = ssub.add_parser("diff", help="the fires a new config adds and removes, per job")
    d.add_argument("--config", dest="new_config", type=path_arg, metavar="NEW",
                   help="the changed config file (default: fleetdeck's --config or the "
                        "default file, against the daemon's)")
    d.add_argument("--window", default="24h", metavar="D",
                   help="how far ahead, e.g. 7d (default: 24h)")
    d.add_argument("--from", dest="start", metavar="ISO8601",
                   help="the window's start (default: now); without an offset, in this "
                        "machine's zone")
    d.add_argument("--json", action="store_true", help="print the changes as JSON")
    d.set_defaults(func=cmd_diff, needs_config=False)


def cmd_schedule(args: argparse.Namespace) -> int:
    raise CLIError("schedule: say which: `schedule next EXPR...` or `schedule diff "
                   "--config NEW`")


# -------------------------------------------------------------------- the options ----
def _zone_name(tz: str | None) -> str:
    from core.jobs.zones import local_timezone_name, zone_or_none

    if tz is None:
        return local_timezone_name()
    if zone_or_none(tz.strip()) is None:
        raise CLIError(f"--tz: unknown time zone {tz!r} (an IANA name, e.g. Europe/Berlin)")
    return tz.strip()


def _start(text: str | None, zone: tzinfo) -> float:
    if text is None:
        return time.time()
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CLIError(f"--from: not an ISO 8601 time: {text!r} ({_FROM_HINT})") from None
    from core.jobs.schedule import LAST_INSTANT
    from core.jobs.zones import wall_instant

    # a wall time in a spring-forward gap is read as a job's `at` is: the change itself
    try:
        start = wall_instant(when, zone) if when.tzinfo is None else when.timestamp()
    except (OverflowError, ValueError):  # year 1 in a zone east of UTC: year 0
        start = -1.0
    if not 0 <= start <= LAST_INSTANT:
        raise CLIError(f"--from: {text!r} is outside 1970-01-01 to 9999-12-29 (UTC), the "
                       "years schedules fire in")
    return start


def _choice(option: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    if value is not None and value not in choices:
        raise CLIError(f"{option}: unknown value {value!r}; one of {', '.join(choices)}")
    return value


def _count(text: str) -> int:
    try:
        count = int(text) if text.isascii() else 0  # int() reads '٣' too
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_COUNT:
        raise CLIError(f"--count: expected a number from 1 to {MAX_COUNT}, got {text!r}")
    return count


# ---------------------------------------------------------------------------- next ----
def cmd_next(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from core.jobs.config import DIALECTS, DST_POLICIES
    from core.jobs.preview import Transition, local_iso, upcoming
    from core.jobs.schedule import ScheduleError, parse_schedule

    count = _count(args.count)
    dialect = _choice("--dialect", args.dialect, DIALECTS)
    dst = _choice("--dst", args.dst, DST_POLICIES) or "vixie"
    zone_name = _zone_name(args.tz)
    zone = ZoneInfo(zone_name)
    start = _start(args.start, zone)
    results: list[dict[str, Any]] = []
    blocks: list[str] = []
    for expr in (e.strip() for e in args.expressions):  # "$(cat file)" ends in a newline
        try:
            sched = parse_schedule(expr, zone_name, dialect=dialect, dst=dst)
        except ScheduleError as e:
            message = str(e) if repr(expr.strip()) in str(e) or clip(expr.strip()) in str(e) \
                else f"{clip(expr)}: {e}"
            err(message)
            results.append({"expression": expr, "error": message})
            continue
        items = upcoming(sched, start, count)
        fires = [t for t in items if not isinstance(t, Transition)]
        results.append({"expression": expr, "fires": [local_iso(t, zone) for t in fires]})
        blocks.append(_next_block(expr, sched, items, start, zone))
    if args.json:
        print(json.dumps(results))
    elif blocks:
        print("\n\n".join(blocks))
    return 2 if any("error" in r for r in results) else 0


def _next_block(expr: str, sched: Any, items: list[Any], start: float, zone: tzinfo) -> str:
    from core.jobs.preview import Transition, local_label
    from core.jobs.schedule import CronSchedule

    head = f"{expr}: {sched.describe()}"
    if isinstance(sched, CronSchedule):
        head += f", dst={sched.dst}"
        if sched.dst == "vixie":
            head += " (fixed time)" if sched.fixed else " (interval-like)"
    seconds = any(not isinstance(t, Transition) and t % 60 for t in items)
    lines = [head]
    for item in items:
        if isinstance(item, Transition):
            lines.append(f"  -- {item.label()}")
        else:
            lines.append("  " + local_label(item, zone, seconds=seconds, weekday=True))
    if not items:
        lines.append(f"  (no fire after {local_label(start, zone)})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- diff ----
def cmd_diff(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from core.durations import DurationError, parse_duration
    from core.jobs.preview import diff_fires, local_iso, local_label
    from core.jobs.zones import local_timezone_name

    try:
        window = parse_duration(args.window)
    except DurationError as e:
        raise CLIError(f"--window: {e}") from None
    if not 0 < window <= MAX_WINDOW:
        raise CLIError(f"--window: expected more than 0 and at most 366d, got {args.window!r}")
    host = ZoneInfo(local_timezone_name())
    start = _start(args.start, host)
    end = start + window
    current, current_path, current_label = _current_config(args)
    new, new_path = _new_config(args, current_path)
    diffs = diff_fires(current.jobs, new.jobs, start, end)
    if args.json:
        jobs: dict[str, Any] = {}
        for name, d in diffs.items():
            entry: dict[str, Any] = {
                "change": d.change,
                "added": [local_iso(t, d.new_zone or host) for t in d.added],
                "removed": [local_iso(t, d.old_zone or host) for t in d.removed],
            }
            if d.until is not None:
                entry["until"] = local_iso(d.until, host)
            jobs[name] = entry
        print(json.dumps({"window": args.window, "from": local_iso(start, host),
                          "to": local_iso(end, host), "current": current_path,
                          "new": new_path, "jobs": jobs}, indent=2))
        return 0
    lines = [f"current: {current_label}",
             f"new:     {new_path or 'the built-in config'}",
             f"window:  {args.window}, {local_label(start, host)} to {local_label(end, host)}"]
    for name, d in diffs.items():
        lines.append("")
        what = _what_changed(current.jobs.get(name), new.jobs.get(name))
        lines.append(f"{name}: {d.change}{what}")
        lines += _diff_lines(d, host)
    if not diffs:
        lines += ["", "no job's fires change in the window"]
    else:
        added = sum(len(d.added) for d in diffs.values())
        removed = sum(len(d.removed) for d in diffs.values())
        n = len(diffs)
        lines += ["", f"{n} job{'s' if n != 1 else ''}: {added} fire{'s' if added != 1 else ''} "
                      f"added, {removed} removed"]
    print("\n".join(lines))
    return 0


def _diff_lines(d: Any, host: tzinfo) -> list[str]:
    from core.jobs.preview import local_label

    marked = sorted([(t, "+", d.new_zone or host) for t in d.added]
                    + [(t, "-", d.old_zone or host) for t in d.removed],
                    key=lambda x: (x[0], x[1] == "+"))
    seconds = any(t % 60 for t, _, _ in marked)
    out = [f"  {sign} {local_label(t, zone, seconds=seconds)}" for t, sign, zone in marked]
    if len(out) > 2 * TEXT_LINES:
        out = out[:2 * TEXT_LINES] + [f"  … and {len(out) - 2 * TEXT_LINES} more "
                                      "(--json lists them all)"]
    if not marked:
        out.append("  (no fires in the window)")
    if d.until is not None:
        out.append(f"  (too many fires: compared up to {local_label(d.until, host)})")
    return out


def _what_changed(old: Any, new: Any) -> str:
    """' (schedule: 0 3 * * * -> 30 2 * * *)', or the new job's schedule when added."""
    def show(v: Any) -> str:
        return "-" if v is None else str(v).lower() if isinstance(v, bool) else str(v)

    if old is None or new is None:
        job = old or new
        return f" ({job.schedule or 'on demand'})"
    keys = ("schedule", "timezone", "dialect", "dst", "enabled")
    parts = [f"{k}: {show(getattr(old, k))} -> {show(getattr(new, k))}"
             for k in keys if getattr(old, k) != getattr(new, k)]
    return f" ({'; '.join(parts)})" if parts else ""


def _current_config(args: argparse.Namespace) -> tuple[Any, str | None, str]:
    """The config in force: a running daemon's file, else the one fleetdeck would load
    (--config, the default file, the built-in). (config, its path, how to say it)."""
    from core.fleetconfig import builtin_config, load_config
    from tui.keymap import BINDING_IDS

    info = _daemon(state_dir_of(args))
    if info is not None and "config" in info:
        whose = f"(the daemon's, pid {info.get('pid')})"
        if info["config"] is None:
            return builtin_config(), None, f"the built-in config {whose}"
        path = info["config"]
        return load_config(Path(path), key_ids=BINDING_IDS), path, f"{path} {whose}"
    config = load_config(args.config, key_ids=BINDING_IDS)
    path = str(config.path) if config.path is not None else None
    return config, path, path or "the built-in config"


def _new_config(args: argparse.Namespace, current_path: str | None) -> tuple[Any, str | None]:
    from core.fleetconfig import load_config
    from core.paths import default_config_path
    from tui.keymap import BINDING_IDS

    given = args.new_config or args.config
    target = given or default_config_path()
    if current_path is not None and _same_file(Path(current_path), target):
        raise CLIError(f"schedule diff: {target} is the config in force already; give the "
                       "changed file with --config NEW")
    if current_path is None and given is None and not target.exists():
        raise CLIError("schedule diff: both configs are the built-in one; give the changed "
                       "file with --config NEW")
    config = load_config(given, key_ids=BINDING_IDS)
    return config, str(config.path) if config.path is not None else None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def _daemon(state_dir: Path) -> dict[str, Any] | None:
    """The ping answer of the daemon on this state directory ({pid, config}), or None."""
    import asyncio

    from core.control.client import DaemonError, call
    from core.control.protocol import socket_path

    if not socket_path(state_dir).exists():
        return None
    try:
        answer = asyncio.run(call(state_dir, "ping", timeout=5.0))
    except (TimeoutError, OSError, DaemonError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None
