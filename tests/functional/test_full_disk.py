"""A disk that fills while fleetdeck runs (a real, small tmpfs under the state directory):
the engine says so once, keeps what it could not write in memory and writes it when
there is room again; whoever waits for a run's end on disk hears of it instead of
waiting for ever."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from core.jobs import dispatch
from core.jobs.active import EngineError
from core.store import Store
from tests.helpers import FLEETDECK, cli_env, job, make_config, until_async


def filler(small) -> str:
    return f"sleep 0.2; head -c 1M /dev/zero > {small}/filler 2>/dev/null; echo filled"


async def test_the_state_is_written_once_there_is_room_again(small_fs, start_engine,
                                                             monkeypatch):
    monkeypatch.setattr(dispatch, "WRITE_RETRY", 0.2)
    state = small_fs / "state"
    engine, rec = await start_engine(make_config(job("fill", filler(small_fs))),
                                     scheduling=False, directory=state)
    [run] = await engine.run_job("fill")
    with pytest.raises(EngineError) as refused:
        await asyncio.wait_for(engine.wait_run(run["id"]), 60)
    message = str(refused.value)
    assert message.startswith(f"run #{run['id']} of fill succeeded, but cannot write the "
                              f"state: {state}/")
    assert message.endswith(": no space left on device") and "\n" not in message
    errors = [e for e in rec.of("engine_notice") if e.level == "error"]
    assert len(errors) >= 1 and errors[0].message.startswith("cannot write the state: ")
    assert len({e.message for e in errors}) == len(errors)  # said once per cause, not per try

    (small_fs / "filler").unlink()  # a person frees some space
    await rec.wait_for(lambda e: e.kind == "engine_notice"
                       and e.message == "the state is written again", timeout=60)
    assert engine.write_error is None
    assert (await asyncio.wait_for(engine.wait_run(run["id"]), 60))["state"] == "succeeded"
    on_disk = Store.open(state, read_only=True)
    try:
        assert on_disk.get_run(run["id"]).state == "succeeded"  # nothing was lost
    finally:
        on_disk.close()


def test_run_says_the_state_cannot_be_written_and_does_not_hang(tmp_path, small_fs):
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f'[jobs.fill]\ncommand = "{filler(small_fs)}"\n')
    proc = subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir",
                           str(small_fs / "state"), "run", "fill"], capture_output=True,
                          text=True, timeout=120, env=cli_env(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "filled\n"
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fleetdeck: run #1 of fill succeeded, but cannot write the state: ")
    assert last.endswith(": no space left on device")
    assert "Traceback" not in proc.stderr


def fill(small) -> None:
    """Fill the small disk to the last byte."""
    fd = os.open(small / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


async def test_a_full_disk_is_tried_by_one_loop_not_one_per_tick(small_fs, start_engine,
                                                                  monkeypatch):
    """Every scheduler tick asks for a commit; on a full disk those asks must not each
    start a loop of their own that tries again for ever (they piled up, one a second)."""
    monkeypatch.setattr(dispatch, "WRITE_RETRY", 0.3)
    jobs = [job(f"tick{i}", "true", schedule="every 1s") for i in range(3)]
    engine, rec = await start_engine(make_config(*jobs), directory=small_fs / "state")
    fill(small_fs)
    await rec.wait_for(lambda e: e.kind == "engine_notice" and e.level == "error", 60)
    for _ in range(4):  # a tick of every job each second, on a full disk
        await asyncio.sleep(1)
        # the one loop that tries again, and at most a tick's own commit under way
        loops = [t for t in engine._tasks if "_commit_soon" in repr(t.get_coro())]
        assert len(loops) <= 2, loops
    (small_fs / "filler").unlink()
    await rec.wait_for(lambda e: e.kind == "engine_notice"
                       and e.message == "the state is written again", 60)


async def test_waiting_for_a_run_that_ended_before_the_wait_does_not_hang(small_fs,
                                                                         start_engine,
                                                                         monkeypatch):
    """The run ends, the disk refuses its end, and only then does someone wait for it
    (a run that failed at once, before `fleetdeck run` waited): told, not left waiting."""
    monkeypatch.setattr(dispatch, "WRITE_RETRY", 0.3)
    engine, rec = await start_engine(make_config(job("fill", filler(small_fs))),
                                     scheduling=False, directory=small_fs / "state")
    [run] = await engine.run_job("fill")
    await rec.wait_for(lambda e: e.kind == "engine_notice" and e.level == "error", 60)
    await until_async(lambda: engine.get_run(run["id"])["state"] == "succeeded",
                      "the run ended (in memory)", 60)
    with pytest.raises(EngineError) as refused:
        await asyncio.wait_for(engine.wait_run(run["id"]), 60)
    assert str(refused.value).startswith(f"run #{run['id']} of fill succeeded, but cannot "
                                         f"write the state: ")
    (small_fs / "filler").unlink()
