"""Process groups on this machine: how a child leaves ours, when a process started (to
tell pid reuse apart), whether a group is still alive, ending one, and finding the
groups of runs a dead engine left, even those whose start never reached the disk.

Every local run's environment carries ``FLEETDECK_INSTALL`` (the state directory's
install id) and ``FLEETDECK_RUN_ID``, so the next engine can find a run's processes by
reading ``/proc/<pid>/environ`` even when its pid was not recorded. Zombies do not
count as alive: where nothing reaps orphans (a container's pid 1), a dead group would
otherwise look alive forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal

_terminal_gone = False  # once this process has no controlling terminal it never regains one


def _has_terminal() -> bool:
    """Whether this process has a controlling terminal (the console's, say)."""
    global _terminal_gone
    if _terminal_gone:
        return False
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # ENXIO: none; EIO: hung up; ENOENT: no /dev/tty here
        _terminal_gone = True
        return False
    os.close(fd)
    return True


def spawn_group() -> dict[str, int | bool]:
    """``posix_spawn`` arguments for how a child leaves ours: always its own process
    group (a timeout and a cancel signal the whole group); its own session too while we
    have a terminal, so it cannot open it (a prompt of ssh or sudo would land on the
    console's screen).

    Without a terminal (a daemon) the group alone is as safe, and much cheaper on a busy
    machine: a new session is a new scheduler autogroup, placed behind the busy ones, and
    posix_spawn holds the caller until the child runs (with both cores busy, 5-6 ms a
    start against 1.3 ms, the event loop held all the while)."""
    return {"setsid": True} if _has_terminal() else {"setpgroup": 0}


def popen_group() -> dict[str, int | bool]:
    """``spawn_group`` for ``subprocess`` and ``asyncio.create_subprocess_*``."""
    return {"start_new_session": True} if _has_terminal() else {"process_group": 0}


POLL = 0.05

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@functools.cache
def _boot_time() -> float:
    import psutil  # imported when first needed: it costs start-up time

    return psutil.boot_time()


def process_create_time(pid: int) -> float | None:
    """When a process started (psutil's create_time), to tell pid reuse apart.

    On Linux read from /proc/<pid>/stat directly, with psutil's formula: a run start
    costs one small read, not a psutil.Process."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            stat = os.read(fd, 4096)
        finally:
            os.close(fd)
        ticks = int(stat[stat.rindex(b")") + 2:].split()[19])  # field 22, starttime
        return _boot_time() + ticks / _CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        pass
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        fields = data[data.rindex(b")") + 2:].split()
        return fields[0].decode(), int(fields[2])
    except (OSError, ValueError, IndexError):
        return None


def _pids() -> list[int]:
    try:
        return [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return []


def group_has_live_member(pgid: int) -> bool:
    """Is any process of the group alive (not a zombie)?"""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    leader = _stat(pgid)
    if leader is not None and leader[1] == pgid and leader[0] != "Z":
        return True
    for pid in _pids():
        st = _stat(pid)
        if st is not None and st[1] == pgid and st[0] != "Z":
            return True
    return False


def group_alive(pgid: int, leader_started: float | None) -> bool:
    """Is the process group we started still there (and not a stranger reusing the pid)?"""
    if not group_has_live_member(pgid):
        return False
    if leader_started is None:
        return True
    # leader gone but members left: the pgid cannot be reused while the group exists
    return not started_otherwise(pgid, leader_started)


def started_otherwise(pid: int, started: float) -> bool:
    """Does `pid` belong now to a process started at another time than `started` (the
    one we knew ended and its pid was reused)? False when it cannot be told."""
    now = process_create_time(pid)
    return now is not None and abs(now - started) >= 0.05


async def terminate_group(pgid: int, grace: float) -> bool:
    """SIGTERM the group, SIGKILL it after `grace` seconds. True if it had to be killed."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline:
        await asyncio.sleep(POLL)
        if not group_has_live_member(pgid):
            return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    return True


async def terminate_strays(env: dict[str, str] | None, pgid: int, grace: float) -> None:
    """A stopped run's processes that left its process group (`setsid`, a daemon's
    double fork) still carry its FLEETDECK_INSTALL and FLEETDECK_RUN_ID: they are
    stopped too, as the next engine would stop them after a crash. Only for a run that
    was stopped: a run that ended by itself may leave a daemon behind on purpose."""
    install = (env or {}).get("FLEETDECK_INSTALL", "")
    run = (env or {}).get("FLEETDECK_RUN_ID", "")
    if not install or not run.isdigit():
        return
    found = await asyncio.to_thread(find_run_groups, install, {int(run)})
    groups = found.get(int(run), set()) - {pgid}
    if groups:
        await asyncio.gather(*(terminate_group(g, grace) for g in groups))


def find_run_groups(install: str, run_ids: set[int]) -> dict[int, set[int]]:
    """The live process groups of these runs of this install, by run id, found by the
    variables in their processes' environments."""
    if not install or not run_ids:
        return {}
    mark = b"\0FLEETDECK_INSTALL=" + install.encode() + b"\0"
    out: dict[int, set[int]] = {}
    me = os.getpid()
    for pid in _pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = b"\0" + f.read() + b"\0"
        except OSError:
            continue
        if mark not in env:
            continue
        at = env.find(b"\0FLEETDECK_RUN_ID=")
        if at < 0:
            continue
        value = env[at + 18:env.index(b"\0", at + 1)]
        st = _stat(pid)
        if not value.isdigit() or st is None or st[0] == "Z":
            continue
        run_id = int(value)
        if run_id in run_ids:
            out.setdefault(run_id, set()).add(st[1])
    return out
