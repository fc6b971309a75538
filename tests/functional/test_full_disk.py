"""A disk that fills while fleetdeck runs (a real, small tmpfs under the state directory):
the engine says so once, keeps what it could not write in memory and writes it when
there is room again; whoever waits for a run's end on disk hears of it instead of
waiting for ever."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from core.jobs import dispatch
from core.jobs.active import EngineError
from core.store import Store
from tests.helpers import FLEETDECK, cli_env, job, make_config


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
