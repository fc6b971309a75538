"""The console's goals, measured on the real app over a real engine, in one run.

1. time to first paint of `fleetdeck` on an 80x24 pty, beside a bare Textual app
   (goal: under 0.5 s);
2. log lines per second the run log pane takes in from a running job (a local job that
   prints as fast as it can, through the engine, its log file and the pane) while a
   key press is answered; latency = key posted to the binding's action running
   (goals: >= 50,000 lines/s with p99 latency < 50 ms);
3. RSS of the console with a 1,000,000-line run log open (goal: under 150 MB).

Run: .venv/bin/python bench/console_bench.py [--seconds 5] [--lines 1000000]
Prints figures and PASS/MISS; exits 0 (a measurement, not a test).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.jobs.runs import Run  # noqa: E402
from core.store import Store  # noqa: E402
from tests.conftest import job, make_config  # noqa: E402
from tui.app import FleetdeckApp  # noqa: E402
from tui.screens.run_log import RunLogScreen  # noqa: E402
from tui.widgets.log_view import LogView  # noqa: E402

FIREHOSE = (
    "import sys, time\n"
    "end = time.perf_counter() + {seconds}\n"
    "lv = ['INFO', 'INFO', 'DEBUG', 'WARN', 'INFO', 'ERROR', 'INFO', 'INFO']\n"
    "w = sys.stdout.write\n"
    "i = 0\n"
    "while time.perf_counter() < end:\n"
    "    w(''.join(f'12:00:00.{{j % 1000:03d}} {{lv[j % 8]}} worker-{{j % 16}} item {{j}} ok\\n'"
    " for j in range(i, i + 200)))\n"
    "    i += 200\n"
    "sys.stdout.flush()\n"
)

ACTION_TIMES: list[float] = []
_original_down = LogView.action_cursor_down


def _timed_down(self: LogView) -> None:
    ACTION_TIMES.append(time.perf_counter())
    _original_down(self)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


async def wait_ready(app: FleetdeckApp, pilot) -> None:
    while not app.engine_ready:
        await pilot.pause(0.02)


async def ingestion(seconds: float) -> tuple[float, float, int]:
    LogView.action_cursor_down = _timed_down  # type: ignore[method-assign]
    script = FIREHOSE.format(seconds=seconds)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "firehose.py").write_text(script)
        config = make_config(job("firehose", f"{sys.executable} {tmp}/firehose.py"))
        app = FleetdeckApp(config, Path(tmp) / "state", scheduling=False, theme="dark")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(app, pilot)
            [run] = await app.engine.run_job("firehose")
            app.open_run(run["id"])
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, RunLogScreen)
            view = screen.query_one(LogView)
            start = time.perf_counter()
            latencies: list[float] = []
            while app.engine.get_run(run["id"])["state"] in ("queued", "running"):
                ACTION_TIMES.clear()
                sent = time.perf_counter()
                app.post_message(events.Key("j", "j"))
                await asyncio.sleep(0.02)
                while not ACTION_TIMES and time.perf_counter() - sent < 1:
                    await asyncio.sleep(0.001)
                if ACTION_TIMES:
                    latencies.append(ACTION_TIMES[0] - sent)
            log_lines = sum(1 for _ in app.engine.run_log_path(run["id"]).open("rb"))
            while view.line_count < log_lines:
                await pilot.pause(0.05)
            elapsed = time.perf_counter() - start
            shown = view.line_count
    LogView.action_cursor_down = _original_down  # type: ignore[method-assign]
    rate = shown / elapsed
    p99 = pct(latencies, 0.99) * 1000 if latencies else float("nan")
    med = statistics.median(latencies) * 1000 if latencies else float("nan")
    print(f"ingestion through engine and pane: {shown:,} lines in {elapsed:.2f}s = "
          f"{rate:,.0f} lines/s (goal >= 50,000: {'PASS' if rate >= 50_000 else 'MISS'})")
    print(f"  key latency meanwhile ({len(latencies)} presses): p50 {med:.1f} ms, "
          f"p99 {p99:.1f} ms (goal < 50 ms: {'PASS' if p99 < 50 else 'MISS'})")
    return rate, p99, shown


async def memory(lines: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        store = Store.open(state)
        run = Run(id=store.next_run_id(), job="big", host="local", command="-",
                  state="succeeded", queued_at=time.time(), started_at=time.time(),
                  finished_at=time.time(), exit_code=0)
        store.add_run(run)
        with store.log_path(run.id).open("w") as f:
            for start in range(0, lines, 10_000):
                f.write("".join(f"2026-11-22 12:00:00 INFO worker processed item {i} ok\n"
                                for i in range(start, min(lines, start + 10_000))))
        store.commit()
        store.close()
        app = FleetdeckApp(make_config(job("big", "true")), state, scheduling=False,
                           theme="dark")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_ready(app, pilot)
            bare = rss_mb()
            app.open_run(run.id)
            await pilot.pause()
            view = app.screen.query_one(LogView)
            while view.indexing:
                await pilot.pause(0.05)
            await pilot.press("G", "g", "G")
            await pilot.pause()
            with_log = rss_mb()
            shown = view.line_count
    print(f"memory: console RSS {bare:.0f} MB before, {with_log:.0f} MB with a "
          f"{shown:,}-line run log open (goal < 150 MB: "
          f"{'PASS' if with_log < 150 else 'MISS'})")
    return with_log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7, help="first-paint repetitions")
    args = ap.parse_args()
    print("== 1. first paint")
    subprocess.run([sys.executable, str(ROOT / "bench" / "first_paint.py"), "--repeat",
                    str(args.repeat)], check=False)
    print("== 2. ingestion")
    asyncio.run(ingestion(args.seconds))
    print("== 3. memory")
    asyncio.run(memory(args.lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
