"""`fleetdeck alerts`, `ack` and `silence` as a person runs them: real processes, a real
failing job opening the alert, a daemon delivering what another process queued."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.helpers import FLEETDECK, DaemonProcess, cli_env, start_daemon, stop_daemon, until


def config(tmp_path: Path) -> str:
    return f"""
[alerts]
retry_backoff = "100ms"

[notifiers.script]
kind = "command"
# the receiving end is "down" until the file `open` exists
command = 'test -f {tmp_path}/open && echo "$FLEETDECK_ALERT_SUMMARY" >> {tmp_path}/notified.txt'

[jobs.fail]
command = "echo going down >&2; exit 4"
alert_on = ["failed"]
"""


def fd(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.toml"
    if not cfg.exists():
        cfg.write_text(config(tmp_path))
    cmd = [*FLEETDECK, "--state-dir", str(tmp_path / "state"), "--config", str(cfg), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=cli_env(tmp_path))


def alerts(tmp_path: Path, *extra: str) -> list[dict]:
    out = fd(tmp_path, "alerts", "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_alerts_ack_and_silence(tmp_path):
    assert alerts(tmp_path) == []
    assert fd(tmp_path, "run", "fail").returncode == 4
    (alert,) = alerts(tmp_path)
    assert (alert["id"], alert["status"], alert["what"]) == (1, "firing", "job fail on local")
    listing = fd(tmp_path, "alerts")
    assert "#1" in listing.stdout and "firing" in listing.stdout
    assert "run #1 failed: exit code 4" in listing.stdout

    ack = fd(tmp_path, "ack", "1")
    assert ack.returncode == 0, ack.stderr
    assert ack.stdout.startswith("alert #1 (job fail on local) acknowledged by ")
    assert alerts(tmp_path)[0]["status"] == "acknowledged"
    again = fd(tmp_path, "ack", "#1")
    assert again.returncode == 2
    assert again.stderr.startswith("fleetdeck: alert #1 is already acknowledged by ")
    assert again.stderr.count("\n") == 1
    missing = fd(tmp_path, "ack", "99")
    assert (missing.returncode, missing.stderr) == (2, "fleetdeck: no alert #99\n")
    for verb in ("remediate", "ack"):  # remediate was a traceback without a daemon
        missing = fd(tmp_path, verb, "#99999999999999999999")
        assert (missing.returncode, missing.stderr) == (
            2, "fleetdeck: no alert #99999999999999999999\n")
    bad_id = fd(tmp_path, "ack", "one")
    assert bad_id.returncode == 2 and "not an alert id: 'one'" in bad_id.stderr

    sil = fd(tmp_path, "silence", "fail", "2h")
    assert sil.returncode == 0, sil.stderr
    assert sil.stdout.startswith("silenced fail until ") and "(alerts: #1)" in sil.stdout
    typo = fd(tmp_path, "silence", "fial", "2h")  # silenced nothing, and said it did
    assert (typo.returncode, typo.stderr) == (
        2, "fleetdeck: bad silence target 'fial': no check, rule, job or host named "
           "'fial'\n")
    listed = fd(tmp_path, "silences")
    assert listed.stdout.splitlines()[0].split() == ["TARGET", "UNTIL", "BY", "SINCE"]
    assert listed.stdout.splitlines()[1].startswith("fail ")
    assert alerts(tmp_path)[0]["status"] == "acknowledged"  # acked before: stays so
    wrong = fd(tmp_path, "unsilence", "fial")
    assert (wrong.returncode, wrong.stderr) == (
        2, "fleetdeck: no silence in force on 'fial'; silenced now: fail\n")
    ended = fd(tmp_path, "unsilence", "fail")
    assert (ended.returncode, ended.stdout) == (0, "silence on fail ended (alerts: #1)\n")
    assert fd(tmp_path, "silences").stdout == "no silences in force\n"
    assert json.loads(fd(tmp_path, "silences", "--json").stdout) == []
    bad = fd(tmp_path, "silence", "fail", "soon")
    assert bad.returncode == 2
    assert bad.stderr == ("fleetdeck: bad duration 'soon'; write e.g. '90s', '5m', '1h30m' "
                          "(units: ms s m h d w)\n")
    assert "Traceback" not in bad.stderr


def test_a_daemon_delivers_what_a_run_queued_and_acts_go_through_it(tmp_path):
    assert fd(tmp_path, "run", "fail").returncode == 4
    notified = tmp_path / "notified.txt"
    assert not notified.exists()  # `run` tried to notify, and failed
    state = json.loads((tmp_path / "state" / "alerts" / "alerts.json").read_text())
    assert [e["state"] for e in state["outbox"].values()] == ["pending"]
    (tmp_path / "open").write_text("")
    cfg = tmp_path / "config.toml"
    daemon = start_daemon(cfg, tmp_path / "state", cli_env(tmp_path))
    try:
        assert "fleetdeck engine running" in daemon.out().splitlines()[0]
        until(lambda: notified.exists() and notified.read_text(), "the notification")
        assert notified.read_text() == (
            "[fleetdeck] FIRING #1 job fail on local (crit): run #1 failed: exit code 4\n")
        # listings work beside the daemon; acts go through its control socket
        assert alerts(tmp_path)[0]["id"] == 1
        ack = fd(tmp_path, "ack", "1")
        assert ack.returncode == 0, ack.stderr
        assert ack.stdout.startswith("alert #1 (job fail on local) acknowledged by ")
        assert fd(tmp_path, "silence", "fail", "1h").returncode == 0
        assert fd(tmp_path, "silences").stdout.splitlines()[1].startswith("fail ")
        ended = fd(tmp_path, "unsilence", "fail")
        assert ended.returncode == 0 and ended.stdout.startswith("silence on fail ended")
        audit = json.loads(fd(tmp_path, "audit", "--json").stdout)
        assert [(r["action"], r["targets"], r["via"][:6]) for r in audit] == [
            ("run", ["fail"], "cli"), ("ack", ["alert #1"], "socket"),
            ("silence", ["fail"], "socket"), ("unsilence", ["fail"], "socket")]
    finally:
        stop_daemon(daemon)
    state = json.loads((tmp_path / "state" / "alerts" / "alerts.json").read_text())
    assert [e["state"] for e in state["outbox"].values()] == ["delivered"]
    assert notified.read_text().count("FIRING") == 1


def test_daemon_prints_alerts_as_they_open(tmp_path):
    cfg = tmp_path / "config.toml"
    fixed = tmp_path / "fixed"
    cfg.write_text(f"""
[jobs.tick]
command = "test -e {fixed}"
schedule = "every 1s"
alert_on = ["failed"]
""")
    daemon = _daemon(tmp_path, cfg)
    try:
        line = until(lambda: next((line for line in daemon.out().splitlines()
                                   if "alert #1" in line), None), "the alert's line")
        assert "alert #1 opened job tick on local: run #1 failed: exit code 1" in line
        fixed.touch()
        line = until(lambda: next((line for line in daemon.out().splitlines()
                                   if "alert #1 resolved" in line), None), "the resolution")
        # what ended it first: the failure alone read as one more failure
        assert re.search(r"alert #1 resolved job tick on local: run #\d+ succeeded \(was: "
                         r"run #\d+ failed: exit code 1\)$", line), line
    finally:
        stop_daemon(daemon)
    (alert,) = alerts(tmp_path, "--all")
    assert (alert["what"], alert["status"]) == ("job tick on local", "resolved")
    assert re.fullmatch(r"run #\d+ succeeded", alert["resolution"])


def _daemon(tmp_path: Path, cfg: Path) -> DaemonProcess:
    """A daemon that prints its runs and alerts."""
    return start_daemon(cfg, tmp_path / "state", cli_env(tmp_path), quiet=False)


def test_daemon_killed_before_delivery_delivers_once_after_restart(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(config(tmp_path) + """
[jobs.tick]
command = "exit 1"
schedule = "every 1s"
overlap = "skip"
alert_on = ["failed"]
""")
    outbox = tmp_path / "state" / "alerts" / "alerts.json"
    daemon = _daemon(tmp_path, cfg)
    try:
        until(lambda: "alert #1 opened" in daemon.out(), "the alert to open")

        def attempted() -> bool:  # the receiving end is down: attempts fail, are recorded
            state = json.loads(outbox.read_text()) if outbox.exists() else {}
            return any(e["attempts"] >= 1 for e in state.get("outbox", {}).values())

        until(attempted, "a failed delivery attempt on record")
    finally:
        daemon.kill()  # SIGKILL: no clean stop, no last delivery pass
        daemon.wait(timeout=30)
    state = json.loads(outbox.read_text())
    assert [e["state"] for e in state["outbox"].values()] == ["pending"]
    notified = tmp_path / "notified.txt"
    assert not notified.exists()
    (tmp_path / "open").write_text("")
    daemon = _daemon(tmp_path, cfg)
    try:
        until(lambda: notified.exists() and notified.read_text(), "the notification")
    finally:
        stop_daemon(daemon)
    assert notified.read_text().count("FIRING #1 job tick on local") == 1
    assert notified.read_text().count("\n") == 1  # one alert, one notification


def test_a_daemon_resolves_the_alert_of_a_check_gone_from_its_config(tmp_path):
    """Removed (or disabled) while no daemon ran: a reload resolved it, a daemon's start
    left it firing for good, since nothing samples that check again."""
    import time

    from core.alerts.book import AlertBook

    book = AlertBook(tmp_path / "state", None, time.time)
    for check in ("kept", "gone", "off"):
        book.check_changed(check, "local", "up", "down", time.time(), "connection refused")
    book.close()
    cfg = tmp_path / "config.toml"
    cfg.write_text(config(tmp_path) + '[checks.kept]\nkind = "tcp"\nport = 1\n'
                   '[checks.off]\nkind = "tcp"\nport = 1\nenabled = false\n')
    daemon = start_daemon(cfg, tmp_path / "state", cli_env(tmp_path))
    try:
        until(lambda: [a["source"] for a in alerts(tmp_path)] == ["kept"],
              lambda: f"only kept's alert open ({[a['source'] for a in alerts(tmp_path)]})")
    finally:
        stop_daemon(daemon)
