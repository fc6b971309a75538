"""What an alert transition costs, as alerts pile up on record.

An alert opening or resolving changes the alert and queues its notifications in the same
in-memory data, then makes it durable with one atomic, fsynced commit of
`alerts/alerts.json`. That file holds every open alert, up to `resolved_retention`
(default 1,000) resolved ones and the last 200 finished outbox entries, so its size,
not the number of notifiers, sets the cost. Measured: one transition (open or resolve,
two notifiers) plus its commit, with 0, 100 and 1,000 resolved alerts on record, beside
the baseline of an atomic fsynced commit of a nearly empty file on the same disk.

Run: .venv/bin/python bench/alerts_bench.py [--repeat 200]
A measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.alerts.book import AlertBook  # noqa: E402
from core.alerts.config import AlertingConfig, NotifierConfig  # noqa: E402
from core.store.storage import AtomicJSONStorage  # noqa: E402

NOTIFIERS = {"hook": NotifierConfig("hook", "webhook", url="http://127.0.0.1:1/"),
             "page": NotifierConfig("page", "command", command="true")}


def baseline(root: Path, repeat: int) -> list[float]:
    storage = AtomicJSONStorage(root / "base.json")
    out = []
    for i in range(repeat):
        storage.write({"t": {"1": {"i": i}}})
        t0 = time.perf_counter()
        storage.flush()
        out.append(time.perf_counter() - t0)
    return out


def transitions(root: Path, on_record: int, repeat: int) -> tuple[list[float], int]:
    clock = [1_000_000.0]
    book = AlertBook(root / f"s{on_record}", AlertingConfig(notifiers=NOTIFIERS),
                     lambda: clock[0])
    for i in range(on_record):  # resolved alerts with a typical short history
        book.check_changed("http", f"web{i}", "up", "down", clock[0], "HTTP 500 in 31 ms")
        book.check_changed("http", f"web{i}", "down", "up", clock[0], "HTTP 200 in 9 ms")
    for e in book.outbox.pending():
        book.outbox.delivered(e, clock[0])
    book.storage.flush()
    out = []
    for i in range(repeat):
        clock[0] += 1
        new = "down" if i % 2 == 0 else "up"
        t0 = time.perf_counter()
        book.check_changed("disk", "db1", "up" if new == "down" else "down", new, clock[0],
                           "disk / 96% >= 95%")
        book.storage.flush()
        out.append(time.perf_counter() - t0)
        for e in book.outbox.pending():  # keep the outbox as a running engine would
            book.outbox.delivered(e, clock[0])
    size = (root / f"s{on_record}" / "alerts" / "alerts.json").stat().st_size
    return out, size


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=200)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fd-alerts-bench-"))
    try:
        base = statistics.median(baseline(root, args.repeat)) * 1000
        print(f"baseline: atomic fsynced commit of a tiny file  p50 {base:.2f} ms")
        for n in (0, 100, 1000):
            times, size = transitions(root, n, args.repeat)
            p50 = statistics.median(times) * 1000
            p99 = sorted(times)[int(len(times) * 0.99) - 1] * 1000
            print(f"transition + commit, {n:>5} resolved on record ({size / 1024:.0f} KiB): "
                  f"p50 {p50:.2f} ms, p99 {p99:.2f} ms ({p50 / base:.2f}x baseline)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
