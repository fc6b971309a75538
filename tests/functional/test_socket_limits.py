"""What one client may take of a real daemon: connections, request rate, unread bytes.
A client that floods the socket with requests and never reads its replies is cut off,
the daemon's memory stays bounded while it floods and comes back once it has gone (run
with -s for the figures)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time

import psutil

from core.control.client import call
from core.control.protocol import socket_path
from tests.helpers import until

FLOOD = 6_000
MB = 1 << 20


def rss(proc: psutil.Process) -> int:
    return proc.memory_info().rss


def test_a_flooding_client_is_cut_off_and_its_memory_comes_back(daemon) -> None:
    daemon_proc, cfg, state, env = daemon
    proc = psutil.Process(daemon_proc.pid)
    for _ in range(60):  # replies of 50 runs each: some 20 KB a list_runs
        asyncio.run(call(state, "run_job", {"name": "hello"}))
    until(lambda: len(asyncio.run(call(state, "list_runs"))) == 50
          and not asyncio.run(call(state, "queue")), "the runs to be recorded")
    reply = len(json.dumps(asyncio.run(call(state, "list_runs"))))
    for _ in range(50):  # the same work once, read: what the daemon holds when it serves
        asyncio.run(call(state, "list_runs"))
    time.sleep(0.5)
    baseline = rss(proc)

    peak = [baseline]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], rss(proc))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    frames = b"".join(json.dumps({"id": i, "method": "list_runs"}).encode() + b"\n"
                      for i in range(FLOOD))
    cut_off = False
    with socket.socket(socket.AF_UNIX) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect(str(socket_path(state)))
        try:
            s.sendall(frames)  # and never a read while sending
        except (BrokenPipeError, ConnectionResetError):
            cut_off = True
        until(lambda: "dropped client pid" in daemon_proc.err(), "the daemon to drop us")
        try:  # what reached us before the daemon hung up, then the end
            while s.recv(1 << 20):
                pass
        except ConnectionResetError:
            pass
        cut_off = True
    sampling.set()
    sampler.join()
    assert cut_off
    reason = next(line for line in daemon_proc.err().splitlines() if "dropped client" in line)
    during = peak[0]
    settled = until(lambda: (r := rss(proc)) <= baseline * 1.2 and r, lambda:
                    f"the RSS back within 20% of {baseline / MB:.1f} MB "
                    f"(now {rss(proc) / MB:.1f} MB)", timeout=20)
    print(f"\nflood: {FLOOD} list_runs of ~{reply / 1024:.0f} KB replies, unread; {reason}\n"
          f"RSS baseline {baseline / MB:.1f} MB, peak {during / MB:.1f} MB, "
          f"after {settled / MB:.1f} MB")
    assert during < 100 * MB
    assert asyncio.run(call(state, "ping"))["pid"] == daemon_proc.pid


def lines_until_closed(s: socket.socket) -> list[dict]:
    out = b""
    try:
        while chunk := s.recv(1 << 16):
            out += chunk
    except ConnectionResetError:
        pass
    return [json.loads(line) for line in out.splitlines()]


def test_past_its_rate_a_client_is_told_then_cut_off(daemon) -> None:
    """500 pings at once: the burst (400) is served, the rest refused with
    too_many_requests and their id (as long as 500 pings take under half a second);
    then 1,000 more sent regardless: the client is cut off."""
    proc, cfg, state, env = daemon
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(socket_path(state)))
        s.sendall(b"".join(b'{"id":%d,"method":"ping"}\n' % i for i in range(500)))
        out = b""
        while out.count(b"\n") < 500:
            out += s.recv(1 << 16)
        replies = [json.loads(line) for line in out.splitlines()]
        assert [r["id"] for r in replies] == list(range(500))
        served = [r for r in replies if "result" in r]
        refused = [r for r in replies if r.get("code") == "too_many_requests"]
        assert len(served) >= 400 and refused and len(served) + len(refused) == 500
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(b"".join(b'{"id":%d,"method":"ping"}\n' % i for i in range(1000)))
        until(lambda: "requests in a row past its rate" in proc.err(), "the cut-off")
        with contextlib.suppress(ConnectionResetError):  # replies may be lost to a reset
            while s.recv(1 << 16):
                pass
    assert asyncio.run(call(state, "ping"))["pid"] == proc.pid


def test_connections_are_capped(daemon) -> None:
    proc, cfg, state, env = daemon
    held: list[socket.socket] = []
    try:
        for _ in range(64):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(30)
            s.connect(str(socket_path(state)))
            s.sendall(b'{"id":1,"method":"ping"}\n')
            assert json.loads(s.recv(4096))["id"] == 1  # served: it counts
            held.append(s)
        with socket.socket(socket.AF_UNIX) as extra:
            extra.settimeout(30)
            extra.connect(str(socket_path(state)))
            (refusal,) = lines_until_closed(extra)
        assert refusal["code"] == "too_many_clients"
        held.pop().close()
        until(lambda: _pings(state), "a connection to be served again")
    finally:
        for s in held:
            s.close()
    assert proc.poll() is None


def _pings(state) -> bool:
    try:
        return bool(asyncio.run(call(state, "ping")))
    except Exception:  # noqa: BLE001 - refused still: tried again
        return False
