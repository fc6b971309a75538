"""`jobs`, `run`, `runs` and `logs`: the jobs and their run history.

    fleetdeck jobs [--json]
    fleetdeck run JOB [--json]           exit status of the worst run (124 timed out, 130 cancelled)
    fleetdeck runs [--job J] [--state S] [--since D] [--missed] [--limit N] [--json]
    fleetdeck logs RUN_ID [-f]
    fleetdeck pause JOB | resume JOB
    fleetdeck cancel RUN_ID | cancel --fanout ID [--host H]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.jobs.runs import missed_rows  # the review's rows, as the console's
from tui.cli.common import (
    ACTOR,
    EXIT_CANCELLED,
    EXIT_NOT_RUN,
    EXIT_TIMED_OUT,
    CLIError,
    console,
    engine_errors,
    err,
    for_terminal,
    on_engine,
    run_id,
    text_arg,
    view,
)
from tui.cli.fanouts import fanout_id

if TYPE_CHECKING:
    import asyncio


def add_parsers(sub: Any) -> None:
    j = sub.add_parser("jobs", help="list jobs with their schedules and last results")
    j.add_argument("--json", action="store_true", help="print the jobs as JSON")
    j.set_defaults(func=cmd_jobs)

    r = sub.add_parser("run", help="run a job now, stream its output, exit with its exit code")
    r.add_argument("job", help="the job's name")
    r.add_argument("--json", action="store_true", help="print the finished runs as JSON")
    r.set_defaults(func=cmd_run)

    rs = sub.add_parser("runs", help="list run history, newest first")
    rs.add_argument("--job", help="only runs of this job (default: every job)")
    rs.add_argument("--host", metavar="HOST", type=text_arg,
                    help="only runs on this host (default: every host)")
    rs.add_argument("--state", action="append",
                    help="only runs in this state (repeatable; default: every state)")
    rs.add_argument("--since", metavar="D", type=text_arg,
                    help="only the last D, e.g. 2h, 7d (with --missed: occurrences "
                         "scheduled in it; default: no limit in time)")
    rs.add_argument("--missed", action="store_true",
                    help="occurrences that fell in downtime, and what the misfire policy "
                         "did with each: ran late or skipped")
    rs.add_argument("--limit", type=int, default=30, metavar="N",
                    help="at most N runs (default: 30)")
    rs.add_argument("--json", action="store_true", help="print the runs as JSON")
    rs.set_defaults(func=cmd_runs)

    lg = sub.add_parser("logs", help="print a run's output, or the latest run's of a job")
    lg.add_argument("run_id", type=text_arg, metavar="RUN_ID|JOB",
                    help="the run's id, e.g. 42, or a job's name: its latest run")
    lg.add_argument("-f", "--follow", action="store_true", help="follow until the run ends")
    lg.set_defaults(func=cmd_logs)

    for name, func, what in (("pause", cmd_pause, "stop scheduling a job (runs now still work)"),
                             ("resume", cmd_resume, "schedule a paused job again")):
        pr = sub.add_parser(name, help=what)
        pr.add_argument("job", help="the job's name")
        pr.set_defaults(func=func)

    c = sub.add_parser("cancel", help="cancel a queued or running run (its process group "
                                      "gets TERM, then KILL), or a running fan-out",
                       description="cancel RUN_ID, or cancel --fanout ID [--host H]: the "
                                   "fan-out's running hosts are cancelled and no more start "
                                   "(with --host, that one host only)")
    c.add_argument("run_id", type=run_id, metavar="RUN_ID", nargs="?",
                   help="the run's id, e.g. 42")
    c.add_argument("--fanout", type=fanout_id, metavar="ID",
                   help="cancel this running fan-out instead of a run")
    c.add_argument("--host", metavar="H", help="with --fanout: only this host of it")
    c.set_defaults(func=cmd_cancel)


def run_line(run: dict[str, Any]) -> str:
    from rich.markup import escape

    from tui.fmt import STATE_STYLES, fmt_duration, fmt_time

    state = run["state"]
    style = STATE_STYLES.get(state, "")
    when = fmt_time(run.get("finished_at") or run.get("started_at") or run.get("queued_at"))
    extra = ""
    if state != "running":
        dur = None
        if run.get("started_at") and run.get("finished_at"):
            dur = run["finished_at"] - run["started_at"]
        extra = f" {fmt_duration(dur)}"
        if run.get("reason"):
            extra += f" — {escape(run['reason'])}"
    return (f"{when} #{run['id']:<6} {escape(run['job'])}@{escape(run['host'])} "
            f"[{style}]{state}[/]{extra}")


def cmd_jobs(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    engine = view(config, state_dir)
    jobs = engine.list_jobs()
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    from rich.markup import escape

    from core.jobs.runs import last_run_summary
    from tui.cli.tables import Col, print_table
    from tui.fmt import STATE_STYLES, fmt_age, fmt_rate

    # narrow: the success rate goes first, then the zone (NEXT is relative), a paused
    # job's STATE last
    cols = (Col("JOB"), Col("SCHEDULE", long=True), Col("ZONE", drop=2), Col("NEXT"),
            Col("LAST"), Col("SUCCESS", drop=3), Col("STATE", drop=1))
    rows = []
    now = time.time()
    for j in jobs:
        last = j["last_run"]
        last_text = "-"
        if last:
            style = STATE_STYLES.get(last["state"], "")
            last_text = (f"[{style}]{last_run_summary(last)}[/] "
                         f"{fmt_age(last.get('finished_at'), now)}")
        state = "disabled" if not j["enabled"] else "paused" if j["paused"] else "enabled"
        zone = j.get("timezone")
        # the zone has its own column: "daily at 03:00 (Europe/Berlin)" says it twice
        sched = escape(j["schedule_text"].removesuffix(f" ({zone})"))
        rows.append((escape(j["name"]), sched, escape(zone or "-"),
                     fmt_age(j["next_fire"], now), last_text,
                     fmt_rate(j["success_rate"]), state))
    print_table(console(), cols, rows, empty="no jobs in the config")
    return 0


def cmd_runs(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.jobs.runs import filter_problem

    if problem := filter_problem(args.state):
        raise CLIError(f"--state: {problem}")
    if args.limit < 1:
        raise CLIError("--limit must be at least 1")
    since = None
    if args.since:
        from core.durations import DurationError, parse_duration

        try:
            since = time.time() - parse_duration(args.since)
        except DurationError as e:
            raise CLIError(f"--since: {e}") from None
    engine = view(config, state_dir)
    if args.missed:
        return _missed(args, engine, since)
    runs = engine.list_runs(job=args.job, states=args.state, since=since, limit=args.limit,
                            host=args.host)
    if not runs and args.job and args.job not in config.jobs and \
            not engine.count_runs(job=args.job):  # a typo, not a job without runs
        from core.config import did_you_mean

        raise CLIError(f"--job {args.job!r}: no such job in the config or in history"
                       f"{did_you_mean(args.job, config.jobs)}")
    if not runs and args.host and args.host not in config.hosts and \
            not engine.count_runs(host=args.host):
        from core.config import did_you_mean

        raise CLIError(f"--host {args.host!r}: no such host in the config or in history"
                       f"{did_you_mean(args.host, config.hosts)}")
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    from rich.markup import escape

    from tui.cli.tables import Col, print_table
    from tui.fmt import STATE_STYLES, fmt_duration, fmt_time

    # the reason says the exit code of a failed run: EXIT goes first when narrow
    cols = (Col("RUN"), Col("JOB"), Col("HOST"), Col("STATE"), Col("EXIT", drop=3),
            Col("STARTED", drop=1), Col("DURATION", drop=2), Col("REASON", long=True))
    rows = []
    for r in runs:
        style = STATE_STYLES.get(r["state"], "")
        dur = (r["finished_at"] - r["started_at"]
               if r.get("finished_at") and r.get("started_at") else None)
        rows.append((f"#{r['id']}", escape(r["job"]), escape(r["host"]),
                     f"[{style}]{r['state']}[/]",
                     "-" if r["exit_code"] is None else str(r["exit_code"]),
                     fmt_time(r.get("started_at") or r.get("queued_at")),
                     fmt_duration(dur), escape(r.get("reason") or "")))
    what = "".join(part for cond, part in (
        (args.job, f" of {args.job}"), (args.host, f" on {args.host}"),
        (args.state, f" {'/'.join(args.state or ())}"), (args.since, f" in the last {args.since}"))
        if cond)
    print_table(console(), cols, rows, empty=f"no runs{what}")
    return 0


def _missed(args: argparse.Namespace, engine: Any, since: float | None) -> int:
    rows = missed_rows(engine, since=since, limit=args.limit, job=args.job,
                       states=args.state, host=args.host)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.markup import escape

    from tui.cli.tables import Col, print_table
    from tui.fmt import STATE_STYLES

    cells = []
    for r in rows:
        occ = r["occurrence"]
        when = "-" if occ is None else time.strftime("%Y-%m-%d %H:%M:%S %Z",
                                                      time.localtime(occ))
        what = r["what"] + (f" (misfire={r['policy']})" if r["policy"] else "")
        style = STATE_STYLES.get(r["state"], "")
        run = f"#{r['run']}" + ("" if r["what"] == "skipped"
                               else f" [{style}]{r['state']}[/]")
        cells.append((escape(r["job"]), when, escape(what), run))
    if rows:
        print_table(console(), (Col("JOB"), Col("OCCURRENCE"), Col("WHAT", long=True),
                                Col("RUN")), cells)
    else:
        print("no missed occurrences" + (f" in the last {args.since}" if args.since else ""))
    return 0


def cmd_logs(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.jobs.engine import EngineError
    from tui.commands import id_number

    engine = view(config, state_dir)
    wanted = id_number(args.run_id)
    if wanted is None:  # a job's name: its latest run, as `kubectl logs deploy/x`
        latest = engine.list_runs(job=args.run_id, limit=1)
        if not latest:
            from core.config import did_you_mean

            known = args.run_id in config.jobs
            raise CLIError(f"job {args.run_id!r} has no runs yet" if known else
                           f"not a run id and no job named {args.run_id!r}"
                           f"{did_you_mean(args.run_id, config.jobs)}")
        wanted = latest[0]["id"]
        err(f"run #{wanted} of {latest[0]['job']} on {latest[0]['host']} "
            f"({latest[0]['state']})")  # stderr: the output stays the run's own
    args.run_id = wanted
    try:
        run = engine.get_run(args.run_id)
        path = engine.run_log_path(args.run_id)
    except EngineError as e:
        raise CLIError(str(e)) from None
    import codecs

    out = sys.stdout
    pos = 0
    text = codecs.getincrementaldecoder("utf-8")("replace")  # a character across chunks
    partial = ""  # an unfinished line: a sequence may go on in the next chunk
    while True:
        try:  # no file yet is no output yet; any other OSError is main's one line
            f = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            f = None
        if f is not None:
            with f:
                f.seek(pos)
                while chunk := f.read(1 << 16):
                    partial += text.decode(chunk)
                    done, nl, partial = partial.rpartition("\n")
                    out.write(for_terminal(done + nl, out))
                    pos += len(chunk)
            out.flush()
        if not args.follow or run["state"] not in ("queued", "running", "awaiting_approval"):
            out.write(for_terminal(partial + text.decode(b"", final=True), out))
            break
        time.sleep(0.25)
        run = view(config, state_dir).get_run(args.run_id)
    return 0


def cmd_run(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    if args.job not in config.jobs:
        raise CLIError(f"no job named {args.job!r}; `fleetdeck jobs` lists them")
    return on_engine(config, state_dir, args.log_format,
                     stream_runs(args, lambda engine: engine.run_job(args.job, actor=ACTOR)))


def stream_runs(args: argparse.Namespace, start: Any) -> Any:
    """Start runs (`start(engine)` returns them), print their output as it comes (with
    the host when there are several; a workflow run's with its step), and exit with
    their result. Ctrl-C cancels them; when they cannot be cancelled (the daemon is
    gone) or a second Ctrl-C comes, it stops waiting for them (exit 130)."""
    import asyncio

    async def work(engine: Any) -> int:
        from core.events import OutputLine

        mine: set[int] = set()  # one run per host the job's targets resolve to
        early: list[Any] = []  # a daemon's output can come before its answer

        def show(event: Any) -> None:
            if not isinstance(event, OutputLine) or args.json:
                return
            if not mine:
                early.append(event)
            elif event.run_id in mine:
                prefix = f"{event.host}: " if len(mine) > 1 else ""
                stream = sys.stderr if event.stream != "stdout" else sys.stdout
                print(for_terminal(prefix + event.line, stream), file=stream, flush=True)

        engine.bus.subscribe(show)
        loop = asyncio.get_running_loop()

        given_up = asyncio.Event()
        hits = 0

        def interrupt() -> None:
            nonlocal hits
            hits += 1
            if hits > 1 or not mine:  # a second Ctrl-C, or nothing started yet
                given_up.set()
                return
            for rid in mine:
                asyncio.ensure_future(_cancel_or_give_up(engine, rid, given_up))

        loop.add_signal_handler(signal.SIGINT, interrupt)
        loop.add_signal_handler(signal.SIGTERM, interrupt)
        starting = asyncio.ensure_future(start(engine))
        stop = asyncio.ensure_future(given_up.wait())
        await asyncio.wait({starting, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not starting.done():  # interrupted before the engine answered
            starting.cancel()
            err("stopped before the daemon answered: the runs may have started there "
                "(fleetdeck runs shows them)" if engine.attached else
                "stopped before the runs started: none ran")
            return EXIT_CANCELLED
        started = starting.result()
        if isinstance(started, dict):
            started = [started]
        mine.update(r["id"] for r in started)
        for event in early:
            show(event)
        waiting = asyncio.ensure_future(
            asyncio.gather(*(engine.wait_run(r["id"]) for r in started)))
        quit_waiting = asyncio.ensure_future(given_up.wait())
        await asyncio.wait({waiting, quit_waiting}, return_when=asyncio.FIRST_COMPLETED)
        quit_waiting.cancel()
        if not waiting.done():
            waiting.cancel()
            ids = ", ".join(f"run #{r['id']}" for r in started)
            err(f"stopped waiting: {ids} left as the daemon has them" if engine.attached
                else f"stopped: {ids} cancelled")
            return EXIT_CANCELLED
        return _report_runs(args, waiting.result())

    return work


async def _cancel_or_give_up(engine: Any, run_id: int, given_up: asyncio.Event) -> None:
    """Cancel a run; if that cannot be done (the daemon is gone), stop waiting for it."""
    try:
        await engine.cancel_run(run_id, actor=ACTOR)
    except engine_errors() as e:
        if "is not active" not in str(e):
            err(f"run #{run_id}: {e}")
            given_up.set()


def cmd_pause(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    return _job_action(args, config, state_dir, "pause_job", "paused")


def cmd_resume(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    return _job_action(args, config, state_dir, "resume_job", "resumed")


def _job_action(args: argparse.Namespace, config: Any, state_dir: Path, method: str,
                done: str) -> int:
    if args.job not in config.jobs:
        raise CLIError(f"no job named {args.job!r}; `fleetdeck jobs` lists them")

    async def work(engine: Any) -> int:
        await getattr(engine, method)(args.job, actor=ACTOR)
        print(f"{args.job}: {done}")
        return 0

    return on_engine(config, state_dir, args.log_format, work)


def cmd_cancel(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    if args.fanout is not None:
        if args.run_id is not None:
            raise CLIError("cancel a run or a fan-out, not both: cancel RUN_ID or "
                           "cancel --fanout ID")
        return _cancel_fanout(args, config, state_dir)
    if args.host is not None:
        raise CLIError("--host goes with --fanout ID")
    if args.run_id is None:
        raise CLIError("name what to cancel: cancel RUN_ID or cancel --fanout ID [--host H]")

    async def work(engine: Any) -> int:
        run = await engine.cancel_run(args.run_id, actor=ACTOR)
        print(f"run #{run['id']} of {run['job']} on {run['host']}: {run['state']}")
        return 0

    return on_engine(config, state_dir, args.log_format, work)


def _cancel_fanout(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    """A fan-out running in the daemon (or nowhere: then it has ended), as a whole or
    one host of it."""
    async def work(engine: Any) -> int:
        from core.jobs.active import EngineError

        fid = args.fanout
        try:
            if args.host is None:
                await engine.fanout_cancel(fid, actor=ACTOR)
                print(f"fan-out #{fid}: cancelling its running hosts; no more start")
            else:
                await engine.fanout_cancel_host(fid, args.host, actor=ACTOR)
                print(f"fan-out #{fid}: cancelling {args.host}")
        except EngineError as e:
            raise CLIError(str(e)) from None
        return 0

    return on_engine(config, state_dir, args.log_format, work)


def _report_runs(args: argparse.Namespace, runs: list[dict[str, Any]]) -> int:
    """The end of `fleetdeck run` (here or in a daemon): JSON, or a line per run that did
    not succeed; the exit status of the worst."""
    if args.json:
        print(json.dumps(runs, indent=2))
    else:
        for r in runs:
            if r["state"] != "succeeded":
                reason = f": {r['reason']}" if r.get("reason") else ""
                err(f"run #{r['id']} of {r['job']} on {r['host']} {r['state']}{reason}")
    return max(_exit_status(r) for r in runs) if runs else EXIT_NOT_RUN


def _exit_status(run: dict[str, Any]) -> int:
    state = run["state"]
    if state == "succeeded":
        return 0
    if state == "timed_out":
        return EXIT_TIMED_OUT
    if state == "cancelled":
        return EXIT_CANCELLED
    if run.get("exit_code") is not None:
        return int(run["exit_code"]) or 1
    return 1 if state == "failed" else EXIT_NOT_RUN
