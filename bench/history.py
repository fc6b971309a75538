"""A big, realistic run history for the benches, made through the real Store.

The history benches (bench/history_bench.py, bench/live_console_bench.py,
bench/time_to_data_bench.py) need a state directory such as a busy fleet leaves after
weeks: 100,000 or 1,000,000 finished runs. This module builds one with the Store's own
API (``Store.open``, ``add_runs`` in large batches, ``commit``), so the files on disk are
exactly what the engine writes (the same segments, index and jobs.json), only made fast:

* about 50 jobs with a skewed (Zipf-like) frequency; one of them, ``rare``, has only a
  handful of runs spread evenly through the whole history (a weekly job: the worst
  case of "the last 20 runs of this job");
* a few hosts; mostly succeeded, with a few per cent failed, timed out, interrupted,
  skipped and cancelled, each with the reason, exit code and the one attempt the
  engine records (none for a skipped run, as the engine records it);
* ``queued_at`` grows with the run id (ids are handed out in queue order); the last
  ``recent`` runs were queued in the 6 hours before ``now``, the others earlier, at the
  same rate (a steady fleet);
* jobs.json holds each job's summary as ``Dispatch._note_result`` writes it (the last
  20 states, the last run), so the console shows last results;
* the fsyncs of the writes are skipped while building (one ``os.sync`` at the end):
  10,000 fsynced segment files would take minutes and the bytes are the same.

``write_config`` writes a matching config: the same job names (daily schedules, so
nothing of the history's jobs runs during a bench), ``[engine] history_retention``
large enough to keep every run. ``make_home`` lays both out the way fleetdeck finds
them by itself (``$XDG_STATE_HOME/fleetdeck``, ``$XDG_CONFIG_HOME/fleetdeck/config.toml``),
so a bench can point the real ``fleetdeck`` at them with ``--config``/``--state-dir``
or with the environment alone.

Run: .venv/bin/python bench/history.py DIR --runs 100000 --recent 100000
     then: .venv/bin/fleetdeck --config DIR/config/fleetdeck/config.toml \\
           --state-dir DIR/state/fleetdeck  (it prints both ways)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.jobs.runs import FAILING_WINDOW as RECENT_WINDOW  # noqa: E402
from core.jobs.runs import Run  # noqa: E402
from core.store import DEFAULT_RETENTION, Store  # noqa: E402

RARE = "rare"
RARE_RUNS = 8
SUCCESS_WINDOW = 20  # as core/jobs/dispatch.py keeps in a job's summary
BATCH = 10_000  # runs per add_runs + commit: 100 segment files of the default size

JOBS: tuple[str, ...] = (
    "backup-db", "rotate-logs", "sync-assets", "health-ping", "reindex-search",
    "purge-cache", "renew-certs", "vacuum-db", "ship-metrics", "collect-logs",
    "deploy-check", "snapshot-volumes", "clean-tmp", "refresh-dns", "warm-cache",
    "compact-queue", "export-billing", "import-catalog", "scan-vulns", "update-geoip",
    "send-digests", "prune-images", "check-replicas", "archive-mail", "build-sitemap",
    "audit-users", "expire-sessions", "verify-backups", "sync-ldap", "gc-artifacts",
    "report-usage", "test-failover", "mirror-repos", "fetch-feeds", "train-models",
    "recount-stats", "notify-oncall", "rollup-metrics", "trim-journal", "scrub-disks",
    "check-quotas", "rebuild-thumbs", "sync-s3", "ping-upstreams", "flush-queues",
    "rotate-keys", "refresh-tokens", "precompute-reports", "check-ntp", RARE,
)
HOSTS: tuple[str, ...] = ("web01", "web02", "db01", "cache01", "local")
USERS = ("alice", "bob", "carol")
RARE_INDEX = JOBS.index(RARE)


@dataclass(frozen=True)
class Home:
    """A generated history laid out where fleetdeck looks by default."""

    base: Path
    state_dir: Path  # base/state/fleetdeck
    config: Path  # base/config/fleetdeck/config.toml

    def env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """``env`` (default: this process's) with the XDG folders pointing here."""
        out = dict(os.environ if env is None else env)
        out["XDG_STATE_HOME"] = str(self.base / "state")
        out["XDG_CONFIG_HOME"] = str(self.base / "config")
        return out

    def args(self) -> list[str]:
        """The same, said explicitly on the command line."""
        return ["--config", str(self.config), "--state-dir", str(self.state_dir)]


@dataclass(frozen=True)
class _JobShape:
    """What a job's runs look like: how long, where, how flaky, what command."""

    name: str
    command: str
    hosts: tuple[str, ...]
    duration: float  # median seconds
    timeout: float
    fail: float  # probability of a failed run
    max_attempts: int


def _shapes(jobs: Sequence[str], hosts: Sequence[str], rng: random.Random) -> list[_JobShape]:
    out = []
    for i, name in enumerate(jobs):
        n_hosts = 1 if i % 3 else min(len(hosts), 1 + i % 4)
        start = (i * 7) % len(hosts)
        where = tuple(hosts[(start + k) % len(hosts)] for k in range(n_hosts))
        duration = round(rng.lognormvariate(1.5, 1.3), 2)
        args = rng.choice(("", " --all", " --quiet", " --since 1h", " --full"))
        out.append(_JobShape(
            name=name,
            command=f"/opt/ops/bin/{name}.sh{args}",
            hosts=where,
            duration=max(0.05, duration),
            timeout=float(max(60, int(duration * 20) // 60 * 60)),
            fail=rng.choice((0.005, 0.01, 0.02, 0.03, 0.05, 0.08)),
            max_attempts=3 if i % 5 == 0 else 1,
        ))
    return out


def _times(runs: int, recent: int, now: float) -> tuple[float, float, float, float]:
    """(first queued time, spacing before the window, window start, spacing inside).

    The last ``recent`` runs are queued in the 6 hours before ``now`` (a minute kept
    free at each end), the others before them at the same rate, or over 30 days when
    there are none in the window."""
    window = RECENT_WINDOW - 120.0
    step_in = window / recent if recent else 0.0
    old = runs - recent
    step_old = step_in if recent else (30 * 86400.0 / max(1, old))
    window_start = now - RECENT_WINDOW + 60.0
    first = window_start - 60.0 - old * step_old
    return first, step_old, window_start, step_in


def make_history(state_dir: Path, runs: int, *, recent: int = 0, now: float | None = None,
                 jobs: Sequence[str] = JOBS, hosts: Sequence[str] = HOSTS,
                 rare_runs: int = RARE_RUNS, seed: int = 1, batch: int = BATCH,
                 progress: bool = False) -> None:
    """Fill a new state directory with ``runs`` finished runs, ``recent`` of them in the
    6 hours before ``now``, through the real Store (see the module docstring).

    ``jobs`` should contain ``rare`` (the job with only ``rare_runs`` runs); the first
    names are the most frequent.
    """
    if not 0 <= recent <= runs:
        raise ValueError("recent must be between 0 and runs")
    state_dir = Path(state_dir)
    if (state_dir / "runs").exists() and any((state_dir / "runs").iterdir()):
        raise ValueError(f"{state_dir} already holds runs")
    now = time.time() if now is None else now
    rng = random.Random(seed)
    shapes = _shapes(jobs, hosts, rng)
    common = [s for s in shapes if s.name != RARE]
    rare = next((s for s in shapes if s.name == RARE), None)
    cum: list[float] = []
    total = 0.0
    for rank in range(len(common)):
        total += 1.0 / (rank + 1) ** 1.1
        cum.append(total)
    n_rare = min(rare_runs, runs) if rare is not None else 0
    rare_at = {int((k + 0.5) * runs / n_rare) for k in range(n_rare)} if n_rare else set()
    first, step_old, window_start, step_in = _times(runs, recent, now)
    old = runs - recent
    last: dict[str, tuple[list[str], dict[str, object]]] = {}
    engine_pid = 4100
    started = time.perf_counter()
    with _no_fsync():
        store = Store.open(state_dir, retention=max(2 * runs, DEFAULT_RETENTION))
        try:
            done = 0
            while done < runs:
                n = min(batch, runs - done)
                picks = rng.choices(common, cum_weights=cum, k=n)
                out: list[Run] = []
                for j in range(n):
                    i = done + j
                    shape = rare if i in rare_at else picks[j]
                    assert shape is not None
                    if i < old:
                        queued = first + i * step_old + rng.random() * step_old * 0.5
                    else:
                        queued = window_start + (i - old) * step_in + rng.random() * step_in * 0.5
                    if i % 50_000 == 0:
                        engine_pid += rng.randrange(1, 900)  # an engine restart now and then
                    run = _run(store.next_run_id(), shape, queued, now, engine_pid, rng)
                    out.append(run)
                    states, _ = last.get(run.job, ([], {}))
                    states.append(run.state)
                    del states[:-SUCCESS_WINDOW]
                    last[run.job] = (states, {
                        "id": run.id, "state": run.state, "finished_at": run.finished_at,
                        "exit_code": run.exit_code, "host": run.host})
                store.add_runs(out)
                store.commit()
                done += n
                if progress:
                    rate = done / max(1e-9, time.perf_counter() - started)
                    print(f"\r  {done:,} / {runs:,} runs ({rate:,.0f}/s)", end="",
                          file=sys.stderr, flush=True)
            for job, (states, last_run) in last.items():
                store.update_job_summary(job, recent=states, last_run=last_run)
        finally:
            store.close()
    if progress:
        print(file=sys.stderr)
    os.sync()  # the writeback now, not inside a later measurement


def _run(run_id: int, shape: _JobShape, queued: float, now: float, engine_pid: int,
         rng: random.Random) -> Run:
    """One finished run of ``shape``, queued at ``queued``, as the engine records it."""
    host = shape.hosts[run_id % len(shape.hosts)]
    r = rng.random()
    manual = r < 0.04
    trigger = "manual" if manual else "misfire" if r > 0.999 else "schedule"
    occurrence = None if manual else float(int(queued))
    requested_by = USERS[run_id % len(USERS)] if manual else None
    x = rng.random()
    if x < 0.015:  # the previous run of the job still ran (overlap=skip): no attempt
        return Run(id=run_id, job=shape.name, host=host, command=shape.command,
                   trigger="schedule", occurrence=float(int(queued)), state="skipped",
                   reason=f"run #{max(1, run_id - rng.randrange(1, 400))} still active "
                          "(overlap=skip)",
                   queued_at=queued, finished_at=queued, max_attempts=shape.max_attempts,
                   engine_pid=engine_pid)
    start = queued + rng.uniform(0.001, 0.05)
    duration = rng.lognormvariate(0.0, 0.5) * shape.duration
    exit_code: int | None = 0
    reason = ""
    x = (x - 0.015) / 0.985
    if x < shape.fail:
        state = "failed"
        y = rng.random()
        if y < 0.1:
            exit_code, reason = None, "killed by signal 9"
        else:
            exit_code = 1 if y < 0.7 else 2 if y < 0.9 else 127
            reason = f"exit code {exit_code}"
    elif x < shape.fail * 1.4:
        state, exit_code = "timed_out", None
        duration = shape.timeout + rng.uniform(0.0, 5.0)
        reason = f"timed out after {shape.timeout:g}s"
    elif x < shape.fail * 1.4 + 0.004:
        state, exit_code = "interrupted", None
        reason = "fleetdeck stopped while it ran"
        if rng.random() < 0.3:
            reason = f"fleetdeck (pid {engine_pid}) died while it ran"
    elif x < shape.fail * 1.4 + 0.006:
        state, exit_code = "cancelled", None
        reason = f"cancelled by {USERS[run_id % len(USERS)]}"
    else:
        state = "succeeded"
    finished = min(start + duration, now - 1.0)
    pid = 2000 + (run_id * 7919) % 400_000
    return Run(
        id=run_id, job=shape.name, host=host, command=shape.command, trigger=trigger,
        occurrence=occurrence, state=state, reason=reason, queued_at=queued,
        started_at=start, finished_at=finished, exit_code=exit_code, attempt=1,
        max_attempts=shape.max_attempts,
        attempts=[{"number": 1, "started_at": start, "finished_at": finished,
                   "exit_code": exit_code, "state": state}],
        pid=pid, pgid=pid, proc_started=start - 0.001, engine_pid=engine_pid,
        requested_by=requested_by,
    )


@contextlib.contextmanager
def _no_fsync() -> Iterator[None]:
    """Skip fsync while building: same files, written in seconds, not minutes."""
    real = os.fsync
    os.fsync = lambda fd: None  # type: ignore[assignment]
    try:
        yield
    finally:
        os.fsync = real


_SCHEDULES = ("17 3 * * *", "41 2 * * *", "5 4 * * 1", "@weekly", "30 1 * * *",
              "12 5 1 * *", "50 23 * * 0")


def config_text(runs: int, *, jobs: Sequence[str] = JOBS, schedules: bool = True,
                extra: str = "") -> str:
    """A config naming the history's jobs, keeping every run (``history_retention``).

    Their schedules are daily or rarer at night hours (or none with ``schedules=False``)
    so that a bench's few seconds or minutes never run them; ``extra`` is appended (a
    bench's own jobs)."""
    lines = [
        "# the jobs of a history made by bench/history.py; retention keeps every run",
        "[engine]",
        f"history_retention = {max(2 * runs, DEFAULT_RETENTION)}",
        "",
    ]
    for i, name in enumerate(jobs):
        lines.append(f"[jobs.{name}]")
        lines.append(f'command = "/opt/ops/bin/{name}.sh"')
        if schedules:
            lines.append(f'schedule = "{_SCHEDULES[i % len(_SCHEDULES)]}"')
        lines.append("")
    return "\n".join(lines) + extra


def write_config(path: Path, runs: int, *, jobs: Sequence[str] = JOBS, schedules: bool = True,
                 extra: str = "") -> Path:
    """``config_text`` written to ``path`` (folders made); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(runs, jobs=jobs, schedules=schedules, extra=extra))
    return path


def make_home(base: Path, runs: int, *, recent: int = 0, now: float | None = None,
              schedules: bool = True, extra: str = "", progress: bool = False) -> Home:
    """A history and its config under ``base``, laid out as fleetdeck's XDG defaults."""
    base = Path(base)
    home = Home(base, base / "state" / "fleetdeck", base / "config" / "fleetdeck" / "config.toml")
    make_history(home.state_dir, runs, recent=recent, now=now, progress=progress)
    write_config(home.config, runs, schedules=schedules, extra=extra)
    return home


def load_line() -> str:
    """The machine's load now: the benches' figures are only as quiet as the machine."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, help="folder to make (state/ and config/ inside)")
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--recent", type=int, default=None,
                    help="runs in the last 6 hours (default: a tenth of --runs)")
    ap.add_argument("--no-schedules", action="store_true",
                    help="the config's jobs have no schedule (on demand only)")
    args = ap.parse_args(argv)
    recent = args.runs // 10 if args.recent is None else args.recent
    t0 = time.perf_counter()
    home = make_home(args.dir, args.runs, recent=recent, schedules=not args.no_schedules,
                     progress=True)
    took = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in (home.state_dir / "runs").iterdir())
    print(f"{args.runs:,} runs ({recent:,} in the last 6 h) in {took:.1f}s, "
          f"{size / 1e6:,.0f} MB of segments")
    print(f"  fleetdeck {' '.join(home.args())}")
    print(f"  XDG_STATE_HOME={home.base / 'state'} XDG_CONFIG_HOME={home.base / 'config'} "
          "fleetdeck")
    return 0


if __name__ == "__main__":
    sys.exit(main())
