"""The checks of the crash storm (tests/storm.py): what the daemons printed against the
history they left, the state files, the processes still alive.

Plain functions over plain data, so each can be shown to fail on a hand-made
discrepancy (tests/functional/test_crash_storm.py) as well as run on a real storm.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from core.jobs.runs import Run
from core.store.store import Store

FINISHED = frozenset(("succeeded", "failed", "timed_out", "skipped", "cancelled",
                      "interrupted"))
STATES = FINISHED | {"queued", "running"}
CHECKS = {
    "a": "a run printed finished is in history with that state and job",
    "b": "no run id printed for two runs (ids never reused)",
    "c": "no (job, occurrence) recorded twice",
    "d": "no run process outlives the engines (orphans)",
    "e": "every state file loads",
}
TOKEN_VAR, ROUND_VAR = "STORM_TOKEN", "STORM_ROUND"  # in every daemon's (and run's) env

_LINE = re.compile(r"#(\d+) +([^\s@]+)@(\S+) ([a-z_]+)(?: |$)")


@dataclass(frozen=True)
class Printed:
    """One run line a daemon printed (`run_line`)."""

    round: int
    run_id: int
    job: str
    state: str
    text: str


def parse_run_line(text: str, round_no: int) -> Printed | None:
    """The run in a line of `fleetdeck daemon`'s stdout, or None (other lines)."""
    m = _LINE.search(text)
    if m is None or m.group(4) not in STATES:
        return None
    return Printed(round_no, int(m.group(1)), m.group(2), m.group(4), text.strip())


# ------------------------------------------------------------------------ processes ---
def proc_env(pid: int) -> dict[str, str]:
    """A process's environment ({} when it cannot be read, or for a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, pgid) of a process, None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[2])


@dataclass(frozen=True)
class RunProcess:
    """A live (not zombie) process of one of the storm's runs."""

    pid: int
    pgid: int
    round: int
    run_id: int
    job: str
    command: str

    def describe(self) -> str:
        return (f"pid {self.pid} (group {self.pgid}, {self.command!r}) of run #{self.run_id} "
                f"{self.job}, started by the round-{self.round} daemon")


def run_processes(token: str) -> list[RunProcess]:
    """The storm's run processes still alive: its token in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        env = proc_env(pid)
        if env.get(TOKEN_VAR) != token or "FLEETDECK_RUN_ID" not in env:
            continue  # not ours, or a daemon itself
        stat = proc_stat(pid)
        if stat is None or stat[0] in "ZX":
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            cmd = "?"
        found.append(RunProcess(pid, stat[1], int(env.get(ROUND_VAR, "0")),
                                int(env["FLEETDECK_RUN_ID"]), env.get("FLEETDECK_JOB", "?"),
                                cmd))
    return found


# ---------------------------------------------------------------------------- state ---
def read_history(state_dir: Path) -> list[Run]:
    """Every run on record, newest first, as the read-only Store (a viewer) reads it."""
    store = Store.open(state_dir, read_only=True)
    try:
        return store.list_runs(limit=None)
    finally:
        store.close()


def state_files(state_dir: Path) -> list[str]:
    """Why state files would not load: JSON that does not parse, files an engine had to
    move aside as unreadable (``*.corrupt-*``)."""
    problems = []
    if not state_dir.exists():
        return problems
    for path in sorted(state_dir.rglob("*.json")):
        try:
            json.loads(path.read_bytes())
        except (OSError, ValueError) as e:
            size = path.stat().st_size if path.exists() else -1
            problems.append(f"{path.relative_to(state_dir)} ({size} bytes) does not parse: {e}")
    problems += [f"{p.relative_to(state_dir)}: an engine found it unreadable and moved it aside"
                 for p in sorted(state_dir.rglob("*.corrupt-*"))]
    return problems


# ------------------------------------------------------------ the checks themselves ---
def check_finished_saved(printed: list[Printed], history: list[Run],
                         after_kill: dict[tuple[int, int], str] | None = None) -> list[str]:
    """(a) A run printed in a final state is in history in that state, for that job.

    Only final states count: a run printed `queued` or `running` may rightly end up
    `interrupted`. `interrupted` is printed only by a graceful stop, and must be saved so.
    """
    runs = {run.id: run for run in history}
    after_kill = after_kill or {}
    out = []
    for p in printed:
        if p.state not in FINISHED:
            continue
        run = runs.get(p.run_id)
        if run is not None and run.state == p.state and run.job == p.job:
            continue
        saved = "missing from history" if run is None else (
            f"saved as {run.job} {run.state}" + (f" ({run.reason})" if run.reason else ""))
        disk = after_kill.get((p.round, p.run_id))
        when = f"; on disk right after the kill: {disk}" if disk else ""
        out.append(f"#{p.run_id} printed {p.job} {p.state} in round {p.round}, "
                   f"{saved}{when} [{p.text}]")
    return out


def check_ids_unique(printed: list[Printed], history: list[Run]) -> list[str]:
    """(b) A run id names one run: printed by one daemon only, for one job, and the
    history holds it for that job."""
    by_id: dict[int, list[Printed]] = defaultdict(list)
    for p in printed:
        by_id[p.run_id].append(p)
    runs = {run.id: run for run in history}
    out = []
    for run_id, lines in sorted(by_id.items()):
        rounds = sorted({p.round for p in lines})
        jobs = sorted({p.job for p in lines})
        run = runs.get(run_id)
        if len(rounds) > 1 or len(jobs) > 1:
            shown = "; ".join(f"round {p.round}: {p.job} {p.state}" for p in lines)
            out.append(f"#{run_id} printed for {len(rounds)} daemons / {len(jobs)} jobs: {shown}")
        elif run is not None and run.job != jobs[0]:
            out.append(f"#{run_id} printed for {jobs[0]} in round {rounds[0]}, but history "
                       f"holds #{run_id} as a run of {run.job} ({run.state})")
    return out


def check_occurrences_once(history: list[Run], round_of: dict[int, int] | None = None,
                           ) -> list[str]:
    """(c) A scheduled occurrence of a job is recorded once (run, misfire run or skip)."""
    round_of = round_of or {}
    seen: dict[tuple[str, float], list[Run]] = defaultdict(list)
    for run in history:
        if run.occurrence is not None and run.trigger in ("schedule", "misfire"):
            seen[(run.job, round(run.occurrence, 3))].append(run)
    out = []
    for (job, occ), runs in sorted(seen.items()):
        if len(runs) < 2:
            continue
        when = time.strftime("%H:%M:%S", time.localtime(occ))
        shown = "; ".join(
            f"#{r.id} {r.trigger} {r.state} (round {round_of.get(r.engine_pid or 0, '?')})"
            for r in sorted(runs, key=lambda r: r.id))
        out.append(f"{job} occurrence {when} ({occ:.3f}) recorded {len(runs)} times: {shown}")
    return out


def group_alive(pgid: int, run_id: int, token: str) -> list[int]:
    """Live (not zombie) processes of process group ``pgid`` that run ``run_id``.

    os.killpg(pgid, 0) alone also answers for a group of zombies nobody reaped yet and
    for a stranger reusing the number: /proc tells those apart.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    return [p.pid for p in run_processes(token) if p.pgid == pgid and p.run_id == run_id]


def check_no_orphans(history: list[Run], token: str,
                     survivors: dict[int, str] | None = None) -> list[str]:
    """(d) After the final graceful stop no run's process group is alive, nor any run
    process at all; and none outlived an engine's recovery (the storm's own notes)."""
    out = []
    reported: set[int] = set()
    for run in history:
        if run.pgid is None:
            continue
        pids = group_alive(run.pgid, run.id, token)
        if pids:
            reported.update(pids)
            out.append(f"run #{run.id} {run.job} ({run.state}): its process group "
                       f"{run.pgid} is alive after the final stop (pids {pids})")
    for p in run_processes(token):
        if p.pid not in reported:
            reported.add(p.pid)
            out.append(f"{p.describe()} is alive after the final stop")
    out += [text for pid, text in sorted((survivors or {}).items()) if pid not in reported]
    return out
