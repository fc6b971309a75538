"""The live console on a big recent history: does it stay responsive while runs finish?

A state with --runs runs (100,000 by default), all queued in the last 6 hours (made by
bench/history.py through the real Store), and a config with the history's jobs (no
schedules) plus ``tick``: ``true`` every second, so one run finishes per second and every
screen refresh that follows it happens for real. The real console (``FleetdeckApp``,
headless through ``App.run_test``, 80x24, on the Overview) runs over a real engine that
schedules and runs ``tick``. Measured:

1. event-loop stall: a probe task on the app's event loop sleeps 10 ms, over and over,
   for --seconds (60 by default); a stall is the time it actually slept minus 10 ms
   (what a key press waits behind). Goals: p99 under 50 ms, the longest under 200 ms.
2. one status bar refresh (``FleetScreen.update_status``) and one Overview refresh
   (``OverviewScreen.refresh_data``), called on that loop after the window: the median
   of --calls (20; fewer if they take more than --budget seconds in all). Goal: each
   under 5 ms.

Baseline figures (the store before in-memory indexes) are in the README's Measured table.

Run: .venv/bin/python bench/live_console_bench.py [--runs 100000] [--seconds 60] [--quick]
     (--quick: 10,000 runs, 10 s)
A measurement, not a test: it always exits 0; its temporary state is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from history import load_line, make_home  # noqa: E402

TICK = '[jobs.tick]\ncommand = "true"\nschedule = "every 1s"\n'
SLEEP = 0.010
GOAL_P99_MS = 50.0
GOAL_MAX_MS = 200.0
GOAL_REFRESH_MS = 5.0


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


async def probe(seconds: float) -> list[float]:
    """Stalls (s) of 10 ms sleeps on this event loop, for ``seconds``."""
    stalls: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        await asyncio.sleep(SLEEP)
        stalls.append(time.perf_counter() - t0 - SLEEP)
    return stalls


def median_call(fn: Callable[[], object], calls: int, budget: float) -> tuple[float, int]:
    """(median s, calls made): up to ``calls``, stopping once ``budget`` s are spent."""
    times: list[float] = []
    spent = 0.0
    while len(times) < calls and (len(times) < 3 or spent < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return statistics.median(times), len(times)


async def live(state: Path, config: Path, args: argparse.Namespace) -> None:
    from core.events import RunFinished
    from core.fleetconfig import load_config
    from tui.app import FleetdeckApp
    from tui.screens.overview import OverviewScreen

    app = FleetdeckApp(load_config(config), state, scheduling=True, theme="dark")
    finished: list[float] = []
    async with app.run_test(size=(80, 24)) as pilot:
        t0 = time.perf_counter()
        while not app.engine_ready:
            await pilot.pause(0.02)
        # seen on the loop: after the engine started and its first refresh let go of it
        print(f"  console up (engine started, first refresh over) after "
              f"{time.perf_counter() - t0:.2f}s")
        await pilot.pause(0.5)  # its first refresh with data

        def on_event(ev: object) -> None:
            if isinstance(ev, RunFinished) and ev.run.get("job") == "tick":
                finished.append(time.time())

        unsubscribe = app.engine.bus.subscribe(on_event)
        stalls = await asyncio.create_task(probe(args.seconds))
        unsubscribe()
        screen = app.screen
        assert isinstance(screen, OverviewScreen), type(screen)
        status, n_status = median_call(screen.update_status, args.calls, args.budget)
        refresh, n_refresh = median_call(screen.refresh_data, args.calls, args.budget)
    p50, p99, worst = (pct(stalls, 0.5) * 1000, pct(stalls, 0.99) * 1000,
                       max(stalls, default=float("nan")) * 1000)
    print(f"  runs of tick finished in the window: {len(finished)} "
          f"(one a second: {args.seconds:.0f})")
    print(f"  event-loop stall over {args.seconds:.0f}s ({len(stalls):,} sleeps of 10 ms; "
          f"the probe slept {len(stalls) * SLEEP / args.seconds * 100:.0f}% of the window):")
    print(f"    p50 {p50:,.1f} ms   p99 {p99:,.1f} ms   (< {GOAL_P99_MS:.0f} ms: "
          f"{verdict(p99 < GOAL_P99_MS)})")
    print(f"    longest {worst:,.1f} ms   (< {GOAL_MAX_MS:.0f} ms: {verdict(worst < GOAL_MAX_MS)})")
    print(f"  status bar refresh (update_status), median of {n_status}: {status * 1000:,.2f} ms"
          f"   (< {GOAL_REFRESH_MS:.0f} ms: {verdict(status * 1000 < GOAL_REFRESH_MS)})")
    print(f"  Overview refresh_data, median of {n_refresh}: {refresh * 1000:,.2f} ms"
          f"   (< {GOAL_REFRESH_MS:.0f} ms: {verdict(refresh * 1000 < GOAL_REFRESH_MS)})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="runs, all in the last 6 hours")
    ap.add_argument("--seconds", type=float, default=None, help="probe window")
    ap.add_argument("--calls", type=int, default=20, help="refresh calls timed")
    ap.add_argument("--budget", type=float, default=30.0,
                    help="seconds each refresh's calls may take before stopping early")
    ap.add_argument("--quick", action="store_true", help="10,000 runs, 10 s")
    ap.add_argument("--dir", type=Path, default=None, help="where the state is made")
    args = ap.parse_args(argv)
    args.runs = args.runs or (10_000 if args.quick else 100_000)
    args.seconds = args.seconds or (10.0 if args.quick else 60.0)
    base = Path(tempfile.mkdtemp(prefix="fleetdeck-live-", dir=args.dir))
    try:
        print(load_line())
        t0 = time.perf_counter()
        home = make_home(base, args.runs, recent=args.runs, schedules=False, extra=TICK)
        print(f"live console: {args.runs:,} runs in the last 6 h (made in "
              f"{time.perf_counter() - t0:.1f}s), 'tick' finishing once a second")
        asyncio.run(live(home.state_dir, home.config, args))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
