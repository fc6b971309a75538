"""The `fanout` command of the `fleetdeck` CLI: one command on many hosts, streamed.

    fleetdeck fanout PATTERN [options] -- COMMAND...
    fleetdeck fanout --rerun ID [--only CLASS[,CLASS]] [options]

`fanout` streams `host: line` as lines arrive (stderr lines on stderr); with `--gather`
it prints output grouped by identical text, class and exit code, largest group first;
it always ends with a summary line of counts per class. Exit status: 0 all ok, 1 any
failed, timed out or cancelled, 3 any unreachable or refused (auth, host key), 2 a
usage or config error, 130 after Ctrl-C (which stops starting hosts, cancels the running
ones and still prints the summary).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.remote.classes import HOST_CLASSES
from tui.cli.common import ACTOR, CLIError, on_engine
from tui.cli.fanouts import fanout_id

EXIT_INTERRUPTED = 130
CLASS_NAMES = HOST_CLASSES


def add_parsers(sub: Any) -> None:
    f = sub.add_parser(
        "fanout", help="run one command on many hosts: fanout PATTERN -- COMMAND",
        description="Run one command on every host a pattern names, at most --forks at "
                    "a time. Put options before `--`; everything after it is the command.")
    f.add_argument("pattern", nargs="?", help="target pattern, e.g. 'web[01-20],!web07'")
    f.add_argument("remote_command", nargs="*", metavar="COMMAND",
                   help="the command (after --)")
    f.add_argument("--forks", type=int, default=64, metavar="N",
                   help="hosts at once (default: 64)")
    f.add_argument("--timeout", default=None, metavar="D",
                   help="command timeout, e.g. 30s (default: no timeout)")
    f.add_argument("--connect-timeout", default="10s", metavar="D",
                   help="SSH connect timeout (default: 10s)")
    f.add_argument("--gather", action="store_true",
                   help="print output grouped by identical text at the end")
    f.add_argument("--json", action="store_true", help="print the fan-out record as JSON")
    f.add_argument("--trust-new-host-keys", action="store_true",
                   help="trust unknown host keys (written to fleetdeck's own known_hosts); "
                        "changed keys are still refused")
    f.add_argument("--rerun", type=fanout_id, metavar="ID",
                   help="run the command of fan-out ID again")
    f.add_argument("--only", metavar="CLASS",
                   help="with --rerun: only the hosts of these classes, e.g. failed,timed_out")
    f.set_defaults(func=cmd_fanout)


# -------------------------------------------------------------------------- fanout ---
def _duration(text: str | None, flag: str) -> float | None:
    from core.durations import DurationError, parse_duration

    if text is None:
        return None
    try:
        value = parse_duration(text)
    except DurationError as e:
        raise CLIError(f"{flag}: {e}") from None
    if value <= 0:
        raise CLIError(f"{flag} must be more than 0")
    return value


def cmd_fanout(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.remote.fanout import hosts_of
    from core.remote.inventory import TargetError, fold_hosts, resolve_targets
    from core.store.fanouts import FanOutStore

    if args.forks < 1:
        raise CLIError("--forks must be at least 1")
    timeout = _duration(args.timeout, "--timeout")
    connect_timeout = _duration(args.connect_timeout, "--connect-timeout")
    rerun_of = None
    if args.rerun is not None:
        if args.pattern is not None or args.remote_command:
            raise CLIError("--rerun takes its command and hosts from the recorded fan-out; "
                             "give no pattern or command")
        old = FanOutStore(state_dir, read_only=True).get(args.rerun)
        if old is None:
            raise CLIError(f"no fan-out #{args.rerun}; `fleetdeck fanouts` lists them")
        classes = CLASS_NAMES
        if args.only:
            classes = tuple(c.strip() for c in args.only.split(",") if c.strip())
            bad = [c for c in classes if c not in CLASS_NAMES]
            if bad or not classes:
                raise CLIError(f"--only: unknown class {', '.join(bad) or args.only!r}; "
                                 f"one of {', '.join(CLASS_NAMES)}")
        args.classes = list(classes)
        names = hosts_of(old, classes)
        if not names:
            raise CLIError(f"fan-out #{args.rerun} has no host in {', '.join(classes)}")
        gone = [n for n in names if n not in config.hosts]
        if gone:
            raise CLIError(f"host '{gone[0]}' of fan-out #{args.rerun} is no longer in the "
                             "inventory")
        command, pattern, rerun_of = old["command"], fold_hosts(names), args.rerun
    else:
        if args.only:
            raise CLIError("--only goes with --rerun")
        if not args.pattern:
            raise CLIError("name the hosts: fleetdeck fanout PATTERN -- COMMAND")
        if not args.remote_command:
            raise CLIError("no command: fleetdeck fanout PATTERN -- COMMAND")
        command, pattern = " ".join(args.remote_command), args.pattern
        try:
            names = resolve_targets(pattern, config.hosts)
        except TargetError as e:
            raise CLIError(str(e)) from None
    params = {"pattern": pattern, "command": command, "hosts": names, "forks": args.forks,
              "timeout": timeout, "connect_timeout": connect_timeout,
              "trust_new_keys": args.trust_new_host_keys}
    return on_engine(config, state_dir, args.log_format, _fanout(args, params, rerun_of))


def _fanout(args: argparse.Namespace, params: dict[str, Any], rerun_of: int | None) -> Any:
    """A fan-out on the engine the state directory has (a daemon's runs it over its pool,
    audited as this user); its lines and host results come back as events, Ctrl-C
    cancels it where it runs."""
    async def work(engine: Any) -> int:
        from core.jobs.active import EngineError

        stream = not (args.gather or args.json)
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        mine: list[int] = []
        early: list[dict[str, Any]] = []  # a daemon's events can come before its answer

        def on_event(event: Any) -> None:
            msg = event.to_message()
            fid = msg.get("fanout_id", (msg.get("fanout") or {}).get("id"))
            if not mine:
                early.append(msg)
            elif fid == mine[0]:
                if msg.get("event") == "fanout_done" and not done.done():
                    done.set_result(msg["fanout"])
                elif stream:
                    _echo(msg)

        engine.bus.subscribe(on_event)
        started = time.monotonic()
        try:
            if rerun_of is not None:
                rec = await engine.fanout_rerun(rerun_of, args.classes, actor=ACTOR)
            else:
                rec = await engine.fanout_start(**params, actor=ACTOR)
        except (ValueError, KeyError, EngineError) as e:
            raise CLIError(str(e).strip("'\"")) from None
        mine.append(rec["id"])
        for msg in early:
            on_event(_Message(msg))
        if rec.get("finished_at") and not done.done():
            done.set_result(rec)

        def cancel() -> None:
            asyncio.ensure_future(engine.fanout_cancel(rec["id"], actor=ACTOR))

        with _interruptible(cancel) as interrupt:
            record = await done
        elapsed = time.monotonic() - started
        for name, where, fp in record.get("trusted", []):
            print(f"fleetdeck: trusted the new host key of {name} ({where}): {fp}",
                  file=sys.stderr)
        groups = await engine.fresh("fanout_gather", fanout_id=rec["id"]) \
            if args.json or args.gather else []
        return _report(args, record, groups, elapsed, interrupt.happened)

    return work


class _Message:
    """An event already turned into its message, replayed."""

    def __init__(self, msg: dict[str, Any]) -> None:
        self.msg = msg

    def to_message(self) -> dict[str, Any]:
        return self.msg


def _echo(msg: dict[str, Any]) -> None:
    """A fan-out's line or a host's end, as it comes (an event as a message: ours, or a
    daemon's over its socket)."""
    kind = msg.get("event")
    if kind == "fanout_line":
        out = sys.stdout if msg["stream"] == "stdout" else sys.stderr
        print(f"{msg['host']}: {msg['line']}", file=out, flush=True)
    elif kind == "host_result":
        r = msg["result"]
        if r["state"] not in ("ok", "pending", "connecting", "running"):
            print(f"{r['host']}: [{r['state']}] {r['reason']}", file=sys.stderr, flush=True)


class _Interrupt:
    """Ctrl-C or SIGTERM: said once; the running hosts are cancelled on each."""

    def __init__(self, cancel: Callable[[], None]) -> None:
        self.cancel = cancel
        self.happened = False

    def __call__(self) -> None:
        if not self.happened:
            self.happened = True
            print("fleetdeck: interrupted: cancelling the running hosts", file=sys.stderr,
                  flush=True)
        self.cancel()


@contextlib.contextmanager
def _interruptible(cancel: Callable[[], None]) -> Iterator[_Interrupt]:
    loop = asyncio.get_running_loop()
    interrupt = _Interrupt(cancel)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        yield interrupt
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _report(args: argparse.Namespace, record: dict[str, Any], groups: list[dict[str, Any]],
            elapsed: float, interrupted: bool) -> int:
    """The end of a fan-out: the record as JSON, or the gathered groups; the summary
    line; the exit status."""
    from core.remote.fanout import exit_status, summary_line

    results = list(record["hosts"].values())
    if args.json:
        record["groups"] = [{k: v for k, v in g.items() if k not in ("text", "diff")}
                            | {"text": g["text"]} for g in groups]
        print(json.dumps(record, indent=2))
    elif args.gather:
        _print_groups(groups)
    if not args.json:
        print(summary_line(results, elapsed, record["id"]))
    return EXIT_INTERRUPTED if interrupted else exit_status(results)


def _print_groups(groups: list[dict[str, Any]]) -> None:
    for g in groups:
        head = f"{g['folded']} ({g['count']})"
        if g["state"] != "ok":
            head += f" {g['state']}" + (f": {g['reason']}" if g["reason"] else "")
        bar = "-" * min(79, max(15, len(head)))
        print(bar)
        print(head)
        print(bar)
        text = g["text"]
        if text:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
