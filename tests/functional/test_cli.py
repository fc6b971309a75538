"""The `fleetdeck` command as a person runs it: real processes, real files, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import (
    FLEETDECK,
    ROOT,
    DaemonProcess,
    cli_env,
    start_daemon,
    stop_daemon,
    until,
)

CONFIG = """
[engine]
max_concurrent_runs = 4

[jobs.hello]
command = "echo hello from $FLEETDECK_JOB"

[jobs.fail]
command = "echo going down >&2; exit 4"

[jobs.slow]
command = "echo started; sleep 60"
schedule = "every 2s"
overlap = "skip"
"""


def fd(tmp_path: Path, *args: str, timeout: float = 60, check: bool = False,
       config: str | None = CONFIG) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.toml"
    if config is not None and not cfg.exists():
        cfg.write_text(config)
    base = [*FLEETDECK, "--state-dir", str(tmp_path / "state")]
    if config is not None:
        base += ["--config", str(cfg)]
    proc = subprocess.run([*base, *args], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(tmp_path))
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def test_run_streams_output_and_exits_with_the_run_exit_code(tmp_path):
    ok = fd(tmp_path, "run", "hello")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "hello from hello"
    dashed = fd(tmp_path, "run", "--", "hello")  # argparse's own `--` before a name
    assert (dashed.returncode, dashed.stdout.strip()) == (0, "hello from hello"), dashed.stderr
    bad = fd(tmp_path, "run", "fail")
    assert bad.returncode == 4
    assert "going down" in bad.stderr
    assert "fleetdeck: run #3 of fail on local failed: exit code 4" in bad.stderr


def test_runs_jobs_and_logs_listings(tmp_path):
    # nothing yet: a line that says so, not a header over nothing
    for args, says in ((("runs",), "no runs"), (("runs", "--job", "hello", "--since", "2h"),
                                                "no runs of hello in the last 2h"),
                       (("fanouts",), "no fan-outs on record"),
                       (("audit",), "no actions on record")):
        assert fd(tmp_path, *args, check=True).stdout == says + "\n"
    fd(tmp_path, "run", "hello", check=True)
    fd(tmp_path, "run", "fail")
    runs = json.loads(fd(tmp_path, "runs", "--json", check=True).stdout)
    assert [(r["job"], r["state"]) for r in runs] == [("fail", "failed"), ("hello", "succeeded")]
    only = json.loads(fd(tmp_path, "runs", "--job", "hello", "--json", check=True).stdout)
    assert [r["job"] for r in only] == ["hello"]
    table = fd(tmp_path, "runs", check=True).stdout
    assert "#1" in table and "succeeded" in table and "exit code 4" in table
    asked = time.time()  # the next fire is computed after this, in the subprocess
    jobs = json.loads(fd(tmp_path, "jobs", "--json", check=True).stdout)
    by_name = {j["name"]: j for j in jobs}
    assert by_name["hello"]["last_run"]["state"] == "succeeded"
    assert by_name["slow"]["schedule_text"] == "every 2s"
    assert by_name["slow"]["next_fire"] > asked
    assert "hello" in fd(tmp_path, "jobs", check=True).stdout
    log = fd(tmp_path, "logs", "1", check=True)
    assert log.stdout == "hello from hello\n"
    fd(tmp_path, "run", "hello", check=True)
    latest = fd(tmp_path, "logs", "hello", check=True)  # a job: its latest run
    assert latest.stdout == "hello from hello\n"
    assert latest.stderr == "fleetdeck: run #3 of hello on local (succeeded)\n"
    for name, message in (("helo", "not a run id and no job named 'helo' (did you mean "
                                   "'hello'?)"), ("slow", "job 'slow' has no runs yet")):
        wrong = fd(tmp_path, "logs", name)
        assert (wrong.returncode, wrong.stderr) == (2, f"fleetdeck: {message}\n")
    on = json.loads(fd(tmp_path, "runs", "--host", "local", "--json", check=True).stdout)
    assert [r["id"] for r in on] == [3, 2, 1]
    typo = fd(tmp_path, "runs", "--host", "locl")
    assert (typo.returncode, typo.stderr) == (
        2, "fleetdeck: --host 'locl': no such host in the config or in history (did you "
           "mean 'local'?)\n")


def test_mistakes_are_one_line_errors(tmp_path):
    cases = [
        (("run", "nope"), "no job named 'nope'"),
        (("logs", "77"), "no run #77"),
        (("runs", "--state", "weird"), "unknown state 'weird'"),
    ]
    for args, message in cases:
        proc = fd(tmp_path, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_an_unknown_option_before_the_command_is_named(tmp_path):
    """`fleetdeck -c FILE runs` used to say the FILE was an invalid command."""
    for args, message in ((("-c", "config.toml", "runs"), "unknown option -c; "),
                          (("--cnfig", "config.toml", "runs"),
                           "unknown option --cnfig (did you mean '--config'?)")):
        proc = fd(tmp_path, *args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(f"fleetdeck: error: {message}")
    assert fd(tmp_path, "--read", "runs").returncode == 0  # a prefix argparse takes


def test_check_config_and_init(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(CONFIG)
    assert fd(tmp_path, "check-config", str(good), config=None).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[jobs.x]\ncommand = "true"\nschedule = "61 * * * *"\ntimeout = "5 minutes"\n')
    proc = fd(tmp_path, "check-config", str(bad), config=None)
    assert proc.returncode == 2
    assert f"{bad}:3: jobs.x.schedule:" in proc.stderr
    assert f"{bad}:4: jobs.x.timeout:" in proc.stderr
    assert "Traceback" not in proc.stderr
    # a bad config stops every command with the same errors
    proc = fd(tmp_path, "--config", str(bad), "jobs", config=None)
    assert proc.returncode == 2 and "jobs.x.schedule" in proc.stderr
    # init writes the built-in default, which is valid, and does not overwrite
    target = tmp_path / "init" / "config.toml"
    assert fd(tmp_path, "init", str(target), config=None).returncode == 0
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert fd(tmp_path, "check-config", str(target), config=None).returncode == 0
    again = fd(tmp_path, "init", str(target), config=None)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_builtin_default_runs_without_any_config(tmp_path):
    jobs = json.loads(fd(tmp_path, "jobs", "--json", config=None, check=True).stdout)
    names = {j["name"] for j in jobs}
    assert {"heartbeat", "disk-report", "flaky-check"} <= names
    proc = fd(tmp_path, "run", "heartbeat", config=None)
    assert proc.returncode == 0 and proc.stdout.strip()


def _runs(tmp_path: Path) -> list[dict]:
    proc = fd(tmp_path, "runs", "--json", "--limit", "1000")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _start_daemon(tmp_path: Path, *options: str) -> DaemonProcess:
    cfg = tmp_path / "config.toml"
    if not cfg.exists():
        cfg.write_text(CONFIG)
    return start_daemon(cfg, tmp_path / "state", cli_env(tmp_path), quiet=False,
                        options=options)


def test_daemon_killed_mid_run_comes_back_interrupted(tmp_path):
    daemon = _start_daemon(tmp_path)
    try:
        running = until(lambda: [r for r in _runs(tmp_path) if r["state"] == "running"
                                 and r["pgid"]], "a running run")[0]
        pgid = running["pgid"]
        # a second engine on the same state is refused, naming the holder
        second = fd(tmp_path, "daemon", "--quiet")
        assert second.returncode == 2
        assert f"in use by fleetdeck (pid {daemon.pid})" in second.stderr
        # while `run` goes through the daemon's control socket
        beside = fd(tmp_path, "run", "hello")
        assert beside.returncode == 0 and beside.stdout == "hello from hello\n"
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        os.killpg(pgid, 0)  # the job outlived its engine
    finally:
        stop_daemon(daemon)
    daemon = _start_daemon(tmp_path)
    try:
        run = until(lambda: [r for r in _runs(tmp_path) if r["id"] == running["id"]
                             and r["state"] == "interrupted"], "interrupted")[0]
        assert f"fleetdeck (pid {running['engine_pid']}) died while it ran" in run["reason"]
        assert f"process group {pgid} was still alive" in run["reason"]
        until(lambda: _group_gone(pgid), "the orphaned group to go")
        # the schedule goes on after the restart
        until(lambda: [r for r in _runs(tmp_path) if r["id"] > running["id"]
                       and r["state"] in ("running", "skipped")], "a new occurrence")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        err = daemon.err()
        assert "Traceback" not in err and "engine stopped" in err
    finally:
        stop_daemon(daemon)
    runs = _runs(tmp_path)
    occurrences = [r["occurrence"] for r in runs if r["occurrence"] is not None]
    assert len(occurrences) == len(set(occurrences)), "an occurrence ran twice"
    assert not [r for r in runs if r["state"] in ("queued", "running")]
    state = tmp_path / "state"
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    for path in state.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_daemon_json_log_format(tmp_path):
    daemon = _start_daemon(tmp_path, "--log-format", "json")
    try:
        until(lambda: _runs(tmp_path), "a run")
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(30) == 0
    finally:
        stop_daemon(daemon)
    lines = [json.loads(line) for line in daemon.err().splitlines() if line.strip()]
    assert lines and all({"time", "level", "message"} <= set(obj) for obj in lines)
    assert any(obj.get("job") == "slow" for obj in lines)
    own_log = (tmp_path / "state" / "fleetdeck.log").read_text().splitlines()
    assert json.loads(own_log[0])["message"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_forwards_interrupt_as_cancel(tmp_path, sig):
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    proc = subprocess.Popen(
        [*FLEETDECK, "--state-dir", str(tmp_path / "state"), "--config", str(cfg), "run",
         "slow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(tmp_path))
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(sig)
    assert proc.wait(30) == 130
    [run] = _runs(tmp_path)
    assert run["state"] == "cancelled"


@pytest.mark.parametrize(("where", "says"), [
    ("dir", "is a folder, not a file; name the file to write"),
    ("file/x.toml", "file: already exists, and is not a folder; choose another path"),
    ("/proc/nope.toml", "/proc/nope.toml: not found; check the path, or choose another"),
])
def test_init_to_a_path_it_cannot_write_is_one_line(tmp_path, where, says) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    target = where if where.startswith("/") else str(tmp_path / where)
    out = subprocess.run([*FLEETDECK, "init", "--force", target], capture_output=True,
                         text=True, env=cli_env(tmp_path))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert says in out.stderr


def test_a_negative_duration_is_named_not_a_missing_argument(tmp_path):
    """argparse reads `-1h` as an unknown option and then asked for the duration."""
    for argv in (["silence", "hello", "-1h"], ["maintenance", "add", "m", "--for", "-2h"],
                 ["fanout", "web", "--serial", "2", "--pause-between", "-1s"],
                 ["runs", "--since", "-1h"]):
        proc = fd(tmp_path, *argv)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines()[-1] == (
            f"fleetdeck: error: {argv[-1]}: a duration is not negative (e.g. {argv[-1][1:]})")


@pytest.mark.parametrize("argv", [
    ["push", "local", "", "/tmp/x"], ["push", "local", "a", ""],
    ["push", "local", "a", "/tmp/x", "--mode", ""], ["push", "local", "a", "/x", "--owner", ""],
    ["pull", "local", "/etc/hostname", ""], ["fanout", "local", "--out-dir", "", "--", "true"],
    ["fanout", "local", "--timeout", "", "--", "true"], ["runs", "--since", ""],
    ["audit", "--since", ""], ["daemon", "--metrics", ""],
])
def test_an_empty_value_is_a_mistake_not_here(tmp_path, argv):
    """`push web '' /dest/` pushed the current folder, `pull ... ''` wrote into it: an
    empty value (an unset "$SRC" in a script) is named, and nothing runs."""
    proc = fd(tmp_path, *argv)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1].endswith(": empty value"), proc.stderr
    assert not (tmp_path / "state" / "fanouts").exists()


def test_files_that_never_end_are_refused_not_read_for_ever(tmp_path):
    """/dev/zero as a CA key grew to gigabytes; `init` onto a named pipe waited for a
    reader for ever."""
    key = fd(tmp_path, "trust-ca", "/dev/zero", "--hosts", "*", "--yes", timeout=30)
    assert (key.returncode, key.stderr) == (
        2, "fleetdeck: /dev/zero: larger than 64 KB; an SSH public key is one line\n")
    pipe = tmp_path / "pipe.toml"
    os.mkfifo(pipe)
    init = fd(tmp_path, "init", str(pipe), "--force", timeout=30)
    assert (init.returncode, init.stderr) == (
        2, f"fleetdeck: {pipe}: not a regular file; name the file to write\n")


@pytest.mark.parametrize("loading", ["core.config", "tui.cli.daemon"])
def test_a_ctrl_c_while_fleetdeck_loads_ends_it_quietly(tmp_path, loading):
    """A Ctrl-C lands while a module loads (the package's own imports, or the command's
    group): exit 130 and no traceback, as a Ctrl-C a moment later gives."""
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import builtins, importlib, runpy, sys\n"
        f"WHEN = {loading!r}\n"
        "real_import, real_module = builtins.__import__, importlib.import_module\n"
        "def interrupted(name, *a, **k):\n"
        "    if name == WHEN:\n"
        "        raise KeyboardInterrupt\n"
        "    return real_import(name, *a, **k)\n"
        "def interrupted_module(name, *a, **k):\n"
        "    if name == WHEN:\n"
        "        raise KeyboardInterrupt\n"
        "    return real_module(name, *a, **k)\n"
        "builtins.__import__, importlib.import_module = interrupted, interrupted_module\n"
        "sys.argv = ['fleetdeck', 'audit']\n"
        "runpy.run_module('tui.cli', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True,
                          timeout=60, env=cli_env(tmp_path), cwd=ROOT)
    assert (proc.returncode, proc.stderr) == (130, "")


def test_runs_of_a_job_there_is_none_of_is_named(tmp_path):
    """`runs --job backpu` listed nothing, as if the job had no runs: a name neither the
    config nor history knows is a mistake (a job with no runs yet lists nothing)."""
    typo = fd(tmp_path, "runs", "--job", "helo")
    assert typo.returncode == 2
    assert typo.stderr == ("fleetdeck: --job 'helo': no such job in the config or in "
                           "history (did you mean 'hello'?)\n")
    known = fd(tmp_path, "runs", "--job", "hello")
    assert known.returncode == 0, known.stderr


def test_a_metrics_address_that_is_none_is_said_before_the_engine_starts(tmp_path):
    out = fd(tmp_path, "daemon", "--metrics", "256.1.1.1:9000", timeout=120)
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleetdeck: --metrics 256.1.1.1:9000: ")
    assert not (tmp_path / "state" / "engine.lock").exists()  # nothing was started


@pytest.mark.parametrize(("argv", "said"), [
    (["fanout", "local", "--out-dir", "{f}/x", "--", "true"],
     "{f}/x: {f} is not a folder; choose another path (--out-dir)"),
    (["fanout", "local", "--out-dir", "{f}", "--", "true"],
     "{f}: not a folder; choose another --out-dir"),
    (["pull", "local", "/etc/hostname", "{f}"], "{f}: not a folder; choose another DESTDIR"),
])
def test_a_folder_to_write_that_is_a_file_is_one_line(tmp_path, argv, said):
    f = tmp_path / "file"
    f.write_text("in the way")
    out = fd(tmp_path, *(a.format(f=f) for a in argv))
    assert (out.returncode, out.stderr) == (2, f"fleetdeck: {said.format(f=f)}\n")


def test_a_control_character_a_person_gave_is_shown_not_obeyed(tmp_path):
    """A newline or an ESC in a path is quoted escaped: the error stays one line and the
    terminal never takes it for a command."""
    out = fd(tmp_path, "--config", "c1\n\x1b[31m.toml", "jobs", config=None)
    assert out.returncode == 2
    assert out.stderr == ("fleetdeck: c1\\n\\x1b[31m.toml: not found; check the path, or "
                          "choose another (--config)\n")
    nxt = fd(tmp_path, "schedule", "next", "0 0 * * *\n", "--count", "1", config=None)
    assert nxt.returncode == 0, nxt.stderr
    assert nxt.stdout.splitlines()[0].startswith("0 0 * * *: daily at 00:00")


HOSTILE = ("printf 'a\\033]52;c;ZXZpbA==\\007b \\033]0;owned\\007c \\033[?1049h"
           "\\033[31mred\\033[0m\\n'")


def _on_a_terminal(tmp_path, *args: str) -> bytes:
    """What fleetdeck writes when its output is a terminal (a pty, as in a shell)."""
    import pty

    main, sub = pty.openpty()
    cfg = tmp_path / "config.toml"
    proc = subprocess.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir",
                             str(tmp_path / "state"), *args], stdout=sub, stderr=sub,
                            stdin=subprocess.DEVNULL, env=cli_env(tmp_path))
    os.close(sub)
    out = b""
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        out += data
    os.close(main)
    assert proc.wait(timeout=60) == 0
    return out


def test_run_output_on_a_terminal_keeps_colours_and_drops_what_it_would_obey(tmp_path):
    """A run's OSC 52 (clipboard), OSC 0 (title) or alternate-screen switch never reaches
    the terminal from `run` or `logs`; its colours do; into a pipe it is as it was."""
    (tmp_path / "config.toml").write_text(f"[jobs.hostile]\ncommand = '''{HOSTILE}'''\n")
    for args in (["run", "hostile"], ["logs", "1"]):
        shown = _on_a_terminal(tmp_path, *args)
        assert b"\x1b]" not in shown and b"\x1b[?1049h" not in shown, (args, shown)
        assert b"ab c \x1b[31mred\x1b[0m" in shown, (args, shown)
    piped = fd(tmp_path, "logs", "1", config=None)
    assert "\x1b]52;c;ZXZpbA==\x07" in piped.stdout  # a file or a pipe gets the bytes
