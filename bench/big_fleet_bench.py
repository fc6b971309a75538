"""The console with 500 jobs that fire together: does the Jobs screen stay responsive?

500 jobs (``true``, ``every 20s``, so all fire on the same 20 s boundary) and the real
console (``FleetdeckApp`` headless through ``App.run_test``, 160x48) over a real engine
that runs them, on the Jobs screen in its normal and its wide (``w``) layout. A probe task
on the app's event loop sleeps 10 ms over and over for 20 s, a window holding one burst of
500 finished runs; a stall is the time it slept minus 10 ms (what a key press waits
behind). Measured like for like in the same run:

- fleetdeck as it is: a changed column sized once from its widest cell, the theme looked
  up once per theme change;
- the baseline: Textual's own ways, DataTable.update_cell(update_width=True) for every
  changed cell and App.current_theme (a copy of every registered theme per call).

Run: .venv/bin/python bench/big_fleet_bench.py [--jobs 500]
A measurement, not a test: it always exits 0; its temporary state is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.app import App  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from tests.helpers import job, make_config  # noqa: E402
from tui.app import FleetdeckApp  # noqa: E402
from tui.widgets.table import FleetTable  # noqa: E402

EVERY = 20.0
SLEEP = 0.010


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


async def window(jobs: int, wide: bool) -> tuple[float, float, float]:
    """(p99 stall ms, longest stall ms, seconds stalled over 20 ms) for one burst."""
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"job-{i:03d}-{'x' * (i % 40)}" for i in range(jobs)]
        config = make_config(*(job(n, "true", schedule=f"every {EVERY:g}s") for n in names),
                             max_concurrent_runs=64)
        app = FleetdeckApp(config, Path(tmp) / "state", scheduling=True, theme="dark")
        async with app.run_test(size=(160, 48)) as pilot:
            while not app.engine_ready:
                await pilot.pause(0.02)
            await pilot.press("2")
            if wide:
                await pilot.press("w")
            await pilot.pause(0.5)
            await asyncio.sleep(EVERY - time.time() % EVERY + 1.0)  # just after a burst
            # the window holds the next burst (and the tail of this one, as a person sees)
            stalls: list[float] = []
            last = time.perf_counter()
            end = last + EVERY
            while time.perf_counter() < end:
                await asyncio.sleep(SLEEP)
                now = time.perf_counter()
                stalls.append(max(0.0, now - last - SLEEP))
                last = now
    return (pct(stalls, 0.99) * 1000, max(stalls) * 1000,
            sum(s for s in stalls if s > 0.020))


class Baseline:
    """Textual's own ways back for the length of a `with`."""

    def __enter__(self) -> None:
        self.saved = (FleetTable.update_cell, FleetTable._fit_columns,  # noqa: SLF001
                      FleetdeckApp.current_theme)

        def update_cell(table, row, column, value, *, update_width=False):  # type: ignore[no-untyped-def]
            DataTable.update_cell(table, row, column, value, update_width=True)

        FleetTable.update_cell = update_cell  # type: ignore[method-assign]
        FleetTable._fit_columns = lambda *_a: None  # type: ignore[method-assign]  # noqa: SLF001
        FleetdeckApp.current_theme = App.current_theme  # type: ignore[misc]

    def __exit__(self, *exc: object) -> None:
        (FleetTable.update_cell, FleetTable._fit_columns,  # noqa: SLF001
         FleetdeckApp.current_theme) = self.saved  # type: ignore[method-assign, misc]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=500)
    args = ap.parse_args(argv)
    print(f"{args.jobs} jobs firing together every {EVERY:g}s, the Jobs screen shown, "
          f"a {EVERY:g} s window:")
    for wide in (False, True):
        layout = "wide (w)" if wide else "normal"
        ours = asyncio.run(window(args.jobs, wide))
        with Baseline():
            base = asyncio.run(window(args.jobs, wide))
        for who, (p99, worst, total) in (("fleetdeck", ours), ("baseline", base)):
            print(f"  {layout:9} {who:9}: stall p99 {p99:6.0f} ms, longest {worst:6.0f} ms, "
                  f"{total:4.1f} s of {EVERY:g} s stalled")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
