"""Log watching throughput: a writer appends to a file as fast as it can while the
LogMonitor follows it (tail -F reading, level detection, two regex rules); beside it, in
the same run, `grep -c` over the same file.

The monitor runs in this process on one core (the writer is a separate process). The
figure is lines through follow + detection + rules per second, over the writer's run.
Goals: at least 100,000 lines/s on one core, and within 10x of grep.
Run: .venv/bin/python bench/logs_bench.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WRITER = r"""
import sys
n, path = int(sys.argv[1]), sys.argv[2]
shapes = [
    "2026-11-22T12:00:00Z INFO  request served path=/api/v1/items status=200 ms=12",
    "2026-11-22T12:00:00Z DEBUG cache hit key=user:1234",
    '{"ts":"2026-11-22T12:00:01Z","level":"warn","msg":"slow query","ms":812}',
    "Nov 22 12:00:02 web01 app[812]: ERROR: upstream timed out (110: Connection timed out)",
    "level=info msg=\"job done\" duration=1.2s",
]
block = "".join(f"{shapes[i % len(shapes)]} seq={i}\n" for i in range(1000))
with open(path, "a", buffering=1 << 20) as f:
    for _ in range(n // 1000):
        f.write(block)
"""


async def follow(path: Path, total: int) -> tuple[float, int, dict[str, int]]:
    from core.logs.monitor import LogMonitor
    from core.logs.rules import RuleSpec, parse_threshold
    from core.logs.sources import SourceSpec

    sources = {"app": SourceSpec("app", path=str(path), from_start=True)}
    rules = {
        "timeouts": RuleSpec("timeouts", ("app",), parse_threshold("> 100 in 60s"),
                             match=r"timed out|refused"),
        "slow": RuleSpec("slow", ("app",), parse_threshold("> 5% in 60s"),
                         match=r'"ms":\s*[5-9]\d\d'),
    }
    mon = LogMonitor(sources, rules, poll=0.01)
    mon.configure(sources, rules)
    from core.logs.follow import Follower

    def block(_p: str, data: bytes) -> None:
        mon.ingest_block("app", data)

    f = Follower(str(path), block, poll=0.01, from_start=True)
    t0 = time.perf_counter()
    task = asyncio.ensure_future(f.run())
    while mon.sources["app"].total < total:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    task.cancel()
    mon.evaluate()
    return elapsed, mon.sources["app"].total, dict(mon.sources["app"].counts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    args = p.parse_args(argv)
    n = args.lines // 1000 * 1000
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-logs-bench-"))
    try:
        path = folder / "app.log"
        path.write_text("")
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(n), str(path)])
        elapsed, seen, counts = asyncio.run(follow(path, n))
        writer.wait()
        rate = seen / elapsed
        t0 = time.perf_counter()
        out = subprocess.run(["grep", "-c", "-E", "timed out|refused", str(path)],
                             capture_output=True, text=True)
        grep_time = time.perf_counter() - t0
        grep_rate = n / grep_time
        size = os.path.getsize(path) / 1e6
        print(f"{n:,} lines ({size:.0f} MB) appended by a writer process while followed")
        print(f"  fleetdeck follow + detect + 2 regex rules: {rate:,.0f} lines/s "
              f"({elapsed:.2f}s); levels {counts}")
        print(f"  grep -c -E 'timed out|refused' (same file, after): {grep_rate:,.0f} lines/s "
              f"({grep_time:.2f}s, {out.stdout.strip()} matches)")
        ratio = grep_rate / rate
        print(f"  grep is {ratio:.1f}x faster")
        print(f"goal >= 100,000 lines/s: {'PASS' if rate >= 100_000 else 'MISS'}; "
              f"within 10x of grep: {'PASS' if ratio <= 10 else 'MISS'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
