"""The simple chain: `after` runs a job when another's run succeeds, `after_failure`
when it fails; an occurrence on several hosts is one result; `check-config` names an
unknown job and a cycle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.api import Actor
from core.config import ConfigError
from core.fleetconfig import parse_config_text
from tests.helpers import until_async

BOB = Actor(os.getuid(), "bob", "cli")


def _jobs(tmp_path: Path, first: str) -> str:
    log = tmp_path / "ran"
    return (f'[jobs.build]\ncommand = "echo build >> {log}; {first}"\n\n'
            f'[jobs.ship]\ncommand = "echo ship-$FLEETDECK_AFTER_JOB-$FLEETDECK_AFTER_STATE'
            f' >> {log}"\nafter = ["build"]\n\n'
            f'[jobs.page]\ncommand = "echo page >> {log}"\nafter_failure = ["build"]\n')


async def _chain_of(start_engine, tmp_path: Path, first: str) -> tuple[list[str], list]:
    engine, _ = await start_engine(parse_config_text(_jobs(tmp_path, first)),
                                   scheduling=False)
    (run,) = await engine.run_job("build", actor=BOB)
    await engine.wait_run(run["id"])
    log = tmp_path / "ran"
    await until_async(lambda: len(log.read_text().split()) >= 2, "the chained job")
    followers = [r for r in engine.list_runs(limit=None) if r["trigger"] == "after"]
    for r in followers:
        await engine.wait_run(r["id"])
    return log.read_text().split(), [engine.get_run(r["id"]) for r in followers]


async def test_after_runs_on_success(start_engine, tmp_path):
    ran, followers = await _chain_of(start_engine, tmp_path, "true")
    assert ran == ["build", "ship-build-succeeded"]
    assert [(r["job"], r["requested_by"], r["state"]) for r in followers] == [
        ("ship", "after build #1", "succeeded")]


async def test_after_failure_runs_on_failure(start_engine, tmp_path):
    ran, followers = await _chain_of(start_engine, tmp_path, "exit 2")
    assert ran == ["build", "page"]
    assert [r["job"] for r in followers] == ["page"]


@pytest.mark.parametrize(("text", "message"), [
    ('[jobs.a]\ncommand = "true"\nafter = ["bulid"]\n\n[jobs.build]\ncommand = "true"\n',
     "c.toml:3: jobs.a.after: after names 'bulid', which is no job (did you mean "
     "'build'?)"),
    ('[jobs.a]\ncommand = "true"\nafter = ["b"]\n\n[jobs.b]\ncommand = "true"\n'
     'after_failure = ["a"]\n',
     "c.toml:3: jobs.a.after: the jobs' after chains form a cycle: a -> b -> a"),
])
def test_check_config_names_a_bad_chain(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config_text(text, "c.toml")
    assert str(e.value) == message
