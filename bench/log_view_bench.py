"""LogView under load: ingestion rate, key latency meanwhile, memory with a 1M-line log.

(i)  ingestion: a writer *process* appends log lines to a file as fast as it can (or at
     --rate lines/s) while a headless 80x24 App shows the file in a following LogView,
     refreshed every --tick seconds as the run log screen does; lines/s = lines the view
     has taken in (indexed, page painted at the end) over the wall time.
(ii) key latency: meanwhile a key (`j`, cursor down: it keeps follow mode on) is pressed
     every 20 ms through the Pilot; latency = time from posting the key to the binding's
     action running; p50/p99/max printed. Goal: p99 < 50 ms at >= 50,000 lines/s.
(iii) memory: RSS of this process with a bare App, then with a 1,000,000-line log open
     in the LogView (indexed, `G` pressed). Goal: < 150 MB.

Run: .venv/bin/python bench/log_view_bench.py [--seconds 5] [--rate N ...] [--tick 0.15]
Prints figures; exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from textual import events
from textual.app import App, ComposeResult

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.widgets.log_view import LogView  # noqa: E402

WRITER = r"""
import sys, time
path, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "INFO", "ERROR", "INFO"]
with open(path, "a", buffering=1 << 16) as f:
    start = time.perf_counter()
    i = 0
    while True:
        now = time.perf_counter()
        if now - start >= seconds:
            break
        batch = 500
        if rate:
            due = int((now - start) * rate) - i
            if due <= 0:
                time.sleep(0.002)
                continue
            batch = min(batch, due)
        f.write("".join(
            f"2026-11-22 12:00:00.{j % 1000:03d} {levels[j % 8]} worker-{j % 16} "
            f"processed item {j} in 3.2ms status=ok\n" for j in range(i, i + batch)))
        f.flush()
        i += batch
print(i)
"""


class TimedLogView(LogView):
    """Records when the cursor-down action runs, for the latency figure."""

    action_times: list[float] = []

    def action_cursor_down(self) -> None:
        TimedLogView.action_times.append(time.perf_counter())
        super().action_cursor_down()


class BenchApp(App[None]):
    def __init__(self, path: Path | None, tick: float) -> None:
        super().__init__()
        self.path = path
        self.tick = tick

    def compose(self) -> ComposeResult:
        yield TimedLogView(self.path, follow=True, id="log")

    def on_mount(self) -> None:
        self.query_one(LogView).focus()
        if self.tick:
            self.set_interval(self.tick, self.query_one(LogView).refresh_file)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


async def ingestion(seconds: float, rate: float, tick: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "live.log"
        path.touch()
        app = BenchApp(path, tick)
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(LogView)
            await pilot.pause()
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(rate),
                                       str(seconds)], stdout=subprocess.PIPE, text=True)
            start = time.perf_counter()
            latencies: list[float] = []
            missed = 0
            while writer.poll() is None:
                TimedLogView.action_times.clear()
                sent = time.perf_counter()
                # as a terminal key arrives: into the app's queue, behind whatever waits
                app.post_message(events.Key("j", "j"))
                await asyncio.sleep(0.02)
                while not TimedLogView.action_times and time.perf_counter() - sent < 1:
                    await asyncio.sleep(0.001)
                if TimedLogView.action_times:
                    latencies.append(TimedLogView.action_times[0] - sent)
                else:
                    missed += 1
            written = int(writer.communicate()[0])
            # let the view take in the rest, as its timer would
            while view.line_count < written and time.perf_counter() - start < seconds + 30:
                await pilot.pause(tick or 0.05)
            elapsed = time.perf_counter() - start
            await pilot.pause()
            last = view.render_line(view.scrollable_content_region.height - 1).text.strip()
            lines = view.line_count
        what = f"{rate:,.0f} lines/s" if rate else "flat out"
        print(f"ingestion ({what}): writer wrote {written:,} lines in {seconds:.1f}s "
              f"({written / seconds:,.0f} lines/s); view took in {lines:,} lines in "
              f"{elapsed:.2f}s = {lines / elapsed:,.0f} lines/s (goal >= 50,000)")
        print(f"  last line on screen: {last[:70]!r}")
        if latencies:
            ms = sorted(x * 1000 for x in latencies)
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            print(f"key latency during ingestion ({len(ms)} presses of j): "
                  f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms "
                  f"(goal p99 < 50 ms)" + (f"; {missed} unanswered after 1 s" if missed else ""))


async def memory(lines: int) -> None:
    app = BenchApp(None, 0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        bare = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.log"
        with path.open("w") as f:
            for start in range(0, lines, 10_000):
                f.write("".join(f"2026-11-22 12:00:00 INFO worker processed item {i} ok\n"
                                for i in range(start, min(lines, start + 10_000))))
        size_mb = path.stat().st_size / 1e6
        app = BenchApp(path, 0)
        t0 = time.perf_counter()
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(LogView)
            await pilot.pause()
            while view.indexing:
                await pilot.pause()
            indexed = time.perf_counter() - t0
            await pilot.press("G", "g", "G")
            await pilot.pause()
            with_log = rss_mb()
            shown = view.line_count
    print(f"memory: RSS {bare:.0f} MB with an empty LogView; {with_log:.0f} MB with a "
          f"{shown:,}-line ({size_mb:.0f} MB) log open (goal < 150 MB)")
    print(f"  app started and the whole file indexed after {indexed:.2f}s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="how long the writer runs")
    ap.add_argument("--rate", type=float, action="append",
                    help="writer lines/s, 0: flat out (repeatable; default: 60000 and 0)")
    ap.add_argument("--tick", type=float, default=0.15, help="refresh_file interval (s)")
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines of the memory log")
    args = ap.parse_args()
    for rate in args.rate or [60_000.0, 0.0]:
        asyncio.run(ingestion(args.seconds, rate, args.tick))
    asyncio.run(memory(args.lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
