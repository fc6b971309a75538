"""The console in a real terminal (tmux), as a person feels it: launch to data, and a key
to the screen it names while the engine is busy. Beside a bare Textual app measured the
same way in the same run.

State: --runs runs of history (100,000 by default, a tenth in the last 6 hours) made by
bench/history.py, its config plus a log source that a writer in this script feeds at
--rate lines a second (1,000 by default: each line is an event the console's pump
takes in) and a job every second.

* launch → data: from `tmux new-session` running `python -m tui.cli` until the pane
  shows the Overview's "Failing in the last 6 hours (N)" with a number (that number
  comes from the state, so an empty frame does not count); the bare app: until its
  text shows. Medians of --repeat.
* key → screen: keys 1, 2, 4, 5, 7, 8 pressed in turn (send-keys), each timed until
  the status bar names the screen (capture-pane polled); the bare app: a key that
  switches between two screens, timed until the pane shows the other one. p50, p99
  and max over --keys presses. The polling (one capture-pane is a process start, 2-4
  ms here) is in both figures alike.

Goals: launch → data < 1 s; key → screen p99 < 50 ms while 1,000 events/s arrive.

Run: .venv/bin/python bench/tmux_console_bench.py [--runs 100000] [--rate 1000]
     [--keys 120] [--repeat 5] [--quick]   (--quick: 10,000 runs, 40 keys, 3 launches)
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
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from history import load_line, make_home  # noqa: E402

DATA = re.compile(r"Failing in the last 6 hours \(\d+\+?\)")
SCREENS = {"1": "1 Overview", "2": "2 Jobs", "4": "4 Runs", "5": "5 Hosts", "7": "7 Alerts",
           "8": "8 Logs"}
BARE = """
from textual.app import App
from textual.screen import Screen
from textual.widgets import Static
class One(Screen):
    BINDINGS = [("x", "app.switch_screen('two')", "two")]
    def compose(self):
        yield Static("BARE-ONE")
class Two(Screen):
    BINDINGS = [("x", "app.switch_screen('one')", "one")]
    def compose(self):
        yield Static("BARE-TWO")
class Bare(App):
    SCREENS = {"one": One, "two": Two}
    def on_mount(self):
        self.push_screen("one")
Bare().run()
"""


class Pane:
    """One tmux server running one command at 80x24."""

    def __init__(self, argv: list[str], env: dict[str, str], size: tuple[int, int]) -> None:
        self.sock = f"fd-bench-{uuid.uuid4().hex[:10]}"
        self.argv, self.env, self.size = argv, env, size

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True,
                              text=True, check=False).stdout

    def start(self) -> float:
        exports = " ".join(f"{k}='{v}'" for k, v in self.env.items())
        line = f"exec env {exports} " + " ".join(self.argv)
        t0 = time.perf_counter()
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "b", "-x", str(self.size[0]),
                  "-y", str(self.size[1]), line)
        self.tmux("set-option", "-s", "escape-time", "10")
        return t0

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "b")

    def until(self, test: object, timeout: float = 60.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            shown = self.screen()
            if (test.search(shown) if isinstance(test, re.Pattern) else test in shown):
                return time.perf_counter()
        return float("nan")

    def key(self, name: str) -> None:
        self.tmux("send-keys", "-t", "b", name)

    def stop(self) -> None:
        self.tmux("kill-server")


def feed(path: Path, rate: int, stop: threading.Event) -> None:
    """Append `rate` log lines a second, in 100 small batches a second."""
    n = 0
    with open(path, "a", buffering=1) as f:
        per = max(1, rate // 100)
        while not stop.is_set():
            t = time.perf_counter()
            f.write("".join(f"INFO request {n + i} 200 12ms\n" for i in range(per)))
            n += per
            time.sleep(max(0.0, 0.01 - (time.perf_counter() - t)))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--rate", type=int, default=1000, help="log lines a second")
    ap.add_argument("--keys", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if shutil.which("tmux") is None:
        print("tmux is not installed: nothing measured")
        return 0
    runs = args.runs or (10_000 if args.quick else 100_000)
    presses = args.keys or (40 if args.quick else 120)
    repeat = args.repeat or (3 if args.quick else 5)
    base = Path(tempfile.mkdtemp(prefix="fleetdeck-tmux-"))
    try:
        print(load_line())
        log = base / "busy.log"
        log.touch()
        extra = (f'\n[sources.busy]\npath = "{log}"\n\n[jobs.tick]\ncommand = "true"\n'
                 'schedule = "every 1s"\n')
        home = make_home(base / "home", runs, recent=runs // 10, extra=extra)
        env = {k: v for k, v in home.env().items()
               if k in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "HOME", "PATH")}
        env.update(TERM="xterm-256color", PYTHONPATH=str(ROOT), LANG="C.UTF-8")
        python = sys.executable
        (base / "bare.py").write_text(BARE)
        subprocess.run([python, "-m", "compileall", "-q", "core", "tui"], cwd=ROOT,
                       check=False, stdout=subprocess.DEVNULL)
        print(f"console in tmux 80x24: {runs:,} runs of history; launches: median of "
              f"{repeat}")
        launch, bare_launch = [], []
        for _ in range(repeat):
            for which in ("fleet", "bare"):
                argv = [python, "-m", "tui.cli"] if which == "fleet" else [
                    python, str(base / "bare.py")]
                pane = Pane(argv, env, (80, 24))
                t0 = pane.start()
                t1 = pane.until(DATA if which == "fleet" else "BARE-ONE")
                pane.stop()
                (launch if which == "fleet" else bare_launch).append(t1 - t0)
        d, b = statistics.median(launch), statistics.median(bare_launch)
        print(f"  launch → data       console {d * 1000:6,.0f} ms   bare app {b * 1000:6,.0f} "
              f"ms   goal < 1,000 ms: {'PASS' if d < 1.0 else 'MISS'}")

        stop = threading.Event()
        writer = threading.Thread(target=feed, args=(log, args.rate, stop), daemon=True)
        pane = Pane([python, "-m", "tui.cli"], env, (80, 24))
        pane.start()
        pane.until(DATA)
        writer.start()
        time.sleep(3)  # the writer and the pump in their stride
        order = list(SCREENS)
        times = []
        for i in range(presses):
            k = order[i % len(order)]
            t0 = time.perf_counter()
            pane.key(k)
            times.append(pane.until(SCREENS[k], timeout=10) - t0)
        stop.set()
        writer.join()
        pane.stop()
        bare = Pane([python, str(base / "bare.py")], env, (80, 24))
        bare.start()
        bare.until("BARE-ONE")
        bare_times = []
        for i in range(presses):
            t0 = time.perf_counter()
            bare.key("x")
            bare_times.append(bare.until("BARE-TWO" if i % 2 == 0 else "BARE-ONE",
                                         timeout=10) - t0)
        bare.stop()
        ms = [t * 1000 for t in times]
        bms = [t * 1000 for t in bare_times]
        print(f"  key → screen, {presses} presses, {args.rate:,} log lines/s arriving: "
              f"p50 {pct(ms, .5):.1f} ms, p99 {pct(ms, .99):.1f} ms, max {max(ms):.1f} ms   "
              f"goal p99 < 50 ms: {'PASS' if pct(ms, .99) < 50 else 'MISS'}")
        per = {}
        for i, t in enumerate(ms):
            per.setdefault(SCREENS[order[i % len(order)]], []).append(t)
        print("  per screen, median: " + ", ".join(
            f"{name} {statistics.median(v):.0f} ms" for name, v in per.items()))
        slow = sorted(range(len(ms)), key=lambda i: -ms[i])[:5]
        print("  slowest presses: " + ", ".join(
            f"#{i + 1} {SCREENS[order[i % len(order)]]} {ms[i]:.0f} ms" for i in sorted(slow)))
        print(f"  bare Textual app, a key to its other screen (idle): p50 {pct(bms, .5):.1f} "
              f"ms, p99 {pct(bms, .99):.1f} ms, max {max(bms):.1f} ms")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
