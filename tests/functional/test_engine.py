"""The engine end to end, in process: real subprocesses, real state files, real time."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from core.api import Actor
from core.jobs.engine import Engine, EngineError
from core.store import StateLocked, Store
from tests.helpers import job, make_config, until_async


def finished(run_id: int):
    return lambda e: e.kind == "run_finished" and e.run["id"] == run_id


async def test_run_now_streams_output_records_history_and_log(start_engine, state_dir):
    engine, rec = await start_engine(make_config(job("hello", "echo hello; echo oops >&2")),
                                     scheduling=False)
    [run] = await engine.run_job("hello", requested_by="alice")
    done = await engine.wait_run(run["id"])
    assert done["state"] == "succeeded" and done["exit_code"] == 0
    assert done["requested_by"] == "alice" and done["trigger"] == "manual"
    kinds = [e.kind for e in rec.events if getattr(e, "run", {}).get("id", run["id"]) == run["id"]]
    assert kinds.index("run_queued") < kinds.index("run_started") < kinds.index("run_finished")
    lines = [(e.stream, e.line) for e in rec.of("output_line")]
    assert ("stdout", "hello") in lines and ("stderr", "oops") in lines
    log_text = engine.run_log_path(run["id"]).read_text()
    assert "hello" in log_text and "oops" in log_text
    assert engine.list_runs(job="hello")[0]["id"] == run["id"]
    info = engine.get_job("hello")
    assert info["last_run"]["state"] == "succeeded" and info["success_rate"] == 1.0


async def test_failure_exit_code_and_reason(start_engine):
    engine, _ = await start_engine(make_config(job("bad", "exit 3")), scheduling=False)
    [run] = await engine.run_job("bad")
    done = await engine.wait_run(run["id"])
    assert done["state"] == "failed" and done["exit_code"] == 3
    assert done["reason"] == "exit code 3"


async def test_timeout_ends_timed_out(start_engine):
    engine, _ = await start_engine(make_config(job("slow", "sleep 30", timeout=0.3)),
                                   scheduling=False)
    [run] = await engine.run_job("slow")
    done = await engine.wait_run(run["id"])
    assert done["state"] == "timed_out"
    assert "timed out after 0.3s" in done["reason"]


async def test_retry_is_a_new_attempt_of_the_same_run(start_engine, tmp_path):
    counter = tmp_path / "count"
    cmd = f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; " \
          f"echo try $((n+1)); test $n -ge 2"
    engine, rec = await start_engine(make_config(job("flaky", cmd, retries=3)), scheduling=False)
    [run] = await engine.run_job("flaky")
    done = await engine.wait_run(run["id"])
    assert done["state"] == "succeeded"
    assert done["attempt"] == 3 and len(done["attempts"]) == 3
    assert [a["state"] for a in done["attempts"]] == ["failed", "failed", "succeeded"]
    assert len(rec.of("run_retrying")) == 2
    log_text = engine.run_log_path(run["id"]).read_text()
    assert "try 1" in log_text and "attempt 3 of 4" in log_text and "try 3" in log_text


async def test_retries_exhausted_end_failed(start_engine):
    engine, _ = await start_engine(make_config(job("never", "exit 1", retries=1)),
                                   scheduling=False)
    [run] = await engine.run_job("never")
    done = await engine.wait_run(run["id"])
    assert done["state"] == "failed" and done["attempt"] == 2


async def test_cancel_running_run(start_engine):
    engine, rec = await start_engine(make_config(job("long", "echo started; sleep 60")),
                                     scheduling=False)
    [run] = await engine.run_job("long")
    await rec.wait_for(lambda e: e.kind == "output_line" and e.line == "started")
    bob = Actor(os.getuid(), "bob", "test")
    done = await asyncio.wait_for(engine.cancel_run(run["id"], actor=bob), 20)
    assert done["state"] == "cancelled" and done["reason"] == "cancelled by bob"
    with pytest.raises(EngineError, match="not active"):
        await engine.cancel_run(run["id"])


async def test_cancel_during_retry_wait(start_engine):
    engine, rec = await start_engine(
        make_config(job("r", "exit 1", retries=5, backoff=30)), scheduling=False)
    [run] = await engine.run_job("r")
    await rec.wait_for(lambda e: e.kind == "run_retrying")
    done = await asyncio.wait_for(engine.cancel_run(run["id"]), 10)
    assert done["state"] == "cancelled"


async def test_overlap_queue_waits_for_the_previous_run(start_engine, tmp_path):
    gate = tmp_path / "gate"
    cmd = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    engine, rec = await start_engine(make_config(job("q", cmd, overlap="queue")),
                                     scheduling=False)
    [first] = await engine.run_job("q")
    [second] = await engine.run_job("q")
    queued = [r for r in engine.queue() if r["id"] == second["id"]][0]
    assert queued["state"] == "queued"
    assert queued["reason"] == f"waiting for run #{first['id']} (overlap=queue)"
    gate.touch()
    a = await engine.wait_run(first["id"])
    b = await engine.wait_run(second["id"])
    assert a["state"] == b["state"] == "succeeded"
    assert b["started_at"] >= a["finished_at"]


async def test_overlap_replace_cancels_the_running_one(start_engine):
    engine, rec = await start_engine(
        make_config(job("rep", "echo up; sleep 60", overlap="replace")), scheduling=False)
    [first] = await engine.run_job("rep")
    await rec.wait_for(lambda e: e.kind == "output_line" and e.run_id == first["id"])
    [second] = await engine.run_job("rep")
    a = await engine.wait_run(first["id"])
    assert a["state"] == "cancelled"
    assert a["reason"] == f"replaced by run #{second['id']} (overlap=replace)"
    await rec.wait_for(lambda e: e.kind == "run_started" and e.run["id"] == second["id"])
    await engine.cancel_run(second["id"])


async def test_overlap_skip_records_skipped_occurrences(start_engine):
    engine, rec = await start_engine(
        make_config(job("tick", "sleep 2.5", schedule="every 1s", overlap="skip")))
    skipped = await rec.wait_for(
        lambda e: e.kind == "run_finished" and e.run["state"] == "skipped", timeout=20)
    assert "still active (overlap=skip)" in skipped.run["reason"]
    assert skipped.run["occurrence"] is not None


async def test_global_concurrency_limit_queues_with_a_reason(start_engine, tmp_path):
    gate = tmp_path / "gate"
    cmd = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    config = make_config(job("a", cmd), job("b", cmd), job("c", cmd), max_concurrent_runs=2)
    engine, rec = await start_engine(config, scheduling=False)
    runs = [(await engine.run_job(n))[0] for n in ("a", "b", "c")]
    states = {r["id"]: r for r in engine.queue()}
    assert [states[r["id"]]["state"] for r in runs] == ["running", "running", "queued"]
    assert states[runs[2]["id"]]["reason"] == "waiting for a free slot (2/2 running)"
    gate.touch()
    for r in runs:
        assert (await engine.wait_run(r["id"]))["state"] == "succeeded"


async def test_scheduled_job_fires_and_pause_stops_it(start_engine):
    engine, rec = await start_engine(make_config(job("beat", "echo beat", schedule="every 1s")))
    first = await rec.wait_for(lambda e: e.kind == "run_finished", timeout=10)
    assert first.run["trigger"] == "schedule" and first.run["state"] == "succeeded"
    assert first.run["occurrence"] == int(first.run["occurrence"])  # on the second boundary
    info = await engine.pause_job("beat")
    assert info["paused"] and info["next_fire"] is None

    def queued() -> set[int]:  # runs, not announcements (a queued run's reason can change)
        return {e.run["id"] for e in rec.of("run_queued")}

    before = queued()
    # two occurrences would come in this window: only time passing shows that none does
    await asyncio.sleep(2.2)
    assert queued() == before, "a paused job fired"
    info = await engine.resume_job("beat")
    assert not info["paused"] and info["next_fire"] is not None
    await rec.wait_for(lambda e: e.kind == "run_queued" and e.run["queued_at"] > time.time() - 1,
                       timeout=10)


@pytest.mark.parametrize(
    ("policy", "expect_ran", "expect_skipped"),
    [("skip", 0, 5), ("run_once", 1, 4), ("run_all", 5, 0)],
)
async def test_misfire_policy_after_downtime(start_engine, state_dir, policy, expect_ran,
                                             expect_skipped):
    # down for five minutes, a job every minute, grace 1 s: five occurrences missed. The
    # engine's clock stands still half-way through a minute: the next occurrence cannot
    # come due however slowly a busy machine runs the test
    now = (time.time() // 60) * 60 + 30
    last = now - 30 - 300
    store = Store.open(state_dir)
    store.update_job_state("m", first_seen=last, last_occurrence=last)
    store.commit()
    store.close()
    config = make_config(job("m", "true", schedule="every 1m", misfire=policy, misfire_grace=1,
                             overlap="allow"))
    engine, rec = await start_engine(config, clock=lambda: now)
    await rec.wait_for(lambda e: e.kind == "run_finished")
    # the five missed occurrences, each run or skipped (one batch of the scheduler)
    await until_async(lambda: len(engine.list_runs(job="m", limit=None)) >= 5,
                      "the missed occurrences handled")
    for r in [e.run for e in rec.of("run_queued")]:
        await engine.wait_run(r["id"])
    runs = engine.list_runs(job="m", limit=None)
    ran = [r for r in runs if r["state"] != "skipped"]
    skipped = [r for r in runs if r["state"] == "skipped"]
    assert (len(ran), len(skipped)) == (expect_ran, expect_skipped)
    assert all(r["trigger"] == "misfire" and r["state"] == "succeeded" for r in ran)
    if policy == "run_once":
        assert ran[0]["occurrence"] == last + 300  # the latest one
    for r in skipped:
        assert "missed while fleetdeck was down" in r["reason"]
    occurrences = [r["occurrence"] for r in runs]
    assert len(occurrences) == len(set(occurrences)), "an occurrence was handled twice"
    assert engine.get_job("m")["next_fire"] == last + 360


@pytest.mark.parametrize("overlap", ["skip", "queue", "replace"])
async def test_run_all_runs_the_backlog_one_after_another(start_engine, state_dir, overlap):
    """The occurrences one hand-over brings (run_all's catch-up) are not each other's
    overlap: they run in turn, where skip dropped all but the first and replace
    cancelled each with the next. A run active before them is still the overlap."""
    now = (time.time() // 60) * 60 + 30
    last = now - 30 - 300
    store = Store.open(state_dir)
    store.update_job_state("m", first_seen=last, last_occurrence=last)
    store.commit()
    store.close()
    config = make_config(job("m", "sleep 0.1", schedule="every 1m", misfire="run_all",
                             misfire_grace=1, overlap=overlap))
    engine, rec = await start_engine(config, clock=lambda: now)
    await until_async(lambda: len(engine.list_runs(job="m", limit=None)) >= 5,
                      "the missed occurrences handled")
    for r in engine.list_runs(job="m", limit=None):
        await engine.wait_run(r["id"])
    runs = sorted(engine.list_runs(job="m", limit=None), key=lambda r: r["id"])
    assert [r["state"] for r in runs] == ["succeeded"] * 5, [r["reason"] for r in runs]
    assert [r["occurrence"] for r in runs] == [last + 60 * i for i in range(1, 6)]
    for before, after in zip(runs, runs[1:], strict=False):
        assert after["started_at"] >= before["finished_at"]  # in turn, not at once


async def test_recovery_marks_runs_interrupted_and_kills_a_surviving_group(start_engine,
                                                                          state_dir):
    # a run left `running` by a dead engine, whose process group is still alive
    proc = await asyncio.create_subprocess_exec("sleep", "60", start_new_session=True)
    from core.jobs.groups import process_create_time
    from core.jobs.runs import Run

    store = Store.open(state_dir)
    run = Run(id=store.next_run_id(), job="x", host="local", command="sleep 60",
              state="running", queued_at=time.time(), started_at=time.time(), pid=proc.pid,
              pgid=proc.pid, proc_started=process_create_time(proc.pid), engine_pid=999999)
    store.add_run(run)
    queued = Run(id=store.next_run_id(), job="x", host="local", command="true",
                 state="queued", queued_at=time.time(), engine_pid=999999)
    store.add_run(queued)
    store.commit()
    store.close()
    engine, rec = await start_engine(make_config(job("x", "true")), scheduling=False)
    got = engine.get_run(run.id)
    assert got["state"] == "interrupted"
    assert "fleetdeck (pid 999999) died while it ran" in got["reason"]
    assert f"process group {proc.pid} was still alive" in got["reason"]
    assert await asyncio.wait_for(proc.wait(), 10) is not None
    assert engine.get_run(queued.id)["state"] == "interrupted"
    assert engine.queue() == []
    assert any("died while it ran" in e.message for e in rec.of("engine_notice"))


async def test_recovery_finds_a_run_whose_start_never_reached_the_disk(start_engine,
                                                                       state_dir):
    # the engine died after the spawn, before the commit that would have said `running`
    # with its pid: the run is `queued` on disk, its process carries the install's id
    from core.jobs.runs import Run

    store = Store.open(state_dir)
    install = store.install_id
    run = Run(id=store.next_run_id(), job="x", host="local", command="sleep 60",
              state="queued", queued_at=time.time(), engine_pid=999999)
    store.add_run(run)
    other = Run(id=store.next_run_id(), job="x", host="local", command="true",
                state="queued", queued_at=time.time(), engine_pid=999999)
    store.add_run(other)
    store.commit()
    store.close()
    env = {**os.environ, "FLEETDECK_INSTALL": install, "FLEETDECK_RUN_ID": str(run.id)}
    mine = await asyncio.create_subprocess_exec("sleep", "60", start_new_session=True,
                                                env=env)
    stranger = await asyncio.create_subprocess_exec(  # another installation's run
        "sleep", "60", start_new_session=True,
        env={**env, "FLEETDECK_INSTALL": "someone-else"})
    try:
        engine, _rec = await start_engine(make_config(job("x", "true")), scheduling=False)
        got = engine.get_run(run.id)
        assert got["state"] == "interrupted"
        assert "died while it ran" in got["reason"]
        assert f"process group {mine.pid} was still alive" in got["reason"]
        assert await asyncio.wait_for(mine.wait(), 10) is not None
        assert engine.get_run(other.id)["reason"] == "fleetdeck (pid 999999) died before it started"
        assert stranger.returncode is None  # never touched
    finally:
        stranger.kill()
        await stranger.wait()


async def test_a_second_engine_on_the_same_state_is_refused(start_engine, state_dir):
    await start_engine(make_config(job("a", "true")), scheduling=False)
    other = Engine(make_config(job("a", "true")), state_dir)
    with pytest.raises(StateLocked, match=f"pid {os.getpid()}"):
        await other.start()


async def test_unknown_job_is_a_clear_error(start_engine):
    engine, _ = await start_engine(make_config(job("a", "true")), scheduling=False)
    with pytest.raises(EngineError, match="no job named 'nope'"):
        await engine.run_job("nope")
    with pytest.raises(EngineError, match="no run #999"):
        engine.get_run(999)


async def test_stop_cancels_running_runs_and_kills_them(start_engine, state_dir):
    """Stopping on purpose is not a failure: what ran ends `cancelled`, saying why."""
    engine, rec = await start_engine(make_config(job("long", "echo up; sleep 60")),
                                     scheduling=False)
    [run] = await engine.run_job("long")
    started = await rec.wait_for(lambda e: e.kind == "run_started")
    pgid = started.run["pgid"]
    await engine.stop()

    def gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    # the kernel lets a group go once its zombies are reaped
    await until_async(gone, f"process group {pgid} to go after engine.stop()")
    store = Store.open(state_dir)
    got = store.get_run(run["id"])
    assert (got.state, got.reason) == ("cancelled", "fleetdeck was stopped while it ran")
    store.close()


async def test_what_is_announced_is_already_on_disk(start_engine, state_dir):
    """Every run event is published after the commit that records it: a reader of the
    files at that moment finds the run in the state the event tells."""
    seen: list[tuple[str, str, str | None]] = []  # (event, state told, state on disk)

    def check(event) -> None:
        if event.kind in ("run_queued", "run_finished"):
            view = Store.open(state_dir, read_only=True)
            disk = view.get_run_record(event.run["id"])
            seen.append((event.kind, event.run["state"], disk and disk["state"]))

    config = make_config(job("ok", "true", overlap="allow"), job("bad", "exit 3"),
                         job("skipper", "sleep 1", overlap="skip", schedule="every 1s"))
    engine, _rec = await start_engine(config)
    engine.bus.subscribe(check)
    runs = [r for name in ("ok", "ok", "bad") for r in await engine.run_job(
        name, actor=Actor.local("cli"))]
    for r in runs:
        await engine.wait_run(r["id"])
    await until_async(lambda: any(s == "skipped" for _k, s, _d in seen),
                      "a skipped occurrence of skipper (overlap=skip)", timeout=15)
    finished = [(told, disk) for kind, told, disk in seen if kind == "run_finished"]
    assert {told for told, _ in finished} >= {"succeeded", "failed", "skipped"}
    assert all(told == disk for told, disk in finished), finished
    assert all(disk is not None for kind, _t, disk in seen if kind == "run_queued"), seen


async def test_a_change_made_while_a_commit_writes_is_written_without_another(
        start_engine, state_dir):
    """The engine's commit task is writing when a run changes (it started as the commit
    of its queueing went out): the change is written too, without waiting for another
    change that may never come. It once stayed `queued` on disk while it ran."""
    import threading

    from core.jobs.runs import Run

    engine, _ = await start_engine(make_config(job("a", "true")), scheduling=False)
    store = engine.store
    gate = threading.Event()
    write = store._write

    def slow_write(batch):  # the disk is slow this once: the write takes until the gate
        gate.wait(60)
        write(batch)

    store._write = slow_write
    runs = [Run(id=store.next_run_id(), job="a", host="local", command="true",
                state="queued", queued_at=1.0)]
    store.add_run(runs[0])
    engine._dirty()
    await until_async(lambda: store._inflight is not None, "the commit to be writing")
    runs[0].state = "running"
    store.save_run(runs[0])  # while the write is out
    engine._dirty()
    gate.set()
    await until_async(lambda: not store.dirty, "the change made meanwhile to be written")
    on_disk = Store.open(state_dir, read_only=True)
    assert on_disk.get_run(runs[0].id).state == "running"


async def test_a_log_that_cannot_be_written_ends_the_run_as_its_process_did(start_engine):
    """A full disk under the logs (here the run's log is /dev/full): the run is not hung
    by the failed write (it stopped the reading of the pipes), it ends as its process
    ends, and its reason says the output was not saved."""
    engine, rec = await start_engine(make_config(job("chatty", "seq 1 2000; exit 3")),
                                     scheduling=False)
    path = engine.store.log_path(1)
    path.symlink_to("/dev/full")
    [run] = await engine.run_job("chatty")
    assert run["id"] == 1
    done = await asyncio.wait_for(engine.wait_run(1), 60)
    assert (done["state"], done["exit_code"]) == ("failed", 3)
    assert done["reason"] == "exit code 3; its output was not saved: no space left on device"
    assert len(rec.of("output_line")) == 2000  # shown live all the same


async def test_a_listing_by_a_state_or_trigger_there_is_none_of_says_so(start_engine):
    """`states=["faild"]` listed nothing, as if no run had failed: a socket client or a
    script read that as all clear."""
    engine, _ = await start_engine(make_config(job("a", "true")), scheduling=False)
    with pytest.raises(EngineError) as bad_state:
        engine.list_runs(states=["faild"])
    assert str(bad_state.value).startswith("unknown state 'faild'; one of queued, running")
    with pytest.raises(EngineError) as bad_trigger:
        engine.list_runs(triggers=["cron"])
    assert str(bad_trigger.value).startswith("unknown trigger 'cron'; one of schedule")
    assert engine.list_runs(states=["failed"], triggers=["manual"]) == []


@pytest.mark.parametrize("how", ["cancel", "timeout", "stop"])
async def test_a_stopped_run_takes_what_left_its_group_with_it(start_engine, tmp_path, how):
    """A process the run moved out of its group (setsid: a daemon's way) is stopped with
    the run when a person cancels it, its timeout ends it or the engine stops, as the
    next engine would stop it after a crash."""
    pidfile = tmp_path / "escaped.pid"
    cmd = (f"setsid sh -c 'echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; "
           f"exec sleep 300' </dev/null >/dev/null 2>&1 & echo up; sleep 300")
    engine, rec = await start_engine(
        make_config(job("escape", cmd, timeout=2.0 if how == "timeout" else None)),
        scheduling=False)
    [run] = await engine.run_job("escape")
    started = await rec.wait_for(lambda e: e.kind == "run_started")
    await rec.wait_for(lambda e: e.kind == "output_line" and e.line == "up")
    await until_async(pidfile.exists, "the escaped process to write its pid")
    escaped = int(pidfile.read_text())
    assert os.getpgid(escaped) != started.run["pgid"]  # out of the run's group
    if how == "cancel":
        await asyncio.wait_for(engine.cancel_run(run["id"]), 30)
    elif how == "timeout":
        done = await asyncio.wait_for(engine.wait_run(run["id"]), 60)
        assert done["state"] == "timed_out"
    else:
        await engine.stop()

    def gone() -> bool:
        try:
            os.kill(escaped, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{escaped}/stat") as f:  # a zombie of init's is gone too
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"

    await until_async(gone, f"the escaped process {escaped} to be stopped ({how})")
