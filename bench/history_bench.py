"""What a big run history costs: listings, daemon start and memory, at 100k and 1M runs.

For each size a history is made with bench/history.py (the real Store's files: ~50
jobs, one of them ``rare`` with 8 runs spread through it, a few % failed; --recent of
the runs in the last 6 hours, 20,000 by default: a run every ~1 s), then:

1. listings on an in-process ``Engine`` (started on that state, no scheduling), the
   first call and the median of --repeat more (fewer when a call is slow: --budget
   seconds per listing):
   - ``list_runs(job='rare', limit=20)``: a job's history (the Runs screen, ``runs --job``);
   - ``list_runs(states=['failed'], limit=20)``: the latest failures;
   - ``count_runs(states=[failed, timed_out, interrupted], since=now-6h)``: what the
     status bar asks on every refresh (tui/screens/base.py update_status; until the run
     index it listed up to 999 runs and counted them);
   - ``list_runs(states=[...the same], since=now-6h, limit=10)``: the Overview's
     "Failing in the last 6 hours".
   Goal: each under 50 ms.
2. ``fleetdeck daemon`` start: spawn until it prints its ``engine running`` line, the
   median of --daemon-repeat, interleaved with the same daemon on an empty state
   directory (the baseline: interpreter, imports, config). Goal: under 2 s.
3. memory per run: what starting the engine and answering the three listings adds,
   divided by the runs, in a fresh process each: Python allocations still held
   (tracemalloc) and RSS growth. Goal: under 300 bytes/run (tracemalloc).

Baseline figures (the store before in-memory indexes: segments are read newest first
on every listing, 8 kept cached) are in the README's Measured table.

Run: .venv/bin/python bench/history_bench.py [--sizes 100000 1000000] [--recent 20000]
     [--quick]  (--quick: 10,000 and 50,000 runs)
A measurement, not a test: it always exits 0. The histories live under --dir (default:
the system temp directory) and are removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from history import RECENT_WINDOW, Home, load_line, make_home, write_config  # noqa: E402

BAD = ["failed", "timed_out", "interrupted"]
LISTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("list_runs(job='rare', limit=20)", {"job": "rare", "limit": 20}),
    ("list_runs(states=['failed'], limit=20)", {"states": ["failed"], "limit": 20}),
    ("status bar: count_runs(3 states, 6h)", {"states": BAD, "since": "6h", "count": True}),
    ("Overview: list_runs(3 states, 6h, 10)", {"states": BAD, "since": "6h", "limit": 10}),
)
GOAL_LIST_MS = 50.0
GOAL_DAEMON_S = 2.0
GOAL_BYTES = 300.0


def _query(kw: dict[str, Any]) -> dict[str, Any]:
    """The listing's arguments, ``since`` made absolute at the time of the call."""
    kw = {k: v for k, v in kw.items() if k != "count"}
    if kw.get("since") == "6h":
        return {**kw, "since": time.time() - RECENT_WINDOW}
    return kw


def ask(engine: Any, kw: dict[str, Any]) -> int:
    """How many runs the listing (or the count) gives."""
    if kw.get("count"):
        return engine.count_runs(**_query(kw))
    return len(engine.list_runs(**_query(kw)))


def timed(fn: Callable[[], object], repeat: int, budget: float) -> tuple[float, float, int]:
    """(first call s, median of up to ``repeat`` more s, how many); stops early when the
    calls have taken ``budget`` seconds (at least one more is always made)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times: list[float] = []
    spent = first
    while len(times) < repeat and (not times or spent < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return first, statistics.median(times), len(times)


# ------------------------------------------------------------------------- listings ----
async def _listings(home: Home, repeat: int, budget: float) -> dict[str, Any]:
    from core.fleetconfig import load_config
    from core.jobs.engine import Engine

    engine = Engine(load_config(home.config), home.state_dir)
    t0 = time.perf_counter()
    await engine.start(scheduling=False)
    out: dict[str, Any] = {"start": time.perf_counter() - t0}
    try:
        for name, kw in LISTINGS:
            found: list[int] = []

            def call(kw: dict[str, Any] = kw, found: list[int] = found) -> None:
                found[:] = [ask(engine, kw)]

            first, med, n = timed(call, repeat, budget)
            out[name] = (first, med, n, found[0])
    finally:
        await engine.stop()
    return out


# ---------------------------------------------------------------------- daemon start ----
def daemon_start(home: Home, timeout: float = 120.0) -> float:
    """Seconds from spawning ``fleetdeck daemon`` to its 'engine running' line."""
    cmd = [sys.executable, "-m", "tui.cli", *home.args(), "daemon", "--quiet"]
    env = home.env()
    env["PYTHONPATH"] = str(ROOT)
    errors = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors,
                            start_new_session=True)
    took = float("nan")
    try:
        assert proc.stdout is not None
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if b"engine running" in line:
                took = time.perf_counter() - t0
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if took != took:  # nan: say why
            errors.seek(0)
            print(f"  the daemon did not start: {errors.read().decode()[-500:]}")
        errors.close()
    return took


# ---------------------------------------------------------------------------- memory ----
PROBE = "--memory-probe"


def _probe(state: Path, config: Path, how: str) -> None:
    """In a fresh process: memory held after the engine start and the three listings."""
    import psutil

    from core.fleetconfig import load_config
    from core.jobs.engine import Engine

    cfg = load_config(config)

    def held() -> int:
        gc.collect()
        if how == "trace":
            import tracemalloc

            return tracemalloc.get_traced_memory()[0]
        return psutil.Process().memory_info().rss

    async def go() -> dict[str, int]:
        engine = Engine(cfg, state)
        if how == "trace":
            import tracemalloc

            tracemalloc.start()
        before = held()
        await engine.start(scheduling=False)
        started = held()
        for _name, kw in LISTINGS:
            ask(engine, kw)
        listed = held()
        await engine.stop()
        return {"started": started - before, "listed": listed - before}

    print(json.dumps(asyncio.run(go())))


def memory(home: Home, how: str) -> dict[str, int] | None:
    out = subprocess.run([sys.executable, __file__, PROBE, str(home.state_dir),
                          str(home.config), how], cwd=ROOT, capture_output=True, text=True)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"  memory probe ({how}) failed: {out.stderr[-500:]}")
        return None


# ------------------------------------------------------------------------------ main ----
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def empty_home(base: Path) -> Home:
    """The same config on an empty state directory: the daemon start's baseline."""
    home = Home(base / "empty", base / "empty" / "state" / "fleetdeck",
                base / "empty" / "config" / "fleetdeck" / "config.toml")
    write_config(home.config, 0)
    return home


def bench_size(n: int, recent: int, args: argparse.Namespace, base: Path,
               empty: Home) -> dict[str, Any]:
    t0 = time.perf_counter()
    home = make_home(base / f"h{n}", n, recent=recent)
    made = time.perf_counter() - t0
    print(f"\n== {n:,} runs ({recent:,} in the last 6 h), made in {made:.1f}s")
    try:
        res = asyncio.run(_listings(home, args.repeat, args.budget))
        print(f"  in-process Engine.start: {res['start'] * 1000:,.0f} ms")
        for name, _kw in LISTINGS:
            first, med, reps, found = res[name]
            print(f"  {name:44s} first {first * 1000:9,.1f} ms   median {med * 1000:9,.1f} ms"
                  f" (n={reps}, {found} runs)   < {GOAL_LIST_MS:.0f} ms: "
                  f"{verdict(med * 1000 < GOAL_LIST_MS)}")
        starts, bare = [], []
        for _ in range(args.daemon_repeat):  # interleaved: the machine's noise hits both
            bare.append(daemon_start(empty))
            starts.append(daemon_start(home))
        res["daemon"], res["empty"] = statistics.median(starts), statistics.median(bare)
        print(f"  daemon start (spawn to 'engine running'), median of {len(starts)}: "
              f"{res['daemon']:.2f} s ({', '.join(f'{s:.2f}' for s in starts)}); "
              f"on an empty state {res['empty']:.2f} s   < {GOAL_DAEMON_S:.0f} s: "
              f"{verdict(res['daemon'] < GOAL_DAEMON_S)}")
        trace, rss = memory(home, "trace"), memory(home, "rss")
        res["trace"], res["rss"] = trace, rss
        if trace is not None:
            worst = max(trace.values()) / n
            res["bytes"] = worst
            print(f"  memory held (tracemalloc): {trace['started'] / n:,.1f} bytes/run after "
                  f"start, {trace['listed'] / n:,.1f} after the listings   "
                  f"< {GOAL_BYTES:.0f}: {verdict(worst < GOAL_BYTES)}")
        if rss is not None:
            print(f"  RSS growth: {rss['started'] / n:,.1f} bytes/run after start, "
                  f"{rss['listed'] / n:,.1f} after the listings "
                  f"({rss['listed'] / 1e6:,.1f} MB)")
    finally:
        shutil.rmtree(home.base, ignore_errors=True)
    return res


def summary(sizes: list[int], results: dict[int, dict[str, Any]]) -> None:
    print("\n" + "goal".ljust(48) + "".join(f"{n:>16,}" for n in sizes))
    for name, _kw in LISTINGS:
        cells = [f"{results[n][name][1] * 1000:,.1f} ms" for n in sizes]
        print(f"{name + ' < 50 ms':48s}" + "".join(f"{c:>16}" for c in cells))
    print(f"{'daemon start < 2 s':48s}"
          + "".join(f"{results[n]['daemon']:>14.2f} s" for n in sizes))
    print(f"{'  (the same daemon on an empty state)':48s}"
          + "".join(f"{results[n]['empty']:>14.2f} s" for n in sizes))
    print(f"{'memory < 300 bytes/run (tracemalloc)':48s}"
          + "".join(f"{results[n].get('bytes', float('nan')):>16,.1f}" for n in sizes))
    missed = [f"{name} at {n:,}" for n in sizes for name, _ in LISTINGS
              if not results[n][name][1] * 1000 < GOAL_LIST_MS]
    missed += [f"daemon start at {n:,}" for n in sizes
               if not results[n]["daemon"] < GOAL_DAEMON_S]
    missed += [f"memory at {n:,}" for n in sizes
               if not results[n].get("bytes", float("inf")) < GOAL_BYTES]
    print("all goals: PASS" if not missed else "MISS: " + "; ".join(missed))
    print(load_line())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [PROBE]:
        _probe(Path(argv[1]), Path(argv[2]), argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--recent", type=int, default=20_000,
                    help="runs in the last 6 hours (at most the size)")
    ap.add_argument("--repeat", type=int, default=7, help="listing calls after the first")
    ap.add_argument("--budget", type=float, default=30.0,
                    help="seconds a listing's repeats may take before stopping early")
    ap.add_argument("--daemon-repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10,000 and 50,000 runs")
    ap.add_argument("--dir", type=Path, default=None, help="where the histories are made")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([10_000, 50_000] if args.quick else [100_000, 1_000_000])
    # bytecode as `make run` leaves it: the daemon's start must not include compiling
    subprocess.run([sys.executable, "-m", "compileall", "-q", "core", "tui"], cwd=ROOT,
                   check=False, stdout=subprocess.DEVNULL)
    base = Path(tempfile.mkdtemp(prefix="fleetdeck-history-", dir=args.dir))
    try:
        print(load_line())
        empty = empty_home(base)
        results = {n: bench_size(n, min(args.recent, n), args, base, empty) for n in sizes}
        summary(sizes, results)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
