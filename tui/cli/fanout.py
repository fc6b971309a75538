"""The `fanout` command of the `fleetdeck` CLI: one command on many hosts, streamed.

    fleetdeck fanout PATTERN [options] -- COMMAND...
    fleetdeck fanout PATTERN --serial 1,25% --max-fail 1 -- COMMAND...
    fleetdeck fanout --rerun ID [--only CLASS[,CLASS]|all] [options]

A rolling fan-out (`--serial`, `--max-fail`, `--pause-between`; see
`core/remote/rollout.py`) says each batch as it starts on stderr; when max-fail stops it,
the hosts never started end `skipped` and a rerun of the non-ok hosts goes on in the
same batches.

`--rerun` without `--only` reruns the hosts that did not end ok and that running again
may fix (the engine's `not_ok`: failed, timed_out, unreachable, auth_failed,
become_failed, cancelled, skipped);
a host refused for its key waits for a person (`--only host_key_unknown` names it).

`fanout` streams `host: line` as lines arrive (stderr lines on stderr); with `--gather`
it prints output grouped by identical text, class and exit code, largest group first
(`--stream --gather`: both); `--out-dir DIR` also keeps each host's stdout and stderr in
DIR/HOST.stdout and DIR/HOST.stderr, written where the fan-out runs;
it always ends with a summary line of counts per class. Exit status: 0 all ok, 1 any
failed, timed out or cancelled, 3 any unreachable or refused (auth, host key), 2 a
usage or config error, 130 after Ctrl-C (which stops starting hosts, cancels the running
ones and still prints the summary).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.remote.classes import HOST_CLASSES, NOT_OK, NOT_OK_CLASSES
from tui.cli.common import ACTOR, CLIError, folder_to_write, for_terminal, on_engine, text_arg
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
    add_run_options(f, "command")
    f.add_argument("--become", nargs="?", const="root", metavar="USER",
                   help="run the command as USER (default: root) through sudo; without -K, "
                        "sudo -n (a host whose sudo wants a password ends become_failed); "
                        "hosts' own `become` in the inventory applies without it")
    f.add_argument("-K", "--ask-become-pass", action="store_true",
                   help="ask for the sudo password once, without echo (from a pipe: its "
                        "first line); it goes to each host on the command's stdin only")
    f.add_argument("--stream", action="store_true",
                   help="print each line as it comes, prefixed with its host (the default; "
                        "with --gather, both)")
    f.add_argument("--gather", action="store_true",
                   help="print output grouped by identical text at the end")
    f.add_argument("--out-dir", metavar="DIR", type=text_arg,
                   help="also write each host's stdout and stderr to DIR/HOST.stdout and "
                        "DIR/HOST.stderr (created when missing)")
    f.add_argument("--rerun", type=fanout_id, metavar="ID",
                   help="run the command of fan-out ID again on its hosts that did not end "
                        "ok (see --only), with its forks and timeouts; says how many of "
                        "each class first, and runs nothing when all were ok")
    f.add_argument("--only", metavar="CLASS",
                   help="with --rerun: the hosts of these classes, e.g. failed,timed_out; "
                        f"'all' for every host (default: {NOT_OK}: "
                        f"{', '.join(NOT_OK_CLASSES)}; not the host_key_* classes, "
                        "whose key a person must trust or fix first)")
    f.set_defaults(func=cmd_fanout)


def add_run_options(p: Any, what: str) -> None:
    """The options every fan-out kind takes (a command, a push, a pull)."""
    p.add_argument("--forks", type=int, default=64, metavar="N",
                   help="hosts at once (default: 64; with --rerun, the recorded fan-out's)")
    p.add_argument("--timeout", default=None, metavar="D", type=text_arg,
                   help=f"{what} timeout per host, e.g. 30s (default: no timeout; with "
                        "--rerun, the recorded fan-out's)")
    p.add_argument("--connect-timeout", default="10s", metavar="D", type=text_arg,
                   help="SSH connect timeout (default: 10s; with --rerun, the recorded "
                        "fan-out's)")
    p.add_argument("--serial", metavar="N|N%[,...]",
                   help="in batches: 2 hosts at a time, 25%% of them, or a list such as "
                        "1,5,25%% (a canary of one first; the last size repeats)")
    p.add_argument("--max-fail", metavar="N|N%",
                   help="stop the rollout after the batch in which N hosts (or N%% of all) "
                        "had failed; hosts not started end skipped")
    p.add_argument("--pause-between", metavar="D",
                   help="wait this long between two batches, e.g. 30s")
    p.add_argument("--json", action="store_true", help="print the fan-out record as JSON")
    p.add_argument("--trust-new-host-keys", action="store_true",
                   help="trust unknown host keys (written to fleetdeck's own known_hosts); "
                        "changed keys are still refused")


def run_params(args: argparse.Namespace) -> dict[str, Any]:
    """What every fan-out kind passes the engine, checked here (usage errors, exit 2)."""
    from core.remote.config import MAX_FORKS
    from core.remote.rollout import RolloutError, make_rollout

    if not 1 <= args.forks <= MAX_FORKS:
        raise CLIError(f"--forks must be from 1 to {MAX_FORKS:,}")
    try:
        make_rollout(args.serial, args.max_fail, args.pause_between)
    except RolloutError as e:
        raise CLIError(f"--{e}") from None
    return {"forks": args.forks, "timeout": _duration(args.timeout, "--timeout"),
            "connect_timeout": _duration(args.connect_timeout, "--connect-timeout"),
            "trust_new_keys": args.trust_new_host_keys, "serial": args.serial,
            "max_fail": args.max_fail, "pause_between": args.pause_between}


def hosts_for(pattern: str, config: Any) -> list[str]:
    from core.remote.inventory import TargetError, resolve_targets

    try:
        return resolve_targets(pattern, config.hosts)
    except TargetError as e:
        raise CLIError(str(e)) from None


# -------------------------------------------------------------------------- fanout ---
def _duration(text: str | None, flag: str) -> float | None:
    from core.confguard import MAX_DURATION, format_seconds
    from core.durations import DurationError, parse_duration

    if text is None:
        return None
    try:
        value = parse_duration(text)
    except DurationError as e:
        raise CLIError(f"{flag}: {e}") from None
    if value <= 0:
        raise CLIError(f"{flag} must be more than 0")
    if value > MAX_DURATION:  # as in a config: a longer one is a typo (1e300 overflowed)
        raise CLIError(f"{flag}: {text} is more than {format_seconds(MAX_DURATION)}")
    return value


def cmd_fanout(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.remote.inventory import fold_hosts

    common = run_params(args)
    if args.stream and args.json:
        raise CLIError("--stream and --json: the JSON is the whole output; give one")
    out_dir = folder_to_write(args.out_dir, "--out-dir") if args.out_dir else None
    rerun_of = None
    if args.become is not None:
        from core.remote.become import valid_user

        if not valid_user(args.become):
            raise CLIError(f"--become: invalid user name {args.become!r}")
    if args.rerun is not None:
        plan = _plan_rerun(args, config, state_dir)
        if isinstance(plan, int):
            return plan  # nothing to run
        command, names = plan
        pattern, rerun_of = fold_hosts(names), args.rerun
    else:
        if args.only:
            raise CLIError("--only goes with --rerun")
        if not args.pattern:
            raise CLIError("name the hosts: fleetdeck fanout PATTERN -- COMMAND")
        if not args.remote_command:
            raise CLIError("no command: fleetdeck fanout PATTERN -- COMMAND")
        command, pattern = " ".join(args.remote_command), args.pattern
        names = hosts_for(pattern, config)
    params = {"pattern": pattern, "command": command, "hosts": names, **common,
              "out_dir": out_dir, "become": args.become}
    if args.ask_become_pass:
        args.become_password = params["become_password"] = ask_password()
    return on_engine(config, state_dir, args.log_format, fan_out(args, params, rerun_of),
                     services=())


def ask_password(prompt: str = "BECOME password: ") -> str:
    """The sudo password, asked once: on the terminal without echo, or the first line of
    a pipe (as `sudo -S` reads it)."""
    import getpass

    try:
        if sys.stdin.isatty():
            return getpass.getpass(prompt)
        line = sys.stdin.readline()
    except (EOFError, KeyboardInterrupt):
        raise CLIError("-K: no password given") from None
    if not line:
        raise CLIError("-K: no password given (stdin is empty)")
    return line.rstrip("\n")


def _plan_rerun(args: argparse.Namespace, config: Any,
                state_dir: Path) -> tuple[str, list[str]] | int:
    """A rerun's command and hosts, said before it starts ("rerunning 2 of 12 hosts: 1
    failed, 1 timed_out"); or, when no host needs it, the exit status to end with (0
    when every host was ok). Without --only it takes the engine's `not_ok` selector, so
    the engine picks the same hosts this shows."""
    from core.remote.classes import HOST_CLASSES, NEEDS_A_PERSON, NOT_OK, select_classes
    from core.remote.results import exit_status, hosts_of, summary_line
    from core.store.fanouts import FanOutStore

    if args.pattern is not None or args.remote_command:
        raise CLIError("--rerun takes its command and hosts from the recorded fan-out; "
                       "give no pattern or command")
    if args.out_dir:
        raise CLIError("--rerun writes where the recorded fan-out wrote; give no --out-dir")
    if args.become:
        raise CLIError("--rerun becomes whom the recorded fan-out became; give no --become "
                       "(-K asks its password)")
    if args.serial or args.max_fail or args.pause_between:
        raise CLIError("--rerun goes on in the recorded fan-out's batches; give no "
                       "--serial, --max-fail or --pause-between")
    fid = args.rerun
    old = FanOutStore(state_dir, read_only=True).get(fid)
    if old is None:
        raise CLIError(f"no fan-out #{fid}; `fleetdeck fanouts` lists them")
    if old.get("become_asked") and not args.ask_become_pass:
        raise CLIError(f"fan-out #{fid} ran with a sudo password; rerun it with -K")
    selectors = [NOT_OK]
    if args.only is not None:
        selectors = [c.strip() for c in args.only.split(",") if c.strip()]
        if not selectors:
            raise CLIError(f"--only: name a class; one of {', '.join(CLASS_NAMES)}, "
                           f"{NOT_OK} or all")
    try:
        classes = select_classes(selectors)
    except ValueError as e:
        raise CLIError(f"--only: {e}") from None
    args.classes = selectors
    names = hosts_of(old, classes)
    results = list(old["hosts"].values())
    keys = [] if args.only is not None else hosts_of(old, NEEDS_A_PERSON)
    said = _breakdown(old, keys)
    out = sys.stderr if args.json else sys.stdout
    if not names:
        if args.only is not None:
            raise CLIError(f"fan-out #{fid} has no host in {', '.join(selectors)}")
        if all(r.get("state") == "ok" for r in results):
            every = f"all {len(results)} hosts" if len(results) != 1 else "its one host"
            print(f"fan-out #{fid}: {every} ended ok; nothing to rerun", file=out)
            return 0
        if not keys:
            raise CLIError(f"fan-out #{fid} has no host to rerun ({summary_line(results)})")
        print(f"fan-out #{fid}: nothing to rerun without a person: {said}", file=out)
        return exit_status(results)
    gone = [n for n in names if n not in config.hosts]
    if gone:
        raise CLIError(f"host '{gone[0]}' of fan-out #{fid} is no longer in the inventory")
    by_class = ", ".join(f"{n} {c}" for c in HOST_CLASSES
                         if (n := len(hosts_of(old, [c])) if c in classes else 0))
    print(f"rerunning {len(names)} of {len(results)} hosts: {by_class}"
          + (f"; left out: {said}" if keys else ""), file=out, flush=True)
    return old["command"], names


def _breakdown(record: dict[str, Any], keys: list[str]) -> str:
    """The hosts a default rerun leaves out for a person to act on, and how to act."""
    from core.remote.classes import NEEDS_A_PERSON

    if not keys:
        return ""
    states = [record["hosts"][n].get("state") for n in keys]
    counts = [(c, states.count(c)) for c in NEEDS_A_PERSON if c in states]
    return (", ".join(f"{n} {c}" for c, n in counts)
            + f" (trust or fix the key first; --only {','.join(c for c, _ in counts)} "
            + ("reruns it)" if len(keys) == 1 else "reruns them)"))


def fan_out(args: argparse.Namespace, params: dict[str, Any], rerun_of: int | None,
            method: str = "fanout_start") -> Any:
    """A fan-out (`method`: a command, `fanout_push` or `fanout_pull`) on the engine the
    state directory has (a daemon's runs it over its pool, audited as this user); its
    lines and host results come back as events, Ctrl-C cancels it where it runs."""
    import asyncio

    async def work(engine: Any) -> int:
        from core.jobs.active import EngineError

        stream = args.stream or not (args.gather or args.json)
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
                rec = await engine.fanout_rerun(
                    rerun_of, args.classes, getattr(args, "become_password", None),
                    actor=ACTOR)
            else:
                rec = await getattr(engine, method)(**params, actor=ACTOR)
        except (ValueError, KeyError, EngineError) as e:
            raise CLIError(str(e).strip("'\"")) from None
        mine.append(rec["id"])

        async def cancelling() -> None:
            with contextlib.suppress(EngineError):  # it ended meanwhile
                await engine.fanout_cancel(rec["id"], actor=ACTOR)

        def cancel() -> None:
            asyncio.ensure_future(cancelling())

        with _interruptible(cancel) as interrupt:
            # a daemon's early lines are shown once a Ctrl-C cancels: one who reads a
            # line and interrupts must not find the default KeyboardInterrupt (a silent 130)
            for msg in early:
                on_event(_Message(msg))
            if rec.get("finished_at") and not done.done():
                done.set_result(rec)
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
    if kind == "fanout_batch" and msg["phase"] == "started":
        from core.remote.inventory import fold_hosts

        n = len(msg["hosts"])
        print(f"fleetdeck: batch {msg['batch']} of {msg['batches']}: "
              f"{fold_hosts(msg['hosts'])} ({n} host{'s' if n != 1 else ''})",
              file=sys.stderr, flush=True)
    elif kind == "fanout_line":
        out = sys.stdout if msg["stream"] == "stdout" else sys.stderr
        print(for_terminal(f"{msg['host']}: {msg['line']}", out), file=out, flush=True)
    elif kind == "host_result":
        r = msg["result"]
        if r["state"] == "ok" and r.get("changed") is not None:  # a push or pull
            print(f"{r['host']}: {r['reason']}", flush=True)
        elif r["state"] not in ("ok", "pending", "connecting", "running"):
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
    import asyncio

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
    from core.remote.results import exit_status, summary_line

    results = list(record["hosts"].values())
    if args.json:
        record["groups"] = [{k: v for k, v in g.items() if k not in ("text", "diff")}
                            | {"text": g["text"]} for g in groups]
        print(json.dumps(record, indent=2))
    elif args.gather:
        _print_groups(groups)
    if not args.json:
        stopped = (record.get("rollout") or {}).get("stopped")
        if stopped:
            skipped = sum(1 for r in results if r["state"] == "skipped")
            print(f"rollout stopped: {stopped}; {skipped} host{'s' if skipped != 1 else ''} "
                  "not started (skipped)")
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
            sys.stdout.write(for_terminal(text if text.endswith("\n") else text + "\n",
                                          sys.stdout))
