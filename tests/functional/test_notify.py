"""Notifications for real: an HTTP receiver on 127.0.0.1 that fails on purpose, engines
stopped and started again on the same state, a command notifier, secrets from the
environment that must never reach a file."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.events import CheckChanged
from core.fleetconfig import parse_config_text
from core.jobs.engine import Engine
from core.services import attach_alerts
from tests.helpers import check_down, until_async

SECRET = "s3cr3t-7f1e9a-token"
URL_SECRET = "u9q-url-secret-55"


class Receiver:
    """A webhook receiver: answers 500 to the first `fail_first` requests (or to all
    while `failing`), 200 after; records every request."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.failing = False
        self.fail_status, self.fail_headers = 500, {}  # what a failing answer says
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    fail = outer.failing or len(outer.requests) < outer.fail_first
                    outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "body": json.loads(body), "ok": not fail,
                                           "at": time.time()})
                self.send_response(outer.fail_status if fail else 200)
                for name, value in (outer.fail_headers if fail else {}).items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ok(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["ok"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def config(port: int, extra: str = "") -> Any:
    return parse_config_text(f"""
[alerts]
retry_backoff = "100ms"
retry_backoff_max = "400ms"

[notifiers.hook]
kind = "webhook"
url = "http://127.0.0.1:{port}/hook"
timeout = "5s"
{extra}
""", "test.toml")


async def start(cfg: Any, state_dir: Path) -> Engine:
    engine = Engine(cfg, state_dir)
    attach_alerts(engine)
    await engine.start(scheduling=False)
    return engine


def down(check: str = "http", target: str = "local", old: str = "up") -> CheckChanged:
    return check_down(check, target, "HTTP 500 in 31 ms", old=old, at=1_000.0)


def pending(engine: Engine) -> list[dict[str, Any]]:
    return engine.alerts.book.outbox.pending()


async def test_webhook_failing_first_deliveries_is_delivered_exactly_once(state_dir,
                                                                           receiver):
    receiver.fail_first = 3
    engine = await start(config(receiver.port), state_dir)
    try:
        engine.bus.publish(down())
        await until_async(lambda: receiver.ok(), "a delivery")
        await until_async(lambda: not pending(engine), "the outbox to empty")
        assert len(receiver.requests) == 4 and len(receiver.ok()) == 1
        keys = {r["headers"]["Idempotency-Key"] for r in receiver.requests}
        # every attempt carries the same key, with this installation's id in it
        assert keys == {f"fleetdeck-{engine.store.install_id[:12]}-1-1-hook"}
        body = receiver.ok()[0]["body"]
        assert body["event"] == "firing" and body["alert"]["source"] == "http"
        assert body["text"].startswith("[fleetdeck] FIRING #1 check http on local (down)")
        (entry,) = engine.alerts.get_alert(1)["notifications"]
        assert entry["state"] == "delivered" and entry["attempts"] == 4
        # recovery notifies once more, as "resolved"
        engine.bus.publish(CheckChanged("http", "local", "down", "up", 1_060.0, "HTTP 200"))
        await until_async(lambda: len(receiver.ok()) == 2, "the resolution")
        assert receiver.ok()[1]["body"]["event"] == "resolved"
    finally:
        await engine.stop()


async def test_restart_between_opening_and_delivery_delivers_once(state_dir, receiver):
    receiver.failing = True
    cfg = config(receiver.port)
    engine = await start(cfg, state_dir)
    engine.bus.publish(down())
    await until_async(lambda: receiver.requests, "a first (failed) attempt")
    await engine.stop()
    assert receiver.ok() == []
    stored = json.loads((state_dir / "alerts" / "alerts.json").read_text())
    assert [e["state"] for e in stored["outbox"].values()] == ["pending"]

    receiver.failing = False
    engine = await start(cfg, state_dir)  # a new engine on the same state
    try:
        await until_async(lambda: receiver.ok(), "delivery after the restart")
        await until_async(lambda: not pending(engine), "the outbox to empty")
        # the monitor, restarted too, says "down" again: the alert is already open
        engine.bus.publish(down(old="pending"))
        await asyncio.sleep(0)
        assert [a["id"] for a in engine.alerts.list_alerts()] == [1]
        assert pending(engine) == []
    finally:
        await engine.stop()
    engine = await start(cfg, state_dir)  # and once more: nothing is sent again
    try:
        assert pending(engine) == []
        assert len(receiver.ok()) == 1
    finally:
        await engine.stop()
    assert len(receiver.ok()) == 1


@pytest.fixture
def fleetdeck_log():
    """The `fleetdeck` logger as setup_logging leaves it, restored afterwards (it stops
    propagating, which other tests' caplog needs)."""
    logger = logging.getLogger("fleetdeck")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    handlers, level, propagate = saved
    for h in handlers:
        logger.addHandler(h)
    logger.setLevel(level)
    logger.propagate = propagate


async def test_secret_headers_reach_the_receiver_and_no_file(state_dir, receiver,
                                                             monkeypatch, fleetdeck_log):
    from core.enginelog import setup_logging

    monkeypatch.setenv("FD_TEST_TOKEN", SECRET)
    monkeypatch.setenv("FD_TEST_URL_TOKEN", URL_SECRET)
    receiver.fail_first = 2
    cfg = parse_config_text(f"""
[alerts]
retry_backoff = "100ms"

[notifiers.hook]
kind = "webhook"
url = "http://127.0.0.1:{receiver.port}/hook?token=${{FD_TEST_URL_TOKEN}}"
headers = {{ Authorization = "Bearer ${{FD_TEST_TOKEN}}", X-Team = "ops" }}

[notifiers.unset]
kind = "webhook"
url = "http://127.0.0.1:{receiver.port}/other"
headers = {{ Authorization = "Bearer ${{FD_TEST_NOT_SET}}" }}

[notifiers.garbled]
kind = "webhook"
url = "${{FD_TEST_BAD_URL}}"

[notifiers.badheader]
kind = "webhook"
url = "http://127.0.0.1:{receiver.port}/hdr"
headers = {{ X-Token = "${{FD_TEST_BAD_HEADER}}" }}
""", "test.toml")
    monkeypatch.setenv("FD_TEST_BAD_URL", f"http://[{SECRET}/")
    monkeypatch.setenv("FD_TEST_BAD_HEADER", f"{URL_SECRET}\r\nX-Evil: 1")
    state_dir.mkdir(mode=0o700)
    setup_logging(state_dir)
    fleetdeck_log.setLevel(logging.DEBUG)
    engine = await start(cfg, state_dir)
    try:
        engine.bus.publish(down())
        await until_async(lambda: receiver.ok(), "a delivery")
        got = receiver.ok()[0]
        assert got["headers"]["Authorization"] == f"Bearer {SECRET}"
        assert got["headers"]["X-Team"] == "ops"
        assert got["path"] == f"/hook?token={URL_SECRET}"

        def attempted(notifier: str) -> list[dict[str, Any]]:
            return [e for e in engine.alerts.get_alert(1)["notifications"]
                    if e["notifier"] == notifier and e["attempts"] >= 1]

        await until_async(lambda: attempted("unset"), "the unset notifier's attempt")
        unset = [e for e in engine.alerts.get_alert(1)["notifications"]
                 if e["notifier"] == "unset"]
        assert unset[0]["last_error"] == "environment variable FD_TEST_NOT_SET is not set"
        garbled = await until_async(lambda: attempted("garbled"),
                                    "the garbled notifier's attempt")
        assert garbled[0]["last_error"] == "the url is not a valid http(s) URL once expanded"
        bad = await until_async(lambda: attempted("badheader"), "the bad header's attempt")
        assert bad[0]["last_error"] == ("the request cannot be made; check the url and "
                                        "headers once expanded")
        assert not [r for r in receiver.requests if r["path"] == "/hdr"]
    finally:
        await engine.stop()
    for handler in fleetdeck_log.handlers:
        handler.flush()
    files = [p for p in state_dir.rglob("*") if p.is_file()]
    assert any(p.name == "fleetdeck.log" for p in files)
    log_text = (state_dir / "fleetdeck.log").read_text()
    assert re.search(r"notification fleetdeck-[0-9a-f]{12}-1-1-hook via hook failed", log_text)
    for path in files:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert URL_SECRET.encode() not in data, path


async def test_command_notifier_gets_the_alert_in_env_and_is_retried(state_dir, tmp_path,
                                                                     monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("FD_OUT", str(out))
    # fails the first time (no marker yet), then writes what it was given
    script = ('test -f "$FD_OUT/tried" || { touch "$FD_OUT/tried"; echo busy >&2; exit 3; }; '
              'env | grep ^FLEETDECK_ALERT_ | sort '
              '> "$FD_OUT/$FLEETDECK_ALERT_EVENT-$FLEETDECK_ALERT_ID.env"')
    cfg = parse_config_text(f"""
[alerts]
retry_backoff = "100ms"

[notifiers.script]
kind = "command"
command = '{script}'
""", "test.toml")
    engine = await start(cfg, state_dir)
    try:
        engine.bus.publish(CheckChanged("disk", "db1", "up", "warn", 1_000.0,
                                        "disk 96% ≥ 95%", "warn", "disk ≥ 95%"))
        path = out / "firing-1.env"
        await until_async(lambda: path.exists() and not pending(engine), "the command's delivery")
        env = dict(line.split("=", 1) for line in path.read_text().splitlines())
        assert env["FLEETDECK_ALERT_SOURCE"] == "disk"
        assert env["FLEETDECK_ALERT_TARGET"] == "db1"
        assert env["FLEETDECK_ALERT_SEVERITY"] == "warn"
        assert env["FLEETDECK_ALERT_CONDITION"] == "warn"  # over a threshold, not down
        assert env["FLEETDECK_ALERT_STATE"] == "firing"
        assert env["FLEETDECK_ALERT_DETAIL"] == "disk 96% ≥ 95%"
        assert env["FLEETDECK_ALERT_KEY"] == f"fleetdeck-{engine.store.install_id[:12]}-1-1-script"
        (entry,) = engine.alerts.get_alert(1)["notifications"]
        assert entry["attempts"] == 2 and entry["state"] == "delivered"
        engine.bus.publish(CheckChanged("disk", "db1", "warn", "up", 1_060.0, "disk 80%"))
        path = out / "resolved-1.env"
        await until_async(lambda: path.exists() and not pending(engine), "the resolution")
        env = dict(line.split("=", 1) for line in path.read_text().splitlines())
        assert env["FLEETDECK_ALERT_RESOLUTION"] == "disk 80%"
        assert env["FLEETDECK_ALERT_DETAIL"] == "disk 96% ≥ 95%"  # what was wrong, kept
        assert env["FLEETDECK_ALERT_SUMMARY"] == (
            "[fleetdeck] RESOLVED #1 check disk on db1 (warn): disk 80% (was: disk 96% ≥ 95%)")
    finally:
        await engine.stop()


async def test_a_failing_job_that_asks_opens_an_alert_and_success_resolves_it(
        state_dir, tmp_path, receiver):
    mark = tmp_path / "healthy"
    cfg = config(receiver.port, f"""
[jobs.backup]
command = "test -f {mark}"
alert_on = ["failed"]

[jobs.quiet]
command = "false"
""")
    engine = await start(cfg, state_dir)
    try:
        seen: list[Any] = []
        engine.bus.subscribe(lambda e: seen.append(e) if e.kind == "alert_changed" else None)
        for name in ("backup", "quiet"):
            (run,) = await engine.run_job(name)
            await engine.wait_run(run["id"])
        (alert,) = engine.alerts.list_alerts()
        assert alert["kind"] == "job_failed" and alert["source"] == "backup"
        assert alert["detail"] == "run #1 failed: exit code 1"
        await until_async(lambda: receiver.ok(), "the firing notification")
        mark.write_text("")
        (run,) = await engine.run_job("backup")
        await engine.wait_run(run["id"])
        await until_async(lambda: len(receiver.ok()) == 2, "the resolution")
        assert [r["body"]["event"] for r in receiver.ok()] == ["firing", "resolved"]
        assert [e.action for e in seen] == ["opened", "resolved"]
        assert engine.alerts.list_alerts() == []
    finally:
        await engine.stop()


def test_state_dir_stays_private(state_dir):
    # the alerts folder is created 0700 like the rest of the state
    from core.alerts.book import AlertBook

    AlertBook(state_dir, None, lambda: 0.0).close()
    assert os.stat(state_dir / "alerts").st_mode & 0o777 == 0o700


async def test_slack_body_and_a_runtime_maintenance_window(state_dir, receiver):
    cfg = parse_config_text(f"""
[hosts.web1]
[hosts.web2]

[notifiers.slack]
kind = "webhook"
url = "http://127.0.0.1:{receiver.port}/slack"
slack = true
""", "test.toml")
    engine = await start(cfg, state_dir)
    try:
        manager = engine.alerts
        window = await manager.add_maintenance("deploy", targets="web1", duration="1h",
                                               reason="rolling deploy")
        assert window["end"] - window["start"] == 3600
        assert manager.in_maintenance("http", "web1") == "deploy"
        assert manager.in_maintenance("http", "web2") is None
        engine.bus.publish(down("http", "web1"))
        engine.bus.publish(down("http", "web2"))
        await until_async(lambda: receiver.ok(), "web2's notification")
        await until_async(lambda: not pending(engine), "the outbox to empty")
        assert [r["body"] for r in receiver.ok()] == [
            {"text": "[fleetdeck] FIRING #2 check http on web2 (down): HTTP 500 in 31 ms"}]
        statuses = {a["target"]: a["status"] for a in manager.list_alerts()}
        assert statuses == {"web1": "maintenance", "web2": "firing"}
        for bad, message in [
            ({"targets": "nosuch", "duration": "1h"}, "targets: "),
            ({"checks": ["http"], "duration": "soon"}, "bad duration 'soon'"),
            ({"checks": ["http"], "schedule": "0 2 * * *"}, "needs a duration"),
            ({"duration": "1h"}, "needs targets, checks or both"),
        ]:
            with pytest.raises(ValueError, match=message):
                await manager.add_maintenance("w", **bad)
    finally:
        await engine.stop()
    # the window outlives the engine: it is in the state
    engine = await start(cfg, state_dir)
    try:
        assert engine.alerts.in_maintenance("http", "web1") == "deploy"
    finally:
        await engine.stop()


async def test_a_missed_schedule_opens_an_alert_when_the_job_asks(state_dir, receiver):
    import time

    from core.store import Store

    cfg = config(receiver.port, """
[jobs.tick]
command = "false"
schedule = "*/1 * * * *"
misfire = "skip"
misfire_grace = "5s"
alert_on = ["missed"]
""")  # `false`: if the test starts just after a minute, the on-time run must not resolve it
    store = Store.open(state_dir)  # the engine was down for the last ten minutes
    store.update_job_state("tick", first_seen=time.time() - 600)
    store.commit()
    store.close()
    engine = Engine(cfg, state_dir)
    attach_alerts(engine)
    await engine.start()
    try:
        await until_async(lambda: engine.alerts.list_alerts(), "the missed-schedule alert")
        (alert,) = engine.alerts.list_alerts()
        assert alert["kind"] == "job_missed" and alert["what"] == (
            "job missed schedule: tick on local")
        assert "missed while fleetdeck was down or busy (misfire=skip)" in alert["detail"]
        await until_async(lambda: receiver.ok(), "its notification")
        skipped = engine.list_runs(job="tick", states=["skipped"])
        assert len(skipped) >= 9  # one alert for all of them
        assert len(engine.alerts.list_alerts()) == 1 and len(receiver.ok()) == 1
    finally:
        await engine.stop()


@pytest.mark.parametrize(("status", "headers", "delay"), [
    (429, {"Retry-After": "30"}, 30.0),  # as the receiver asked
    (400, {}, 300.0),  # refused as such: the longest backoff, not the first one
    (500, {}, 10.0),  # the first backoff
])
async def test_a_failed_delivery_waits_what_the_answer_says(state_dir, receiver, status,
                                                            headers, delay):
    receiver.failing, receiver.fail_status, receiver.fail_headers = True, status, headers
    cfg = parse_config_text(f"""
[alerts]
retry_backoff = "10s"
retry_backoff_max = "5m"

[notifiers.hook]
kind = "webhook"
url = "http://127.0.0.1:{receiver.port}/hook"
timeout = "5s"
""", "test.toml")
    engine = await start(cfg, state_dir)
    try:
        engine.bus.publish(down())
        await until_async(lambda: pending(engine) and pending(engine)[0]["attempts"] == 1,
                          "the first attempt recorded")
        (entry,) = pending(engine)
        assert entry["last_error"].startswith(f"HTTP {status}")
        asked = receiver.requests[0]["at"]  # the failure came after this, within seconds
        assert delay - 5 <= entry["next_at"] - asked <= delay + 0.5, entry["next_at"] - asked
    finally:
        await engine.stop()
