"""Time to first paint of the console, beside a bare Textual app, in one run.

Starts each program on a real pseudo-terminal (80x24), and times from spawn until the
screen shows its first frame (a marker text), repeated; prints medians and the ratio.
Run: .venv/bin/python bench/first_paint.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = """
from textual.app import App
from textual.widgets import Footer, Static
class Bare(App):
    def compose(self):
        yield Static("BARE-READY")
        yield Footer()
Bare().run()
"""


def first_paint(cmd: list[str], marker: bytes, env: dict[str, str], timeout: float = 20) -> float:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    seen = b""
    elapsed = float("nan")
    try:
        deadline = start + timeout
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                seen += chunk
                if marker in seen:
                    elapsed = time.perf_counter() - start
                    break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fleetdeck-paint-"))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="80", LINES="24",
               XDG_CONFIG_HOME=str(tmp / "config"), XDG_STATE_HOME=str(tmp / "state"))
    env.pop("SSH_CONNECTION", None)
    env.pop("SSH_TTY", None)
    python = sys.executable
    fleet = [python, "-m", "tui.cli"]
    env["PYTHONPATH"] = str(ROOT)
    bare_file = tmp / "bare.py"
    bare_file.write_text(BARE_APP)
    fleet_times, bare_times = [], []
    # bytecode as `make run` leaves it (compiled ahead: PYTHONDONTWRITEBYTECODE may be set)
    subprocess.run([python, "-m", "compileall", "-q", "core", "tui"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    first_paint(fleet, b"Overview", env)  # warm the file cache
    first_paint([python, str(bare_file)], b"BARE-READY", env)
    for _ in range(args.repeat):
        fleet_times.append(first_paint(fleet, b"Overview", env))
        bare_times.append(first_paint([python, str(bare_file)], b"BARE-READY", env))
    shutil.rmtree(tmp, ignore_errors=True)
    f, b = statistics.median(fleet_times), statistics.median(bare_times)
    print(f"first paint, median of {args.repeat} (80x24 pty):")
    print(f"  fleetdeck console   {f * 1000:7.0f} ms   goal < 500 ms: "
          f"{'PASS' if f < 0.5 else 'MISS'}")
    print(f"  bare Textual app    {b * 1000:7.0f} ms   (baseline)")
    print(f"  ratio               {f / b:7.2f}x of a bare Textual app")
    return 0


if __name__ == "__main__":
    sys.exit(main())
