"""Where the engine's dispatch time goes, in a burst and under a steady load.

The engine's own methods are wrapped from outside (core is not changed) with
time.perf_counter stamps, and the loop's stalls are watched by a 1 ms ticker:

  Scheduler.pop_due      the due entries taken off the timer heap
  Dispatch._dispatch     occurrences -> runs, recorded in memory (ids, claims, docs)
  Store._prepare         a commit's serialization, on the loop's thread
  Store._write           its fsynced file replacements, in a worker thread
  Store.commit_async     a commit as its caller waits for it (in-flight one included)
  Dispatch._pump         queued runs started into free slots
  LocalProcess.start     one process started (os.posix_spawn stamped inside it)
  Dispatch._finish       one run recorded as finished
  RunHistory._load       a run segment file parsed (again) from disk

Burst: --jobs one-shot jobs of /bin/true due at T (bench/engine_bench.py's part (a),
engine only): the timeline from T to the first process, then the spawn phase.
Steady: --rate jobs every 1s with jitter 1s for --seconds (part (b)): each run's
due->exec split into the scheduler's wake, the wait for its durable claim, and the
slot/pump wait before its spawn; the commits that make up the wait.
--cprofile adds a cProfile of the burst (a second burst, slower under the profiler):
the functions that take the loop's time from T to the last run's end.

Run: .venv/bin/python bench/dispatch_profile.py [--jobs 10000] [--slots 16]
     [--rate 300] [--seconds 10] [--only bs] [--cprofile] [--quick]
Always exits 0; temporary state is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import cProfile
import gc
import io
import logging
import math
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_bench as eb  # noqa: E402

from core.events import Event, RunFinished  # noqa: E402
from core.jobs.dispatch import COMMIT_DELAY, Dispatch  # noqa: E402
from core.jobs.engine import Engine  # noqa: E402
from core.jobs.process import LocalProcess  # noqa: E402
from core.jobs.scheduler import Scheduler  # noqa: E402
from core.store.history import RunHistory  # noqa: E402
from core.store.storage import AtomicJSONStorage  # noqa: E402
from core.store.store import Store  # noqa: E402

MS, US = 1000.0, 1e6


class Stamps:
    """Spans by name: (wall start, seconds, extra). Wall = perf_counter + one offset."""

    def __init__(self) -> None:
        self.offset = time.time() - time.perf_counter()
        self.spans: dict[str, list[tuple[float, float, Any]]] = defaultdict(list)
        self.spawned: dict[tuple[str, float], float] = {}  # (job, occurrence) -> wall
        # each _dispatch: ([(job, occurrence, fire)], wall at its start, store seq after it)
        self.dispatched: list[tuple[list[tuple[str, float, float]], float, int]] = []
        self.durable: list[tuple[float, int]] = []  # (wall a write ended, seq it covered)
        self.durable_seq = 0  # the newest seq on disk, by the worker thread's clock
        self.early: list[tuple[str, float]] = []  # runs spawned before their claim was durable
        self.needs: dict[tuple[str, float], int] = {}  # (job, occurrence) -> seq to be durable
        self._batch_seq: dict[int, int] = {}
        self.stalls: list[tuple[float, float]] = []  # (wall, seconds the loop was late)

    def add(self, name: str, t0: float, t1: float, extra: Any = None) -> None:
        self.spans[name].append((t0 + self.offset, t1 - t0, extra))

    def between(self, name: str, lo: float, hi: float) -> list[tuple[float, float, Any]]:
        return [s for s in self.spans[name] if lo <= s[0] < hi]


@contextlib.contextmanager
def instrumented(st: Stamps) -> Iterator[None]:
    """Wrap the engine's steps (class attributes, put back on exit)."""
    saved: list[tuple[Any, str, Any]] = []
    clock = time.perf_counter

    def patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        saved.append((owner, name, original))
        setattr(owner, name, make(original))

    def timed(name: str, extra: Callable[..., Any] | None = None) -> Callable[[Any], Any]:
        def make(fn: Any) -> Any:
            def wrapper(*a: Any, **kw: Any) -> Any:
                t0 = clock()
                out = fn(*a, **kw)
                st.add(name, t0, clock(), extra(out, *a) if extra else None)
                return out
            return wrapper
        return make

    def dispatch(fn: Any) -> Any:
        def wrapper(self: Engine, batch: list[Any], now: float) -> bool:
            t0 = clock()
            out = fn(self, batch, now)
            st.add("dispatch", t0, clock(), len(batch))
            assert self.store is not None
            dues = [(d.job, d.occurrences[-1], d.fire_times[-1]) for d in batch]
            st.dispatched.append((dues, t0 + st.offset, self.store._seq))
            for job, occ, _fire in dues:
                st.needs[(job, occ)] = self.store._seq
            return out
        return wrapper

    def prepare(fn: Any) -> Any:
        def wrapper(self: Store) -> Any:
            seq = self._seq  # what commit_async / commit read just before _prepare
            t0 = clock()
            batch = fn(self)
            items = batch[0]
            st.add("prepare", t0, clock(), (len(items), sum(len(d) for _s, _v, d in items),
                                            [s.path.name for s, _v, _d in items]))
            st._batch_seq[id(batch)] = seq
            return batch
        return wrapper

    def write(fn: Any) -> Any:
        def wrapper(self: Store, batch: Any) -> None:
            t0 = clock()
            fn(self, batch)
            t1 = clock()
            st.add("write", t0, t1)
            seq = st._batch_seq.pop(id(batch), 0)
            st.durable.append((t1 + st.offset, seq))
            st.durable_seq = max(st.durable_seq, seq)
        return wrapper

    def start(fn: Any) -> Any:
        async def wrapper(self: LocalProcess) -> str | None:
            env = self.env or {}
            key = None
            if "FLEETDECK_SCHEDULED_AT" in env:
                key = (env.get("FLEETDECK_JOB", ""), float(env["FLEETDECK_SCHEDULED_AT"]))
                if st.durable_seq < st.needs.get(key, 0):
                    st.early.append(key)
            t0 = clock()
            out = await fn(self)
            t1 = clock()
            st.add("start", t0, t1)
            if key is not None:
                st.spawned[key] = t1 + st.offset
            return out
        return wrapper

    def commit_async(fn: Any) -> Any:
        async def wrapper(self: Store) -> None:
            t0 = clock()
            await fn(self)
            st.add("commit", t0, clock())
        return wrapper

    patch(Scheduler, "pop_due", timed("pop_due", lambda out, *_: len(out)))
    patch(Dispatch, "_dispatch", dispatch)
    patch(Dispatch, "_pump", timed("pump"))
    patch(Dispatch, "_finish", timed("finish"))
    patch(Store, "_prepare", prepare)
    patch(Store, "_write", write)
    patch(Store, "commit_async", commit_async)
    patch(AtomicJSONStorage, "serialize", lambda fn: lambda self: _serialize(st, fn, self))
    patch(LocalProcess, "start", start)
    patch(RunHistory, "_load", timed("segment load"))
    patch(os, "posix_spawn", timed("posix_spawn"))
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def _serialize(st: Stamps, fn: Any, storage: AtomicJSONStorage) -> bytes:
    t0 = time.perf_counter()
    data: bytes = fn(storage)
    name = storage.path.name
    st.add("serialize", t0, time.perf_counter(),
           (name if name in ("jobs.json", "meta.json") else "runs segment", len(data)))
    return data


async def watch_loop(st: Stamps, every: float = 0.001, report: float = 0.005) -> None:
    """Note each time the loop ran a 1 ms timer more than `report` late (it was busy)."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(every)
        late = time.perf_counter() - t0 - every
        if late > report:
            st.stalls.append((t0 + st.offset, late))


def summary(xs: list[float], unit: float = MS, fmt: str = ".1f") -> str:
    if not xs:
        return "-"
    return (f"mean {statistics.fmean(xs) * unit:{fmt}}, p50 {eb.pct(xs, 50) * unit:{fmt}}, "
            f"p99 {eb.pct(xs, 99) * unit:{fmt}}, max {max(xs) * unit:{fmt}}")


def print_serialize(st: Stamps, lo: float, hi: float, phase: float | None,
                    indent: str) -> None:
    """json.dumps of each kind of file, in [lo, hi): time, files, bytes."""
    kinds: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for _t, dur, (kind, size) in st.between("serialize", lo, hi + 1e-6):
        kinds[kind].append((dur, size))
    for kind, xs in sorted(kinds.items()):
        secs = sum(d for d, _ in xs)
        share = f" {secs / phase:5.0%}" if phase else ""
        print(f"{indent}{kind + ' json.dumps':<22}{secs:7.2f} s{share}  ({len(xs)} files, "
              f"{sum(n for _, n in xs) / len(xs) / 1e3:.0f} KB each)")


# ------------------------------------------------------------------------- burst ----
async def profile_burst(n_jobs: int, slots: int, base: Path) -> None:
    print(f"burst: {n_jobs} jobs of /bin/true due at T, slots {slots}")
    st = Stamps()
    fire_box: list[float] = []
    watcher: list[asyncio.Task[None]] = []

    def instrument(_engine: Engine, fire: float) -> None:
        fire_box.append(fire)
        watcher.append(asyncio.ensure_future(watch_loop(st)))

    gc.collect()
    with instrumented(st):
        try:
            res = await eb.with_lead(
                lambda lead: eb.engine_burst(n_jobs, slots, lead, base, instrument), 4.0)
        finally:
            for w in watcher:
                w.cancel()
    assert isinstance(res, eb.EngineBurst)
    T = fire_box[-1]
    end = T + res.last_finish + 0.5
    pops = [s for s in st.between("pop_due", T - 0.5, end) if s[2]]
    disp = st.between("dispatch", T - 0.5, end)
    prep = st.between("prepare", T - 0.5, end)
    writes = st.between("write", T - 0.5, end)
    starts = sorted(st.between("start", T - 0.5, end))
    if not (pops and disp and prep and writes and starts):
        print("    nothing stamped (did the burst run?)")
        return
    first_spawn = starts[0][0] + starts[0][1]
    last_spawn = starts[-1][0] + starts[-1][1]
    p0, w0 = prep[0], writes[0]
    print(f"    T+{(pops[0][0] - T) * MS:7.1f} ms  scheduler wakes: pop_due takes {pops[0][2]} "
          f"due in {pops[0][1] * MS:.1f} ms")
    print(f"    T+{(disp[0][0] - T) * MS:7.1f} ms  _dispatch: {disp[0][2]} due -> runs queued "
          f"and recorded in memory, {disp[0][1] * MS:.0f} ms")
    print(f"    T+{(p0[0] - T) * MS:7.1f} ms  commit 1, _prepare: {p0[2][0]} files, "
          f"{p0[2][1] / 1e6:.1f} MB serialized on the loop, {p0[1] * MS:.0f} ms")
    print_serialize(st, p0[0], p0[0] + p0[1], None, "                   of which ")
    print(f"    T+{(w0[0] - T) * MS:7.1f} ms  commit 1, _write: {p0[2][0]} atomic fsynced "
          f"replacements in a worker thread, {w0[1] * MS:.0f} ms")
    print(f"    T+{(first_spawn - T) * MS:7.1f} ms  first process started (nothing could "
          f"start before commit 1 was durable)")
    print(f"    T+{(last_spawn - T) * MS:7.1f} ms  last process started; all finished "
          f"T+{res.last_finish * MS:.0f} ms")
    phase = last_spawn - first_spawn
    print(f"    spawn phase {phase:.2f} s: {len(starts) / phase:.0f} starts/s with {slots} slots")
    lo, hi = first_spawn, last_spawn
    in_phase = {k: st.between(k, lo, hi) for k in
                ("start", "posix_spawn", "finish", "pump", "prepare", "write", "commit")}
    per = {k: sum(s[1] for s in v) for k, v in in_phase.items()}
    print("    in the spawn phase, the loop's thread spent:")
    for k, label in (("start", "LocalProcess.start"), ("posix_spawn", "  of which os.posix_spawn"),
                     ("finish", "Dispatch._finish"), ("pump", "Dispatch._pump"),
                     ("prepare", "Store._prepare (serialize)")):
        xs = [s[1] for s in in_phase[k]]
        mean = statistics.fmean(xs) * US if xs else math.nan
        print(f"      {label:<30}{per[k]:7.2f} s  {per[k] / phase:5.0%}  "
              f"({len(xs)} calls, mean {mean:.0f} us)")
    print_serialize(st, lo, hi, phase, "        of which ")
    loads = [s[1] for s in st.between("segment load", lo, hi)]
    print(f"      {'segment files parsed again':<30}{sum(loads):7.2f} s  "
          f"{sum(loads) / phase:5.0%}  ({len(loads)} loads: evicted from the 8-segment "
          "cache, read back from disk; inside the rows above and below)")
    accounted = per["start"] + per["finish"] + per["pump"] + per["prepare"]
    print(f"      {'the rest (tasks, reaping, pipes, events, run records)':<30}"
          f"{phase - accounted:7.2f} s  {(phase - accounted) / phase:5.0%}")
    ws = [s[1] for s in in_phase["write"]]
    print(f"    worker thread: {len(ws)} commits written in the phase ({summary(ws)} ms each); "
          f"files per commit {statistics.fmean([s[2][0] for s in in_phase['prepare']] or [0]):.1f}")
    stalls = [s for s in st.stalls if T - 0.5 <= s[0] < end]
    if stalls:
        big = max(stalls, key=lambda s: s[1])
        print(f"    loop stalls > 5 ms: {len(stalls)}, {sum(s[1] for s in stalls):.2f} s in all; "
              f"the longest {big[1] * MS:.0f} ms at T+{(big[0] - T) * MS:.0f} ms")
    print(f"    runs spawned before their claim and record were on disk: {len(st.early)}")
    bad = {k: v for k, v in res.states.items() if k != "succeeded"}
    if bad:
        print(f"    durable history: not succeeded {bad}")


async def cprofile_burst(n_jobs: int, slots: int, base: Path, top: int = 30) -> None:
    print(f"\nburst under cProfile ({n_jobs} jobs, slots {slots}): T to the last run's end")
    prof = cProfile.Profile()
    seen = 0

    def instrument(engine: Engine, fire: float) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, fire - time.time() - 0.01), prof.enable)

        def on_event(ev: Event) -> None:
            nonlocal seen
            if isinstance(ev, RunFinished) and ev.run.get("occurrence") is not None:
                seen += 1
                if seen >= n_jobs:
                    prof.disable()

        engine.bus.subscribe(on_event)

    gc.collect()
    res = await eb.with_lead(
        lambda lead: eb.engine_burst(n_jobs, slots, lead, base, instrument), 4.0)
    prof.disable()
    assert isinstance(res, eb.EngineBurst)
    print(f"    (under the profiler: last start {max(res.late):.2f} s after T)")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        lines = out.getvalue().splitlines()
        at = next((i for i, x in enumerate(lines) if x.lstrip().startswith("ncalls")), 0)
        print(f"    -- by {key}")
        for line in lines[at:at + top + 1]:
            print("    " + line[:140])


# ------------------------------------------------------------------------ steady ----
async def profile_steady(rate: int, seconds: float, slots: int, base: Path) -> None:
    print(f"\nsteady: {rate} jobs every 1s, jitter 1s, {seconds:g} s, slots {slots} "
          f"(COMMIT_DELAY {COMMIT_DELAY * MS:.0f} ms)")
    st = Stamps()
    window: list[float] = []
    watcher: list[asyncio.Task[None]] = []

    def instrument(_engine: Engine, t0: float) -> None:
        window.append(t0)
        watcher.append(asyncio.ensure_future(watch_loop(st)))

    gc.collect()
    with instrumented(st):
        try:
            res = await eb.engine_steady(rate, seconds, slots, base, instrument)
        finally:
            for w in watcher:
                w.cancel()
    t0 = window[-1]
    t1 = t0 + seconds
    marks = sorted(st.durable)
    reach: list[float] = []  # the highest seq on disk by each mark
    for _t, seq in marks:
        reach.append(max(seq, reach[-1]) if reach else seq)

    def durable_at(seq: int) -> float | None:
        i = bisect.bisect_left(reach, seq)
        return marks[i][0] if i < len(marks) else None

    wake, claim, after, total = [], [], [], []
    early = set(st.early)
    n_early = 0
    for dues, t_disp, seq in st.dispatched:
        t_durable = durable_at(seq)
        for job, occ, fire in dues:
            spawned = st.spawned.get((job, occ))
            if not t0 <= fire < t1 or spawned is None or t_durable is None:
                continue
            n_early += (job, occ) in early
            wake.append(t_disp - fire)
            claim.append(t_durable - t_disp)
            after.append(spawned - t_durable)
            total.append(spawned - fire)
    print(f"    {len(total)} runs: due->exec {summary(total)} ms (bench: "
          f"{summary(res.late)} ms, durable started_at)")
    print(f"      scheduler wake (due -> _dispatch)      {summary(wake)} ms")
    print(f"      claim durable (_dispatch -> on disk)   {summary(claim)} ms")
    print(f"      spawned after durable (slot, pump)     {summary(after)} ms")
    print(f"    runs spawned BEFORE their claim and record were on disk: {n_early} of "
          f"{len(total)} (a finishing run's _pump starts queued runs whose commit is in flight)")
    commits = st.between("commit", t0, t1)
    preps = st.between("prepare", t0, t1)
    writes = st.between("write", t0, t1)
    print(f"    commits: {len(preps) / seconds:.0f}/s written; a caller waits "
          f"{summary([c[1] for c in commits])} ms")
    print(f"      _prepare on the loop  {summary([p[1] for p in preps])} ms")
    print(f"      _write, worker thread {summary([w[1] for w in writes])} ms")
    files: dict[str, list[int]] = defaultdict(list)
    for p in preps:
        for name in p[2][2]:
            files["jobs.json" if name == "jobs.json" else
                  "meta.json" if name == "meta.json" else "runs segment"].append(1)
    per_commit = {k: len(v) / max(1, len(preps)) for k, v in files.items()}
    sizes = [p[2][1] for p in preps]
    print("      files per commit: " + ", ".join(f"{k} {v:.2f}" for k, v in per_commit.items())
          + f"; {statistics.fmean(sizes) / 1e3 if sizes else 0:.0f} KB serialized per commit")
    print_serialize(st, t0, t1, seconds, "      ")
    starts = st.between("start", t0, t1)
    fin = st.between("finish", t0, t1)
    pumps = st.between("pump", t0, t1)
    busy = sum(s[1] for s in starts) + sum(s[1] for s in fin) + sum(s[1] for s in pumps) \
        + sum(p[1] for p in preps)
    print(f"    the loop's thread: start {summary([s[1] for s in starts], US, '.0f')} us; "
          f"finish {summary([s[1] for s in fin], US, '.0f')} us; stamped work "
          f"{busy / seconds:.0%} of the window; engine CPU {res.cpu / seconds:.0%}")
    stalls = [s for s in st.stalls if t0 <= s[0] < t1]
    if stalls:
        print(f"    loop stalls > 5 ms: {len(stalls)} ({len(stalls) / seconds:.1f}/s), "
              f"longest {max(s[1] for s in stalls) * MS:.0f} ms")


# -------------------------------------------------------------------------- main ----
async def main_async(args: argparse.Namespace) -> None:
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="fleetdeck-profile-", dir=base))
    try:
        if "b" in args.only:
            await profile_burst(args.jobs, args.slots, work)
            if args.cprofile:
                await cprofile_burst(args.jobs, args.slots, work)
        if "s" in args.only:
            await profile_steady(args.rate, args.seconds, args.slots, work)
    except Exception as e:  # a measurement that broke is reported, not raised
        print(f"    failed: {type(e).__name__}: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=10_000, help="burst: jobs due at once")
    p.add_argument("--slots", type=int, default=eb.SLOTS, help="max_concurrent_runs")
    p.add_argument("--rate", type=int, default=300, help="steady: jobs every second")
    p.add_argument("--seconds", type=float, default=10.0, help="steady: measured seconds")
    p.add_argument("--only", default="bs", help="b: burst, s: steady")
    p.add_argument("--cprofile", action="store_true", help="also cProfile the burst")
    p.add_argument("--dir", default=None, help="where temporary state goes")
    p.add_argument("--quick", action="store_true", help="a small smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.jobs, args.rate, args.seconds = min(args.jobs, 500), min(args.rate, 100), 3.0
    logging.basicConfig(level=logging.ERROR)
    eb.raise_fd_limit()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
