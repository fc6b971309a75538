"""`fleetdeck fanout --become` against real sshd and real sudo: a user whose sudo asks
for a password logs in, the password is asked once (-K, here from a pipe), and the
command runs as root; a missing or wrong password ends the host `become_failed`; and the
password is nowhere afterwards: not the state directory, the logs, the output, the
record, a daemon's files.

Needs root (to add a user and a sudoers rule, as a test machine's setup would) and sudo
(.ci/run installs it); without either it fails in CI and skips elsewhere."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.fleet import Fleet, fleet_env, fleet_files, run_fd, start_fleet
from tests.helpers import missing, start_daemon, stop_daemon

# one user per test worker: workers running this module at once would each set the
# password of a shared user, and one's runs would meet the other's password
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
USER = f"fdbecome-{_WORKER}"
SUDOERS = Path(f"/etc/sudoers.d/fleetdeck-test-{_WORKER}")


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    if os.geteuid() != 0:
        missing("adding a test user with a sudo rule needs root")
    if shutil.which("sudo") is None:
        missing("sudo is not installed (.ci/run installs it)")
    password = "pw-" + secrets.token_hex(12)
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    subprocess.run(["chpasswd"], input=f"{USER}:{password}\n", text=True, check=True)
    SUDOERS.write_text(f"Defaults:{USER} !requiretty, timestamp_timeout=0, !lecture\n"
                       f"{USER} ALL=(ALL:ALL) ALL\n")
    os.chmod(SUDOERS, 0o440)
    # sshd reads the authorized keys as the user: a folder the user can enter
    root = Path(tempfile.mkdtemp(prefix="fleetdeck-become-"))
    os.chmod(root, 0o755)
    f = start_fleet(root, 2, dead=0, user=USER)
    os.chmod(f.keys.folder, 0o755)
    os.chmod(f.keys.authorized, 0o644)
    f.password = password  # type: ignore[attr-defined]
    yield f
    f.stop()
    SUDOERS.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)


def _nowhere(secret: str, *places: Path, texts: tuple[str, ...] = ()) -> None:
    for text in texts:
        assert secret not in text
    for place in places:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        assert files, place
        for p in files:
            assert secret.encode() not in p.read_bytes(), p


def test_become_with_a_password_runs_as_root(tmp_path, fleet):
    pw = fleet.password
    out = run_fd(tmp_path, fleet, "fanout", "@web", "--become", "-K", "--",
               "id -un; echo to-stderr >&2", stdin=pw + "\n")
    assert out.returncode == 0, out.stderr
    assert "web01: root\n" in out.stdout and "web02: root\n" in out.stdout
    assert "web01: to-stderr" in out.stderr  # the command's own stderr still shows
    assert "FLEETDECK-BECOME" not in out.stdout + out.stderr
    rec = json.loads(run_fd(tmp_path, fleet, "fanouts", "1", "--json").stdout)
    assert rec["become"] == "root" and rec["become_asked"] is True
    again = run_fd(tmp_path, fleet, "fanout", "--rerun", "1", "--only", "all")
    assert again.returncode == 2
    assert again.stderr.strip() == ("fleetdeck: fan-out #1 ran with a sudo password; rerun "
                                    "it with -K")
    _nowhere(pw, tmp_path / "state", texts=(out.stdout, out.stderr, json.dumps(rec)))


def test_without_or_with_a_wrong_password_the_host_is_become_failed(tmp_path, fleet):
    none = run_fd(tmp_path, fleet, "fanout", "web01", "--become", "--", "id -un")
    assert none.returncode == 1
    assert ("web01: [become_failed] sudo needs a password: give --ask-become-pass (-K)"
            in none.stderr)
    wrong = run_fd(tmp_path, fleet, "fanout", "web01", "--become", "-K", "--", "id -un",
                 stdin="not-it\n")
    assert wrong.returncode == 1
    assert "web01: [become_failed] sudo: incorrect password" in wrong.stderr
    assert "1 become_failed (1 host" in wrong.stdout
    empty = run_fd(tmp_path, fleet, "fanout", "web01", "--become", "-K", "--", "true")
    assert empty.returncode == 2 and "-K: no password given" in empty.stderr
    bad = run_fd(tmp_path, fleet, "fanout", "web01", "--become", "a b", "--", "true")
    assert bad.returncode == 2 and "--become: invalid user name 'a b'" in bad.stderr


def test_the_inventory_becomes_per_group(tmp_path, fleet):
    out = run_fd(tmp_path, fleet, "fanout", "@web", "-K", "--", "id -un",
               stdin=fleet.password + "\n", extra_config='[groups.web]\nbecome = "root"\n')
    assert out.returncode == 0, out.stderr
    assert "web01: root\n" in out.stdout


def test_through_a_daemon_the_password_stays_out_of_its_files(tmp_path, fleet):
    pw = fleet.password
    cfg, state = fleet_files(tmp_path, fleet)
    env = fleet_env(tmp_path)
    daemon = start_daemon(cfg, state, env, quiet=False)
    try:
        out = run_fd(tmp_path, fleet, "fanout", "@web", "--become", "-K", "--", "id -un",
                   stdin=pw + "\n")
        assert out.returncode == 0, out.stderr
        assert "web02: root\n" in out.stdout
        rerun = run_fd(tmp_path, fleet, "fanout", "--rerun", "1", "--only", "all", "-K",
                     stdin=pw + "\n")
        assert rerun.returncode == 0, rerun.stderr
        assert "web01: root\n" in rerun.stdout
    finally:
        stop_daemon(daemon)
    _nowhere(pw, state, daemon.out_path, daemon.err_path,
             texts=(out.stdout, out.stderr, rerun.stdout, rerun.stderr))


def test_a_command_run_as_root_is_stopped_on_the_host(tmp_path, fleet):
    """The login user cannot signal root's processes: the stop is done past sudo, by a
    shell of root's, so a command that ignores TERM is still killed after the grace."""
    from tests.helpers import until

    marker = "fd-stop-" + secrets.token_hex(4)
    cmd = f"sh -c 'trap \"\" TERM; sleep 300; echo {marker}' {marker}"
    out = run_fd(tmp_path, fleet, "fanout", "web01", "--become", "-K", "--timeout", "2s",
               "--", cmd, stdin=fleet.password + "\n")
    assert out.returncode == 1, out.stderr
    assert "web01: [timed_out]" in out.stderr

    def gone() -> bool:
        found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
        return found.returncode == 1  # nothing matches

    until(gone, f"the host's processes of {marker} to be gone", timeout=60)
