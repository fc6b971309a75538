"""core.jobs.cron: the full differential, and next-fire speed beside croniter's.

(a) differential: N random expressions per dialect (tests/cronref.py's generator) x 3
    start times x 8 chained fires, compile_cron against the brute-force reference in
    tests/cronref.py; the 5-field ones cronsim reads also against cronsim (leaving out
    the one-value ranges with a step, which cronsim misreads; see
    tests/unit/test_cron_differential.py). Goal: 0 mismatches.
(b) speed: the same expressions and start times, next fire per call (8 chained calls
    from each start), core.jobs.cron's CronSpec.next_after beside croniter's get_next,
    on the expressions croniter accepts (compiling is not timed). Goal: ratio <= 0.5.

Run: .venv/bin/python bench/cron_bench.py [--exprs 5000] [--seed 1] [--quick]
A measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.jobs.cron import CronError, compile_cron  # noqa: E402
from tests.cronref import Ref, random_cron, random_quartz  # noqa: E402
from tests.unit.test_cron_differential import one_value_range_with_step  # noqa: E402

STARTS = 3
FIRES = 8


def random_start(rng: random.Random) -> datetime:
    return datetime(rng.randint(1990, 2098), rng.randint(1, 12), rng.randint(1, 28),
                    rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                    rng.choice([0, rng.randint(1, 999_999)]))


def differential(dialect: str, n: int, rng: random.Random) -> list[tuple[str, list[datetime]]]:
    """Compare with the reference (and cronsim); returns the compiled cases for timing."""
    from cronsim import CronSim, CronSimError

    make = random_cron if dialect == "cron" else random_quartz
    cases = []
    fires = mismatches = never = never_wrong = 0
    sim_exprs = sim_fires = sim_mismatches = 0
    examples: list[str] = []
    t0 = time.perf_counter()
    for _ in range(n):
        expr = make(rng)
        ref = Ref(expr)
        starts = [random_start(rng) for _ in range(STARTS)]
        try:
            spec = compile_cron(expr)
        except CronError as e:
            never += 1
            if "never fires" not in e.detail or ref.next_after(datetime(1970, 1, 1)):
                never_wrong += 1
                examples.append(f"  rejected {expr!r}: {e.detail}")
            continue
        cases.append((expr, starts))
        sim = None
        if dialect == "cron" and not one_value_range_with_step(expr):
            try:
                CronSim(expr, datetime(2000, 1, 1))
                sim = expr
                sim_exprs += 1
            except CronSimError:
                pass
        for start in starts:
            a = b = c = start
            sim_live = sim is not None
            for _ in range(FIRES):
                a, b = spec.next_after(a), ref.next_after(b)
                fires += 1
                if a != b:
                    mismatches += 1
                    if len(examples) < 10:
                        examples.append(f"  {expr!r} from {start}: {a} != reference {b}")
                    break
                if sim_live:
                    try:
                        c = next(CronSim(expr, c))
                    except StopIteration:
                        c = None
                    if c is None or c.year > 2099:
                        sim_live = False  # cronsim gave up, or went past 2099
                    else:
                        sim_fires += 1
                        if c != a:
                            sim_mismatches += 1
                            if len(examples) < 10:
                                examples.append(f"  {expr!r} from {start}: {a} != cronsim {c}")
                            sim_live = False
                if a is None:
                    break
    took = time.perf_counter() - t0
    print(f"{dialect:6s} {n} expressions ({never} rejected as never firing, "
          f"{never_wrong} wrongly), {fires} fires compared with the reference: "
          f"{mismatches} mismatches  [{took:.1f} s]")
    if dialect == "cron":
        print(f"{'':6s} cronsim: {sim_exprs} expressions, {sim_fires} fires compared: "
              f"{sim_mismatches} mismatches")
    for line in examples:
        print(line)
    return cases


def timing(cases: list[tuple[str, list[datetime]]], rounds: int) -> None:
    from croniter import croniter

    ours, theirs = [], []
    for expr, starts in cases:
        quartz = len(expr.split()) > 5
        try:
            it = croniter(expr, starts[0], ret_type=datetime, second_at_beginning=quartz,
                          max_years_between_matches=130)
            for start in starts:  # croniter must answer every call to be timed
                it.set_current(start, force=True)
                for _ in range(FIRES):
                    it.get_next(datetime)
        except Exception:
            continue
        ours.append((compile_cron(expr), starts))
        theirs.append((it, starts))
    calls = len(ours) * STARTS * FIRES

    def run_ours() -> None:
        for spec, starts in ours:
            nxt = spec.next_after
            for start in starts:
                t = start
                for _ in range(FIRES):
                    t = nxt(t)
                    if t is None:
                        break

    def run_theirs() -> None:
        for it, starts in theirs:
            for start in starts:
                it.set_current(start, force=True)
                for _ in range(FIRES):
                    it.get_next(datetime)

    best = {}
    gc.disable()
    try:
        for name, fn in (("ours", run_ours), ("croniter", run_theirs)):
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            best[name] = min(times) / calls * 1e6
    finally:
        gc.enable()
    ratio = best["ours"] / best["croniter"]
    print(f"next fire, {len(ours)} expressions croniter accepts x {STARTS} starts x {FIRES} "
          f"calls (best of {rounds}):")
    print(f"  core.jobs.cron {best['ours']:7.2f} us/call")
    print(f"  croniter       {best['croniter']:7.2f} us/call")
    print(f"  ratio {ratio:.3f} (goal <= 0.5): {'met' if ratio <= 0.5 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--exprs", type=int, default=5000, help="expressions per dialect")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--quick", action="store_true", help="500 expressions per dialect")
    args = ap.parse_args()
    n = 500 if args.quick else args.exprs
    rng = random.Random(args.seed)
    print(f"== differential ({n} expressions per dialect x {STARTS} starts x {FIRES} fires)")
    cases = []
    for dialect in ("cron", "quartz"):
        cases += differential(dialect, n, rng)
    print("== speed")
    timing(cases, rounds=3)


if __name__ == "__main__":
    main()
