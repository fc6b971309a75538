"""A daemon under load with clients attached: 100 jobs running every second, 5 clients
subscribed to every event on the control socket (what 5 attached consoles receive).

Measures, over --seconds: events per second delivered to each client, the daemon's CPU
and memory (RSS), and the lag from an event (its own timestamp: a run's queued, started
or finished time) to its arrival in a client. Goal: p99 lag under 100 ms.
Run: .venv/bin/python bench/daemon_bench.py [--jobs 100] [--clients 5] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
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


def client(path: Path, until: float, out: dict) -> None:
    lags: list[float] = []
    n = 0
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        s.sendall(b'{"id":1,"method":"subscribe"}\n')
        s.settimeout(1.0)
        buf = b""
        while time.time() < until:
            try:
                chunk = s.recv(1 << 16)
            except TimeoutError:
                continue
            if not chunk:
                break
            now = time.time()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                msg = json.loads(line)
                kind = msg.get("event")
                if kind is None:
                    continue
                n += 1
                field = STAMP.get(kind)
                if field and msg.get("run", {}).get(field):
                    lags.append(now - msg["run"][field])
    out["events"] = n
    out["lags"] = lags


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
        until = t0 + args.seconds
        results = [{} for _ in range(args.clients)]
        threads = [threading.Thread(target=client, args=(sock, until, r))
                   for r in results]
        for t in threads:
            t.start()
        rss = 0
        while time.time() < until:
            rss = max(rss, daemon.memory_info().rss)
            time.sleep(0.5)
        for t in threads:
            t.join()
        cpu1 = daemon.cpu_times()
        wall = time.time() - t0
        cpu = 100.0 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / wall
        lags = sorted(x for r in results for x in r["lags"])
        rates = [r["events"] / wall for r in results]
        runs = json.loads(subprocess.run(
            [sys.executable, "-m", "tui.cli", "--config", str(cfg), "--state-dir", str(state),
             "runs", "--json", "--limit", "100000"], cwd=ROOT, capture_output=True,
            text=True).stdout or "[]")
        print(f"{args.jobs} jobs every second, {args.clients} clients subscribed, "
              f"{wall:.0f}s measured; {len(runs)} runs on record")
        print(f"  events delivered per client: {statistics.median(rates):,.0f}/s "
              f"(min {min(rates):,.0f}/s)")
        print(f"  daemon CPU {cpu:.0f}% of one core, RSS {rss / 1e6:.0f} MB")
        if lags:
            p50 = lags[len(lags) // 2] * 1000
            p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000
            print(f"  lag from event to client: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
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
