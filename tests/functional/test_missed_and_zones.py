"""`fleetdeck runs --missed` (what the misfire policy did with each occurrence of a
downtime) and the ZONE column of `fleetdeck jobs`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import time
from pathlib import Path

import pytest

from core.api import Actor
from core.jobs.runs import Run
from core.store import Store
from tests.conftest import FLEETDECK, cli_env, job, make_config

CONFIG = """
[jobs.m]
command = "true"
schedule = "every 1m"
misfire = "run_once"

[jobs.berlin]
command = "true"
schedule = "0 3 * * *"
timezone = "Europe/Berlin"

[jobs.manual]
command = "true"
"""


def fd(tmp_path: Path, state_dir: Path, *args: str,
       tz: str | None = None) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    env = cli_env(tmp_path)
    if tz is not None:
        env["TZ"] = tz
    return subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state_dir),
                           *args], capture_output=True, text=True, timeout=60, env=env)


async def test_missed_runs_after_downtime(start_engine, state_dir, tmp_path):
    # down for five minutes, a job every minute, grace 1 s, misfire=run_once: the latest
    # occurrence runs late, the four before it are skipped
    if time.time() % 60 < 2:  # keep clear of the grace period of the current minute
        await asyncio.sleep(2.1 - time.time() % 60)
    # the engine's clock stands still here: a real minute boundary during the test (its
    # own on-time occurrence, or one more missed) cannot change what it finds
    now = time.time()
    last = (now // 60) * 60 - 300
    store = Store.open(state_dir)
    store.update_job_state("m", first_seen=last, last_occurrence=last)
    long_ago = time.time() - 3 * 3600  # an older downtime's skip, for --since
    store.add_run(Run(id=store.next_run_id(), job="m", host="local", command="true",
                      trigger="misfire", occurrence=long_ago, state="skipped",
                      reason="missed while fleetdeck was down or busy (misfire=skip)",
                      queued_at=long_ago + 5, finished_at=long_ago + 5))
    store.commit()
    store.close()
    config = make_config(job("m", "true", schedule="every 1m", misfire="run_once",
                             misfire_grace=1, overlap="allow"))
    engine, rec = await start_engine(config, clock=lambda: now)
    await rec.wait_for(lambda e: e.kind == "run_queued" and e.run["trigger"] == "misfire")
    for r in [e.run for e in rec.of("run_queued")]:
        await engine.wait_run(r["id"])
    manual = await engine.run_job("m", actor=Actor.local("cli"))  # not a missed one
    await engine.wait_run(manual[0]["id"])
    await engine.stop()

    proc = fd(tmp_path, state_dir, "runs", "--missed", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["what"], r["occurrence"], r["policy"]) for r in rows] == [
        ("ran late", last + 300, None),
        *[("skipped", last + 60 * k, "run_once") for k in (4, 3, 2, 1)],
        ("skipped", long_ago, "skip"),
    ]
    assert rows[0]["state"] == "succeeded" and manual[0]["id"] not in [r["run"] for r in rows]
    assert all(r["job"] == "m" and r["host"] == "local" for r in rows)

    recent = json.loads(fd(tmp_path, state_dir, "runs", "--missed", "--since", "1h",
                           "--json").stdout)
    assert [r["run"] for r in recent] == [r["run"] for r in rows[:-1]]
    # --since for every run: the six queued in the last hour (four skips, one late, one by
    # hand), not the old skip queued 3 h ago
    since = json.loads(fd(tmp_path, state_dir, "runs", "--since", "1h", "--json").stdout)
    assert len(since) == 6 and rows[-1]["run"] not in [r["id"] for r in since]
    assert len(json.loads(fd(tmp_path, state_dir, "runs", "--missed", "--limit", "2",
                             "--json").stdout)) == 2

    table = fd(tmp_path, state_dir, "runs", "--missed", tz="UTC")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["JOB", "OCCURRENCE", "WHAT", "RUN"]
    first = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(last + 300))
    assert first in lines[1] and "ran late" in lines[1] and f"#{rows[0]['run']}" in lines[1]
    assert "skipped (misfire=run_once)" in lines[2]
    # a job's other runs, and a bad --since
    none = fd(tmp_path, state_dir, "runs", "--missed", "--job", "berlin")
    assert none.returncode == 0 and none.stdout.strip() == "no missed occurrences"
    bad = fd(tmp_path, state_dir, "runs", "--missed", "--since", "lately")
    assert bad.returncode == 2 and "--since" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_jobs_show_each_jobs_zone(tmp_path):
    state_dir = tmp_path / "state"
    proc = fd(tmp_path, state_dir, "jobs", tz="Asia/Tokyo")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["JOB", "SCHEDULE", "ZONE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "Asia/Tokyo" in rows["m"]  # no timezone: the host's
    assert rows["berlin"].split()[1:6] == ["daily", "at", "03:00", "Europe/Berlin", "in"]
    assert "Tokyo" not in rows["manual"] and "Berlin" not in rows["manual"]
    listed = json.loads(fd(tmp_path, state_dir, "jobs", "--json", tz="Asia/Tokyo").stdout)
    assert {j["name"]: j["timezone"] for j in listed} == {
        "m": "Asia/Tokyo", "berlin": "Europe/Berlin", "manual": None}


@pytest.mark.parametrize("change", ["schedule", "enabled"])
async def test_a_reload_that_reschedules_a_job_makes_no_misfires(start_engine, state_dir,
                                                                  change):
    """A new schedule, or a job enabled again, starts from the reload (a crontab edit, a
    Quartz reschedule): the five minutes before it, under the old schedule or disabled,
    are no downtime, and nothing of them is skipped or run late."""
    last = time.time() - 300
    store = Store.open(state_dir)
    store.update_job_state("m", first_seen=last, last_occurrence=last)
    store.commit()
    store.close()
    new = job("m", "true", schedule="every 1m", misfire="run_once", misfire_grace=1)
    old = (dataclasses.replace(new, schedule="0 0 1 1 *") if change == "schedule"
           else dataclasses.replace(new, enabled=False))
    engine, rec = await start_engine(make_config(old))
    reloaded = time.time()
    summary = engine.apply_config(make_config(new))
    assert summary["changed"] == ["m"]
    await asyncio.sleep(0.5)  # the scheduler's turn: a misfire would be queued by now
    # the new schedule's own minute may fall in the half second (it is anchored to the
    # epoch): that run is on time; nothing before the reload is run, late or skipped
    runs = engine.list_runs(job="m")
    assert [r for r in runs if r["trigger"] != "schedule"
            or r["occurrence"] < reloaded - 0.001] == []
    assert len(runs) <= 1 and len(rec.of("run_queued")) == len(runs)
    assert engine.get_job("m")["next_fire"] > reloaded - 1
