"""The workflow commands of the `fleetdeck` CLI.

    fleetdeck run WORKFLOW                 a workflow is run like a job (its steps'
                                           output with the step's name)
    fleetdeck workflow RUN [--json]        a workflow run's steps: state, runs, times
    fleetdeck approvals [--json]           the approval gates waiting for a person
    fleetdeck approve RUN [--step S] [--reason R] [--socket PATH]
    fleetdeck reject RUN [--step S] [--reason R] [--socket PATH]
    fleetdeck retry RUN                    run again what did not succeed (kept: the rest)
    fleetdeck remediate ALERT              an alert's remediation, on the alert's host

An approval goes to the daemon over its socket, which knows who asks from the socket's
peer credentials; another user of the machine approves through the daemon's approvals
socket (`[engine] approvals_socket`, `--socket` or $FLEETDECK_APPROVALS_SOCKET).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from tui.cli.alerts import alert_id
from tui.cli.common import ACTOR, CLIError, console, on_engine, path_arg, run_id, view

SOCKET_ENV = "FLEETDECK_APPROVALS_SOCKET"


def add_parsers(sub: Any) -> None:
    w = sub.add_parser("workflow", help="show a workflow run's steps")
    w.add_argument("run_id", type=run_id, metavar="RUN", help="the workflow run's id")
    w.add_argument("--json", action="store_true", help="print its record as JSON")
    w.set_defaults(func=_show)
    a = sub.add_parser("approvals", help="list the approval gates waiting for a person")
    a.add_argument("--json", action="store_true", help="print them as JSON")
    _socket_arg(a)
    a.set_defaults(func=_approvals)
    for verb, text in (("approve", "let a waiting workflow step start"),
                       ("reject", "refuse a waiting workflow step (the step fails)")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("run_id", type=run_id, metavar="RUN", help="the workflow run's id")
        p.add_argument("--step", help="the step, when several wait")
        p.add_argument("--reason", help="why, for the audit trail")
        _socket_arg(p)
        p.set_defaults(func=_decide, verb=verb)
    r = sub.add_parser("retry", help="run a failed or interrupted workflow run again from "
                                     "the steps that did not succeed")
    r.add_argument("run_id", type=run_id, metavar="RUN", help="the workflow run's id")
    r.add_argument("--json", action="store_true", help="print the finished run as JSON")
    r.set_defaults(func=_retry)
    m = sub.add_parser("remediate", help="run the workflow an alert names, on its host")
    m.add_argument("alert_id", type=alert_id, metavar="ALERT",
                   help="the alert's id")
    m.add_argument("--json", action="store_true", help="print the finished run as JSON")
    m.set_defaults(func=_remediate)


def _socket_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", type=path_arg, default=None, metavar="PATH",
                   help=f"the daemon's approvals socket (default: ${SOCKET_ENV}, else the "
                        "state directory's socket)")


def _shared_socket(args: argparse.Namespace) -> Path | None:
    if args.socket is not None:
        return args.socket
    env = os.environ.get(SOCKET_ENV)
    return Path(env) if env else None


def _over_socket(path: Path, method: str, params: dict[str, Any]) -> Any:
    import asyncio

    from core.control.client import DaemonError, call

    try:
        return asyncio.run(call(Path("/"), method, params, path=path))
    except DaemonError as e:
        raise CLIError(str(e)) from None
    except FileNotFoundError:
        raise CLIError(f"{path}: no such socket; the daemon's is in its state directory "
                       f"(control.sock)") from None
    except (ConnectionRefusedError, NotADirectoryError, OSError) as e:
        if path.is_dir():
            raise CLIError(f"{path}: is a folder, not a daemon's socket") from None
        if path.exists() and not path.is_socket():
            raise CLIError(f"{path}: not a socket (a daemon's is control.sock)") from None
        if isinstance(e, PermissionError):
            raise CLIError(f"{path}: permission denied (the socket's group may approve)") \
                from None
        raise CLIError(f"no daemon answers on {path}") from None


def _decide(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    params = {"run_id": args.run_id, "reason": args.reason or ""}
    if args.step:
        params["step"] = args.step
    shared = _shared_socket(args)
    if shared is not None:
        run = _over_socket(shared, args.verb, params)
    else:
        async def work(engine: Any) -> Any:
            return await getattr(engine, args.verb)(actor=ACTOR, **params)

        run = _capture(config, state_dir, args, work)
    print(f"workflow run #{run['id']} ({run['job']}): step {run['step']} {run['decision']}")
    return 0


def _capture(config: Any, state_dir: Path, args: argparse.Namespace, work: Any) -> Any:
    out: list[Any] = []

    async def keep(engine: Any) -> int:
        out.append(await work(engine))
        return 0

    on_engine(config, state_dir, args.log_format, keep)
    return out[0]


def _approvals(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    shared = _shared_socket(args)
    if shared is not None:
        waiting = _over_socket(shared, "list_approvals", {})
    else:
        async def work(engine: Any) -> Any:
            if engine.attached:
                return await engine.fresh("list_approvals")
            return engine.list_approvals()

        waiting = _capture(config, state_dir, args, work)
    if args.json:
        print(json.dumps(waiting, indent=2))
        return 0
    if not waiting:
        print("no approval is waiting")
        return 0
    from rich.markup import escape

    from tui.cli.tables import Col, print_table
    from tui.fmt import fmt_time

    print_table(console(), [Col("RUN"), Col("WORKFLOW"), Col("STEP"), Col("HOST", drop=2),
                            Col("BY", long=True), Col("ASKED", drop=1),
                            Col("REQUESTED BY", drop=3)],
                [[f"#{a['run_id']}", escape(a["workflow"]), escape(a["step"]),
                  escape(a["host"]), escape(", ".join(a["by"])), fmt_time(a["asked_at"]),
                  escape(a.get("requested_by") or "-")] for a in waiting])
    return 0


def _retry(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from tui.cli.jobs import stream_runs

    return on_engine(config, state_dir, args.log_format, stream_runs(
        args, lambda engine: engine.retry_workflow(args.run_id, actor=ACTOR)))


def _remediate(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from tui.cli.jobs import stream_runs

    return on_engine(config, state_dir, args.log_format, stream_runs(
        args, lambda engine: engine.remediate(args.alert_id, actor=ACTOR)))


def _show(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from rich.markup import escape

    from core.jobs.active import NotFound
    from tui.cli.tables import Col, print_table
    from tui.fmt import fmt_duration, fmt_time

    try:
        run = view(config, state_dir).get_run(args.run_id)
    except NotFound as e:
        raise CLIError(str(e)) from None
    record = run.get("workflow")
    if record is None:
        raise CLIError(f"run #{args.run_id} is not a workflow run")
    if args.json:
        print(json.dumps(run, indent=2))
        return 0
    out = console()
    out.print(f"workflow run #{run['id']} {record['name']} on {run['host']}: {run['state']}"
              + (f" ({run['reason']})" if run.get("reason") else ""), markup=False,
              highlight=False)
    rows = []
    for name in record["order"]:
        st = record["steps"][name]
        took = (st["finished_at"] - st["started_at"]) if st.get("finished_at") and \
            st.get("started_at") else None
        rows.append([escape(name), st["state"], escape(", ".join(st.get("needs") or []))
                     or "-", ", ".join(f"#{i}" for i in st.get("runs") or []) or "-",
                     fmt_time(st["started_at"]) if st.get("started_at") else "-",
                     fmt_duration(took) if took is not None else "-",
                     escape(st.get("reason") or "")])
    print_table(out, [Col("STEP"), Col("STATE"), Col("NEEDS", drop=3), Col("RUNS", drop=2),
                      Col("STARTED", drop=4), Col("TOOK", drop=1),
                      Col("REASON", long=True)], rows)
    return 0
