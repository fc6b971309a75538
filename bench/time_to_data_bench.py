"""Time to data: how long after `fleetdeck` starts does the Overview show what the state
holds, on a big history? Beside a bare Textual app's first paint, in the same run.

A state with --runs runs (100,000 by default; --recent of them in the last 6 hours, all
by default), made by bench/history.py through the real Store, with its config, laid out
as fleetdeck's defaults ($XDG_STATE_HOME/fleetdeck, $XDG_CONFIG_HOME/fleetdeck); then
`python -m tui.cli` (the console, no arguments) is spawned on a real 80x24 pty, and
timed from spawn until:

* first paint: the frame shows "Overview" (what bench/first_paint.py times);
* data: the Overview's title reads "Failing in the last 6 hours (N)" with a number.
  The title says only "Failing in the last 6 hours" until the engine has started and
  the screen's first refresh with the engine read the state (failing runs from the
  history, the status bar's 6-hour failed count in the same refresh), so the number is
  there only once data from the state is on screen, not on an empty frame.

Each repetition spawns the bare Textual app of bench/first_paint.py and the console,
interleaved (one then the other, the order alternating); medians of --repeat.
Goal: time to data under 1.0 s. Baseline figures (the store before in-memory indexes)
are in the README's Measured table.

Run: .venv/bin/python bench/time_to_data_bench.py [--runs 100000] [--repeat 5] [--quick]
     (--quick: 10,000 runs, 3 repetitions)
A measurement, not a test: it always exits 0; its temporary state is removed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from first_paint import BARE_APP, first_marks, first_paint  # noqa: E402
from history import load_line, make_home  # noqa: E402

DATA = re.compile(rb"Failing in the last 6 hours \(\d+\+?\)")
GOAL_S = 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--recent", type=int, default=None,
                    help="runs in the last 6 hours (default: all of them)")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per spawn")
    ap.add_argument("--quick", action="store_true", help="10,000 runs, 3 repetitions")
    ap.add_argument("--dir", type=Path, default=None, help="where the state is made")
    args = ap.parse_args(argv)
    runs = args.runs or (10_000 if args.quick else 100_000)
    recent = runs if args.recent is None else min(args.recent, runs)
    repeat = args.repeat or (3 if args.quick else 5)
    base = Path(tempfile.mkdtemp(prefix="fleetdeck-data-", dir=args.dir))
    try:
        print(load_line())
        t0 = time.perf_counter()
        home = make_home(base / "home", runs, recent=recent)
        print(f"time to data: {runs:,} runs ({recent:,} in the last 6 h, made in "
              f"{time.perf_counter() - t0:.1f}s), 80x24 pty, median of {repeat}")
        env = home.env()
        env.update(TERM="xterm-256color", COLUMNS="80", LINES="24", PYTHONPATH=str(ROOT))
        env.pop("SSH_CONNECTION", None)
        env.pop("SSH_TTY", None)
        python = sys.executable
        fleet = [python, "-m", "tui.cli"]  # the state and config found through XDG_*
        bare = [python, str(base / "bare.py")]
        (base / "bare.py").write_text(BARE_APP)
        # bytecode as `make run` leaves it (compiled ahead)
        subprocess.run([python, "-m", "compileall", "-q", "core", "tui"], cwd=ROOT,
                       check=False, stdout=subprocess.DEVNULL)
        first_marks(fleet, {"data": DATA}, env, args.timeout)  # warm the file cache
        first_paint(bare, b"BARE-READY", env)
        paint, data, bare_paint = [], [], []
        for i in range(repeat):
            if i % 2:
                bare_paint.append(first_paint(bare, b"BARE-READY", env))
            marks = first_marks(fleet, {"paint": b"Overview", "data": DATA}, env, args.timeout)
            paint.append(marks["paint"])
            data.append(marks["data"])
            if not i % 2:
                bare_paint.append(first_paint(bare, b"BARE-READY", env))
            print(f"  run {i + 1}: first paint {marks['paint'] * 1000:,.0f} ms, data "
                  f"{marks['data'] * 1000:,.0f} ms; bare app {bare_paint[-1] * 1000:,.0f} ms")
        d, p, b = (statistics.median(x) for x in (data, paint, bare_paint))
        print(f"  console time to data  {d * 1000:8,.0f} ms   goal < {GOAL_S * 1000:.0f} ms: "
              f"{'PASS' if d < GOAL_S else 'MISS'}"
              + ("" if d == d else f" (no data within {args.timeout:.0f}s)"))
        print(f"  console first paint   {p * 1000:8,.0f} ms")
        print(f"  bare Textual app      {b * 1000:8,.0f} ms   (baseline: first paint)")
        print(f"  time to data          {d / b:8.2f}x a bare Textual app's first paint")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
