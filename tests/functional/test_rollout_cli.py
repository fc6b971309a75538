"""A rolling fan-out as a person runs it (`fleetdeck fanout --serial … --max-fail …`),
against 12 real sshd hosts and two dead ones: batches, a canary alone first, the stop
after too many failures (the rest never run and end skipped), the rerun that continues
them, and `cancel --fanout ID --host H` through a daemon."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fleet import Fleet, fleet_env, fleet_files, run_fd, start_fleet
from tests.helpers import FLEETDECK, start_daemon, stop_daemon, until


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Fleet:
    f = start_fleet(tmp_path_factory.mktemp("fleet"), 12, dead=2)
    yield f
    f.stop()


def _marking(marks: Path, *, failing: bool = True) -> str:
    """A command that notes on the far side which host ran it (by its sshd's port, the
    last word of $SSH_CONNECTION) and fails (exit 3) where marks/fail.PORT exists."""
    marks.mkdir(exist_ok=True)
    fail = f'[ -e {marks}/fail.$p ] && exit 3; ' if failing else ""
    return (f'p=${{SSH_CONNECTION##* }}; echo "start $p" >> {marks}/order; sleep 0.2; '
            f'echo "end $p" >> {marks}/order; touch {marks}/ran.$p; {fail}echo ok')


def _ran(fleet: Fleet, marks: Path) -> list[int]:
    """Which live hosts ran the command (1-based, as in web01)."""
    return [i + 1 for i, d in enumerate(fleet.daemons) if (marks / f"ran.{d.port}").exists()]


def _record(tmp_path: Path, fleet: Fleet, fid: int) -> dict:
    out = run_fd(tmp_path, fleet, "fanouts", str(fid), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_max_fail_stops_after_the_batch_with_the_failure(tmp_path, fleet):
    marks = tmp_path / "marks"
    cmd = _marking(marks)
    (marks / f"fail.{fleet.port_of(2)}").touch()  # web03, in the second batch
    out = run_fd(tmp_path, fleet, "fanout", "web[01-12],dead[1-2]", "--serial", "2",
                 "--max-fail", "1", "--", cmd)
    assert out.returncode == 1, out.stderr
    assert "fleetdeck: batch 1 of 7: web[01-02] (2 hosts)" in out.stderr
    assert "fleetdeck: batch 2 of 7: web[03-04] (2 hosts)" in out.stderr
    assert "batch 3 of 7" not in out.stderr
    assert ("rollout stopped: 1 host failed by batch 2 of 7 (max-fail 1); 10 hosts not "
            "started (skipped)") in out.stdout
    assert "3 ok, 1 failed, 10 skipped (14 hosts" in out.stdout
    assert _ran(fleet, marks) == [1, 2, 3, 4]  # the skipped never ran
    rec = json.loads(run_fd(tmp_path, fleet, "fanouts", "--json").stdout)[0]
    full = _record(tmp_path, fleet, rec["id"])
    hosts = full["hosts"]
    assert [hosts[f"web{i:02d}"]["batch"] for i in range(1, 5)] == [1, 1, 2, 2]
    assert hosts["web05"]["state"] == "skipped" and hosts["web05"]["batch"] == 3
    assert "rollout stopped" in hosts["web05"]["reason"]
    assert full["rollout"]["serial"] == "2" and full["rollout"]["stopped"]
    shown = run_fd(tmp_path, fleet, "fanouts", str(rec["id"]))
    assert ("rollout: serial 2, max-fail 1; stopped: 1 host failed by batch 2 of 7 "
            "(max-fail 1)") in shown.stdout
    assert "BATCH" in shown.stdout


def test_unreachable_hosts_count_and_a_rerun_goes_on(tmp_path, fleet):
    marks = tmp_path / "marks"
    down = run_fd(tmp_path, fleet, "fanout", "web[01-02],dead[1-2]", "--serial", "1",
                  "--max-fail", "1", "--", _marking(marks))
    assert down.returncode == 3, down.stderr  # batches in inventory order: dead1 third
    assert "rollout stopped: 1 host failed by batch 3 of 4 (max-fail 1)" in down.stdout
    assert "2 ok, 1 unreachable, 1 skipped (4 hosts" in down.stdout

    cmd = _marking(marks)
    for i in (1, 6):  # web02 fails in the first batch, web07 in the second
        (marks / f"fail.{fleet.port_of(i)}").touch()
    out = run_fd(tmp_path, fleet, "fanout", "@web,@dead", "--serial", "5", "--max-fail",
                 "2", "--", cmd)
    assert out.returncode == 1, out.stderr
    assert "rollout stopped: 2 hosts failed by batch 2 of 3 (max-fail 2)" in out.stdout
    assert "8 ok, 2 failed, 4 skipped (14 hosts" in out.stdout
    for i in (1, 6):  # fixed: the rerun continues
        (marks / f"fail.{fleet.port_of(i)}").unlink()
    (marks / "order").unlink()
    fid = json.loads(run_fd(tmp_path, fleet, "fanouts", "--json").stdout)[0]["id"]
    again = run_fd(tmp_path, fleet, "fanout", "--rerun", str(fid))
    assert again.returncode == 3, again.stderr
    assert "rerunning 6 of 14 hosts: 2 failed, 4 skipped" in again.stdout
    assert "batch 1 of 2: dead1,web[02,07,11-12] (5 hosts)" in again.stderr
    assert _ran(fleet, marks) == list(range(1, 13))
    assert "4 ok, 2 unreachable (6 hosts" in again.stdout
    assert "rollout stopped" not in again.stdout  # the last batch's failure stops nothing


def test_a_canary_that_fails_goes_no_further(tmp_path, fleet):
    """A batch in which every host failed stops the rollout, max-fail or not, as
    Ansible's serial does: here the canary, then a whole batch of two."""
    marks = tmp_path / "marks"
    (marks / "order").parent.mkdir()
    (marks / f"fail.{fleet.port_of(0)}").touch()
    out = run_fd(tmp_path, fleet, "fanout", "@web", "--serial", "1,25%", "--",
                 _marking(marks))
    assert out.returncode == 1, out.stderr
    assert ("rollout stopped: the host of batch 1 of 5 failed; 11 hosts not started "
            "(skipped)") in out.stdout
    assert _ran(fleet, marks) == [1]
    for i in (2, 3):
        (marks / f"fail.{fleet.port_of(i)}").touch()
    out = run_fd(tmp_path, fleet, "fanout", "web[01-12]", "--serial", "2", "--",
                 _marking(marks))
    assert "rollout stopped: the 2 hosts of batch 2 of 6 failed" in out.stdout
    assert "1 ok, 3 failed, 8 skipped (12 hosts" in out.stdout


def test_a_canary_runs_alone_first(tmp_path, fleet):
    marks = tmp_path / "marks"
    out = run_fd(tmp_path, fleet, "fanout", "@web", "--serial", "1,25%", "--",
                 _marking(marks, failing=False))
    assert out.returncode == 0, out.stderr
    assert "fleetdeck: batch 1 of 5: web01 (1 host)" in out.stderr
    assert "fleetdeck: batch 2 of 5: web[02-04] (3 hosts)" in out.stderr
    assert "fleetdeck: batch 5 of 5: web[11-12] (2 hosts)" in out.stderr
    order = (marks / "order").read_text().split("\n")
    canary = fleet.port_of(0)
    assert order[:2] == [f"start {canary}", f"end {canary}"]  # alone, and done first
    assert len(_ran(fleet, marks)) == 12


@pytest.mark.parametrize(("flags", "said"), [
    (["--serial", "0"], "fleetdeck: --serial: 0 must be at least 1"),
    (["--serial", "1,,2"], "fleetdeck: --serial: "),
    (["--max-fail", "150%"], "fleetdeck: --max-fail: 150% is more than 100%"),
    (["--max-fail", "-1"], "fleetdeck: --max-fail: "),
    (["--pause-between", "soon"], "fleetdeck: --pause-between: "),
    # an empty value (an unset "$SERIAL") is no "every host at once"
    (["--serial", ""], "fleetdeck: --serial: an empty batch size"),
    (["--serial", "2", "--max-fail", ""], "fleetdeck: --max-fail: '' is not a number"),
    (["--serial", "2", "--pause-between", ""], "fleetdeck: --pause-between: "),
    (["--max-fail", "1"], "fleetdeck: --max-fail: needs serial too"),
    (["--pause-between", "5s"], "fleetdeck: --pause-between: needs serial too"),
])
def test_bad_rollout_options_are_usage_errors(tmp_path, fleet, flags, said):
    out = run_fd(tmp_path, fleet, "fanout", "@web", *flags, "--", "true")
    assert out.returncode == 2
    line = out.stderr.strip()
    assert line.startswith(said) and "\n" not in line and "Traceback" not in line


def test_cancel_one_host_of_a_fanout_through_the_daemon(tmp_path, fleet):
    cfg, state = fleet_files(tmp_path, fleet)
    env = fleet_env(tmp_path)
    daemon = start_daemon(cfg, state, env)
    base = [*FLEETDECK, "--config", str(cfg), "--state-dir", str(state)]
    try:
        marks = tmp_path / "marks"
        marks.mkdir()
        cmd = f'p=${{SSH_CONNECTION##* }}; touch {marks}/up.$p; sleep 300; echo done'
        fan = subprocess.Popen([*base, "fanout", "web[01-03]", "--", cmd], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        until(lambda: len(list(marks.glob("up.*"))) == 3, "the three hosts to start",
              timeout=60)
        fid = json.loads(run_fd(tmp_path, fleet, "fanouts", "--json").stdout)[0]["id"]
        one = subprocess.run([*base, "cancel", "--fanout", str(fid), "--host", "web02"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert one.returncode == 0, one.stderr
        assert one.stdout.strip() == f"fan-out #{fid}: cancelling web02"
        rec = None

        def web02_cancelled() -> bool:
            nonlocal rec
            rec = _record(tmp_path, fleet, fid)
            return rec["hosts"]["web02"]["state"] == "cancelled"

        until(web02_cancelled, "web02 to end cancelled", timeout=60)
        assert rec["hosts"]["web01"]["state"] == "running"
        unknown = subprocess.run([*base, "cancel", "--fanout", str(fid), "--host", "db9"],
                                 env=env, capture_output=True, text=True, timeout=60)
        assert unknown.returncode == 2
        assert unknown.stderr.strip() == f"fleetdeck: fan-out #{fid} has no host 'db9'"
        rest = subprocess.run([*base, "cancel", "--fanout", str(fid)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert rest.returncode == 0, rest.stderr
        out, _ = fan.communicate(timeout=60)
        assert fan.returncode == 1
        assert "3 cancelled (3 hosts" in out
        ended = subprocess.run([*base, "cancel", "--fanout", str(fid)], env=env,
                               capture_output=True, text=True, timeout=60)
        assert ended.returncode == 2
        assert ended.stderr.strip() == f"fleetdeck: fan-out #{fid} has ended; nothing to stop"
    finally:
        if daemon.poll() is None:
            stop_daemon(daemon)


def test_cancel_names_one_thing(tmp_path, fleet):
    both = run_fd(tmp_path, fleet, "cancel", "4", "--fanout", "2")
    assert both.returncode == 2 and "not both" in both.stderr
    host = run_fd(tmp_path, fleet, "cancel", "4", "--host", "web01")
    assert host.returncode == 2 and "--host goes with --fanout" in host.stderr
    none = run_fd(tmp_path, fleet, "cancel")
    assert none.returncode == 2 and "cancel RUN_ID or cancel --fanout ID" in none.stderr


def test_a_group_cap_holds_its_hosts_to_that_many_at_once(tmp_path, fleet):
    marks = tmp_path / "marks"
    out = run_fd(tmp_path, fleet, "fanout", "web[01-04]", "--forks", "4", "--",
                 _marking(marks, failing=False), extra_config="[groups.web]\nforks = 1\n")
    assert out.returncode == 0, out.stderr
    order = (marks / "order").read_text().split()
    words = order[0::2]  # start/end, port, start/end, port, ...
    assert words == ["start", "end"] * 4  # never two at once
