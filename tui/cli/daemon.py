"""`daemon`, `reload` and `audit`: the headless engine and talking to it.

    fleetdeck daemon [--quiet] [--metrics HOST:PORT] [--print-systemd-unit]
    fleetdeck reload                      the daemon re-reads its config (or says why not)
    fleetdeck audit [--since 2h] [--json] who did what, when, through what
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.heap import freeze_long_lived
from tui.cli.common import (
    EXIT_USAGE,
    CLIError,
    console,
    engine_errors,
    err,
    state_dir_of,
    text_arg,
)
from tui.cli.jobs import run_line

if TYPE_CHECKING:
    import asyncio


def add_parsers(sub: Any) -> None:
    d = sub.add_parser("daemon", help="run the engine until SIGINT/SIGTERM")
    d.add_argument("--quiet", action="store_true", help="no run lines on stdout")
    d.add_argument("--metrics", metavar="HOST:PORT", default=None, type=text_arg,
                   help="serve Prometheus metrics there, e.g. 127.0.0.1:9464 (default: "
                        "no metrics)")
    d.add_argument("--print-systemd-unit", action="store_true",
                   help="print a systemd user unit that runs this daemon, and exit")
    d.set_defaults(func=cmd_daemon)
    r = sub.add_parser("reload", help="make the running daemon re-read its config")
    r.set_defaults(func=cmd_reload, needs_config=False)
    a = sub.add_parser("audit", help="the audit trail: every action a person took")
    a.add_argument("--since", metavar="D", default=None, type=text_arg,
                   help="only the last D, e.g. 2h, 30m (default: everything)")
    a.add_argument("--json", action="store_true", help="print the records as JSON")
    a.set_defaults(func=cmd_audit, needs_config=False)


def cmd_daemon(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    import asyncio

    from core.enginelog import setup_logging

    if args.print_systemd_unit:
        print(_systemd_unit(args, config, state_dir))
        return 0
    if args.metrics and not re.fullmatch(r"[\w.:-]*:\d{1,5}", args.metrics):
        raise CLIError(f"--metrics: expected HOST:PORT, e.g. 127.0.0.1:9464, got "
                       f"{args.metrics!r}")
    if args.metrics and not 0 < int(args.metrics.rsplit(":", 1)[1]) < 65536:
        raise CLIError(f"--metrics: port {args.metrics.rsplit(':', 1)[1]} out of range "
                       f"(1-65535)")
    if args.metrics:  # an address that is none is said before the engine starts
        import socket

        host, _, port = args.metrics.rpartition(":")
        try:
            socket.getaddrinfo(host or "127.0.0.1", int(port), type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            why = e.strerror if isinstance(e, socket.gaierror) else "not a host name"
            raise CLIError(f"--metrics {args.metrics}: {why}") from None

    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    setup_logging(state_dir, fmt=args.log_format, to_stderr=True)
    quiet = getattr(args, "quiet", False)
    try:
        return asyncio.run(_daemon(config, state_dir, quiet, args.metrics))
    except engine_errors() as e:
        raise CLIError(str(e)) from None


def _unit_word(word: str) -> str:
    """One word of an ExecStart= line as systemd reads it back: `%` is a specifier and
    `$` a variable unless doubled, and a space would split the word unless quoted."""
    word = word.replace("%", "%%").replace("$", "$$")
    if word and not any(c.isspace() or c in "\\\"';" for c in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _systemd_unit(args: argparse.Namespace, config: Any, state_dir: Path) -> str:
    which = shutil.which("fleetdeck")
    exe = _unit_word(which) if which else f"{_unit_word(sys.executable)} -m tui.cli"
    # systemd starts a user unit in $HOME: a path typed relative to here must not move
    cfg = f" --config {_unit_word(os.path.abspath(config.path))}" if config.path else ""
    metrics = f" --metrics {_unit_word(args.metrics)}" if args.metrics else ""
    state = _unit_word(os.path.abspath(state_dir))
    return f"""# ~/.config/systemd/user/fleetdeck.service
# systemctl --user daemon-reload && systemctl --user enable --now fleetdeck
# loginctl enable-linger $USER   # keep it running when you log out
[Unit]
Description=fleetdeck engine (jobs, health checks, alerts)

[Service]
# notify: `systemctl start` waits until fleetdeck holds the state and serves, and
# fails when it could not
Type=notify
ExecStart={exe}{cfg} --state-dir {state} daemon --quiet{metrics}
ExecReload=/bin/kill -HUP $MAINPID
# stop: SIGTERM to fleetdeck alone, which ends its runs itself and records them as
# cancelled (control-group would signal every run at once, before it could)
KillMode=mixed
TimeoutStopSec=90
Restart=on-failure
RestartSec=5
UMask=0077

[Install]
WantedBy=default.target"""


async def _daemon(config: Any, state_dir: Path, quiet: bool,
                  metrics_at: str | None = None) -> int:
    from core.daemon import Daemon
    from core.events import AlertChanged, RunFinished, RunStarted

    daemon = Daemon(config, state_dir, metrics_at=metrics_at)
    stop = stop_on_signals()  # before the start: a SIGTERM meanwhile is not lost
    out = console()
    if not quiet:
        def show(event: Any) -> None:
            if isinstance(event, RunStarted | RunFinished):
                out.print(run_line(event.run))
            elif isinstance(event, AlertChanged) and event.action in ("opened", "resolved"):
                from tui.cli.alerts import alert_line

                out.print(alert_line(event))

        daemon.engine.bus.subscribe(show)
    from core.daemon import StartError

    try:
        await daemon.start()
    except StartError as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        if metrics_at is None or e.filename is not None:
            raise  # the state directory's, not the address's: main words it
        raise CLIError(f"--metrics {metrics_at}: {e.strerror or e}") from None
    freeze_long_lived()  # the engine is up: its history index lives as long as we do
    if daemon.metrics_address is not None:
        host, port = daemon.metrics_address
        out.print(f"metrics on http://{host}:{port}/metrics")
    where = config.path or "built-in default config"
    out.print(f"fleetdeck engine running (pid {os.getpid()}) with {where}; "
              f"state in {state_dir}; control socket {daemon.control.path}; Ctrl-C stops")
    await serve_until_stopped(daemon, stop)
    return 0


def stop_on_signals() -> asyncio.Event:
    """The event SIGINT and SIGTERM set: the daemon's cue to stop."""
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_until_stopped(daemon: Any, stop: asyncio.Event) -> None:
    """Serve a started daemon (SIGHUP reloads) until `stop` is set, then stop it: what
    still runs is recorded as cancelled."""
    import asyncio

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, daemon.reload_on_signal)
    await stop.wait()
    await daemon.stop()


def cmd_reload(args: argparse.Namespace) -> int:
    import asyncio

    state_dir = state_dir_of(args)
    from core.control.client import DaemonError, call, daemon_pid

    if daemon_pid(state_dir) is None:
        from core.store.lock import lock_holder
        from tui.cli.status import command_of

        holder = lock_holder(state_dir)
        if holder is not None:  # a console's own engine, a `run`: no socket to ask
            what = f" ({command_of(holder)})" if command_of(holder) else ""
            raise CLIError(f"no daemon is running for {state_dir}; pid {holder or '?'}{what} "
                           "holds it, and reads its config only when it starts")
        raise CLIError(f"no daemon is running for {state_dir}; start one with: fleetdeck daemon")
    try:
        summary = asyncio.run(call(state_dir, "reload"))
    except DaemonError as e:
        if not e.details:
            raise CLIError(str(e)) from None
        err(str(e))
        for line in e.details:  # one line per error, as check-config prints them
            print(line, file=sys.stderr)
        return EXIT_USAGE
    changed = ", ".join(f"{len(v)} {k} ({' '.join(v)})" for k, v in summary.items() if v)
    print(f"reloaded: {changed or 'nothing changed'}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    state_dir = state_dir_of(args)
    from rich.markup import escape

    from core.audit import AuditLog
    from core.durations import DurationError, parse_duration
    from tui.cli.tables import Col, print_table
    from tui.fmt import fmt_time

    since = None
    if args.since:
        try:
            since = time.time() - parse_duration(args.since)
        except DurationError as e:
            raise CLIError(f"--since: {e}") from None
    records = AuditLog(state_dir).read(since=since)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    print_table(console(), (Col("WHEN"), Col("WHO"), Col("VIA", drop=1), Col("ACTION"),
                            Col("TARGETS", long=True), Col("DETAIL", long=True)),
                [(fmt_time(r["ts"]), escape(r["user"]), escape(r["via"]),
                  escape(r["action"]), escape(", ".join(r["targets"])),
                  escape(r.get("detail", ""))) for r in records],
                empty="no actions on record" + (f" in the last {args.since}" if args.since
                                                else ""))
    return 0
