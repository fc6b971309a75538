"""A 1,000-step workflow of no-op steps (`true`), wide (1,000 independent steps) and
deep (a chain of 1,000): the engine's overhead per step beyond the steps' own run time.

The engine runs on a state directory with a 100,000-run history (bench/history.py), as
a busy install has. Its time is from `run_job` until `wait_run` returns the workflow
run's durable end: every step run recorded before it started, each step's end committed
before what needs it started. The baseline is the same 1,000 `/bin/true` processes run
like for like, in the same script: deep, one after the other (posix_spawn, wait);
wide, at most --slots at once (the engine's max_concurrent_runs, 16 by default). The
overhead per step is (engine - baseline) / steps. Goal: under 1 ms.

Run: .venv/bin/python bench/workflow_bench.py [--steps 1000] [--slots 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.history import make_history  # noqa: E402
from core.api import Actor  # noqa: E402
from core.fleetconfig import parse_config_text  # noqa: E402
from core.jobs.engine import Engine  # noqa: E402

TRUE = "/bin/true"


def workflow_text(name: str, steps: int, deep: bool) -> str:
    out = [f"[workflows.{name}]\n"]
    for i in range(steps):
        needs = f'needs = ["s{i - 1}"]\n' if deep and i else ""
        out.append(f'[[workflows.{name}.steps]]\nname = "s{i}"\ncommand = "{TRUE}"\n{needs}')
    return "".join(out)


def baseline(steps: int, slots: int, deep: bool) -> float:
    """The same processes, spawned and waited on with nothing else (seconds)."""
    start = time.perf_counter()
    running: list[int] = []
    for _ in range(steps):
        running.append(os.posix_spawn(TRUE, [TRUE], os.environ))
        if deep or len(running) >= slots:
            os.waitpid(running.pop(0), 0)
    for pid in running:
        os.waitpid(pid, 0)
    return time.perf_counter() - start


async def engine_time(state: Path, name: str, text: str, slots: int) -> float:
    config = parse_config_text(f"[engine]\nmax_concurrent_runs = {slots}\n"
                               "history_retention = 10000000\n\n" + text)
    engine = Engine(config, state)
    await engine.start(scheduling=False)
    try:
        actor = Actor(os.getuid(), "bench", "bench")
        start = time.perf_counter()
        (run,) = await engine.run_job(name, actor=actor)
        done = await engine.wait_run(run["id"])
        took = time.perf_counter() - start
    finally:
        await engine.stop()
    assert done["state"] == "succeeded", done["reason"]
    assert all(st["state"] == "succeeded" for st in done["workflow"]["steps"].values())
    return took


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--slots", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--history", type=int, default=100_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-wf-bench-") as tmp:
        state = Path(tmp) / "state"
        make_history(state, args.history, recent=10_000)
        print(f"history: {args.history:,} runs; {args.steps} steps of {TRUE}; "
              f"{args.slots} slots; median of {args.rounds}")
        print(f"{'shape':6} {'engine':>10} {'baseline':>10} {'overhead/step':>14}  goal < 1 ms")
        for shape, deep in (("wide", False), ("deep", True)):
            text = workflow_text(shape, args.steps, deep)
            eng, base = [], []
            for _ in range(args.rounds):
                base.append(baseline(args.steps, args.slots, deep))
                eng.append(asyncio.run(engine_time(state, shape, text, args.slots)))
            e, b = statistics.median(eng), statistics.median(base)
            per = (e - b) / args.steps * 1000
            print(f"{shape:6} {e * 1000:>8.0f}ms {b * 1000:>8.0f}ms {per:>11.2f} ms  "
                  f"{'met' if per < 1 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
