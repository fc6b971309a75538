"""The `fleetdeck` command.

Headless commands print with rich and call the same Engine methods the console calls.
Textual is imported only when the console opens. A person's mistake (bad config, unknown
job, a state directory in use) is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from core.config import ConfigError
from core.fleetconfig import check_config
from core.fleetconfig import load_config as _load_config
from core.paths import default_config_path, default_state_dir

EXIT_USAGE = 2
EXIT_TIMED_OUT = 124  # as timeout(1)
EXIT_CANCELLED = 130
EXIT_NOT_RUN = 3  # skipped or interrupted: the command did not finish


class CLIError(Exception):
    """A one-line error for a person; exits 2."""


# ------------------------------------------------------------------------- plumbing ---
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fleetdeck",
        description="Keyboard-driven operations console: jobs, schedules, runs and logs.",
    )
    p.add_argument("--config", type=Path, help="config file (default: %(default)s)",
                   default=None)
    p.add_argument("--state-dir", type=Path, default=None,
                   help="state directory (default: $XDG_STATE_HOME/fleetdeck)")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="format of fleetdeck's own log")
    p.add_argument("--version", action=_VersionAction, nargs=0,
                   help="show program's version number and exit")
    p.add_argument("--read-only", action="store_true",
                   help="console: look, but run, pause and cancel nothing")
    p.add_argument("--theme", help="console theme: dark, light, high-contrast, ansi, or yours")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("console", help="open the console (the default with no command)")
    from tui.cli_daemon import add_daemon_parsers
    from tui.cli_demo import add_demo_parser
    from tui.cli_health import add_health_parser

    add_demo_parser(sub)
    add_health_parser(sub)
    add_daemon_parsers(sub)

    d = sub.add_parser("daemon", help="run the engine until SIGINT/SIGTERM")
    d.add_argument("--quiet", action="store_true", help="no run lines on stdout")
    d.add_argument("--metrics", metavar="HOST:PORT", default=None,
                   help="serve Prometheus metrics there, e.g. 127.0.0.1:9464")
    d.add_argument("--print-systemd-unit", action="store_true",
                   help="print a systemd user unit that runs this daemon, and exit")

    j = sub.add_parser("jobs", help="list jobs with their schedules and last results")
    j.add_argument("--json", action="store_true")

    r = sub.add_parser("run", help="run a job now, stream its output, exit with its exit code")
    r.add_argument("job")
    r.add_argument("--json", action="store_true", help="print the finished runs as JSON")

    rs = sub.add_parser("runs", help="list run history, newest first")
    rs.add_argument("--job")
    rs.add_argument("--state", action="append",
                    help="only runs in this state (repeatable)")
    rs.add_argument("--limit", type=int, default=30)
    rs.add_argument("--json", action="store_true")

    lg = sub.add_parser("logs", help="print a run's output")
    lg.add_argument("run_id", type=_run_id)
    lg.add_argument("-f", "--follow", action="store_true", help="follow until the run ends")

    cc = sub.add_parser("check-config", help="validate a config file; exit 2 on any error")
    cc.add_argument("path", nargs="?", type=Path)

    ini = sub.add_parser("init", help="write the built-in default config as a file to edit")
    ini.add_argument("path", nargs="?", type=Path)
    ini.add_argument("--force", action="store_true", help="overwrite an existing file")
    from tui.cli_fanout import add_fanout_parsers  # hosts, fanout, fanouts

    add_fanout_parsers(sub)
    from tui.cli_alerts import add_alert_parsers  # alerts, ack, silence

    add_alert_parsers(sub)
    return p


def _run_id(text: str) -> int:
    try:
        value = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a run id: {text!r} (e.g. 42)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a run id: {text!r}")
    return value


class _VersionAction(argparse.Action):
    """--version, looked up only when asked (importlib.metadata costs ~20 ms at start)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kw: Any) -> None:
        print(f"fleetdeck {_version()}")
        parser.exit()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fleetdeck")
    except Exception:
        return "0+unknown"


def _console():  # rich is light enough, but keep start-up lean for `--help`
    from rich.console import Console

    return Console(highlight=False)


def _err(message: str) -> None:
    print(f"fleetdeck: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, sys.argv[1:] if argv is None else list(argv))
    try:
        return _dispatch(args)
    except CLIError as e:
        _err(str(e))
        return EXIT_USAGE
    except ConfigError as e:
        for issue in e.issues:
            print(str(issue), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except BrokenPipeError:
        # `fleetdeck logs 12 | head`: the reader went away; that is not an error
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Everything after the first `--` is a fan-out's command, whatever options came
    between the pattern and it (`fanout web[1-3] --gather -- uptime`)."""
    if "--" not in argv:
        return parser.parse_args(argv)
    cut = argv.index("--")
    args = parser.parse_args(argv[:cut])
    tail = argv[cut + 1:]
    if args.command != "fanout":
        if tail:
            parser.error(f"unexpected arguments after --: {' '.join(tail)}")
        return args
    args.remote_command = [*(args.remote_command or []), *tail]
    return args


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "check-config":
        return cmd_check_config(args)
    if cmd == "init":
        return cmd_init(args)
    if cmd in ("reload", "audit"):  # the daemon reads its own config
        from tui.cli_daemon import cmd_audit, cmd_reload

        run = cmd_reload if cmd == "reload" else cmd_audit
        return run(args, None, args.state_dir or default_state_dir(), CLIError)
    if cmd == "demo":
        from tui.cli_demo import cmd_demo

        return cmd_demo(args, CLIError, cmd_console)
    config = _load_config(args.config)
    state_dir = args.state_dir or default_state_dir()
    if cmd is None or cmd == "console":
        return cmd_console(args, config, state_dir)
    if cmd == "daemon":
        return cmd_daemon(args, config, state_dir)
    if cmd == "jobs":
        return cmd_jobs(args, config, state_dir)
    if cmd == "run":
        return cmd_run(args, config, state_dir)
    if cmd == "runs":
        return cmd_runs(args, config, state_dir)
    if cmd == "logs":
        return cmd_logs(args, config, state_dir)
    if cmd == "health":
        from tui.cli_health import cmd_health

        return cmd_health(args, config, state_dir, CLIError)
    if cmd in ("hosts", "fanout", "fanouts"):
        from tui.cli_fanout import dispatch

        return dispatch(args, config, state_dir, CLIError)
    if cmd in ("alerts", "ack", "silence"):
        from tui.cli_alerts import dispatch as alerts_dispatch

        return alerts_dispatch(args, config, state_dir, CLIError)
    raise CLIError(f"unknown command {cmd!r}")


def _engine_errors():
    from core.jobs.engine import EngineError
    from core.store import StateLocked

    return (EngineError, StateLocked)


def _view(config: Any, state_dir: Path):
    """An engine over the state, read-only: listings work while a daemon runs."""
    from core.jobs.engine import Engine

    engine = Engine(config, state_dir)
    engine.open_view()
    return engine


# ------------------------------------------------------------------------- commands ---
def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.path or args.config or default_config_path()
    if not Path(path).exists():
        raise CLIError(f"{path}: file not found")
    issues = check_config(Path(path))
    for issue in issues:
        print(str(issue), file=sys.stderr)
    if issues:
        n = len(issues)
        print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: ok")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from core.default_config import DEFAULT_CONFIG_TOML

    path: Path = args.path or args.config or default_config_path()
    if path.exists() and not args.force:
        raise CLIError(f"{path} already exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(DEFAULT_CONFIG_TOML)
    print(f"wrote {path}; edit it, then: fleetdeck check-config {path}")
    return 0


def cmd_console(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.enginelog import setup_logging

    if not sys.stdout.isatty() and not os.environ.get("FLEETDECK_FORCE_CONSOLE"):
        raise CLIError("the console needs a terminal; for headless use: fleetdeck daemon")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    setup_logging(state_dir, fmt=args.log_format)
    from core.control.client import daemon_pid
    from tui.app import FleetdeckApp  # textual loads only here

    engine = None
    pid = daemon_pid(state_dir)
    if pid is not None:  # a daemon holds this state: attach to it, never start a second
        from core.control.attached import AttachedEngine

        engine = AttachedEngine(config, state_dir, pid)
    app = FleetdeckApp(config, state_dir, read_only=args.read_only, theme=args.theme,
                       engine=engine)
    app.run()
    return app.return_code or 0


def cmd_daemon(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.enginelog import setup_logging

    if args.print_systemd_unit:
        print(_systemd_unit(args, config, state_dir))
        return 0
    if args.metrics and not re.fullmatch(r"[\w.:-]*:\d{1,5}", args.metrics):
        raise CLIError(f"--metrics: expected HOST:PORT, e.g. 127.0.0.1:9464, got "
                       f"{args.metrics!r}")

    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    setup_logging(state_dir, fmt=args.log_format, to_stderr=True)
    quiet = getattr(args, "quiet", False)
    try:
        return asyncio.run(_daemon(config, state_dir, quiet, args.metrics))
    except _engine_errors() as e:
        raise CLIError(str(e)) from None


def _systemd_unit(args: argparse.Namespace, config: Any, state_dir: Path) -> str:
    exe = shutil.which("fleetdeck") or f"{sys.executable} -m tui.cli"
    cfg = f" --config {config.path}" if config.path else ""
    metrics = f" --metrics {args.metrics}" if args.metrics else ""
    return f"""# ~/.config/systemd/user/fleetdeck.service
# systemctl --user daemon-reload && systemctl --user enable --now fleetdeck
# loginctl enable-linger $USER   # keep it running when you log out
[Unit]
Description=fleetdeck engine (jobs, health checks, alerts)
After=network-online.target

[Service]
ExecStart={exe}{cfg} --state-dir {state_dir} daemon --quiet{metrics}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
UMask=0077

[Install]
WantedBy=default.target"""


async def _daemon(config: Any, state_dir: Path, quiet: bool,
                  metrics_at: str | None = None) -> int:
    from core.alerts.manager import attach_alerts
    from core.events import RunFinished, RunStarted
    from core.jobs.engine import Engine

    engine = Engine(config, state_dir)
    if config.checks:
        from core.health.monitor import attach_health

        attach_health(engine)
    if config.sources:
        from core.logs.monitor import attach_logs

        attach_logs(engine)
    if any(j.on_change for j in config.jobs.values()):
        from core.logs.triggers import attach_triggers

        attach_triggers(engine)
    attach_alerts(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console = _console()
    if not quiet:
        def show(event: Any) -> None:
            if isinstance(event, RunStarted | RunFinished):
                console.print(_run_line(event.run))
            elif event.kind == "alert_changed" and event.action in ("opened", "resolved"):
                from tui.cli_alerts import alert_line

                console.print(alert_line(event))

        engine.bus.subscribe(show)
    await engine.start()
    from core.audit import AuditLog
    from core.control.server import ControlServer
    from core.reload import Reloader

    reloader = Reloader(engine, config.path, AuditLog(state_dir))
    control = ControlServer(engine, reload=reloader)
    await control.start()

    def hup() -> None:
        asyncio.ensure_future(_quiet(reloader("SIGHUP")))

    loop.add_signal_handler(signal.SIGHUP, hup)
    reloader.watch()
    metrics = None
    if metrics_at:
        from core.metrics import Metrics

        metrics = Metrics(engine)
        try:
            host, port = metrics.serve(metrics_at)
        except OSError as e:
            await control.stop()
            await engine.stop()
            raise CLIError(f"--metrics {metrics_at}: {e.strerror or e}") from None
        console.print(f"metrics on http://{host}:{port}/metrics")
    where = config.path or "built-in default config"
    console.print(f"fleetdeck engine running (pid {os.getpid()}) with {where}; "
                  f"state in {state_dir}; control socket {control.path}; Ctrl-C stops")
    await stop.wait()
    reloader.stop()
    if metrics is not None:
        metrics.stop()
    await control.stop()
    await engine.stop()
    return 0


async def _quiet(coro: Any) -> None:
    """A reload from a signal: its rejection is already a notice and a log line."""
    with contextlib.suppress(ValueError):
        await coro


def _run_line(run: dict[str, Any]) -> str:
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
    engine = _view(config, state_dir)
    jobs = engine.list_jobs()
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    from rich.markup import escape
    from rich.table import Table

    from tui.fmt import STATE_STYLES, fmt_age, fmt_rate

    table = Table(box=None, header_style="bold")
    for col in ("JOB", "SCHEDULE", "NEXT", "LAST", "SUCCESS", "STATE"):
        table.add_column(col)
    now = time.time()
    for j in jobs:
        last = j["last_run"]
        last_text = "-"
        if last:
            style = STATE_STYLES.get(last["state"], "")
            last_text = f"[{style}]{last['state']}[/] {fmt_age(last.get('finished_at'), now)}"
        state = "disabled" if not j["enabled"] else "paused" if j["paused"] else "enabled"
        sched = escape(j["schedule_text"])
        table.add_row(escape(j["name"]), sched, fmt_age(j["next_fire"], now), last_text,
                      fmt_rate(j["success_rate"]), state)
    _console().print(table)
    return 0


def cmd_runs(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.jobs.runs import RunState

    for s in args.state or []:
        if s not in {st.value for st in RunState}:
            names = ", ".join(st.value for st in RunState)
            raise CLIError(f"--state: unknown state {s!r}; one of {names}")
    if args.limit < 1:
        raise CLIError("--limit must be at least 1")
    engine = _view(config, state_dir)
    runs = engine.list_runs(job=args.job, states=args.state, limit=args.limit)
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    from rich.markup import escape
    from rich.table import Table

    from tui.fmt import STATE_STYLES, fmt_duration, fmt_time

    table = Table(box=None, header_style="bold")
    for col in ("RUN", "JOB", "HOST", "STATE", "EXIT", "STARTED", "DURATION", "REASON"):
        table.add_column(col)
    for r in runs:
        style = STATE_STYLES.get(r["state"], "")
        dur = (r["finished_at"] - r["started_at"]
               if r.get("finished_at") and r.get("started_at") else None)
        table.add_row(f"#{r['id']}", escape(r["job"]), escape(r["host"]),
                      f"[{style}]{r['state']}[/]",
                      "-" if r["exit_code"] is None else str(r["exit_code"]),
                      fmt_time(r.get("started_at") or r.get("queued_at")),
                      fmt_duration(dur), escape(r.get("reason") or ""))
    _console().print(table)
    return 0


def cmd_logs(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.jobs.engine import EngineError

    engine = _view(config, state_dir)
    try:
        run = engine.get_run(args.run_id)
        path = engine.run_log_path(args.run_id)
    except EngineError as e:
        raise CLIError(str(e)) from None
    out = sys.stdout
    pos = 0
    while True:
        if path.exists():
            with open(path, "rb") as f:
                f.seek(pos)
                while chunk := f.read(1 << 16):
                    out.write(chunk.decode("utf-8", "replace"))
                    pos += len(chunk)
            out.flush()
        if not args.follow or run["state"] not in ("queued", "running"):
            break
        time.sleep(0.25)
        run = _view(config, state_dir).get_run(args.run_id)
    return 0


def cmd_run(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.enginelog import setup_logging

    if args.job not in config.jobs:
        raise CLIError(f"no job named {args.job!r}; `fleetdeck jobs` lists them")
    from core.control.client import daemon_pid

    if daemon_pid(state_dir) is not None:  # the daemon runs it; we watch
        return _run_via_daemon(args, config, state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    setup_logging(state_dir, fmt=args.log_format)
    try:
        return asyncio.run(_run(args, config, state_dir))
    except _engine_errors() as e:
        raise CLIError(str(e)) from None


def _run_via_daemon(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    """`fleetdeck run` beside a daemon: the daemon runs the job (and audits it as this
    user); the output is read from the run logs in the shared state directory."""
    from core.control.client import DaemonError, call

    try:
        started = asyncio.run(call(state_dir, "run_job", {"name": args.job}))
    except DaemonError as e:
        raise CLIError(str(e)) from None
    multi = len(started) > 1
    pos = {r["id"]: 0 for r in started}
    runs: dict[int, dict[str, Any]] = {}
    try:
        while len(runs) < len(started):
            engine = _view(config, state_dir)
            for r in started:
                rid = r["id"]
                if rid in runs:
                    continue
                try:
                    run = engine.get_run(rid)
                except Exception:  # not on disk yet (the daemon's group commit)
                    continue
                path = engine.run_log_path(rid)
                if path.exists() and not args.json:
                    with open(path, "rb") as f:
                        f.seek(pos[rid])
                        data = f.read()
                    pos[rid] += len(data)
                    for line in data.decode("utf-8", "replace").splitlines():
                        print((f"{run['host']}: " if multi else "") + line, flush=True)
                if run["state"] not in ("queued", "running"):
                    runs[rid] = run
            time.sleep(0.2)
    except KeyboardInterrupt:
        for r in started:
            if r["id"] not in runs:
                with contextlib.suppress(DaemonError, OSError):
                    asyncio.run(call(state_dir, "cancel_run", {"run_id": r["id"]}))
        return EXIT_CANCELLED
    return _report_runs(args, list(runs.values()))


async def _run(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.alerts.manager import attach_alerts
    from core.events import OutputLine
    from core.jobs.engine import Engine

    engine = Engine(config, state_dir)
    attach_alerts(engine)  # a failure opens its alert; the outbox waits for the next engine
    await engine.start(scheduling=False)  # only this run; the schedule is the daemon's
    mine: set[int] = set()
    multi = len(config.jobs[args.job].targets.split(",")) > 1

    def show(event: Any) -> None:
        if isinstance(event, OutputLine) and event.run_id in mine and not args.json:
            prefix = f"{event.host}: " if multi else ""
            stream = sys.stderr if event.stream != "stdout" else sys.stdout
            print(prefix + event.line, file=stream, flush=True)

    engine.bus.subscribe(show)
    loop = asyncio.get_running_loop()
    runs: list[dict[str, Any]] = []

    def interrupt() -> None:
        for rid in mine:
            asyncio.ensure_future(engine.cancel_run(rid, requested_by=None))

    loop.add_signal_handler(signal.SIGINT, interrupt)
    loop.add_signal_handler(signal.SIGTERM, interrupt)
    try:
        started = await engine.run_job(args.job)
        engine.record_action("run", [args.job], via="cli",
                             detail=", ".join(f"#{r['id']}" for r in started))
        mine.update(r["id"] for r in started)
        runs = [await engine.wait_run(r["id"]) for r in started]
    finally:
        await engine.stop()
    return _report_runs(args, runs)


def _report_runs(args: argparse.Namespace, runs: list[dict[str, Any]]) -> int:
    """The end of `fleetdeck run` (here or in a daemon): JSON, or a line per run that did
    not succeed; the exit status of the worst."""
    if args.json:
        print(json.dumps(runs, indent=2))
    else:
        for r in runs:
            if r["state"] != "succeeded":
                reason = f": {r['reason']}" if r.get("reason") else ""
                _err(f"run #{r['id']} of {r['job']} on {r['host']} {r['state']}{reason}")
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


if __name__ == "__main__":
    sys.exit(main())
