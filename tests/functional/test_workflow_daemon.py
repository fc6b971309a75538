"""Workflows through real `fleetdeck` processes: `run` streams each step's output under
its name and exits with the workflow's result; an approval by another OS user through
the daemon's approvals socket (the approver known from the socket's peer credentials);
kill -9 mid-workflow, then a restart and `retry`: no ended step runs again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import FLEETDECK, cli_env, missing, start_daemon, stop_daemon, until

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
APPROVER = f"fdappr-{_WORKER}"
GROUP = f"fdoncall-{_WORKER}"


def fd(env: dict[str, str], cfg: Path, state: Path, *args: str,
       timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state), *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def _steps(*steps: tuple[str, str, str]) -> str:
    out = "[workflows.wf]\n"
    for name, command, extra in steps:
        out += (f'[[workflows.wf.steps]]\nname = "{name}"\ncommand = {json.dumps(command)}\n'
                f"{extra}\n")
    return out


def test_run_streams_each_steps_output_and_exits_with_the_result(tmp_path: Path) -> None:
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(_steps(("fetch", "echo fetched", ""),
                          ("check", "echo checking; exit 4", 'needs = ["fetch"]\n'),
                          ("notify", "echo told", 'needs = ["check"]\nwhen = "failure"\n')))
    env = cli_env(tmp_path)
    done = fd(env, cfg, tmp_path / "state", "run", "wf")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == ["[fetch] fetched", "[check] checking", "[notify] told"]
    assert "run #1 of wf on local failed: step check failed: run #3 failed: exit code 4" \
        in done.stderr
    shown = fd(env, cfg, tmp_path / "state", "workflow", "1")
    lines = shown.stdout.splitlines()
    assert lines[0] == ("workflow run #1 wf on local: failed (step check failed: run #3 "
                        "failed: exit code 4)")
    assert [line.split()[:2] for line in lines[2:]] == [
        ["fetch", "succeeded"], ["check", "failed"], ["notify", "succeeded"]]
    listed = json.loads(fd(env, cfg, tmp_path / "state", "runs", "--json").stdout)
    assert sorted((r["id"], r["parent"], r["step"]) for r in listed) == [
        (1, None, None), (2, 1, "fetch"), (3, 1, "check"), (4, 1, "notify")]


def _need_root() -> None:
    if os.geteuid() == 0:
        return
    missing("a second OS user needs root to add")


def _approver() -> tuple[int, int]:
    if subprocess.run(["getent", "group", GROUP], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", GROUP], check=True)
    if subprocess.run(["id", APPROVER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", "-G", GROUP, APPROVER], check=True)
    out = subprocess.run(["id", "-u", APPROVER], capture_output=True, text=True, check=True)
    gid = subprocess.run(["id", "-g", APPROVER], capture_output=True, text=True, check=True)
    return int(out.stdout), int(gid.stdout)


def _as_user(uid: int, gid: int, path: Path, method: str, params: dict) -> dict:
    """One request on a Unix socket from a process of another OS user (fork, drop to
    the user, connect): the daemon sees that user in the peer credentials."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no Python beyond the socket, then out
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(60)
            s.connect(str(path))
            s.sendall((json.dumps({"id": 1, "method": method, "params": params}) + "\n")
                      .encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            os.write(w, data)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(w, json.dumps({"child_error": repr(e)}).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_another_user_approves_through_the_approvals_socket(tmp_path: Path) -> None:
    _need_root()
    uid, gid = _approver()
    shared = Path(tempfile.mkdtemp(prefix="fleetdeck-approvals-"))
    os.chmod(shared, 0o755)
    sock = shared / "approvals.sock"
    cfg = tmp_path / "fleet.toml"
    marks = tmp_path / "marks"
    cfg.write_text(f'[engine]\napprovals_socket = "{sock}"\n\n' + _steps(
        ("drain", f"echo drain >> {marks}", ""),
        ("deploy", f"echo deploy >> {marks}",
         f'needs = ["drain"]\napprove = {{ by = ["@{GROUP}"], timeout = "10m" }}\n')))
    state = tmp_path / "state"
    env = cli_env(tmp_path)
    daemon = start_daemon(cfg, state, env)
    asker: subprocess.Popen[str] | None = None
    try:
        asker = subprocess.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                                  "run", "wf"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        until(lambda: json.loads(fd(env, cfg, state, "approvals", "--json").stdout),
              "the gate to wait")
        assert oct(sock.stat().st_mode & 0o777) == "0o666"
        # the requester (root, not in the group) is refused; nothing changes
        own = fd(env, cfg, state, "approve", "1")
        assert own.returncode != 0
        assert own.stderr.strip() == (f"fleetdeck: root may not approve this step; the gate "
                                      f"names @{GROUP}")
        # the approvals socket answers the approval methods only
        refused = _as_user(uid, gid, sock, "list_runs", {})
        assert refused["code"] == "forbidden", refused
        listed = _as_user(uid, gid, sock, "list_approvals", {})
        assert [(a["run_id"], a["step"], a["requested_by"]) for a in listed["result"]] == [
            (1, "deploy", "root")]
        got = _as_user(uid, gid, sock, "approve", {"run_id": 1, "reason": "CHG-7"})
        assert got["result"] == {"id": 1, "job": "wf", "step": "deploy",
                                 "decision": "approved", "by": APPROVER}, got
        out, err = asker.communicate(timeout=120)
        assert asker.returncode == 0, err
        assert "[deploy] " not in out  # the steps wrote to the file, not stdout
        assert marks.read_text().split() == ["drain", "deploy"]
        again = _as_user(uid, gid, sock, "approve", {"run_id": 1})
        assert again["error"] == ("run #1 is not awaiting approval: step deploy was already "
                                  f"approved by {APPROVER}"), again
        trail = fd(env, cfg, state, "audit").stdout
        assert any(APPROVER in line and "approve" in line and "CHG-7" in line
                   for line in trail.splitlines()), trail
        alerts = json.loads(fd(env, cfg, state, "alerts", "--all", "--json").stdout)
        assert [(a["kind"], a["state"]) for a in alerts] == [("approval", "resolved")]
    finally:
        if asker is not None and asker.poll() is None:  # a failure must not leave it
            asker.kill()
            asker.wait()
        stop_daemon(daemon)
        shutil.rmtree(shared, ignore_errors=True)
    assert not sock.exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill_9_mid_workflow_then_restart_and_retry(tmp_path: Path) -> None:
    marks, flag, pidfile = tmp_path / "marks", tmp_path / "flag", tmp_path / "pid"
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(_steps(
        ("a", f"echo a >> {marks}", ""),
        ("b", f"echo b >> {marks}; [ -e {flag} ] && exit 0; touch {flag}; echo $$ > {pidfile};"
              " sleep 120", 'needs = ["a"]\n'),
        ("c", f"echo c >> {marks}", 'needs = ["b"]\n')))
    state = tmp_path / "state"
    env = cli_env(tmp_path)
    daemon = start_daemon(cfg, state, env)
    try:
        started = subprocess.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir",
                                    str(state), "run", "wf"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until(lambda: pidfile.exists() and pidfile.read_text().strip(), "step b to start")
        step_pid = int(pidfile.read_text())
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    finally:
        stop_daemon(daemon)
    assert _alive(step_pid)  # the dead daemon left its step running
    daemon = start_daemon(cfg, state, env)
    try:
        until(lambda: not _alive(step_pid), "the restart to end the orphaned step")
        # the waiting `run` learns the end from the new daemon's history
        assert started.wait(120) == 3, "interrupted is not a result: exit 3"
        first = json.loads(fd(env, cfg, state, "workflow", "1", "--json").stdout)
        steps = first["workflow"]["steps"]
        assert first["state"] == "interrupted"
        assert "steps b interrupted: `fleetdeck retry 1` resumes from them" in first["reason"]
        assert [steps[n]["state"] for n in "abc"] == ["succeeded", "interrupted", "pending"]
        b_run = json.loads(fd(env, cfg, state, "runs", "--json").stdout)
        children = {r["step"]: r for r in b_run if r["parent"] == 1}
        assert {n: r["state"] for n, r in children.items()} == {
            "a": "succeeded", "b": "interrupted", "c": "interrupted"}
        assert "died before it started" in children["c"]["reason"]  # recorded, never run
        again = fd(env, cfg, state, "retry", "1")
        assert again.returncode == 0, again.stderr
        assert marks.read_text().split() == ["a", "b", "b", "c"]  # a never ran again
        runs = json.loads(fd(env, cfg, state, "runs", "--json").stdout)
        (second,) = [r for r in runs if (r.get("workflow") or {}).get("resumed_from") == 1]
        assert second["workflow"]["steps"]["a"]["kept_from"] == 1
        assert second["state"] == "succeeded"
    finally:
        stop_daemon(daemon)
        if started.poll() is None:  # a failure must not leave it waiting
            started.kill()
            started.wait()


def test_a_push_step_then_a_command_on_real_sshd(tmp_path: Path) -> None:
    from tests.fleet import fleet_env, fleet_files, start_fleet

    fleet = start_fleet(tmp_path / "fleet", 2, dead=0)
    try:
        src = tmp_path / "app.conf"
        src.write_text("answer = 42\n")
        remote = tmp_path / "remote"
        for host in ("web01", "web02"):
            (remote / host).mkdir(parents=True)
        cfg, state = fleet_files(tmp_path, fleet, extra_config=(
            "[workflows.rollout]\n[[workflows.rollout.steps]]\nname = \"ship\"\n"
            f'targets = "@web"\npush = {{ src = "{src}", dest = "{remote}/{{host}}/" }}\n'
            "[[workflows.rollout.steps]]\nname = \"check\"\n"
            f'command = "cat {remote}/web01/app.conf {remote}/web02/app.conf"\n'
            'needs = ["ship"]\n'))
        env = fleet_env(tmp_path)
        done = fd(env, cfg, state, "run", "rollout")
        assert done.returncode == 0, done.stderr
        assert sorted(done.stdout.splitlines()) == [
            "[check] answer = 42", "[check] answer = 42", "[ship web01] changed",
            "[ship web02] changed"]
        record = json.loads(fd(env, cfg, state, "workflow", "1", "--json").stdout)
        ship = record["workflow"]["steps"]["ship"]
        assert ship["state"] == "succeeded" and len(ship["runs"]) == 2
    finally:
        fleet.stop()
