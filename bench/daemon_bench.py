"""A daemon under load with consoles attached: 100 jobs running every second, 5 consoles'
engines (AttachedEngine, what `fleetdeck` runs beside a daemon) attached to its socket.

Measures, over --seconds: events per second delivered to each client, the daemon's CPU
and memory (RSS), and the lag from an event (its own timestamp: a run's queued, started
or finished time) to its arrival in a client. Goal: p99 lag under 100 ms.
Run: .venv/bin/python bench/daemon_bench.py [--jobs 100] [--clients 5] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STAMP = {"run_queued": "queued_at", "run_started": "started_at", "run_finished": "finished_at"}


async def consoles(cfg: Path, state: Path, pid: int, n: int, seconds: float
                   ) -> list[dict]:
    """n consoles' engines attached to the daemon (AttachedEngine, what `fleetdeck`
    runs beside a daemon), each recording when events reach its bus."""
    from core.control.attached import AttachedEngine
    from core.fleetconfig import load_config

    results: list[dict] = []
    engines = []
    for _ in range(n):
        engine = AttachedEngine(load_config(cfg), state, pid)
        out: dict = {"events": 0, "lags": []}

        def on_event(ev: object, out: dict = out) -> None:
            now = time.time()
            out["events"] += 1
            field = STAMP.get(getattr(ev, "kind", ""))
            run = getattr(ev, "run", None)
            if field and run and run.get(field):
                out["lags"].append(now - run[field])

        engine.bus.subscribe(on_event)
        await engine.start()
        engines.append(engine)
        results.append(out)
    await asyncio.sleep(seconds)
    for engine in engines:
        await engine.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    import psutil

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-daemon-bench-"))
    cfg = folder / "fleet.toml"
    cfg.write_text("[engine]\nmax_concurrent_runs = 32\n\n" + "".join(
        f'[jobs.j{i:03d}]\ncommand = "true"\nschedule = "every 1s"\n\n'
        for i in range(args.jobs)))
    state = folder / "state"
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "--config", str(cfg),
                             "--state-dir", str(state), "daemon", "--quiet"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock = state / "control.sock"
        deadline = time.time() + 30
        while not sock.exists():
            if time.time() > deadline or proc.poll() is not None:
                print("the daemon did not start")
                return 0
            time.sleep(0.05)
        time.sleep(2.0)  # the schedule settles
        daemon = psutil.Process(proc.pid)
        cpu0 = daemon.cpu_times()
        t0 = time.time()
        rss = [0]
        stop = threading.Event()

        def watch_rss() -> None:
            while not stop.is_set():
                rss[0] = max(rss[0], daemon.memory_info().rss)
                time.sleep(0.5)

        watcher = threading.Thread(target=watch_rss)
        watcher.start()
        results = asyncio.run(consoles(cfg, state, proc.pid, args.clients, args.seconds))
        stop.set()
        watcher.join()
        cpu1 = daemon.cpu_times()
        wall = time.time() - t0
        cpu = 100.0 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / wall
        lags = sorted(x for r in results for x in r["lags"])
        rates = [r["events"] / wall for r in results]
        runs = json.loads(subprocess.run(
            [sys.executable, "-m", "tui.cli", "--config", str(cfg), "--state-dir", str(state),
             "runs", "--json", "--limit", "100000"], cwd=ROOT, capture_output=True,
            text=True).stdout or "[]")
        print(f"{args.jobs} jobs every second, {args.clients} consoles attached, "
              f"{wall:.0f}s measured; {len(runs)} runs on record")
        print(f"  events delivered per client: {statistics.median(rates):,.0f}/s "
              f"(min {min(rates):,.0f}/s)")
        print(f"  daemon CPU {cpu:.0f}% of one core, RSS {rss[0] / 1e6:.0f} MB")
        if lags:
            p50 = lags[len(lags) // 2] * 1000
            p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000
            print(f"  lag from event to console: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                  f"max {lags[-1] * 1000:.1f} ms ({len(lags):,} events)")
            print(f"goal p99 < 100 ms: {'PASS' if p99 < 100 else 'MISS'}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
