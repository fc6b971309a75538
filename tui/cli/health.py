"""`fleetdeck health [PATTERN] [--json]`: every check on every host, sampled now.

STATUS keeps availability apart from thresholds: `down` (the probe failed: why, in
words) is listed first, then `crit` and `warn` (it answered over a threshold: what
crossed what), then `ok`.

Exit status: 0 all ok, 1 any warning, critical or down, 2 a usage or config error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tui.cli.common import CLIError, console


def add_parsers(sub: Any) -> None:
    h = sub.add_parser("health", help="sample every health check now (optionally of PATTERN)")
    h.add_argument("pattern", nargs="?", default=None, help="hosts, e.g. '@web' (default: all)")
    h.add_argument("--json", action="store_true", help="print the samples as JSON")
    h.set_defaults(func=cmd_health)


def cmd_health(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    import asyncio

    from rich.markup import escape

    from core.health.monitor import sample_all
    from core.jobs.engine import Engine
    from core.remote.inventory import TargetError
    from tui.cli.tables import Col, print_table

    if not config.checks:
        raise CLIError("no health checks configured: add a [checks.NAME] table to the config "
                    "(kind = \"metrics\", \"tcp\", \"http\", \"process\", \"command\", \"ssh\")")
    engine = Engine(config, state_dir)
    try:
        rows = asyncio.run(sample_all(engine, args.pattern))
    except TargetError as e:
        raise CLIError(str(e)) from None
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        style = {"ok": "green", "warn": "yellow", "crit": "bold red", "down": "bold red"}
        order = {"down": 0, "crit": 1, "warn": 2, "ok": 3}
        print_table(console(), (Col("HOST"), Col("CHECK"), Col("KIND", drop=1), Col("STATUS"),
                                Col("DETAIL", long=True)),
                    [(escape(r["target"]), escape(r["check"]), r["kind"],
                      f"[{style[r['status']]}]{r['status']}[/]", escape(r["detail"]))
                     for r in sorted(rows, key=lambda r: (order[r["status"]], r["target"],
                                                          r["check"]))])
        down = sorted({r["target"] for r in rows if r["status"] == "down"})
        over = sorted({r["target"] for r in rows if r["status"] in ("warn", "crit")} - set(down))
        if down or over:
            console().print("; ".join(part for part in (
                f"down (a probe failed): {', '.join(down)}" if down else "",
                f"up, over a threshold: {', '.join(over)}" if over else "") if part))
    return 0 if all(r["status"] == "ok" for r in rows) else 1
