"""Secrets in a job's environment: `${NAME}` and `${file:PATH}` filled in at each run,
and found nowhere afterwards: not in the state directory (history, logs, job state, the
index), not in the audit trail, not in any event."""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

from core.api import Actor
from tests.helpers import job, make_config

FROM_ENV = "env-secret-5c1d2e3f4a"
FROM_FILE = "file-secret-9b8a7c6d5e"


def everything_written(state_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state_dir.rglob("*") if p.is_file())


async def test_a_secret_reaches_the_run_and_nothing_else(start_engine, state_dir, tmp_path,
                                                         monkeypatch):
    monkeypatch.setenv("FLEETDECK_TEST_TOKEN", FROM_ENV)
    secret_file = tmp_path / "token"
    secret_file.write_text(FROM_FILE + "\n")
    secret_file.chmod(0o600)
    seen = tmp_path / "seen"
    command = f'echo "t=$TOKEN f=$FROMFILE"; echo "$TOKEN" >&2; echo "$TOKEN $FROMFILE" > {seen}'
    config = make_config(job("deploy", command, env={
        "TOKEN": "${FLEETDECK_TEST_TOKEN}", "FROMFILE": f"${{file:{secret_file}}}"}))
    engine, rec = await start_engine(config, scheduling=False)
    (run,) = await engine.run_job("deploy", actor=Actor.local("cli"))
    done = await engine.wait_run(run["id"])
    assert done["state"] == "succeeded", done["reason"]
    assert seen.read_text().split() == [FROM_ENV, FROM_FILE]  # the run had them
    log = engine.run_log_path(run["id"]).read_text()
    assert "t=*** f=***" in log
    await engine.stop()
    events = json.dumps([dataclasses.asdict(e) for e in rec.events], default=str)
    for secret in (FROM_ENV, FROM_FILE):
        assert secret not in events
        assert secret.encode() not in everything_written(state_dir)
    assert "${FLEETDECK_TEST_TOKEN}" not in log  # masked values, not references


async def test_a_secret_that_cannot_be_filled_in_fails_the_run_naming_it(
        start_engine, tmp_path, monkeypatch):
    monkeypatch.delenv("FLEETDECK_NOPE", raising=False)
    shared = tmp_path / "shared"
    shared.write_text("not-so-secret")
    shared.chmod(0o644)
    config = make_config(job("a", "true", env={"X": "${FLEETDECK_NOPE}"}),
                         job("b", "true", env={"X": f"${{file:{shared}}}"}))
    engine, _rec = await start_engine(config, scheduling=False)
    (a,) = await engine.run_job("a", actor=Actor.local("cli"))
    (b,) = await engine.run_job("b", actor=Actor.local("cli"))
    a, b = await engine.wait_run(a["id"]), await engine.wait_run(b["id"])
    assert (a["state"], a["reason"]) == (
        "failed", "cannot start: environment variable FLEETDECK_NOPE is not set")
    assert b["state"] == "failed"
    assert b["reason"] == (f"cannot start: secret file {shared}: readable by others "
                           "(mode 0644); chmod 600 it")
    assert "not-so-secret" not in b["reason"]


async def test_a_secret_of_several_lines_is_masked_line_by_line(start_engine, state_dir,
                                                               tmp_path):
    """A private key in a ${file:} is printed line by line: each of its lines is masked
    in the log, the events and the state, not only the whole value (which no line of
    output ever equals)."""
    body = ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "QyNTUxOQAAACDx9Tq2ZnU0bXlmYWtla2V5Zm9ydGVzdHNvbmx5AAAAoJ1dZmFrZQAAAAtz"]
    key = tmp_path / "id_test"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(body)
                   + "\n-----END OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o600)
    config = make_config(job("leak", 'printf "%s\\n" "$KEY"; echo "k=$KEY" >&2',
                             env={"KEY": f"${{file:{key}}}"}))
    engine, rec = await start_engine(config, scheduling=False)
    (run,) = await engine.run_job("leak", actor=Actor.local("cli"))
    done = await engine.wait_run(run["id"])
    assert done["state"] == "succeeded", done["reason"]
    log = engine.run_log_path(run["id"]).read_text()
    assert log.count("***") >= 2 * len(body)  # stdout and stderr
    await engine.stop()
    events = json.dumps([dataclasses.asdict(e) for e in rec.events], default=str)
    for line in body:
        assert line not in log and line not in events
        assert line.encode() not in everything_written(state_dir)


async def test_a_secret_file_that_is_no_text_fails_the_run_naming_it(start_engine,
                                                                    tmp_path):
    nul, latin = tmp_path / "nul", tmp_path / "latin"
    nul.write_bytes(b"abc\0def")
    latin.write_bytes(b"caf\xe9-secret")
    for f in (nul, latin):
        f.chmod(0o600)
    config = make_config(job("a", "true", env={"X": f"${{file:{nul}}}"}),
                         job("b", "true", env={"X": f"${{file:{latin}}}"}))
    engine, _rec = await start_engine(config, scheduling=False)
    (a,) = await engine.run_job("a", actor=Actor.local("cli"))
    (b,) = await engine.run_job("b", actor=Actor.local("cli"))
    a, b = await engine.wait_run(a["id"]), await engine.wait_run(b["id"])
    assert (a["state"], a["reason"]) == (
        "failed", f"cannot start: secret file {nul}: holds a NUL byte")
    assert (b["state"], b["reason"]) == (
        "failed", f"cannot start: secret file {latin}: not UTF-8 text")


async def test_a_secret_never_reaches_the_screen(state_dir, tmp_path, monkeypatch):
    """The console, as a person sees it: the run's output screen and the Runs screen
    captured as SVG and as text hold the mask, never the value."""
    from textual.widgets import DataTable

    from tests.helpers import command, console_app, pilot_until, ready
    from tui.screens.run_log import RunLogScreen

    monkeypatch.setenv("FLEETDECK_TEST_TOKEN", FROM_ENV)
    config = make_config(job("deploy", 'echo "token is $TOKEN"; echo "$TOKEN" >&2',
                             env={"TOKEN": "${FLEETDECK_TEST_TOKEN}"}))
    app = console_app(config, state_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await command(pilot, ":run deploy")
        await pilot_until(pilot, lambda: not app.engine.queue(), "the run to end")
        captures = []
        await pilot.press("4")
        table = app.screen.query_one(DataTable)
        await pilot_until(pilot, lambda: table.row_count == 1, "the run listed")
        captures.append(app.export_screenshot())
        table.focus()
        await pilot.press("enter")
        await pilot_until(pilot, lambda: isinstance(app.screen, RunLogScreen), "its output")
        await pilot_until(pilot, lambda: "token is ***" in _text(app),
                          lambda: f"the masked line on screen: {_text(app)[-400:]}")
        captures += [app.export_screenshot(), _text(app)]
    for capture in captures:
        assert FROM_ENV not in capture


def _text(app) -> str:
    """A screenshot's text, entities decoded (the SVG writes spaces as &#160;)."""
    return html.unescape(app.export_screenshot()).replace("\xa0", " ")
