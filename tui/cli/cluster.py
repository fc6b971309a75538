"""`fleetdeck cluster status [--json]`: the cluster as Redis has it (no daemon needed):
the leader and its term, each node's load, capacity and last heartbeat."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui.cli.common import CLIError, console


def add_parsers(sub: Any) -> None:
    c = sub.add_parser("cluster", help="the cluster on Redis: leader, term, nodes")
    csub = c.add_subparsers(dest="cluster_command", metavar="SUBCOMMAND", required=True)
    s = csub.add_parser("status", help="the leader and term, each node's load and heartbeat")
    s.add_argument("--json", action="store_true", help="print it as JSON")
    s.set_defaults(func=_status)


def _status(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    import asyncio

    if config.cluster is None:
        raise CLIError("no [cluster] in the config: this fleetdeck runs alone")
    from core.cluster.redisstore import ClusterError, read_status

    try:
        view = asyncio.run(read_status(config.cluster))
    except ClusterError as e:
        raise CLIError(str(e)) from None
    for node in view["nodes"]:
        node["heartbeat"] = datetime.fromtimestamp(node["heartbeat"], UTC).isoformat()
    if args.json:
        print(json.dumps(view, indent=2))
        return 0
    from rich.markup import escape

    from tui.cli.tables import Col, print_table

    out = console()
    out.print(f"leader: {escape(view['leader'] or 'none')}   term {view['term']}",
              highlight=False)
    print_table(out, [Col("NODE"), Col("PID"), Col("RUNNING"), Col("CAPACITY"),
                      Col("HEARTBEAT", long=True)],
                [[escape(n["node"]) + (" (leader)" if n["node"] == view["leader"] else ""),
                  str(n["pid"]), str(n["running"]), str(n["capacity"]), n["heartbeat"]]
                 for n in view["nodes"]])
    return 0
