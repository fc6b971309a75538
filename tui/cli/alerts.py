"""The `alerts`, `ack`, `silence`, `silences` and `unsilence` commands of the CLI.

    fleetdeck alerts [--all] [--json]     open alerts (with --all, resolved ones too)
    fleetdeck ack ID                      acknowledge alert ID: no more reminders
    fleetdeck silence TARGET DURATION     hold notifications for a check, a host,
                                          check@host or #ID, e.g. `silence web01 2h`
    fleetdeck silences [--json]           the silences in force
    fleetdeck unsilence TARGET            end the silences on TARGET now

`alerts` and `silences` read the state without taking it, so they work beside a daemon.
`ack`, `silence` and `unsilence` go to the daemon when one runs (audited there as this
user), else to a brief engine of this process's own, as `run` does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tui.cli.common import ACTOR, CLIError, numbered, on_engine, text_arg

STATUS_STYLES = {"firing": "bold red", "acknowledged": "yellow", "silenced": "dim",
                 "maintenance": "cyan", "resolved": "green"}


def add_parsers(sub: Any) -> None:
    a = sub.add_parser("alerts", help="list open alerts")
    a.add_argument("--all", action="store_true", help="resolved alerts too")
    a.add_argument("--json", action="store_true", help="print the alerts as JSON")
    a.set_defaults(func=_list)
    k = sub.add_parser("ack", help="acknowledge an alert (stops its reminders)")
    k.add_argument("id", type=alert_id, metavar="ID", help="the alert's id, e.g. 12")
    k.set_defaults(func=_act)
    s = sub.add_parser("silence", help="hold notifications for a check, host, check@host "
                                       "or #ID for a while")
    s.add_argument("target", help="a check, a host, check@host, or #ID")
    s.add_argument("duration", help="e.g. 30m, 2h, 1d")
    s.set_defaults(func=_act)
    ls = sub.add_parser("silences", help="list the silences in force")
    ls.add_argument("--json", action="store_true", help="print the silences as JSON")
    ls.set_defaults(func=_silences)
    u = sub.add_parser("unsilence", help="end the silences on a target now: what they "
                                         "held notifies again")
    u.add_argument("target", type=text_arg, help="the target as it was silenced: a check, "
                                                 "a host, check@host, or #ID")
    u.set_defaults(func=_act)


def alert_line(event: Any) -> str:
    """The daemon's line for an alert that opened or resolved."""
    from rich.markup import escape

    from tui.fmt import fmt_time

    a = event.alert
    style = STATUS_STYLES.get(a["status"], "")
    when = fmt_time(a["resolved_at"] if event.action == "resolved" else a["opened_at"])
    quiet = f" ({escape(a['quiet'])})" if a.get("quiet") else ""
    detail = escape(a["detail"])
    if event.action == "resolved" and a.get("resolution"):  # what ended it, not the failure
        detail = f"{escape(a['resolution'])} (was: {detail})"
    return (f"{when} alert #{a['id']} [{style}]{event.action}[/] {escape(a['what'])}: "
            f"{detail}{quiet}")


alert_id = numbered("an alert id", 12)


def _list(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from rich.markup import escape

    from core.alerts.manager import read_alerts
    from core.durations import format_duration
    from tui.cli.common import console
    from tui.cli.tables import Col, print_table
    from tui.fmt import severity_word

    alerts = read_alerts(state_dir, config.alerting, time.time(),
                         include_resolved=args.all)
    if args.json:
        print(json.dumps(alerts, indent=2))
        return 0
    out = console()
    if not alerts:
        out.print("no open alerts" if not args.all else "no alerts on record")
        return 0
    rows = []
    for a in alerts:
        style = STATUS_STYLES.get(a["status"], "")
        detail = a["detail"]
        if a["status"] == "acknowledged":
            detail = f"ack by {a['acked_by']}; {detail}"
        elif a["quiet"]:
            detail = f"{a['quiet']}; {detail}"
        rows.append((f"#{a['id']}", f"[{style}]{a['status']}[/]", escape(a["what"]),
                     severity_word(a), format_duration(a["age"]), escape(detail)))
    print_table(out, (Col("ID"), Col("STATUS"), Col("ALERT"), Col("SEV", drop=2),
                      Col("AGE", drop=1), Col("DETAIL", long=True)), rows)
    return 0


def _silences(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from rich.markup import escape

    from core.alerts.manager import read_silences
    from tui.cli.common import console
    from tui.cli.tables import Col, print_table

    now = time.time()
    silences = read_silences(state_dir, now)
    if args.json:
        print(json.dumps(silences, indent=2))
        return 0
    out = console()
    if not silences:
        out.print("no silences in force")
        return 0
    when = "%Y-%m-%d %H:%M"
    rows = [(escape(s["target"]), time.strftime(when, time.localtime(s["until"])),
             escape(s["by"]), time.strftime(when, time.localtime(s["at"])))
            for s in silences]  # a target is what `unsilence` takes
    print_table(out, (Col("TARGET"), Col("UNTIL"), Col("BY"), Col("SINCE", drop=1)), rows)
    return 0


def _act(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    """ack / silence, by the daemon when one runs (audited there as this user), else by a
    brief engine of this process's own (it records; the daemon delivers)."""
    async def work(engine: Any) -> int:
        try:
            if args.command == "ack":
                alert = await engine.ack_alert(args.id, actor=ACTOR)
                print(f"alert #{alert['id']} ({alert['what']}) acknowledged by "
                      f"{alert['acked_by']}")
            elif args.command == "unsilence":
                rec = await engine.unsilence(args.target, actor=ACTOR)
                which = ", ".join(f"#{i}" for i in rec["alerts"]) or "none open now"
                print(f"silence on {rec['target']} ended (alerts: {which})")
            else:
                rec = await engine.silence(args.target, args.duration, actor=ACTOR)
                until = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec["until"]))
                which = ", ".join(f"#{i}" for i in rec["alerts"]) or "none open now"
                print(f"silenced {rec['target']} until {until} (alerts: {which})")
        except AlertError as e:
            raise CLIError(str(e)) from None
        return 0

    from core.alerts.book import AlertError

    return on_engine(config, state_dir, args.log_format, work)
