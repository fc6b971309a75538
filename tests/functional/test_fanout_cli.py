"""`fleetdeck hosts`, `fanout` and `fanouts` as a person runs them, against real sshd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import FLEETDECK, cli_env
from tests.sshd import USER, Sshd, known_line, make_keys, require_sshd


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Three real sshd hosts (web01..web03) and a config naming them and two dead ones."""
    binary = require_sshd()
    root = tmp_path_factory.mktemp("fleet")
    keys = make_keys(root / "keys")
    daemons = [Sshd(binary, root / "sshd", keys, keys.host_path).start() for _ in range(3)]
    hosts = "".join(
        f'[hosts.web{i + 1:02d}]\naddress = "127.0.0.1"\nport = {d.port}\nuser = "{USER}"\n'
        f'identity_file = "{keys.client_path}"\ngroups = ["web"]\ntags = {{ n = "{i + 1}" }}\n'
        for i, d in enumerate(daemons))
    dead = "".join(
        f'[hosts.dead{i}]\naddress = "127.0.0.1"\nport = {_closed()}\nuser = "{USER}"\n'
        f'identity_file = "{keys.client_path}"\ngroups = ["dead"]\n' for i in (1, 2))
    config = hosts + dead
    known = "".join(known_line(d.port, keys.host) for d in daemons)
    yield {"config": config, "known": known, "daemons": daemons, "keys": keys}
    for d in daemons:
        d.stop()


def _closed() -> int:
    from tests.sshd import free_port

    return free_port()


def fd(tmp_path: Path, fleet, *args: str, known: bool = True,
       timeout: float = 60) -> subprocess.CompletedProcess[str]:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True, mode=0o700)
    if known and not (state / "known_hosts").exists():
        (state / "known_hosts").write_text(fleet["known"])
    cfg = tmp_path / "config.toml"
    cfg.write_text(fleet["config"])
    return subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state), *args],
                          capture_output=True, text=True, timeout=timeout, env=_env(tmp_path))


def _env(tmp_path: Path) -> dict[str, str]:
    env = cli_env(tmp_path)
    env["HOME"] = str(tmp_path / "home")  # no ~/.ssh of the person running the tests
    env.pop("SSH_AUTH_SOCK", None)
    return env


def test_hosts_shows_what_a_pattern_resolves_to(tmp_path, fleet):
    out = fd(tmp_path, fleet, "hosts", "@web,!web02")
    assert out.returncode == 0, out.stderr
    assert "2 hosts: web[01,03]" in out.stdout
    js = json.loads(fd(tmp_path, fleet, "hosts", "web[01-03],n=2", "--json").stdout)
    assert js["folded"] == "web[01-03]" and [h["name"] for h in js["hosts"]] == [
        "web01", "web02", "web03"]
    bad = fd(tmp_path, fleet, "hosts", "web[01-05]")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "fleetdeck: unknown hosts 'web[04-05]' (in 'web[01-05]')"
    none = fd(tmp_path, fleet, "hosts", "@web,!web*")
    assert none.returncode == 2 and "matches no host" in none.stderr


def test_fanout_streams_records_and_reruns(tmp_path, fleet):
    d1 = fleet["daemons"][1].port
    cmd = f'case "$SSH_CONNECTION" in *" {d1}") echo two; exit 3;; esac; echo hello'
    out = fd(tmp_path, fleet, "fanout", "web[01-03]", "--", cmd)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert sorted(lines[:-1]) == ["web01: hello", "web02: two", "web03: hello"]
    assert lines[-1].startswith("2 ok, 1 failed (3 hosts, ")
    assert lines[-1].endswith(", fan-out #1)")
    assert "web02: [failed] exit code 3" in out.stderr
    listing = fd(tmp_path, fleet, "fanouts")
    assert "#1" in listing.stdout and "2 ok, 1 failed" in listing.stdout
    detail = json.loads(fd(tmp_path, fleet, "fanouts", "1", "--json").stdout)
    assert detail["command"] == cmd and detail["pattern"] == "web[01-03]"
    assert detail["hosts"]["web02"]["exit_code"] == 3
    assert Path(detail["log_dir"], "web02.log").read_text() == "two\n"
    again = fd(tmp_path, fleet, "fanout", "--rerun", "1", "--only", "failed", "--json")
    rec = json.loads(again.stdout)
    assert again.returncode == 1
    assert (rec["rerun_of"], rec["pattern"], list(rec["hosts"])) == (1, "web02", ["web02"])
    bad = fd(tmp_path, fleet, "fanout", "--rerun", "1", "--only", "weird")
    assert bad.returncode == 2 and "unknown class 'weird'" in bad.stderr


def _mixed(tmp_path: Path, fleet) -> subprocess.CompletedProcess[str]:
    """Fan-out #1 over `*`: web01 ok, web02 failed, web03 host_key_unknown (its key is
    not on record), dead1 and dead2 unreachable."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    daemons, keys = fleet["daemons"], fleet["keys"]
    (state / "known_hosts").write_text(
        "".join(known_line(d.port, keys.host) for d in daemons[:2]))
    d1 = daemons[1].port
    cmd = f'case "$SSH_CONNECTION" in *" {d1}") exit 3;; esac; echo hello'
    out = fd(tmp_path, fleet, "fanout", "--connect-timeout", "5s", "*", "--", cmd)
    assert out.returncode == 3, out.stderr
    assert out.stdout.splitlines()[-1].startswith(
        "1 ok, 1 failed, 2 unreachable, 1 host_key_unknown (5 hosts")
    return out


def _recorded(tmp_path: Path, fleet) -> list[dict]:
    return json.loads(fd(tmp_path, fleet, "fanouts", "--json").stdout)


def test_rerun_without_only_takes_the_hosts_that_did_not_end_ok(tmp_path, fleet):
    _mixed(tmp_path, fleet)
    again = fd(tmp_path, fleet, "fanout", "--rerun", "1")
    assert again.returncode == 3, again.stderr  # the dead hosts are still dead
    lines = again.stdout.splitlines()
    assert lines[0] == ("rerunning 3 of 5 hosts: 1 failed, 2 unreachable; left out: "
                        "1 host_key_unknown (trust or fix the key first; --only "
                        "host_key_unknown reruns it)")
    assert lines[-1].startswith("1 failed, 2 unreachable (3 hosts")
    rec = json.loads(fd(tmp_path, fleet, "fanouts", "2", "--json").stdout)
    assert (rec["rerun_of"], sorted(rec["hosts"])) == (1, ["dead1", "dead2", "web02"])
    # --only all: the old behaviour, every host; the breakdown goes to stderr with --json
    every = fd(tmp_path, fleet, "fanout", "--rerun", "1", "--only", "all", "--json")
    assert sorted(json.loads(every.stdout)["hosts"]) == [
        "dead1", "dead2", "web01", "web02", "web03"]
    assert every.stderr.startswith("rerunning 5 of 5 hosts: 1 ok, 1 failed, 2 unreachable, "
                                   "1 host_key_unknown\n")
    # named, the key-refused host is rerun (and refused again: nobody trusted it)
    key = fd(tmp_path, fleet, "fanout", "--rerun", "1", "--only", "host_key_unknown")
    assert key.returncode == 3
    assert key.stdout.splitlines()[0] == "rerunning 1 of 5 hosts: 1 host_key_unknown"
    assert len(_recorded(tmp_path, fleet)) == 4


def test_rerun_of_an_all_ok_fanout_runs_nothing(tmp_path, fleet):
    _mixed(tmp_path, fleet)
    ok = fd(tmp_path, fleet, "fanout", "web[01-02]", "--", "true")
    assert ok.returncode == 0, ok.stderr
    again = fd(tmp_path, fleet, "fanout", "--rerun", "2")
    assert (again.returncode, again.stdout, again.stderr) == (
        0, "fan-out #2: all 2 hosts ended ok; nothing to rerun\n", "")
    refused = fd(tmp_path, fleet, "fanout", "web03", "--", "true")
    assert refused.returncode == 3
    keys = fd(tmp_path, fleet, "fanout", "--rerun", "3")
    assert keys.returncode == 3  # as the fan-out it did not rerun: refused
    assert keys.stdout.startswith("fan-out #3: nothing to rerun without a person: 1 "
                                  "host_key_unknown (trust or fix the key first;")
    assert len(_recorded(tmp_path, fleet)) == 3  # nothing started
    named = fd(tmp_path, fleet, "fanout", "--rerun", "2", "--only", "failed")
    assert named.returncode == 2 and "fan-out #2 has no host in failed" in named.stderr


@pytest.mark.parametrize("columns", [80, 160])
def test_fanout_tables_fit_with_a_long_reason(tmp_path, fleet, columns):
    from rich.cells import cell_len

    _mixed(tmp_path, fleet)
    env = _env(tmp_path) | {"COLUMNS": str(columns)}
    for args in (("fanouts",), ("fanouts", "1")):
        out = subprocess.run([*FLEETDECK, "--config", str(tmp_path / "config.toml"),
                              "--state-dir", str(tmp_path / "state"), *args],
                             capture_output=True, text=True, timeout=60, env=env)
        lines = out.stdout.splitlines()
        assert all(cell_len(line) <= columns for line in lines), out.stdout
        if args == ("fanouts", "1"):
            top = next(i for i, line in enumerate(lines) if line.startswith("HOST "))
            rows = [line.split()[0] for line in lines[top + 1:top + 6]]  # one line each
            assert sorted(rows) == ["dead1", "dead2", "web01", "web02", "web03"], out.stdout
            key = next(line for line in lines if line.startswith("web03 "))
            assert "host_key_unknown" in key and "host key unknown" in key
            assert key.endswith("…")  # the reason, longer than 160 cells, is cut


def test_fanout_gather_and_exit_status_three_for_unreachable(tmp_path, fleet):
    out = fd(tmp_path, fleet, "fanout", "--gather", "--connect-timeout", "2s", "*", "--",
             "echo same")
    assert out.returncode == 3, out.stderr
    text = out.stdout
    assert "web[01-03] (3)\n" in text and "same\n" in text
    assert "dead[1-2] (2) unreachable: connection refused" in text
    assert text.splitlines()[-1].startswith("3 ok, 2 unreachable (5 hosts")
    assert text.index("web[01-03] (3)") < text.index("dead[1-2] (2)")


def test_unknown_host_keys_fail_until_trusted_explicitly(tmp_path, fleet):
    out = fd(tmp_path, fleet, "fanout", "web01", "--", "true", known=False)
    assert out.returncode == 3
    fp = fleet["keys"].host.get_fingerprint("sha256")
    assert "web01: [host_key_unknown] host key unknown: [127.0.0.1]:" in out.stderr
    assert fp in out.stderr
    trusted = fd(tmp_path, fleet, "fanout", "--trust-new-host-keys", "web01", "--", "true",
                 known=False)
    assert trusted.returncode == 0, trusted.stderr
    assert "trusted the new host key of web01" in trusted.stderr and fp in trusted.stderr
    state = tmp_path / "state"
    assert oct((state / "known_hosts").stat().st_mode & 0o777) == "0o600"
    assert fd(tmp_path, fleet, "fanout", "web01", "--", "true", known=False).returncode == 0


def test_usage_errors_exit_two(tmp_path, fleet):
    for args, message in [
        (("fanout", "web01"), "no command"),
        (("fanout", "--forks", "0", "web01", "--", "true"), "--forks must be from 1 to 100,000"),
        (("fanout", "--forks", "99999999999999999999", "web01", "--", "true"),
         "--forks must be from 1 to 100,000"),
        (("fanout", "--timeout", "soon", "web01", "--", "true"), "--timeout:"),
        (("fanout", "--timeout", "1e300", "web01", "--", "true"),
         "--timeout: 1e300 is more than 366d"),
        (("fanout", "--connect-timeout", "400d", "web01", "--", "true"),
         "--connect-timeout: 400d is more than 366d"),
        (("fanout", "nope", "--", "true"), "unknown host 'nope'"),
        (("fanout", "--rerun", "99"), "no fan-out #99"),
    ]:
        out = fd(tmp_path, fleet, *args)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)


def _slow_fanout(tmp_path: Path, fleet, command: str) -> subprocess.Popen[str]:
    """`fanout @web -- COMMAND` as a process of its own, its output piped."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "known_hosts").write_text(fleet["known"])
    cfg = tmp_path / "config.toml"
    cfg.write_text(fleet["config"])
    return subprocess.Popen(
        [*FLEETDECK, "--config", str(cfg), "--state-dir", str(state), "fanout", "@web", "--",
         command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(tmp_path))


def test_ctrl_c_cancels_running_hosts_and_still_prints_the_summary(tmp_path, fleet):
    state = tmp_path / "state"
    proc = _slow_fanout(tmp_path, fleet, "echo begun; sleep 30")
    assert proc.stdout is not None
    seen = [proc.stdout.readline() for _ in range(3)]
    assert sorted(seen) == ["web01: begun\n", "web02: begun\n", "web03: begun\n"]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert out.splitlines()[-1].startswith("3 cancelled (3 hosts")
    assert "interrupted" in err
    # that the remote sleeps are stopped is covered by the core tests
    assert os.path.exists(state / "fanouts")


def test_a_fanout_whose_process_died_ends_for_every_reader(tmp_path, fleet):
    """kill -9 (or a Ctrl-C before the end was written) leaves a record of unfinished
    hosts: readers see it ended, those hosts cancelled saying why, and can rerun it."""
    proc = _slow_fanout(tmp_path, fleet, f"echo begun; [ -e {tmp_path}/fixed ] || sleep 30")
    assert proc.stdout is not None
    assert sorted(proc.stdout.readline() for _ in range(3)) == [
        "web01: begun\n", "web02: begun\n", "web03: begun\n"]
    proc.kill()
    proc.communicate(timeout=30)
    [rec] = json.loads(fd(tmp_path, fleet, "fanouts", "--json").stdout)
    assert rec["finished_at"] and rec["counts"] == {"cancelled": 3}
    full = json.loads(fd(tmp_path, fleet, "fanouts", str(rec["id"]), "--json").stdout)
    assert {h["reason"] for h in full["hosts"].values()} == {
        f"not finished: fleetdeck (pid {proc.pid}) died while it ran"}
    stop = fd(tmp_path, fleet, "cancel", "--fanout", str(rec["id"]))
    assert stop.returncode == 2 and "has ended" in stop.stderr
    (tmp_path / "fixed").touch()  # the hosts (loopback) see it: the rerun ends at once
    again = fd(tmp_path, fleet, "fanout", "--rerun", str(rec["id"]))
    assert again.returncode == 0, again.stderr
    assert "rerunning 3 of 3 hosts: 3 cancelled" in again.stdout


def test_run_of_a_job_on_a_group_prefixes_every_line_with_its_host(tmp_path, fleet):
    """A job on `@web` is one run per host; `run` prefixes each line with its host (the
    target pattern has no comma: the prefix follows the runs, not the pattern's text)."""
    job = '\n[jobs.hello]\ncommand = "echo one; echo two"\ntargets = "@web"\n'
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "known_hosts").write_text(fleet["known"])
    cfg = tmp_path / "config.toml"
    cfg.write_text(fleet["config"] + job)
    out = subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                          "run", "hello"], capture_output=True, text=True, timeout=60,
                         env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sorted(lines) == sorted(f"web0{i}: {w}" for i in (1, 2, 3) for w in ("one", "two"))
