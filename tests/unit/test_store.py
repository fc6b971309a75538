"""Store: runs in segments, job state, retention, durability, real files throughout."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.jobs.runs import Run, RunState
from core.store import Store, StoreReadOnly


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def opened(state: Path) -> Iterator[list[Store]]:
    stores: list[Store] = []
    yield stores
    for s in stores:
        s.close()


def open_store(state: Path, opened: list[Store], **kw: object) -> Store:
    s = Store.open(state, **kw)  # type: ignore[arg-type]
    opened.append(s)
    return s


def new_run(store: Store, job: str = "backup", state: str = RunState.SUCCEEDED.value,
            queued_at: float | None = None) -> Run:
    run_id = store.next_run_id()
    run = Run(id=run_id, job=job, host="local", command="true", state=state,
              queued_at=1000.0 + run_id if queued_at is None else queued_at)
    store.add_run(run)
    return run


def seg_files(state: Path) -> list[str]:
    return sorted(p.name for p in (state / "runs").glob("runs-*.json"))


# ------------------------------------------------------------------------------ runs ----
def test_add_save_get(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)
    assert s.next_run_id() == 1
    run = Run(id=s.next_run_id(), job="backup", host="web01", command="echo hi")
    s.add_run(run)
    run.state = RunState.RUNNING.value
    run.started_at = 5.0
    run.attempts.append({"number": 1, "started_at": 5.0})
    s.save_run(run)
    got = s.get_run(run.id)
    assert got == run
    assert got is not run
    got.attempts[0]["number"] = 99  # a copy: the stored record does not change
    assert s.get_run(run.id).attempts[0]["number"] == 1  # type: ignore[union-attr]
    assert s.get_run(999) is None
    assert s.get_run(0) is None
    assert s.get_run(-1) is None
    assert s.count_runs() == 1
    with pytest.raises(ValueError):
        s.add_run(run)


def test_a_run_that_cannot_be_stored_fails_at_once(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)
    run = new_run(s)
    run.command = Path("/bin/true")  # type: ignore[assignment]
    with pytest.raises(TypeError, match="field command"):
        s.save_run(run)
    run.command = "true"
    run.attempts.append({"number": 1, "when": object()})
    with pytest.raises(TypeError, match="attempts"):
        s.save_run(run)
    s.commit()  # still commits what was stored
    assert s.get_run(run.id).command == "true"  # type: ignore[union-attr]


def test_stored_documents_are_run_to_dict(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=10)
    run = new_run(s)
    run.attempts.append({"number": 1, "exit_code": 0, "state": "succeeded"})
    s.save_run(run)
    s.commit()
    data = json.loads((state / "runs" / "runs-000000.json").read_text())
    assert data["runs"][str(run.id)] == run.to_dict()


def test_save_run_of_an_unknown_run_records_it(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)
    run = Run(id=s.next_run_id(), job="j", host="h", command="c")
    s.save_run(run)
    assert s.get_run(run.id) == run
    assert s.count_runs() == 1
    assert [r.id for r in s.active_runs()] == [run.id]


def test_list_runs_filters_and_limit(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=4)
    for i in range(20):
        new_run(s, job="a" if i % 2 else "b",
                state=RunState.FAILED.value if i % 3 == 0 else RunState.SUCCEEDED.value)
    assert [r.id for r in s.list_runs(limit=5)] == [20, 19, 18, 17, 16]
    assert [r.id for r in s.list_runs(limit=None)] == list(range(20, 0, -1))
    assert s.list_runs(limit=0) == []
    assert [r.id for r in s.list_runs(job="a", limit=3)] == [20, 18, 16]
    failed = s.list_runs(states=[RunState.FAILED], limit=None)
    assert [r.id for r in failed] == [19, 16, 13, 10, 7, 4, 1]
    both = s.list_runs(job="b", states=["failed"], limit=None)
    assert [r.id for r in both] == [19, 13, 7, 1]
    assert [r.id for r in s.list_runs(since=1015.0, limit=None)] == [20, 19, 18, 17, 16, 15]
    assert s.list_runs(job="nobody") == []


def test_list_runs_stops_reading_once_it_has_enough(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=10, index_chunk=1)
    for _ in range(100):
        new_run(s)
    s.close()
    s = open_store(state, opened, segment_size=10, index_chunk=1)
    reads = s.segment_reads
    assert len(s.list_runs(limit=15)) == 15
    assert s.segment_reads - reads <= 2  # the head and one more, not all ten
    assert [r.id for r in s.list_runs(since=1095.0, limit=None)] == list(range(100, 94, -1))
    assert s.segment_reads - reads <= 2


def test_ids_keep_growing_across_reopen(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=3)
    ids = [new_run(s).id for _ in range(7)]
    assert ids == list(range(1, 8))
    assert s.next_run_id() == 8  # handed out, never added: still not handed out again
    s.close()
    s = open_store(state, opened, segment_size=3)
    assert s.next_run_id() == 9
    assert s.count_runs() == 7


def test_segment_size_is_fixed_at_creation(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=5)
    for _ in range(12):
        new_run(s)
    s.close()
    s = open_store(state, opened, segment_size=1000)
    assert s.segment_size == 5
    assert s.get_run(3) is not None and s.get_run(12) is not None
    assert seg_files(state) == ["runs-000000.json", "runs-000001.json", "runs-000002.json"]


def test_active_runs_survive_reopen(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=3, index_chunk=1)
    queued = new_run(s, state=RunState.QUEUED.value)
    running = new_run(s, state=RunState.QUEUED.value)
    running.state = RunState.RUNNING.value
    s.save_run(running)
    for _ in range(10):
        new_run(s)  # later segments, all finished
    done = new_run(s, state=RunState.RUNNING.value)
    done.state = RunState.FAILED.value
    s.save_run(done)
    assert [r.id for r in s.active_runs()] == [queued.id, running.id]
    s.close()

    s = open_store(state, opened, segment_size=3, index_chunk=1)
    # the head, and the one segment the index chunks say holds unsettled runs; no scan
    assert s.segment_reads == 2
    assert [(r.id, r.state) for r in s.active_runs()] == [(1, "queued"), (2, "running")]
    assert s.segment_reads == 2


def test_job_state_and_claims(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)
    assert s.job_state("backup") == {}
    s.update_job_state("backup", paused=True, paused_by="ann")
    s.update_job_state("backup", paused=False, paused_by=None)
    assert s.job_state("backup") == {"paused": False, "paused_by": None}
    state_copy = s.job_state("backup")
    state_copy["paused"] = True
    assert s.job_state("backup")["paused"] is False
    with pytest.raises(TypeError):
        s.update_job_state("backup", bad=object())

    assert s.claim_occurrence("backup", 100.0) is True
    assert s.claim_occurrence("backup", 100.0) is False
    assert s.claim_occurrence("backup", 50.0) is False
    assert s.claim_occurrence("other", 100.0) is True
    assert s.job_state("backup")["last_occurrence"] == 100.0
    s.set_meta("last_seen", 1.5)
    s.set_meta("version", "1")
    s.close()

    s = open_store(state, opened)
    assert s.claim_occurrence("backup", 100.0) is False
    assert s.claim_occurrence("backup", 160.0) is True
    assert s.job_state("backup")["paused"] is False
    assert s.meta() == {"last_seen": 1.5, "version": "1"}


def test_a_batch_of_runs_is_recorded_as_one_by_one(state: Path, opened: list[Store]) -> None:
    """add_runs (a scheduler tick's batch) leaves the same store as add_run per run:
    records, segments rolled over, the active index, ids, and what reopens."""
    one, many = state / "one", state / "many"
    stores = {p: open_store(p, opened, segment_size=4) for p in (one, many)}
    for s in stores.values():
        new_run(s)  # history before the batch
    batches = {}
    for p, s in stores.items():
        batch = []
        for i in range(10):  # crosses two segment boundaries
            st = RunState.QUEUED.value if i % 3 else RunState.SKIPPED.value
            batch.append(Run(id=s.next_run_id(), job=f"j{i}", host="local", command="true",
                             state=st, queued_at=2000.0 + i))
        batches[p] = batch
    for run in batches[one]:
        stores[one].add_run(run)
    stores[many].add_runs(batches[many])
    with pytest.raises(ValueError):
        stores[many].add_runs([batches[many][0]])  # an id recorded already
    for s in stores.values():
        s.close()
    reopened = {p: open_store(p, opened, segment_size=4) for p in (one, many)}
    a, b = reopened[one], reopened[many]
    assert [r.to_dict() for r in a.list_runs(limit=100)] == \
        [r.to_dict() for r in b.list_runs(limit=100)]
    assert [r.id for r in b.active_runs()] == [r.id for r in batches[many] if r.state == "queued"]
    assert a.next_run_id() == b.next_run_id() == 12
    assert seg_files(one) == seg_files(many)


def test_claims_in_bulk(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)
    s.update_job_state("backup", paused=False)
    s.claim_occurrence("report", 500.0)
    s.claim_occurrences({"backup": 100.0, "report": 400.0, "new": 7.0})
    assert s.job_state("backup") == {"paused": False, "last_occurrence": 100.0}
    assert s.job_state("report")["last_occurrence"] == 500.0  # never moves back
    s.close()
    s = open_store(state, opened)
    assert s.claim_occurrence("backup", 100.0) is False
    assert s.claim_occurrence("new", 7.0) is False
    assert s.claim_occurrence("new", 8.0) is True


def test_log_path(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=100)
    path = s.log_path(1234)
    assert path == state / "logs" / "000012" / "1234.log"
    assert path.parent.is_dir() and mode(path.parent) == 0o700
    assert s.logs_dir == state / "logs"
    assert s.state_dir == state


# ----------------------------------------------------------------------- durability ----
def test_commit_writes_parseable_private_files(state: Path, opened: list[Store]) -> None:
    old = os.umask(0)  # the modes must not depend on the umask
    try:
        s = open_store(state, opened)
        new_run(s)
        s.update_job_state("j", x=1)
        s.set_meta("k", "v")
        s.commit()
    finally:
        os.umask(old)
    for d in (state, state / "runs", state / "logs"):
        assert mode(d) == 0o700, d
    files = [state / "jobs.json", state / "meta.json", state / "runs" / "runs-000000.json"]
    for f in files:
        assert mode(f) == 0o600, f
        json.loads(f.read_bytes())
    assert not list(state.rglob("*.tmp"))


def test_existing_loose_permissions_are_tightened(state: Path, opened: list[Store]) -> None:
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    (state / "jobs.json").write_text('{"jobs":{}}')
    os.chmod(state / "jobs.json", 0o644)
    open_store(state, opened)
    assert mode(state) == 0o700
    assert mode(state / "jobs.json") == 0o600


def test_nothing_is_written_before_commit(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)
    new_run(s)
    s.update_job_state("j", a=1)
    assert seg_files(state) == []
    assert not (state / "jobs.json").exists()
    assert s.dirty
    s.commit()
    assert not s.dirty
    assert seg_files(state) == ["runs-000000.json"]


def test_leftovers_and_corrupt_files_at_open(state: Path, opened: list[Store],
                                             caplog: pytest.LogCaptureFixture) -> None:
    s = open_store(state, opened, segment_size=5)
    for _ in range(12):
        new_run(s)
    s.update_job_state("j", a=1)
    s.close()
    (state / "runs" / "runs-000001.json.tmp").write_text("half a wri")
    (state / "jobs.json.tmp").write_text("half")
    (state / "jobs.json").write_text('{"jobs": {"1": ')  # the disk lied
    with caplog.at_level(logging.WARNING, logger="fleetdeck.store"):
        s = open_store(state, opened, segment_size=5)
    assert not list(state.rglob("*.tmp"))
    assert len(list(state.glob("jobs.json.corrupt-*"))) == 1
    assert s.job_state("j") == {}  # started empty, the old file kept aside
    assert s.count_runs() == 12
    assert any("jobs.json" in r.getMessage() for r in caplog.records)


def test_corrupt_head_segment_opens_with_what_is_left(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=5)
    for _ in range(12):
        new_run(s)
    s.close()
    (state / "runs" / "runs-000002.json").write_text("\x00\x00\x00")
    s = open_store(state, opened, segment_size=5)
    assert len(list((state / "runs").glob("runs-000002.json.corrupt-*"))) == 1
    assert s.count_runs() == 9  # 10..12 were in the lost file
    assert s.get_run(9) is not None
    # no id the lost file could hold is handed out again (10..12 were; its run logs
    # and every record naming them would be another run's)
    assert new_run(s).id == 15


def test_crash_between_a_segment_and_the_head_heals(state: Path, opened: list[Store]) -> None:
    """A long run in an old segment finishes; the crash comes after its segment was
    written and before the head (which holds the active index) was."""
    s = open_store(state, opened, segment_size=5)
    long = new_run(s, state=RunState.RUNNING.value)
    for _ in range(7):
        new_run(s)
    s.commit()
    head = state / "runs" / "runs-000001.json"
    before = head.read_bytes()
    long.state = RunState.SUCCEEDED.value
    s.save_run(long)
    s.commit()
    s.close()
    head.write_bytes(before)  # the head as it was: the crash

    s = open_store(state, opened, segment_size=5)
    assert s.active_runs() == []
    assert s.get_run(long.id).state == "succeeded"  # type: ignore[union-attr]
    s.close()
    s = open_store(state, opened, segment_size=5)
    assert s.active_runs() == []


def test_runs_added_after_the_last_durable_index_are_found(
        state: Path, opened: list[Store]) -> None:
    """The head crosses into a new segment; the new head never reaches the disk but the
    old one (with its stale index copy and a new queued run) did."""
    s = open_store(state, opened, segment_size=5)
    for _ in range(3):
        new_run(s)
    s.commit()
    late = new_run(s, state=RunState.QUEUED.value)  # id 4, segment 0, not indexed on disk
    new_run(s)  # id 5: a new head
    s.commit()
    s.close()
    (state / "runs" / "runs-000001.json").unlink()  # it never got written

    s = open_store(state, opened, segment_size=5)
    assert [r.id for r in s.active_runs()] == [late.id]
    assert s.count_runs() == 4
    assert s.next_run_id() > 5  # id 5 was handed out before the crash: never again


def test_read_only_view(state: Path, opened: list[Store]) -> None:
    missing = Store.open(state, read_only=True)
    assert missing.list_runs() == [] and missing.count_runs() == 0
    assert not state.exists()

    s = open_store(state, opened)
    run = new_run(s, state=RunState.RUNNING.value)
    s.update_job_state("backup", paused=True)
    s.commit()
    (state / "runs" / "runs-000000.json.tmp").write_text("someone is writing")

    view = Store.open(state, read_only=True)
    assert view.get_run(run.id) == run
    assert [r.id for r in view.active_runs()] == [run.id]
    assert view.job_state("backup") == {"paused": True}
    assert view.log_path(run.id) == state / "logs" / "000000" / f"{run.id}.log"
    for change in (lambda: view.next_run_id(), lambda: view.add_run(run),
                   lambda: view.save_run(run), lambda: view.update_job_state("x", a=1),
                   lambda: view.claim_occurrence("x", 1.0), lambda: view.set_meta("a", 1)):
        with pytest.raises(StoreReadOnly):
            change()
    view.commit()
    view.close()
    assert (state / "runs" / "runs-000000.json.tmp").exists()  # not the viewer's to remove


# --------------------------------------------------------------------- group commit ----
async def test_commit_async_shares_writes(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)

    async def record(i: int) -> None:
        run = new_run(s, job=f"j{i}", state=RunState.RUNNING.value)
        await s.commit_async()
        run.state = RunState.SUCCEEDED.value
        s.save_run(run)
        await s.commit_async()

    await asyncio.gather(*(record(i) for i in range(40)))
    assert not s.dirty
    assert s.commits_written < 40  # 80 callers, a handful of writes
    view = Store.open(state, read_only=True)
    assert view.count_runs() == 40
    assert view.active_runs() == []


async def test_changes_during_a_write_get_their_own_commit(
        state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)
    new_run(s)
    first = asyncio.create_task(s.commit_async())
    await asyncio.sleep(0)  # the first commit is writing in its thread now
    second_run = new_run(s)
    await s.commit_async()
    assert Store.open(state, read_only=True).get_run(second_run.id) == second_run
    await first


async def test_sync_commit_covers_a_write_in_flight(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)
    run = new_run(s)
    task = asyncio.create_task(s.commit_async())
    await asyncio.sleep(0)
    s.commit()  # e.g. stop(): must not return before everything is on disk
    assert Store.open(state, read_only=True).get_run(run.id) == run
    await task


async def test_cancelled_caller_does_not_lose_the_write(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened)
    run = new_run(s)
    task = asyncio.create_task(s.commit_async())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await s.commit_async()
    assert Store.open(state, read_only=True).get_run(run.id) == run


# ------------------------------------------------------------------------ retention ----
def test_retention_drops_whole_old_segments(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=10, retention=30)
    stuck = new_run(s, state=RunState.RUNNING.value)  # segment 0 holds an active run
    s.log_path(stuck.id).write_text("still going\n")
    for _ in range(98):
        run = new_run(s)
        s.log_path(run.id).write_text("out\n")
    s.commit()
    # 1..99 in segments 0..9; kept: segment 0 (active) and the newest, >= 30 runs
    kept = s.segments()
    assert 0 in kept
    assert kept[-1] == 9
    assert 30 <= s.count_runs() - 9 <= 40
    assert s.get_run(stuck.id) == stuck
    assert s.get_run(15) is None
    assert seg_files(state) == [f"runs-{k:06d}.json" for k in kept]
    logs = sorted(p.name for p in (state / "logs").iterdir())
    assert logs == [f"{k:06d}" for k in kept]
    assert s.log_path(stuck.id).read_text() == "still going\n"
    assert [r.id for r in s.list_runs(limit=None)][-1] == stuck.id

    stuck.state = RunState.SUCCEEDED.value
    s.save_run(stuck)
    assert s.prune() == 9  # segment 0 may go now
    s.commit()
    assert not (state / "runs" / "runs-000000.json").exists()
    assert not (state / "logs" / "000000").exists()
    assert s.prune() == 0


def test_lower_retention_applies_on_prune(state: Path, opened: list[Store]) -> None:
    s = open_store(state, opened, segment_size=10, retention=1000)
    for _ in range(99):
        new_run(s)
    s.close()
    s = open_store(state, opened, segment_size=10, retention=50)
    assert s.prune() == 49  # segments 0..4 (9 + 4*10 runs); 5..9 keep 50
    assert s.count_runs() == 50
    s.close()
    s = open_store(state, opened, segment_size=10, retention=50)
    assert s.count_runs() == 50
    assert s.segments() == [5, 6, 7, 8, 9]
    assert len(seg_files(state)) == 5


# --------------------------------------------------------------------- long history ----
def write_history(state: Path, n: int, size: int) -> None:
    """A store with runs 1..n written straight in the documented file format (fast)."""
    runs_dir = state / "runs"
    runs_dir.mkdir(parents=True, mode=0o700)
    template = Run(id=0, job="nightly", host="local", command="backup.sh",
                   state="succeeded", exit_code=0).to_dict()
    last = n // size
    counts: dict[int, int] = {}
    for k in range(last + 1):
        docs = {}
        for run_id in range(max(1, k * size), min(n, (k + 1) * size - 1) + 1):
            doc = dict(template, id=run_id, queued_at=float(run_id))
            docs[str(run_id)] = doc
        counts[k] = len(docs)
        data: dict[str, object] = {"runs": docs,
                                   "segment": {"1": {"number": k, "size": size}}}
        if k == last:
            ranges = [[0, 0, counts[0]], [1, last - 1, size], [last, last, counts[last]]]
            data["store"] = {"1": {"next_id": n + 1, "segment_size": size,
                                   "segments": ranges}}
            data["active"] = {}
        path = runs_dir / f"runs-{k:06d}.json"
        path.write_text(json.dumps(data, separators=(",", ":")))
        os.chmod(path, 0o600)


def test_long_history_touches_only_the_head(state: Path, opened: list[Store]) -> None:
    n, size = 100_000, 100
    write_history(state, n, size)
    assert len(list((state / "runs").iterdir())) == 1001
    s = open_store(state, opened, segment_size=size, retention=10**9)
    assert s.segment_reads == 1001  # a history without its index is read once, whole
    s.close()  # ... and its index written, in chunks
    assert len(list((state / "runs").glob("index-*.bin"))) == 10
    mtimes = {p.name: p.stat().st_mtime_ns for p in (state / "runs").iterdir()}

    s = open_store(state, opened, segment_size=size, retention=10**9)
    assert s.segment_reads == 1  # the head alone
    assert s.count_runs() == n
    run = new_run(s, state=RunState.QUEUED.value)
    assert run.id == n + 1
    run.state = RunState.RUNNING.value
    s.save_run(run)
    run.state = RunState.SUCCEEDED.value
    s.save_run(run)
    s.commit()
    assert s.segment_reads == 1
    changed = [p.name for p in (state / "runs").iterdir()
               if mtimes.get(p.name) != p.stat().st_mtime_ns]
    assert changed == ["runs-001000.json"]
    assert (state / "runs" / "runs-001000.json").stat().st_size < 10_000

    assert s.get_run(12_345).id == 12_345  # type: ignore[union-attr]
    assert s.segment_reads == 2  # straight to its segment
    s.close()
    s = open_store(state, opened, segment_size=size, retention=10**9)
    assert s.segment_reads == 1
    assert s.count_runs() == n + 1
    assert s.next_run_id() == n + 2


def test_a_change_to_a_segment_read_back_while_the_cache_is_full_is_kept(
        state: Path, opened: list[Store]) -> None:
    """Every cached segment dirty, one more read back and changed: the change must
    reach the disk (it once went to a segment the cache had just let go)."""
    s = open_store(state, opened, segment_size=10, cache_segments=8)
    runs = [new_run(s, state=RunState.QUEUED.value) for _ in range(1000)]
    s.commit()
    for run in runs[::100]:  # one a segment, oldest first: each read back from disk
        run.state = RunState.RUNNING.value
        s.save_run(run)
    s.commit()
    view = Store.open(state, read_only=True)
    assert [view.get_run(r.id).state for r in runs[::100]] == ["running"] * 10  # type: ignore[union-attr]


def test_a_burst_of_queued_runs_is_saved_without_reading_segments_back(
        state: Path, opened: list[Store]) -> None:
    """Thousands queued at once span far more segments than the cache holds: the ones
    holding queued or running runs stay in memory (each run is saved twice more), and
    go back to the cache's size as their runs end."""
    s = open_store(state, opened, segment_size=10, cache_segments=4)
    runs = []
    for _ in range(300):  # 30 segments of queued runs
        run_id = s.next_run_id()
        runs.append(Run(id=run_id, job="burst", host="local", command="true",
                        state=RunState.QUEUED.value, queued_at=1000.0 + run_id))
    s.add_runs(runs)
    s.commit()
    reads = s.segment_reads
    for run in runs:
        run.state = RunState.RUNNING.value
        s.save_run(run)
        run.state = RunState.SUCCEEDED.value
        s.save_run(run)
        if run.id % 50 == 0:
            s.commit()
    s.commit()
    assert s.segment_reads == reads  # none evicted while it held queued runs
    # the last commit trimmed the cache back: nothing is active now
    cached = s._history._cache  # noqa: SLF001 - the bound itself is the subject
    assert len(cached) <= 4 + 1
    s2 = Store.open(state, read_only=True)
    try:
        assert {r.state for r in s2.list_runs(job="burst", limit=None)} == {"succeeded"}
    finally:
        s2.close()


def test_the_segments_kept_for_queued_runs_are_bounded(state: Path,
                                                       opened: list[Store]) -> None:
    """Past ``PINNED_MAX`` segments of queued runs, the least recently used are read
    back from disk like any other: a backlog never holds the whole history."""
    from core.store.history import PINNED_MAX

    s = open_store(state, opened, segment_size=2, cache_segments=4)
    runs = []
    for _ in range(2 * (PINNED_MAX + 40)):
        run_id = s.next_run_id()
        runs.append(Run(id=run_id, job="backlog", host="local", command="true",
                        state=RunState.QUEUED.value, queued_at=1000.0 + run_id))
    s.add_runs(runs)
    s.commit()
    s.get_run(1)
    assert len(s._history._cache) <= 4 + PINNED_MAX + 1  # noqa: SLF001
    reads = s.segment_reads
    assert s.get_run(runs[0].id) is not None and s.get_run(runs[-1].id) is not None
    assert s.segment_reads - reads <= 2


def test_the_active_runs_keep_their_counts_per_segment() -> None:
    from core.store.docs import ActiveRuns

    active = ActiveRuns(10, [(1, "a"), (2, "a"), (15, "b")])
    assert active.per_segment == {0: 2, 1: 1}
    active[2] = "again"  # the same run: counted once
    assert active.pop(1) == "a" and active.pop(99, None) is None
    del active[15]
    assert active.per_segment == {0: 1} and dict(active) == {2: "again"}
    active.clear()
    assert active.per_segment == {} and not active
    with pytest.raises(TypeError):
        active.update({3: "c"})
