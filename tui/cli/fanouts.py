"""The `hosts` and `fanouts` commands: what a pattern names, and past fan-outs read
from the state directory (no engine, no SSH).

    fleetdeck hosts [PATTERN] [--json]
    fleetdeck fanouts [ID] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tui.cli.common import CLIError, console, numbered


def add_parsers(sub: Any) -> None:
    h = sub.add_parser("hosts", help="show the hosts a target pattern resolves to")
    h.add_argument("pattern", nargs="?", default=None,
                   help="e.g. 'web[01-20]', '@db', 'role=cache', '*.eu,!web07' (default: all)")
    h.add_argument("--json", action="store_true", help="print the hosts as JSON")
    h.set_defaults(func=cmd_hosts)

    fs = sub.add_parser("fanouts", help="list recorded fan-outs, or show one")
    fs.add_argument("id", nargs="?", type=fanout_id, metavar="ID",
                    help="show this fan-out's hosts (default: list the fan-outs)")
    fs.add_argument("--limit", type=int, default=30, metavar="N",
                    help="at most N fan-outs (default: 30)")
    fs.add_argument("--json", action="store_true", help="print them as JSON")
    fs.set_defaults(func=cmd_fanouts)


fanout_id = numbered("a fan-out id", 12)


def cmd_hosts(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.remote.inventory import TargetError, fold_hosts, resolve_targets

    pattern = args.pattern
    try:
        if pattern is None:
            names = list(config.hosts)
        else:
            names = resolve_targets(pattern, config.hosts)
    except TargetError as e:
        raise CLIError(str(e)) from None
    hosts = [config.hosts.get(n) for n in names]
    rows = [_host_row(n, h) for n, h in zip(names, hosts, strict=True)]
    if args.json:
        print(json.dumps({"pattern": pattern, "folded": fold_hosts(names), "hosts": rows},
                         indent=2))
        return 0
    from rich.markup import escape

    from tui.cli.tables import Col, print_table

    out = console()
    print_table(out, (Col("HOST"), Col("ADDRESS"), Col("PORT", drop=2), Col("USER", drop=1),
                      Col("GROUPS", long=True), Col("TAGS", long=True), Col("VIA", drop=3)),
                [[escape(str(r[k] if r[k] not in (None, "", []) else "-")) for k in
                  ("name", "address", "port", "user", "groups", "tags", "jump_host")]
                 for r in rows])
    out.print(f"{len(names)} host{'s' if len(names) != 1 else ''}: "
                  f"{escape(fold_hosts(names))}")
    return 0


def _host_row(name: str, h: Any) -> dict[str, Any]:
    if h is None or name == "local":
        return {"name": name, "address": "(this machine)", "port": None, "user": None,
                "groups": "", "tags": "", "jump_host": None}
    explicit = set(h.explicit or ())
    return {
        "name": name,
        "address": h.address if "address" in explicit else f"{h.name} (ssh config)",
        "port": h.port if "port" in explicit else None,
        "user": h.user,
        "groups": ",".join(h.groups),
        "tags": ",".join(f"{k}={v}" for k, v in h.tags.items()),
        "jump_host": h.jump_host,
    }


# ------------------------------------------------------------------------- fanouts ---
def rollout_line(roll: dict[str, Any]) -> str:
    """A rolling fan-out's plan and where it got to, in one line."""
    parts = [f"rollout: serial {roll.get('serial')}"]
    if roll.get("max_fail"):
        parts.append(f"max-fail {roll['max_fail']}")
    if roll.get("pause_between"):
        parts.append(f"pause {roll['pause_between']:g}s")
    where = f"batch {roll.get('batch', 0)} of {roll.get('batches', 0)}"
    if roll.get("stopped"):
        where = f"stopped: {roll['stopped']}"
    elif roll.get("held"):
        where += ", held after the canary"
    return ", ".join(parts) + f"; {where}"


def cmd_fanouts(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from rich.markup import escape

    from core.remote.results import summary_line
    from core.store.fanouts import FanOutStore
    from tui.cli.tables import Col, print_table
    from tui.fmt import fmt_duration, fmt_time

    store = FanOutStore(state_dir, read_only=True)
    if args.id is not None:
        rec = store.get(args.id)
        if rec is None:
            raise CLIError(f"no fan-out #{args.id}; `fleetdeck fanouts` lists them")
        if args.json:
            print(json.dumps(rec, indent=2))
            return 0
        out = console()
        out.print(f"fan-out #{rec['id']} by {escape(rec['requested_by'])} at "
                      f"{fmt_time(rec['started_at'])}: {escape(rec['pattern'])} -- "
                      f"{escape(rec['command'])}")
        roll = rec.get("rollout")
        if roll:
            out.print(escape(rollout_line(roll)))
        hosts = sorted(rec["hosts"].items(), key=lambda kv: kv[1].get("batch") or 0) \
            if roll else list(rec["hosts"].items())
        print_table(out, (Col("HOST"), *((Col("BATCH"),) if roll else ()), Col("CLASS"),
                          Col("EXIT", drop=1), Col("DURATION", drop=2), Col("LINES", drop=3),
                          Col("REASON", long=True)),
                    [(escape(name), *((str(r.get("batch") or "-"),) if roll else ()),
                      r["state"], "-" if r["exit_code"] is None else str(r["exit_code"]),
                      fmt_duration(r.get("duration")), str(r.get("lines", 0)),
                      escape(r.get("reason") or "")) for name, r in hosts])
        out.print(summary_line(rec["hosts"].values()))
        if rec.get("log_dir"):
            out.print(f"output: {escape(rec['log_dir'])}/<host>.log")
        return 0
    if args.limit < 1:
        raise CLIError("--limit must be at least 1")
    recs = store.list(args.limit)
    if args.json:
        print(json.dumps(recs, indent=2))
        return 0
    rows = []
    for r in recs:
        dur = (r["finished_at"] - r["started_at"]
               if r.get("finished_at") and r.get("started_at") else None)
        counts = ", ".join(f"{n} {k}" for k, n in (r.get("counts") or {}).items())
        rows.append((f"#{r['id']}", fmt_time(r.get("started_at")),
                     escape(r.get("requested_by") or ""), escape(r.get("pattern") or ""),
                     escape(r.get("command") or ""), fmt_duration(dur), escape(counts)))
    print_table(console(), (Col("ID"), Col("STARTED", drop=1), Col("BY", drop=3),
                            Col("PATTERN", long=True), Col("COMMAND", long=True),
                            Col("DURATION", drop=2), Col("RESULT")), rows,
                empty="no fan-outs on record")
    return 0
