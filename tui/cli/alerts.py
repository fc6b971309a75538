"""The `alerts`, `ack` and `silence` commands of the `fleetdeck` CLI.

    fleetdeck alerts [--all] [--json]     open alerts (with --all, resolved ones too)
    fleetdeck ack ID                      acknowledge alert ID: no more reminders
    fleetdeck silence TARGET DURATION     hold notifications for a check, a host,
                                          check@host or #ID, e.g. `silence web01 2h`

`alerts` reads the state without taking it, so it works beside a daemon. `ack` and
`silence` open the state directory briefly, as `run` does; while a daemon holds it they
say so (routing them to the daemon arrives with its socket).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tui.cli.common import ACTOR, CLIError, numbered, on_engine

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


def alert_line(event: Any) -> str:
    """The daemon's line for an alert that opened or resolved."""
    from rich.markup import escape

    from tui.fmt import fmt_time

    a = event.alert
    style = STATUS_STYLES.get(a["status"], "")
    when = fmt_time(a["resolved_at"] if event.action == "resolved" else a["opened_at"])
    quiet = f" ({escape(a['quiet'])})" if a.get("quiet") else ""
    return (f"{when} alert #{a['id']} [{style}]{event.action}[/] {escape(a['what'])}: "
            f"{escape(a['detail'])}{quiet}")


alert_id = numbered("an alert id", 12)


def _list(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from rich.markup import escape

    from core.alerts.manager import read_alerts
    from core.durations import format_duration
    from tui.cli.common import console
    from tui.cli.tables import Col, print_table

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
                     a["severity"], format_duration(a["age"]), escape(detail)))
    print_table(out, (Col("ID"), Col("STATUS"), Col("ALERT"), Col("SEV", drop=2),
                      Col("AGE", drop=1), Col("DETAIL", long=True)), rows)
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
