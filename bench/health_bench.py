"""Health sampling of a fleet: N hosts (default 200) over SSH, every 10 s.

The hosts are N asyncssh servers on loopback in a child process, each answering the
metrics command with a canned /proc and df reading of its own (a stand-in for N real
machines: spawning N shell pipelines per tick on the same two cores would measure this
machine, not the sampler). The process under test runs what the console runs: an
Engine with the HealthMonitor and a `metrics` check on every host (host keys verified,
one pooled connection per host). Over --ticks ticks it records, per tick, the lag from
the tick to the last host's sample, and its own CPU use.

Goal: the whole fleet sampled within 2 s of each tick on this 2-core machine.
Run: .venv/bin/python bench/health_bench.py [--hosts 200] [--ticks 4] [--interval 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def canned(i: int) -> str:
    busy = 100 + 37 * i % 400
    return (f"cpu  {1000 + busy} 0 500 8000 100 0 0 0 0 0\n"
            f"cpu  {1000 + 2 * busy} 0 520 8100 100 0 0 0 0 0\n@@\n"
            f"0.{i % 90:02d} 0.40 0.30 2/{200 + i} 999\n@@\n"
            "MemTotal:  8000000 kB\nMemFree:  1000000 kB\n"
            f"MemAvailable:  {2000000 + 1000 * i} kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n@@\n"
            "Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n"
            f"  eth0: {1000 * i} 10 0 0 0 0 0 0 {2000 * i} 20 0 0 0 0 0 0\n@@\n4\n@@\n"
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
            f"/dev/sda1 1000000 {400000 + i * 1000} 500000 {40 + i % 50}% /\n@@\n"
            "Filesystem Inodes IUsed IFree IUse% Mounted on\n"
            "/dev/sda1 1000 300 700 30% /\n")


# --------------------------------------------------------------- the fleet (child) ---
async def serve(n: int, folder: Path) -> None:
    import asyncssh

    class Session(asyncssh.SSHServerSession):  # type: ignore[type-arg]
        def __init__(self, i: int) -> None:
            self.i = i
            self.chan = None

        def connection_made(self, chan) -> None:  # type: ignore[no-untyped-def]
            self.chan = chan

        def exec_requested(self, command: str) -> bool:
            return True

        def session_started(self) -> None:
            self.chan.write(canned(self.i))
            self.chan.exit(0)

    class Server(asyncssh.SSHServer):
        def __init__(self, i: int) -> None:
            self.i = i

        def begin_auth(self, username: str) -> bool:
            return True

        def public_key_auth_supported(self) -> bool:
            return True

        def session_requested(self):  # type: ignore[no-untyped-def]
            return Session(self.i)

    key = asyncssh.read_private_key(str(folder / "host_key"))
    ports = []
    servers = []
    for i in range(n):
        srv = await asyncssh.create_server(
            lambda i=i: Server(i), "127.0.0.1", 0, server_host_keys=[key],
            authorized_client_keys=str(folder / "authorized_keys"), keepalive_interval=0)
        servers.append(srv)
        ports.append(srv.sockets[0].getsockname()[1])
    print(" ".join(map(str, ports)), flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: done.set() if not os.read(
        sys.stdin.fileno(), 4096) else None)
    await done.wait()


# --------------------------------------------------------------- the sampler (here) ---
async def measure(ports: list[int], folder: Path, ticks: int, interval: float) -> None:
    import logging

    from core.events import HealthSample
    from core.fleetconfig import Config
    from core.health.config import CheckSpec
    from core.health.monitor import HealthMonitor
    from core.jobs.config import EngineSettings
    from core.jobs.engine import Engine
    from core.remote.config import Host
    from core.remote.knownhosts import KnownHosts
    from core.remote.runs import set_engine_pool
    from core.remote.ssh import SSHPool

    logging.getLogger("fleetdeck").setLevel(logging.ERROR)  # state changes are expected
    user = "bench"
    hosts = {"local": Host("local")}
    for i, port in enumerate(ports):
        hosts[f"h{i:03d}"] = Host(f"h{i:03d}", address="127.0.0.1", port=port, user=user,
                                  groups=("fleet",), explicit=("address", "port", "user"))
    spec = CheckSpec("system", "metrics", targets="@fleet", interval=interval, timeout=8.0,
                     thresholds={"cpu": (90.0, 98.0), "disk": (85.0, 95.0)})
    cfg = Config(path=None, hosts=hosts, jobs={}, engine=EngineSettings(),
                 checks={"system": spec})
    engine = Engine(cfg, folder / "state")
    pool = SSHPool(known_hosts=KnownHosts(folder / "known_hosts", system_files=[]),
                   ssh_config=None, client_keys=[str(folder / "client_key")], agent_path=None)
    set_engine_pool(engine, pool)
    mon = HealthMonitor()
    engine._health = mon  # noqa: SLF001
    engine.add_service(mon)
    done_at: dict[float, list[float]] = {}

    def on_event(ev: object) -> None:
        if isinstance(ev, HealthSample):
            tick = (ev.at // interval) * interval
            done_at.setdefault(tick, []).append(ev.at - tick)

    engine.bus.subscribe(on_event)
    await engine.start(scheduling=False)
    start = time.time()
    first_tick = (start // interval + 1) * interval
    await asyncio.sleep(first_tick - time.time() + 0.01)  # the first tick opens connections
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.time()
    await asyncio.sleep(ticks * interval)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    wall1 = time.time()
    await engine.stop()
    used = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    n = len(ports)
    print(f"{n} hosts, a metrics sample of each every {interval:g}s, {ticks} measured ticks")
    lags = []
    for tick in sorted(done_at):
        xs = done_at[tick]
        if tick < first_tick:
            continue
        label = "(connecting)" if tick == first_tick else ""
        full = len(xs) >= n
        lag = max(xs)
        if tick != first_tick and full:
            lags.append(lag)
        print(f"  tick +{tick - first_tick:4.0f}s: {len(xs):3d}/{n} sampled, last after "
              f"{lag * 1000:6.0f} ms, median {statistics.median(xs) * 1000:5.0f} ms {label}")
    states = {}
    for st in mon.states.values():
        states[st.state] = states.get(st.state, 0) + 1
    print(f"  states at the end: {states}")
    cpu = 100.0 * used / (wall1 - wall0)
    print(f"\nsampler CPU: {cpu:.1f}% of one core over {wall1 - wall0:.0f}s "
          f"({used:.2f}s CPU)")
    if lags:
        worst = max(lags)
        print(f"lag from tick to the whole fleet sampled: worst {worst * 1000:.0f} ms, "
              f"median {statistics.median(lags) * 1000:.0f} ms (steady ticks)")
        print(f"goal: whole fleet within 2 s of each tick: {'PASS' if worst < 2 else 'MISS'}")
    else:
        print("goal: whole fleet within 2 s of each tick: MISS (no complete tick)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=200)
    p.add_argument("--ticks", type=int, default=4)
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the child's mode
    args = p.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.hosts, args.serve))
        return 0
    import asyncssh

    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-health-bench-"))
    child = None
    try:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        host_key.write_private_key(str(folder / "host_key"))
        client = asyncssh.generate_private_key("ssh-ed25519")
        client.write_private_key(str(folder / "client_key"))
        client.write_public_key(str(folder / "authorized_keys"))
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(folder),
                                  "--hosts", str(args.hosts)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        ports = [int(x) for x in child.stdout.readline().split()]
        pub = host_key.export_public_key("openssh").decode().strip()
        (folder / "known_hosts").write_text("".join(f"[127.0.0.1]:{p} {pub}\n" for p in ports))
        asyncio.run(measure(ports, folder, args.ticks, args.interval))
    finally:
        if child is not None and child.stdin is not None:
            child.stdin.close()
            child.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
