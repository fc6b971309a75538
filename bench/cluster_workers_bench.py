"""Cluster throughput: /bin/true runs per second with 1, 2 and 3 workers.

--jobs (1,000) jobs run `/bin/true` every 10 s; intervals are anchored to the epoch, so
each 10 s all of them fall due in the same instant (a burst). For 1, 2 and 3 `fleetdeck
daemon` processes on one real redis-server (loopback), the time from the burst's due
instant until the last of its runs has ended and been reported on the results stream
(so: claimed, on the work stream, taken, recorded durably by a worker, run, recorded
and reported); runs/s = jobs / that time, median of --bursts (3) bursts. The baseline,
measured the same way in the same script: one daemon with no [cluster] (its own
history read for the end of the burst's last run).

On this machine all the daemons share its two cores, so a worker added here adds no
CPU: the per-worker efficiency (runs/s with k workers / (k x runs/s with one)) says
what sharing costs, not what more machines would give.

Run: .venv/bin/python bench/cluster_workers_bench.py [--jobs 1000] [--bursts 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLEETDECK = [sys.executable, "-m", "tui.cli"]
EVERY = 10


def _jobs(n: int) -> str:
    return "".join(f'[jobs.t{i:04d}]\ncommand = "/bin/true"\nschedule = "every {EVERY}s"\n'
                   for i in range(n))


def _wait(pred, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _next_burst(after: float) -> float:
    return (int(after) // EVERY + 1) * EVERY


def _cluster(folder: Path, k: int, n: int, bursts: int, env: dict[str, str]
             ) -> tuple[list[float], dict[str, int]]:
    from tests.redisd import RedisServer

    redis_server = RedisServer(folder / f"redis-{k}")
    client, port = redis_server.client, redis_server.port
    procs = []
    rates: list[float] = []
    per_node: dict[str, int] = {}
    try:
        for i in range(k):
            name = f"n{i + 1}"
            cfg = folder / f"{k}-{name}.toml"
            cfg.write_text(f'[cluster]\nredis = "redis://127.0.0.1:{port}/0"\n'
                           f'node = "{name}"\n\n' + _jobs(n))
            procs.append(subprocess.Popen(
                [*FLEETDECK, "--config", str(cfg), "--state-dir",
                 str(folder / f"state-{k}-{name}"), "daemon", "--quiet"], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(lambda: client.hlen("fleetdeck:nodes") == k and client.get("fleetdeck:leader"))
        last = "0"
        for _ in range(bursts):
            due = _next_burst(time.time() + 1.0)
            ends: list[float] = []
            nodes: dict[str, int] = {}

            def drained(due: float = due, ends: list[float] = ends,
                        nodes: dict[str, int] = nodes) -> bool:
                nonlocal last
                for _stream, entries in client.xread({"fleetdeck:results": last},
                                                     count=5000) or []:
                    for entry, fields in entries:
                        last = entry.decode()
                        run = json.loads(fields[b"run"])
                        if run.get("occurrence") == due and run.get("finished_at"):
                            ends.append(run["finished_at"])
                            nodes[run["node"]] = nodes.get(run["node"], 0) + 1
                return len(ends) >= n

            if not _wait(drained, EVERY * 6 + due - time.time()):
                print(f"  {k} worker(s): only {len(ends)} of {n} runs ended in time")
                break
            rates.append(n / (max(ends) - due))
            for node, c in nodes.items():
                per_node[node] = per_node.get(node, 0) + c
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        redis_server.stop()
    return rates, per_node


def _alone(folder: Path, n: int, bursts: int, env: dict[str, str]) -> list[float]:
    import logging

    from core.store.store import Store

    # the daemon seals no index yet: each read-only open says it rebuilds one
    logging.getLogger("fleetdeck.store").setLevel(logging.ERROR)

    cfg = folder / "alone.toml"
    cfg.write_text(_jobs(n))
    state = folder / "state-alone"
    proc = subprocess.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                             "daemon", "--quiet"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    rates: list[float] = []
    try:
        time.sleep(2.0)
        for _ in range(bursts):
            due = _next_burst(time.time() + 1.0)

            def ends(due: float = due) -> list[float]:
                with Store.open(state, read_only=True) as store:
                    runs = store.list_runs(since=due - 1, limit=None)
                return [r.finished_at for r in runs
                        if r.occurrence == due and r.finished_at is not None]

            time.sleep(max(0.0, due - time.time()))
            if not _wait(lambda ends=ends: len(ends()) >= n, EVERY * 6):
                print("  alone: the burst did not end in time")
                break
            rates.append(n / (max(ends()) - due))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    return rates


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--bursts", type=int, default=3)
    args = p.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server is not installed: nothing to measure")
        return 0
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-workers-bench-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_STATE_HOME=str(folder / "xdg"))
    try:
        alone = _alone(folder, args.jobs, args.bursts, env)
        base = statistics.median(alone) if alone else None
        print(f"{args.jobs} runs of /bin/true due at once, median of {args.bursts} bursts "
              f"(due -> last run ended and reported)")
        if base:
            print(f"  one daemon, no cluster (baseline): {base:,.0f} runs/s")
        one = None
        for k in (1, 2, 3):
            rates, per_node = _cluster(folder, k, args.jobs, args.bursts, env)
            if not rates:
                continue
            rate = statistics.median(rates)
            one = one or rate
            spread = ", ".join(f"{n} {c}" for n, c in sorted(per_node.items()))
            print(f"  {k} worker(s): {rate:,.0f} runs/s, per-worker efficiency "
                  f"{rate / (k * one):.0%}" + (f", {rate / base:.2f}x the baseline"
                                              if base else "") + f" (runs by node: {spread})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
