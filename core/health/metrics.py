"""Host metrics: CPU, load, memory, swap, each mount's space and inodes, network rates,
process count. Locally from psutil; on a remote host from /proc and df, read over the
pooled SSH connection in one round trip (no agent to install).

CPU and network are rates: computed against the previous sample of the same host
(``Rates``); the remote command also reads /proc/stat twice, 0.2 s apart, so even a
first sample has a CPU figure.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

# the one command a remote metrics sample runs; sections split by lines of "@@"
REMOTE_COMMAND = (
    "LC_ALL=C; export LC_ALL; head -1 /proc/stat; sleep 0.2; head -1 /proc/stat; "
    "echo @@; cat /proc/loadavg; echo @@; cat /proc/meminfo; echo @@; cat /proc/net/dev; "
    "echo @@; getconf _NPROCESSORS_ONLN 2>/dev/null || nproc; echo @@; df -P -k; "
    "echo @@; df -P -i"
)
_PSEUDO_FS = {"tmpfs", "devtmpfs", "proc", "sysfs", "overlay", "squashfs", "devpts", "cgroup",
              "cgroup2", "mqueue", "debugfs", "tracefs", "securityfs", "pstore", "bpf",
              "autofs", "fusectl", "configfs", "hugetlbfs", "nsfs", "ramfs", "efivarfs"}


class MetricsError(ValueError):
    """A sample that could not be read or parsed: the check fails, it is not 'no news'."""


@dataclass
class HostMetrics:
    cpu: float | None  # percent busy since the previous reading
    load1: float
    load5: float
    load15: float
    cores: int
    memory: float  # percent used (total - available)
    swap: float  # percent used; 0 without swap
    disks: dict[str, dict[str, float]] = field(default_factory=dict)  # mount -> disk/inodes %
    rx: float | None = None  # network bytes per second in, over all non-loopback links
    tx: float | None = None
    procs: int = 0

    @property
    def load(self) -> float:
        """1-minute load per core."""
        return self.load1 / max(1, self.cores)

    @property
    def disk(self) -> float:
        return max((d["disk"] for d in self.disks.values()), default=0.0)

    @property
    def inodes(self) -> float:
        return max((d.get("inodes", 0.0) for d in self.disks.values()), default=0.0)

    def value(self, metric: str) -> float | None:
        return {"cpu": self.cpu, "memory": self.memory, "swap": self.swap, "disk": self.disk,
                "inodes": self.inodes, "load": self.load}.get(metric)

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "load1": self.load1, "load5": self.load5,
                "load15": self.load15, "cores": self.cores, "memory": self.memory,
                "swap": self.swap, "disk": self.disk, "inodes": self.inodes,
                "disks": self.disks, "rx": self.rx, "tx": self.tx, "procs": self.procs}


@dataclass
class Rates:
    """What a rate needs from the previous sample of one host."""

    net: tuple[float, int, int] | None = None  # (time, rx bytes, tx bytes)
    cpu: Any = None  # psutil's cpu_times of the previous local sample

    def net_rates(self, now: float, rx: int, tx: int) -> tuple[float | None, float | None]:
        prev, self.net = self.net, (now, rx, tx)
        if prev is None or now <= prev[0] or rx < prev[1] or tx < prev[2]:
            return None, None
        dt = now - prev[0]
        return (rx - prev[1]) / dt, (tx - prev[2]) / dt


# --------------------------------------------------------------------------- local ---
def local_metrics(rates: Rates) -> HostMetrics:
    """This machine, from psutil (call in a worker thread: a hung mount blocks)."""
    import psutil

    times = psutil.cpu_times()
    cpu = _cpu_percent(rates.cpu, times) if rates.cpu is not None else \
        psutil.cpu_percent(interval=0.2)
    rates.cpu = times
    load1, load5, load15 = os.getloadavg()
    vm = psutil.virtual_memory()
    sw = psutil.swap_memory()
    disks: dict[str, dict[str, float]] = {}
    for part in psutil.disk_partitions(all=False):
        if part.fstype in _PSEUDO_FS or part.mountpoint in disks:
            continue
        try:
            usage = psutil.disk_usage(part.mountpoint)
            st = os.statvfs(part.mountpoint)
        except OSError:
            continue
        inodes = 100.0 * (st.f_files - st.f_ffree) / st.f_files if st.f_files else 0.0
        disks[part.mountpoint] = {"disk": round(usage.percent, 1), "inodes": round(inodes, 1)}
    net = psutil.net_io_counters(pernic=True)
    rx = sum(n.bytes_recv for name, n in net.items() if name != "lo")
    tx = sum(n.bytes_sent for name, n in net.items() if name != "lo")
    r, t = rates.net_rates(time.time(), rx, tx)
    return HostMetrics(cpu=round(cpu, 1), load1=load1, load5=load5, load15=load15,
                       cores=psutil.cpu_count() or 1, memory=round(vm.percent, 1),
                       swap=round(sw.percent, 1), disks=disks, rx=r, tx=t,
                       procs=len(psutil.pids()))


def _cpu_percent(before: Any, after: Any) -> float:
    busy = lambda t: sum(t) - t.idle - getattr(t, "iowait", 0.0)  # noqa: E731
    total = sum(after) - sum(before)
    return max(0.0, min(100.0, 100.0 * (busy(after) - busy(before)) / total)) if total > 0 \
        else 0.0


# -------------------------------------------------------------------------- remote ---
def parse_remote(text: str, rates: Rates, now: float) -> HostMetrics:
    """The output of REMOTE_COMMAND as metrics; MetricsError names what is missing."""
    parts = [p.strip("\n") for p in text.split("\n@@\n")]
    if len(parts) != 7:
        raise MetricsError(f"metrics output has {len(parts)} sections, expected 7 "
                           "(is /proc readable and df installed?)")
    stat, loadavg, meminfo, netdev, nproc, df_k, df_i = parts
    try:
        cpu = _stat_cpu(stat)
        fields = loadavg.split()
        load1, load5, load15 = float(fields[0]), float(fields[1]), float(fields[2])
        procs = int(fields[3].split("/")[1]) if "/" in fields[3] else 0
        mem = _meminfo(meminfo)
        total = mem["MemTotal"]
        avail = mem.get("MemAvailable", mem.get("MemFree", 0) + mem.get("Cached", 0))
        memory = 100.0 * (total - avail) / total if total else 0.0
        stot = mem.get("SwapTotal", 0)
        swap = 100.0 * (stot - mem.get("SwapFree", 0)) / stot if stot else 0.0
        rx, tx = _netdev(netdev)
        cores = int(nproc.split()[0])
    except (IndexError, ValueError, KeyError, ZeroDivisionError) as e:
        raise MetricsError(f"cannot read metrics: {_missing(e)}") from None
    disks = _df(df_k, "disk")
    for mount, pct in _df(df_i, "inodes").items():
        disks.setdefault(mount, {"disk": 0.0}).update(pct)
    r, t = rates.net_rates(now, rx, tx)
    return HostMetrics(cpu=cpu, load1=load1, load5=load5, load15=load15, cores=cores,
                       memory=round(memory, 1), swap=round(swap, 1), disks=disks, rx=r, tx=t,
                       procs=procs)


def _missing(e: Exception) -> str:
    """What was wrong with the output, in words (never the exception's class)."""
    if isinstance(e, KeyError):
        return f"/proc/meminfo lacks {e.args[0]}"
    if isinstance(e, IndexError):
        return "a section is shorter than expected"
    if isinstance(e, ZeroDivisionError):
        return "a total of zero"
    return str(e) or "unexpected text"


def _stat_cpu(stat: str) -> float:
    lines = [ln for ln in stat.splitlines() if ln.startswith("cpu ")]
    if len(lines) != 2:
        raise ValueError("two cpu lines of /proc/stat expected")
    a, b = ([int(x) for x in ln.split()[1:]] for ln in lines)
    idle = lambda v: v[3] + (v[4] if len(v) > 4 else 0)  # noqa: E731 - idle + iowait
    total = sum(b) - sum(a)
    if total <= 0:
        return 0.0
    return round(max(0.0, min(100.0, 100.0 * (total - (idle(b) - idle(a))) / total)), 1)


def _meminfo(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if rest:
            out[key.strip()] = int(rest.split()[0])
    return out


def _netdev(text: str) -> tuple[int, int]:
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        if not rest or name.strip() == "lo":
            continue
        v = rest.split()
        rx += int(v[0])
        tx += int(v[8])
    return rx, tx


def _df(text: str, key: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines()[1:]:
        v = line.split()
        if len(v) < 6 or not v[4].endswith("%"):
            continue
        fs, mount = v[0], " ".join(v[5:])
        if fs in _PSEUDO_FS or fs in ("none", "udev", "shm"):
            continue
        try:
            out[mount] = {key: float(v[4].rstrip("%"))}
        except ValueError:
            continue  # "-" for file systems without inodes
    return out
