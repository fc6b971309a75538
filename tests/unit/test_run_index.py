"""The run index against the plain answer: every filtered listing and count equals a
scan of every run on record, through crashes, reopenings, retention and bad files."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest

from core.jobs.runs import Run
from core.store import Store

JOBS = ["backup", "rotate", "rare", "sync"]
HOSTS = ["local", "web01", "web02"]
TRIGGERS = ["schedule", "manual", "misfire"]
FINAL = ["succeeded", "failed", "timed_out", "interrupted", "skipped", "cancelled"]


def fill(store: Store, rng: random.Random, n: int, *, t0: float = 1000.0,
         active_share: float = 0.05) -> None:
    for _ in range(n):
        run_id = store.next_run_id()
        job = "rare" if rng.random() < 0.02 else rng.choice(JOBS[:2] + JOBS[3:])
        state = "queued" if rng.random() < active_share else rng.choice(FINAL)
        store.add_run(Run(id=run_id, job=job, host=rng.choice(HOSTS), command="true",
                          trigger=rng.choice(TRIGGERS), state=state,
                          occurrence=t0 + run_id, queued_at=t0 + run_id))


def everything(store: Store) -> list[dict[str, Any]]:
    """Every run on record, newest first, read one by one (no index)."""
    out = []
    for k in reversed(store.segments()):
        first = k * store.segment_size
        for run_id in range(first + store.segment_size - 1, first - 1, -1):
            doc = store.get_run_record(run_id)
            if doc is not None:
                out.append(doc)
    return out


def plain(runs: list[dict[str, Any]], *, job: str | None = None,
          states: list[str] | None = None, host: str | None = None,
          triggers: list[str] | None = None, since: float | None = None) -> list[int]:
    return [r["id"] for r in runs
            if (job is None or r["job"] == job) and (states is None or r["state"] in states)
            and (host is None or r["host"] == host)
            and (triggers is None or r["trigger"] in triggers)
            and (since is None or r["queued_at"] >= since)]


def random_filters(rng: random.Random, t_max: float) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if rng.random() < 0.5:
        f["job"] = rng.choice([*JOBS, "nobody"])
    if rng.random() < 0.5:
        f["states"] = rng.sample(["queued", "running", *FINAL], rng.randint(1, 3))
    if rng.random() < 0.3:
        f["host"] = rng.choice([*HOSTS, "nowhere"])
    if rng.random() < 0.3:
        f["triggers"] = rng.sample(TRIGGERS, rng.randint(1, 2))
    if rng.random() < 0.5:
        f["since"] = rng.uniform(900.0, t_max)
    return f


def check_all(store: Store, rng: random.Random, rounds: int = 150) -> None:
    runs = everything(store)
    t_max = max((r["queued_at"] for r in runs), default=1000.0) + 10
    for _ in range(rounds):
        f = random_filters(rng, t_max)
        want = plain(runs, **f)
        limit = rng.choice([None, 1, 5, 20])
        got = [r["id"] for r in store.find_runs(limit=limit, **f)]
        assert got == want[:limit] if limit else got == want, f
        assert store.count_runs(**f) == len(want), f


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_listings_and_counts_match_a_plain_scan(state: Path) -> None:
    rng = random.Random(1)
    with Store.open(state, segment_size=7, index_chunk=2) as s:
        fill(s, rng, 600)
        # some queued runs start and finish later, out of id order
        queued = [r["id"] for r in s.find_runs(states=["queued"], limit=None)]
        for run_id in rng.sample(queued, len(queued) // 2):
            run = s.get_run(run_id)
            assert run is not None
            run.state = "running"
            s.save_run(run)
            run.state = rng.choice(FINAL)
            s.save_run(run)
        check_all(s, rng)
    with Store.open(state, segment_size=7, index_chunk=2) as s:  # from the chunks
        assert list((state / "runs").glob("index-*.bin"))
        check_all(s, rng)
        fill(s, rng, 50, t0=5000.0)
        check_all(s, rng)


def test_reopen_reads_only_the_segments_the_chunks_do_not_cover(state: Path) -> None:
    rng = random.Random(2)
    with Store.open(state, segment_size=10, index_chunk=5) as s:
        fill(s, rng, 1000, active_share=0.0)
    s = Store.open(state, segment_size=10, index_chunk=5)
    try:
        # 100 segments; chunks hold 0..94 (the head, 99, seals nothing past 95)
        assert s.segment_reads <= 6
        assert s.count_runs(job="rare") == len(plain(everything(s), job="rare"))
    finally:
        s.close()


def test_a_crash_before_a_chunk_is_written_loses_nothing(state: Path) -> None:
    rng = random.Random(3)
    with Store.open(state, segment_size=5, index_chunk=2) as s:
        fill(s, rng, 200)
    chunks = sorted((state / "runs").glob("index-*.bin"))
    chunks[len(chunks) // 2].unlink()  # a later one joins up no more: read instead
    chunks[-1].write_bytes(b"garbage")
    with Store.open(state, segment_size=5, index_chunk=2) as s:
        check_all(s, rng)


def test_unreadable_chunk_is_named_and_its_runs_read(state: Path, caplog) -> None:
    rng = random.Random(4)
    with Store.open(state, segment_size=5, index_chunk=2) as s:
        fill(s, rng, 100)
    first = sorted((state / "runs").glob("index-*.bin"))[0]
    first.write_bytes(first.read_bytes()[:-3])  # cut short
    with caplog.at_level(logging.WARNING), Store.open(state, segment_size=5,
                                                      index_chunk=2) as s:
        check_all(s, rng, rounds=40)
    assert any("unreadable run index chunk" in r.getMessage() and first.name in
               r.getMessage() for r in caplog.records)


def test_retention_holes_and_prefix(state: Path) -> None:
    rng = random.Random(5)
    with Store.open(state, segment_size=5, index_chunk=2, retention=60) as s:
        fill(s, rng, 30, active_share=0.0)
        keep = s.next_run_id()  # an old run that stays active keeps its segment
        s.add_run(Run(id=keep, job="backup", host="local", command="true",
                      state="running", queued_at=1000.0 + keep))
        fill(s, rng, 300, t0=2000.0, active_share=0.0)
        assert s.get_run(keep) is not None and s.get_run(1) is None
        check_all(s, rng)
        # the count of failures since the start sees no pruned run
        assert s.count_runs(states=["failed"], since=0.0) == \
            len(plain(everything(s), states=["failed"]))
    with Store.open(state, segment_size=5, index_chunk=2, retention=60) as s:
        check_all(s, rng)


def test_latest_occurrence_and_memory_per_run(state: Path) -> None:
    rng = random.Random(6)
    with Store.open(state, retention=10**9) as s:
        fill(s, rng, 20_000, active_share=0.0)
        runs = everything(s)
        for job in JOBS:
            occ = [r["occurrence"] for r in runs if r["job"] == job]
            assert s.latest_occurrence(job) == (max(occ) if occ else None)
        index = s._history.index
        assert index.memory() / 20_000 < 64  # bytes a run: columns and posting lists


def test_a_view_reopened_from_the_previous_one_reads_only_what_changed(state: Path) -> None:
    rng = random.Random(7)
    writer = Store.open(state, segment_size=5, index_chunk=2, retention=400)
    try:
        fill(writer, rng, 300)
        writer.commit()
        view = Store.open(state, read_only=True)
        for round_ in range(4):
            for run in writer.active_runs()[: rng.randint(0, 5)]:  # some queued ones end
                run.state = rng.choice(FINAL)
                writer.save_run(run)
            fill(writer, rng, rng.randint(1, 120), t0=3000.0 + 1000 * round_)
            writer.commit()
            fresh = Store.open(state, read_only=True)
            # what changed: segments past the view's last known run, and those holding
            # the runs it saw queued; nothing else is read again
            changed = set(range(view.count_runs() and view.find_runs(limit=1)[0]["id"] // 5,
                                writer.find_runs(limit=1)[0]["id"] // 5 + 1))
            changed |= {r.id // 5 for r in view.active_runs()}
            view = Store.open(state, read_only=True, previous=view)
            assert view.segment_reads <= len(changed) + 1 < len(view.segments())
            check_all(view, rng, rounds=60)
            assert [r.id for r in view.active_runs()] == [r.id for r in fresh.active_runs()]
    finally:
        writer.close()
