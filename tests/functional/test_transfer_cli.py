"""`fleetdeck push` and `pull` as a person runs them, against real sshd over SFTP.

The test hosts share this machine's file system, so destinations name `{host}` (the
host's inventory name) where each host needs a place of its own."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.fleet import Fleet, run_fd, start_fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Fleet:
    f = start_fleet(tmp_path_factory.mktemp("fleet"), 3, dead=1)
    yield f
    f.stop()


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".fleetdeck-" in p.name]


def test_push_reports_changed_then_unchanged(tmp_path, fleet):
    src = tmp_path / "app.conf"
    src.write_text("workers = 4\n")
    hosts = tmp_path / "hosts"
    for h in ("web01", "web02"):  # web03 has no /etc there
        (hosts / h / "etc").mkdir(parents=True)
    dest = f"{hosts}/{{host}}/etc/app.conf"
    first = run_fd(tmp_path, fleet, "push", "@web,dead1", str(src), dest, "--mode", "0640")
    assert first.returncode == 3, first.stderr  # dead1 unreachable
    assert "web01: changed\n" in first.stdout and "web02: changed\n" in first.stdout
    assert f"web03: [failed] folder {hosts}/web03/etc does not exist on the host" \
        in first.stderr
    assert "2 ok (2 changed, 0 unchanged), 1 failed, 1 unreachable (4 hosts" in first.stdout
    for h in ("web01", "web02"):
        placed = hosts / h / "etc" / "app.conf"
        assert placed.read_text() == "workers = 4\n"
        assert stat.S_IMODE(placed.stat().st_mode) == 0o640
    assert not (hosts / "web03").exists() or not list((hosts / "web03").rglob("*"))

    again = run_fd(tmp_path, fleet, "push", "web[01-02]", str(src), dest, "--mode", "0640")
    assert again.returncode == 0, again.stderr
    assert "web01: unchanged\n" in again.stdout and "web02: unchanged\n" in again.stdout
    assert "2 ok (0 changed, 2 unchanged) (2 hosts" in again.stdout

    (hosts / "web02" / "etc" / "app.conf").write_text("workers = 1\n")  # drifted
    third = run_fd(tmp_path, fleet, "push", "web[01-02]", str(src), dest, "--backup")
    assert "web01: unchanged\n" in third.stdout and "web02: changed\n" in third.stdout
    backups = list((hosts / "web02" / "etc").glob("app.conf.*~"))
    assert len(backups) == 1 and backups[0].read_text() == "workers = 1\n"
    assert (hosts / "web02" / "etc" / "app.conf").read_text() == "workers = 4\n"
    assert stat.S_IMODE((hosts / "web02" / "etc" / "app.conf").stat().st_mode) == 0o640
    assert _leftovers(hosts) == []

    rec = json.loads(run_fd(tmp_path, fleet, "fanouts", "--json").stdout)[0]
    assert rec["command"] == f"push {src} -> {dest}"


def test_push_a_folder_and_rerun_the_failed(tmp_path, fleet):
    src = tmp_path / "site"
    (src / "css").mkdir(parents=True)
    (src / "index.html").write_text("<h1>hi</h1>\n")
    (src / "css" / "a.css").write_text("h1 {}\n")
    hosts = tmp_path / "hosts"
    for h in ("web01", "web02"):  # www is made where its parent is; web03 has none
        (hosts / h).mkdir(parents=True)
    dest = f"{hosts}/{{host}}/www/"
    out = run_fd(tmp_path, fleet, "push", "@web", str(src), dest)
    assert out.returncode == 1, out.stderr
    assert "web01: changed (2 of 2 files)" in out.stdout
    assert f"web03: [failed] folder {hosts}/web03 does not exist on the host" in out.stderr
    assert (hosts / "web01" / "www" / "site" / "css" / "a.css").read_text() == "h1 {}\n"
    (hosts / "web03").mkdir()  # fixed: the rerun reaches it
    fid = json.loads(run_fd(tmp_path, fleet, "fanouts", "--json").stdout)[0]["id"]
    rerun = run_fd(tmp_path, fleet, "fanout", "--rerun", str(fid))
    assert rerun.returncode == 0, rerun.stderr
    assert "rerunning 1 of 3 hosts: 1 failed" in rerun.stdout
    assert "web03: changed (2 of 2 files)" in rerun.stdout
    assert (hosts / "web03" / "www" / "site" / "index.html").read_text() == "<h1>hi</h1>\n"
    contents = run_fd(tmp_path, fleet, "push", "web01", f"{src}/", f"{hosts}/{{host}}/flat")
    assert contents.returncode == 0, contents.stderr
    assert (hosts / "web01" / "flat" / "index.html").exists()  # SRC/: its contents
    assert _leftovers(hosts) == []


def test_a_replaced_file_keeps_its_mode_and_owner(tmp_path, fleet):
    import os

    src = tmp_path / "secret"
    src.write_text("token\n")
    os.chmod(src, 0o644)  # the source's mode would be the new file's
    hosts = tmp_path / "hosts"
    (hosts / "web01").mkdir(parents=True)
    placed = hosts / "web01" / "secret"
    placed.write_text("old\n")
    os.chmod(placed, 0o640)
    if os.geteuid() == 0:
        os.chown(placed, 1, 1)  # daemon:daemon, kept when replaced
    out = run_fd(tmp_path, fleet, "push", "web01", str(src), f"{hosts}/{{host}}/secret")
    assert out.returncode == 0, out.stderr
    assert placed.read_text() == "token\n"
    assert stat.S_IMODE(placed.stat().st_mode) == 0o640  # the replaced file's mode
    if os.geteuid() == 0:
        assert (placed.stat().st_uid, placed.stat().st_gid) == (1, 1)


def test_pull_fetches_one_file_per_host(tmp_path, fleet):
    remote = tmp_path / "remote"
    for h in ("web01", "web02", "web03"):
        (remote / h).mkdir(parents=True)
        (remote / h / "app.log").write_text(f"log of {h}\n")
    got = tmp_path / "got"
    out = run_fd(tmp_path, fleet, "pull", "@web,dead1", f"{remote}/{{host}}/app.log",
                 str(got))
    assert out.returncode == 3, out.stderr
    for h in ("web01", "web02", "web03"):
        assert (got / h / "app.log").read_text() == f"log of {h}\n"
    assert not (got / "dead1").exists()
    assert "3 ok (3 changed, 0 unchanged), 1 unreachable" in out.stdout
    again = run_fd(tmp_path, fleet, "pull", "@web", f"{remote}/{{host}}/app.log", str(got))
    assert "3 ok (0 changed, 3 unchanged)" in again.stdout
    missing = run_fd(tmp_path, fleet, "pull", "web01", "/no/such/file", str(got))
    assert missing.returncode == 1
    assert "web01: [failed] no such file or folder on the host: /no/such/file" \
        in missing.stderr
    assert _leftovers(got) == []


def test_transfer_mistakes_are_one_line(tmp_path, fleet):
    cases = [
        (["push", "@web", str(tmp_path / "nope"), "/tmp/x"], "push: ", "No such file"),
        (["push", "@web", str(tmp_path), "relative/x"], "push: destination", "absolute"),
        (["push", "@web", str(tmp_path), "/tmp/x", "--mode", "rw"], "mode 'rw'", "octal"),
        (["push", "@web", str(tmp_path), "/tmp/x", "--owner", "a b"], "owner", "USER"),
        (["pull", "@web", "etc/hosts", str(tmp_path)], "pull: 'etc/hosts'", "absolute"),
        (["push", "web09", str(tmp_path), "/tmp/x"], "unknown host", ""),
    ]
    for args, first, second in cases:
        out = run_fd(tmp_path, fleet, *args)
        line = out.stderr.strip()
        assert out.returncode == 2, (args, out.stdout, line)
        assert "\n" not in line and "Traceback" not in line
        assert first in line and second in line, line


def test_a_push_that_cannot_write_leaves_nothing(tmp_path, fleet):
    src = tmp_path / "f"
    src.write_text("x\n")
    out = run_fd(tmp_path, fleet, "push", "web01", str(src), "/proc/fleetdeck-test")
    assert out.returncode == 1
    line = next(x for x in out.stderr.splitlines() if x.startswith("web01:"))
    assert line.startswith("web01: [failed] ") and "/proc/fleetdeck-test" in line
    assert not Path("/proc/fleetdeck-test").exists()


def test_a_job_can_push(tmp_path, fleet):
    src = tmp_path / "app.conf"
    src.write_text("a = 1\n")
    hosts = tmp_path / "hosts"
    for h in ("web01", "web02", "web03"):
        (hosts / h).mkdir(parents=True)
    job = (f'[jobs.conf]\ntargets = "@web"\nserial = 1\n'
           f'push = {{ src = "{src}", dest = "{hosts}/{{host}}/app.conf", mode = "0600" }}\n')
    first = run_fd(tmp_path, fleet, "run", "conf", "--json", extra_config=job)
    assert first.returncode == 0, first.stderr
    runs = json.loads(first.stdout)
    assert [(r["host"], r["state"], r["command"]) for r in runs] == [
        (h, "succeeded", f"push {src} -> {hosts}/{{host}}/app.conf")
        for h in ("web01", "web02", "web03")]
    for h in ("web01", "web02", "web03"):
        placed = hosts / h / "app.conf"
        assert placed.read_text() == "a = 1\n" and stat.S_IMODE(placed.stat().st_mode) == 0o600
    again = json.loads(run_fd(tmp_path, fleet, "run", "conf", "--json",
                              extra_config=job).stdout)
    log = run_fd(tmp_path, fleet, "logs", str(again[0]["id"]), extra_config=job)
    assert "unchanged" in log.stdout
    bad = run_fd(tmp_path, fleet, "check-config", str(tmp_path / "config.toml"),
                 extra_config='[jobs.x]\ntargets = "@web"\ncommand = "true"\n'
                              'push = { src = "rel", dest = "/x" }\n')
    assert bad.returncode == 2 and "jobs.x.push" in bad.stderr + bad.stdout


def test_a_full_disk_fails_the_host_and_keeps_the_old_file(tmp_path, fleet, small_fs):
    import os

    small = small_fs
    (small / "app.bin").write_bytes(b"old\n")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(512 * 1024))
    out = run_fd(tmp_path, fleet, "push", "web01", str(src), f"{small}/app.bin")
    assert out.returncode == 1
    line = next(x for x in out.stderr.splitlines() if x.startswith("web01:"))
    assert line.startswith(f"web01: [failed] {small}/app.bin: ")
    assert "full disk" in line
    assert (small / "app.bin").read_bytes() == b"old\n"  # never half of the new one
    assert sorted(p.name for p in small.iterdir()) == ["app.bin"]  # no temporary file
