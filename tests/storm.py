"""A kill -9 crash storm against a real `fleetdeck daemon`.

Why: an engine that is killed at an arbitrary instant must not lose or rewrite what it
already told the world (a run it printed as finished), hand out a run id twice, run an
occurrence twice, leave a run's processes behind or leave a state file that does not
load. Unit tests of the store cannot show that; only real processes killed at random
moments can.

One storm: rounds of start `fleetdeck daemon` (its stdout read line by line in a thread),
wait a seeded-random 0.5-3 s after it says it runs (so every round runs jobs), SIGKILL
it. Then one last daemon, ~1 s, SIGTERM, and the checks (tests/storm_checks.py) over
what every daemon printed and the history the read-only Store shows. The last daemon's
graceful stop prints the runs it ends as `interrupted`: a final state like any other,
held to be saved so.

Run processes live in process groups of their own and outlive a killed daemon on
purpose: the next engine must find and end them. So that this holds on a machine whose
pid 1 reaps nothing (zombies would look alive to os.killpg), this process becomes a child
subreaper for the storm and reaps those orphans itself, as init would, recording how
each ended.

Not a test module: the crash test and bench/crash_bench.py import it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import FLEETDECK, WAIT, cli_env
from tests.storm_checks import (
    CHECKS,
    FINISHED,
    ROUND_VAR,
    TOKEN_VAR,
    Printed,
    check_finished_saved,
    check_ids_unique,
    check_no_orphans,
    check_occurrences_once,
    parse_run_line,
    proc_env,
    read_history,
    run_processes,
    state_files,
)

# The fleet of the storm: quick runs, overlapping runs (skip and queue), retries,
# a per-second Quartz cron, a run with a lot of output, misfires after each downtime.
STORM_CONFIG = """\
[jobs.echo-a]
command = "echo tick a"
schedule = "every 1s"

[jobs.echo-b]
command = "echo tick b"
schedule = "every 1s"
misfire_grace = "500ms"            # a downtime makes a misfire run (run_once) and skips

[jobs.sleep-skip]
command = "sleep 2.5"
schedule = "every 1s"
overlap = "skip"                   # skipped occurrences are recorded as runs

[jobs.sleep-queue]
command = "sleep 2.5"
schedule = "every 1s"
overlap = "queue"

[jobs.flaky]
command = "echo trying; exit 3"
schedule = "every 1s"
retries = 2
retry_backoff = "200ms"

[jobs.cron-sec]
command = "date +%s"
schedule = "* * * * * ?"           # Quartz: seconds first, every second
misfire = "skip"
misfire_grace = "500ms"

[jobs.writer]
command = '''head -c 600000 /dev/zero | tr '\\0' x | fold -w 100'''
schedule = "every 1s"
"""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_RUNNING = "fleetdeck engine running (pid "


@dataclass
class StormResult:
    """What a storm did and what each check found: violations as readable examples."""

    rounds: int
    seed: int
    state_dir: Path
    lines: int = 0  # run lines printed, all daemons
    runs_printed: int = 0  # distinct run ids printed
    finished_printed: int = 0  # distinct run ids printed in a final state
    runs_in_history: int = 0
    orphans: Counter[str] = field(default_factory=Counter)  # how orphans ended
    seconds: float = 0.0
    violations: dict[str, list[str]] = field(
        default_factory=lambda: {k: [] for k in CHECKS})
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not any(self.violations.values())

    def table(self) -> str:
        """The counts and, per check, the number of violations and a few examples."""
        rows = [f"rounds {self.rounds} (seed {self.seed}), {self.seconds:.1f} s",
                f"run lines printed {self.lines}; runs printed {self.runs_printed}, "
                f"finished {self.finished_printed}; runs in history {self.runs_in_history}",
                "orphans reaped (outlived their daemon): " + (", ".join(
                    f"{n} {how}" for how, n in self.orphans.most_common()) or "none")]
        rows += [f"note: {n}" for n in self.notes]
        rows.append(f"{'check':<6}{'violations':>11}  what")
        for key, what in CHECKS.items():
            found = self.violations[key]
            rows.append(f"{key:<6}{len(found):>11}  {what}")
        return "\n".join(rows)

    def failure_message(self, examples: int = 3) -> str:
        """The table, then up to ``examples`` violations of each failed check."""
        out = [self.table()]
        for key, found in self.violations.items():
            if found:
                out.append(f"check {key} ({CHECKS[key]}): {len(found)} violations, e.g.")
                out += [f"  - {v}" for v in found[:examples]]
        return "\n".join(out)


# ------------------------------------------------------------------------ processes ---
def _set_subreaper(on: bool) -> bool:
    """PR_SET_CHILD_SUBREAPER: orphans of our daemons become our children (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1 if on else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


class _Reaper:
    """Reaps the orphans our daemons leave (as init would) and tells how they ended.

    Only the storm's: a child with its token in the environment, or one already dead
    (its environment reads empty) that leads its own process group, as every run starts
    (in a session of its own too when the daemon has a terminal). Any other child of this
    process is someone else's to wait for.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.lock = threading.Lock()  # held while a daemon is spawned and registered
        self.keep: set[int] = set()  # the daemons: their Popen reaps them
        self.ended: Counter[str] = Counter()
        self._who: dict[int, str] = {}  # ours, alive when last seen
        self._foreign: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="storm-reaper", daemon=True)
        self.active = False

    def __enter__(self) -> _Reaper:
        self.active = _set_subreaper(True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if self.active:
            _set_subreaper(False)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self.poll()

    def _ours(self) -> set[int]:
        children = _children() - self.keep
        self._foreign &= children
        return children - self._foreign

    def drain(self, timeout: float = 10.0) -> None:
        """Reap until none of the storm's children is left (its runs were just killed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if not self._ours():
                return
            time.sleep(0.05)

    def poll(self) -> None:
        with self.lock:
            for pid in self._ours():
                if pid not in self._who and not self._claim(pid):
                    continue
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    continue
                if done:
                    code = os.waitstatus_to_exitcode(status)
                    how = (f"killed by {signal.Signals(-code).name}" if code < 0
                           else f"exited {code}")
                    self.ended[f"{self._who.pop(pid)} {how}"] += 1

    def _claim(self, pid: int) -> bool:
        """Whether a new child is the storm's; remembered under the name it ran as."""
        env = proc_env(pid)  # a zombie's reads empty; its name and session stay
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            leads_group = os.getpgid(pid) == pid
        except OSError:
            return False
        if env.get(TOKEN_VAR) != self.token and (env or not leads_group):
            self._foreign.add(pid)
            return False
        job = env.get("FLEETDECK_JOB")
        self._who[pid] = f"{job} ({comm})" if job else comm
        return True


# -------------------------------------------------------------------------- daemons ---
class _Daemon:
    """One `fleetdeck daemon`, its stdout read line by line as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], err: Path, round_no: int,
                 reaper: _Reaper) -> None:
        self.round = round_no
        self.lines: list[str] = []
        self.running = threading.Event()
        with reaper.lock, err.open("wb") as errf:
            self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=errf)
            reaper.keep.add(self.proc.pid)
        self.err = err
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name=f"storm-daemon-{round_no}")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):
                break  # cut by the kill: not a line it printed
            text = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\n")
            self.lines.append(text)
            if text.startswith(_RUNNING):
                self.running.set()

    def wait_running(self) -> None:
        deadline = time.monotonic() + WAIT
        while not self.running.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"round {self.round}: the daemon did not start "
                                   f"({self.proc.returncode}):\n" + "\n".join(self.lines)
                                   + self.err.read_text(errors="replace")[-3000:])

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(WAIT)
        self._reader.join(WAIT)

    def stop(self) -> bool:
        """SIGTERM and wait; False if it had to be killed after all."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.kill()
            return False
        self._reader.join(WAIT)
        return True

    def printed(self) -> list[Printed]:
        return [p for t in self.lines if (p := parse_run_line(t, self.round)) is not None]


# ---------------------------------------------------------------------------- storm ---
class Storm:
    """A storm in ``workdir``: ``run()`` it, then ``check()`` (again, after changes)."""

    def __init__(self, workdir: Path, *, rounds: int = 10, seed: int = 1,
                 settle: float = 1.0, progress: Callable[[str], None] | None = None) -> None:
        self.workdir = Path(workdir)
        self.rounds = rounds
        self.seed = seed
        self.settle = settle
        self.progress = progress or (lambda _text: None)
        self.state_dir = self.workdir / "state"
        self.config = self.workdir / "config" / "fleet.toml"
        self.out_dir = self.workdir / "daemon-output"
        self.token = uuid.uuid4().hex
        self.printed: list[Printed] = []
        self.daemon_pids: dict[int, int] = {}  # pid -> round
        self.after_kill: dict[tuple[int, int], str] = {}  # (round, run id) -> state on disk
        self.file_problems: list[str] = []
        self.survivors: dict[int, str] = {}  # pid -> how it outlived a recovery
        self.notes: list[str] = []
        self.seconds = 0.0
        self.orphans: Counter[str] = Counter()
        self._daemons: list[_Daemon] = []

    def run(self) -> StormResult:
        """All the rounds, the final graceful daemon, then the checks."""
        started = time.monotonic()
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(STORM_CONFIG)
        rng = random.Random(self.seed)
        with _Reaper(self.token) as reaper:
            if not reaper.active:
                self.notes.append("not a child subreaper: orphans are reaped by pid 1 if at all")
            try:
                for r in range(1, self.rounds + 1):
                    daemon = self._start(r, reaper)
                    time.sleep(rng.uniform(0.5, 3.0))
                    daemon.kill()
                    self._collect(daemon)
                    self._after_kill(r)
                    self.progress(f"round {r}/{self.rounds}: {len(daemon.printed())} run lines")
                final = self._start(self.rounds + 1, reaper)
                time.sleep(self.settle)
                if not final.stop():
                    self.notes.append("the final daemon did not stop on SIGTERM within 90 s")
                self._collect(final)
                time.sleep(0.2)  # orphans ended by the final engine: reaped and counted
                reaper.poll()
                self.orphans = Counter(reaper.ended)
                self.seconds = time.monotonic() - started
                return self.check()
            finally:  # nothing of the storm outlives it: daemons, runs, zombies
                for daemon in self._daemons:
                    if daemon.proc.poll() is None:
                        daemon.kill()
                self._clean_up()
                reaper.drain()

    def _start(self, r: int, reaper: _Reaper) -> _Daemon:
        env = cli_env(self.workdir)
        env.update({TOKEN_VAR: self.token, ROUND_VAR: str(r), "COLUMNS": "500"})
        args = [*FLEETDECK, "--config", str(self.config), "--state-dir", str(self.state_dir),
                "daemon"]
        daemon = _Daemon(args, env, self.out_dir / f"round-{r}.err", r, reaper)
        self._daemons.append(daemon)
        self.daemon_pids[daemon.proc.pid] = r
        daemon.wait_running()
        self._survivors(r)
        return daemon

    def _survivors(self, r: int) -> None:
        """Run processes of earlier daemons still alive once this engine has recovered:
        it did not find them (a second look, so a process just being killed is not one)."""
        seen = [p for p in run_processes(self.token) if p.round < r]
        if not seen:
            return
        time.sleep(0.3)
        alive = {p.pid for p in run_processes(self.token)}
        for p in seen:
            if p.pid in alive and p.pid not in self.survivors:
                self.survivors[p.pid] = (f"{p.describe()} was still alive after the "
                                         f"round-{r} engine had recovered")

    def _collect(self, daemon: _Daemon) -> None:
        self.printed += daemon.printed()
        (self.out_dir / f"round-{daemon.round}.out").write_text("\n".join(daemon.lines) + "\n")

    def _after_kill(self, r: int) -> None:
        """The state as the kill left it: files that load, runs printed finished."""
        self.file_problems += [f"after the round-{r} kill: {problem}"
                               for problem in state_files(self.state_dir)]
        try:
            runs = {run.id: run for run in read_history(self.state_dir)}
        except Exception as e:  # the check reports it; the storm goes on
            self.file_problems.append(f"after the round-{r} kill: the read-only Store: {e!r}")
            return
        for p in self.printed:
            if p.round == r and p.state in FINISHED:
                run = runs.get(p.run_id)
                self.after_kill[(r, p.run_id)] = "missing" if run is None else run.state

    def _clean_up(self) -> None:
        """End whatever of the storm's runs is still alive (after it was counted)."""
        for p in run_processes(self.token):
            with contextlib.suppress(OSError):
                os.killpg(p.pgid, signal.SIGKILL)

    # --------------------------------------------------------------------- checks ---
    def check(self) -> StormResult:
        """Every check over what was printed and the history on disk now."""
        result = StormResult(self.rounds, self.seed, self.state_dir, notes=list(self.notes),
                             seconds=self.seconds, orphans=self.orphans)
        result.lines = len(self.printed)
        result.runs_printed = len({p.run_id for p in self.printed})
        result.finished_printed = len({p.run_id for p in self.printed if p.state in FINISHED})
        result.violations["e"] = self.file_problems + [
            f"after the final stop: {p}" for p in state_files(self.state_dir)]
        try:
            history = read_history(self.state_dir)
        except Exception as e:
            result.violations["e"].append(f"after the final stop: the read-only Store: {e!r}")
            return result
        result.runs_in_history = len(history)
        result.violations["a"] = check_finished_saved(self.printed, history, self.after_kill)
        result.violations["b"] = check_ids_unique(self.printed, history)
        result.violations["c"] = check_occurrences_once(history, self.daemon_pids)
        result.violations["d"] = check_no_orphans(history, self.token, self.survivors)
        return result
