"""Following real files like tail -F, a command's output as a source, and a log rule's
alert through the real alerts pipeline."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from core.fleetconfig import Config
from core.jobs.config import EngineSettings
from core.logs.follow import Follower, GlobFollower
from core.logs.monitor import LogMonitor
from core.logs.rules import RuleSpec, parse_threshold
from core.logs.sources import SourceSpec
from core.remote.config import Host
from tests.helpers import has_open, opened_anywhere, until_async

POLL = 0.05


class Collected:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, path: str, block: bytes) -> None:
        assert block.endswith(b"\n")  # complete lines only
        self.lines.extend(block.decode()[:-1].split("\n"))


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


async def test_follow_survives_rotation_truncation_and_recreation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("old line, before we started\n")
    got = Collected()
    f = Follower(str(log), got, poll=POLL)
    task = asyncio.ensure_future(f.run())
    try:
        await until_async(lambda: has_open(log), "the follower to open the file (at its end)")
        append(log, "one\ntw")
        await until_async(lambda: got.lines == ["one"], "one")
        append(log, "o\n")  # a line written in two parts arrives whole
        await until_async(lambda: got.lines == ["one", "two"], "two")
        # rotation by rename: the rest of the old file, then the new one from its start
        append(log, "last of the old file\n")
        os.rename(log, tmp_path / "app.log.1")
        append(tmp_path / "app.log.1", "late write to the old file\n")
        log.write_text("first of the new file\n")
        await until_async(lambda: got.lines[-1] == "first of the new file", "rotation")
        assert got.lines[2:] == ["last of the old file", "late write to the old file",
                                 "first of the new file"]
        assert f.rotations == 1
        # truncation in place (copytruncate)
        log.write_text("")
        await until_async(lambda: f.truncations == 1, "the truncation seen")
        append(log, "after truncate\n")
        await until_async(lambda: got.lines[-1] == "after truncate", "truncation")
        assert f.truncations == 1
        # deleted, then created again later
        log.unlink()
        await until_async(lambda: f.rotations == 2, "the deletion seen")  # and the file closed
        log.write_text("reborn\n")
        await until_async(lambda: got.lines[-1] == "reborn", "recreation")
        assert "old line, before we started" not in got.lines  # tail -F -n0
    finally:
        task.cancel()


async def test_a_file_that_does_not_exist_yet_and_a_glob(tmp_path: Path) -> None:
    got = Collected()
    later = Follower(str(tmp_path / "later.log"), got, poll=POLL)
    tasks = [asyncio.ensure_future(later.run())]
    (tmp_path / "a.log").write_text("a: before\n")
    glob = GlobFollower(str(tmp_path / "*.log"), got, poll=POLL, rescan=0.1)
    tasks.append(asyncio.ensure_future(glob.run()))
    try:
        # a.log open means the glob's first scan ran (and `later` looked once, in the same
        # loop turn): a.log is followed from its end, later.log will be read from its start
        await until_async(lambda: has_open(tmp_path / "a.log"), "the glob to follow a.log")
        (tmp_path / "later.log").write_text("later: hello\n")  # also matches the glob
        (tmp_path / "b.log").write_text("b: new file\n")
        append(tmp_path / "a.log", "a: appended\n")
        await until_async(lambda: {"later: hello", "b: new file", "a: appended"}
                          <= set(got.lines), "the glob's new files")
        assert got.lines.count("later: hello") == 2  # its own follower and the glob's
        assert "a: before" not in got.lines
        assert sorted(os.path.basename(p) for p in glob.tasks) == ["a.log", "b.log",
                                                                   "later.log"]
    finally:
        for t in tasks:
            t.cancel()


async def test_a_rule_on_a_followed_file_raises_an_alert(start_engine, tmp_path) -> None:
    from core.events import RuleChanged
    from core.services import attach_alerts

    log = tmp_path / "svc.log"
    log.write_text("")
    sources = {"svc": SourceSpec("svc", path=str(log)),
               "cmd": SourceSpec("cmd", command="echo 'ERROR from a command'; sleep 30")}
    rules = {"errors": RuleSpec("errors", ("svc",), parse_threshold("> 2 in 60s"),
                                level="error")}
    cfg = Config(path=None, hosts={"local": Host("local")}, jobs={},
                 engine=EngineSettings(), sources=sources, rules=rules)
    changes: list[RuleChanged] = []
    mon = LogMonitor(poll=POLL)

    def before(engine: Any) -> None:
        attach_alerts(engine)
        engine.add_service(mon)
        engine.bus.subscribe(lambda e: changes.append(e) if isinstance(e, RuleChanged)
                             else None)

    engine, rec = await start_engine(cfg, scheduling=False, before_start=before)
    await until_async(lambda: has_open(log), "the monitor to follow svc.log")
    append(log, "INFO fine\nERROR a\n[error] b\nlevel=fatal c\n")
    await until_async(lambda: changes, "the rule to fire")
    assert (changes[0].rule, changes[0].source, changes[0].firing) == ("errors", "svc", True)
    await until_async(lambda: engine.alerts.list_alerts(), "the alert")
    (alert,) = engine.alerts.list_alerts()
    assert alert["status"] == "firing" and "errors" in alert["what"]
    await until_async(lambda: mon.sources["cmd"].counts.get("error") == 1, "the command's line")
    assert mon.recent("svc")[-1][1:] == ("error", "level=fatal c")
    assert [e.kind for e in rec.events if e.kind == "log_lines"]

    # a reload that drops the rule resolves its alert; the sources keep following
    import dataclasses

    summary = engine.apply_config(dataclasses.replace(cfg, rules={}))
    assert summary["services"] == ["rule errors"]
    await until_async(lambda: not engine.alerts.list_alerts(), "the alert resolved")
    (gone,) = engine.alerts.list_alerts(include_resolved=True)
    assert gone["status"] == "resolved" and "removed by a config reload" in str(gone)
    append(log, "ERROR after the reload\n")
    await until_async(lambda: mon.recent("svc")[-1][2] == "ERROR after the reload", "following")


async def test_a_remote_file_over_ssh_survives_rotation(start_engine, tmp_path) -> None:
    from core.remote.runs import set_engine_pool
    from tests.sshd import host, make_keys, make_pool, start_servers

    keys = make_keys(tmp_path / "keys")
    known = tmp_path / "known"
    (server,) = await start_servers(keys, 1, known)
    log = tmp_path / "remote.log"
    log.write_text("before\n")
    sources = {"web": SourceSpec("web", path=str(log), host="web1")}
    cfg = Config(path=None, hosts={"local": Host("local"),
                                   "web1": host("web1", server.port)},
                 jobs={}, engine=EngineSettings(), sources=sources)
    mon = LogMonitor(poll=POLL)

    def before(engine: Any) -> None:
        set_engine_pool(engine, make_pool(keys, known))
        engine.add_service(mon)

    try:
        await start_engine(cfg, scheduling=False, before_start=before)

        def lines() -> list[str]:
            return [text for _t, _l, text in mon.recent("web")]

        await until_async(lambda: server.commands, "the tail to start on the host")
        await until_async(lambda: opened_anywhere(log), "tail -F to open the file on the host")
        append(log, "ERROR one\n")
        await until_async(lambda: lines() == ["ERROR one"], "a line from the host")
        os.rename(log, tmp_path / "remote.log.1")
        log.write_text("after rotation\n")
        await until_async(lambda: lines()[-1:] == ["after rotation"], "rotation on the host")
        assert "before" not in lines()
        assert len(server.commands) == 1  # one long-lived stream
    finally:
        await server.stop()
