"""Time to first paint of the console, beside a bare Textual app, in one run.

Starts each program on a real pseudo-terminal (80x24), and times from spawn until the
screen shows its first frame (a marker text), repeated; prints medians and the ratio.
Run: .venv/bin/python bench/first_paint.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
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


ANSI = re.compile(rb"\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
                  rb"|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHM]")
Marker = bytes | re.Pattern[bytes]


def screen_text(raw: bytes) -> bytes:
    """What a terminal was sent, its escape sequences (styles, cursor moves) removed."""
    return ANSI.sub(b"", raw)


def first_marks(cmd: list[str], markers: dict[str, Marker], env: dict[str, str],
                timeout: float = 20) -> dict[str, float]:
    """Seconds from spawn until each marker first shows on an 80x24 pty (nan: never).

    A bytes marker is looked for in the raw output; a regex in the output without its
    escape sequences (text a style change splits, e.g. a number in another colour)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    seen = b""
    found = dict.fromkeys(markers, float("nan"))
    waiting = dict(markers)
    try:
        deadline = start + timeout
        while waiting and time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                seen += chunk
                now = time.perf_counter() - start
                text = None
                for name, marker in list(waiting.items()):
                    if isinstance(marker, bytes):
                        hit = marker in seen
                    else:
                        text = screen_text(seen) if text is None else text
                        hit = marker.search(text) is not None
                    if hit:
                        found[name] = now
                        del waiting[name]
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
    return found


def first_paint(cmd: list[str], marker: Marker, env: dict[str, str], timeout: float = 20) -> float:
    """Seconds from spawn until ``marker`` first shows on an 80x24 pty (nan: never)."""
    return first_marks(cmd, {"paint": marker}, env, timeout)["paint"]


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
