"""File-change triggers on real files: a burst of writes runs the job once, with the
changed paths in its environment."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from core.config import ConfigError
from core.fleetconfig import parse_config_text
from core.logs.triggers import ChangeTriggers, matches, watch_root
from tests.helpers import inotify_watches, job, make_config, until_async


def test_watch_roots_and_matching(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    assert watch_root(f"{tmp_path}/etc/*.conf") == f"{tmp_path}/etc"
    assert watch_root(f"{tmp_path}/etc/app.conf") == f"{tmp_path}/etc"
    assert watch_root(f"{tmp_path}/later/sub/*.conf") == str(tmp_path)  # nearest existing
    assert matches("/etc/app/a.conf", "/etc/app/*.conf")
    assert not matches("/etc/app/sub/a.conf", "/etc/app/*.conf")
    assert matches("/srv/data/x/y", "/srv/data")  # a directory covers what is under it


def test_on_change_paths_must_be_absolute() -> None:
    with pytest.raises(ConfigError, match="jobs.reload.on_change: on_change paths must be "
                                          "absolute, got 'etc/app.conf'"):
        parse_config_text('[jobs.reload]\ncommand = "true"\non_change = ["etc/app.conf"]\n',
                          "c.toml")


async def test_a_burst_of_writes_runs_the_job_once(start_engine, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    out = tmp_path / "changed.txt"
    cfg = make_config(job("reload", f'printf "%s" "$FLEETDECK_CHANGED_PATHS" > {out}',
                          on_change=(f"{conf}/*.conf",), change_debounce=0.3))
    triggers = ChangeTriggers()
    engine, rec = await start_engine(cfg, scheduling=False,
                                     before_start=lambda e: e.add_service(triggers))
    # the folder watched (inotify), and the watcher's thread waiting for what comes
    await until_async(lambda: conf.stat().st_ino in inotify_watches() and any(
        t.name == "AnyIO worker thread" for t in threading.enumerate()), "the watch set up")
    for i in range(20):  # a burst: many writes to two files, and one that does not match
        (conf / "a.conf").write_text(f"a={i}\n")
        (conf / "b.conf").write_text(f"b={i}\n")
        (conf / "notes.txt").write_text("ignored\n")
    await until_async(lambda: engine.list_runs(job="reload", states=["succeeded"]),
                      "the run")
    # the burst is over: a second run (a debounce that let it through twice) would start
    # well within a second (debounce 0.3 s); only time passing can show none does
    await asyncio.sleep(1.0)
    runs = engine.list_runs(job="reload")
    assert [(r["trigger"], r["state"]) for r in runs] == [("change", "succeeded")]
    assert out.read_text().splitlines() == [f"{conf}/a.conf", f"{conf}/b.conf"]
    (conf / "a.conf").write_text("later\n")  # a later change runs it again
    await until_async(lambda: len(engine.list_runs(job="reload")) >= 2, "the second run")
    assert len(engine.list_runs(job="reload")) == 2
