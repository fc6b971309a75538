"""A real `fleetdeck daemon` process and its control socket: permissions, peers, bad
frames, a client that does not read, live reload (command, SIGHUP, file change, a bad
config), actions through the socket and the audit trail."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core.audit import AuditLog
from core.control.client import DaemonError, call
from core.control.protocol import socket_path
from tests.helpers import (
    DAEMON_CONFIG,
    FLEETDECK,
    WAIT,
    cli_env,
    has_open,
    require_tool,
    start_daemon,
    stop_daemon,
    until,
)

CONFIG = DAEMON_CONFIG  # jobs hello and chatty: the `daemon` fixture's config


def cli(env: dict, cfg: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def raw(state: Path, data: bytes, read: bool = True) -> list[dict]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(socket_path(state)))
        s.sendall(data)
        if not read:
            return []
        out = b""
        while out.count(b"\n") < data.count(b"\n") or not out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return [json.loads(line) for line in out.splitlines()]


def test_socket_is_private_and_answers(daemon) -> None:
    proc, cfg, state, env = daemon
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(socket_path(state)).st_mode) == 0o600
    assert asyncio.run(call(state, "ping"))["pid"] == proc.pid


def test_garbage_and_oversized_frames_get_an_error_and_the_daemon_lives(daemon) -> None:
    proc, cfg, state, env = daemon
    replies = raw(state, b"this is not json\n[1,2]\n{\"id\":3,\"method\":\"ping\"}\n"
                  b"{\"id\":4,\"method\":\"rm_rf\"}\n")
    assert replies[0] == {"id": None, "code": "bad_request",
                          "error": "not JSON (one JSON object per line, UTF-8)"}
    assert replies[1]["error"] == "a request is a JSON object"
    assert replies[2]["result"]["pid"] == proc.pid  # the same connection goes on
    assert replies[3] == {"id": 4, "code": "unknown_method", "error": "unknown method 'rm_rf'"}
    (big,) = raw(state, b"{" + b"x" * (2 << 20) + b"}\n")
    assert big == {"id": None, "code": "bad_request",
                   "error": f"frame larger than {1 << 20} bytes; dropped"}
    assert asyncio.run(call(state, "ping"))["pid"] == proc.pid and proc.poll() is None


def test_error_replies_carry_a_code_and_never_python_text(daemon) -> None:
    """Wrong types, unknown and missing parameters are refused before the engine sees
    them; a refusal of the engine's keeps its message; nothing says 'int()' or 'float'."""
    proc, cfg, state, env = daemon
    frames = [
        {"id": 1, "method": "list_runs", "params": {"since": "yesterday"}},
        {"id": 2, "method": "fanout_get", "params": {}},
        {"id": 3, "method": "get_run", "params": {"run_id": "abc"}},
        {"id": 4, "method": "get_run", "params": {"run_id": 999}},
        {"id": 5, "method": "run_job", "params": {"name": "nope"}},
        {"id": 6, "method": "list_runs", "params": {"limit": True}},
        {"id": 7, "method": "list_runs", "params": {"colour": "red"}},
        {"id": 8, "method": "silence", "params": {"target": "x", "duration": "soon"}},
        {"method": "ping"},
        {"id": [1], "method": "ping"},
        {"id": 9, "method": 5},
        {"id": 10, "method": "ping", "params": []},
    ]
    data = b"".join(json.dumps(f).encode() + b"\n" for f in frames)
    data += b'{"id":11,"method":"list_runs","params":{"since":NaN}}\n'
    data += b"[" * 100_000 + b"\n"
    replies = raw(state, data)
    got = {r["id"]: (r["code"], r["error"]) for r in replies if r["id"] is not None}
    assert got[1] == ("bad_params", "list_runs: 'since' must be a number (or null)")
    assert got[2] == ("bad_params", "fanout_get: missing parameter 'fanout_id'")
    assert got[3] == ("bad_params", "get_run: 'run_id' must be an integer")
    assert got[4] == ("not_found", "no run #999")
    assert got[5] == ("not_found", "no job named 'nope'")
    assert got[6][0] == got[7][0] == "bad_params"
    assert got[8][0] == "engine_error"
    assert got[9] == ("bad_request", "a request needs a 'method' (a string)")
    assert got[10] == ("bad_request", "'params' must be an object")
    assert [r["code"] for r in replies if r["id"] is None] == ["bad_request"] * 4
    assert len(replies) == len(frames) + 2
    text = json.dumps(replies)
    for python in ("int()", "'>='", "Traceback", "KeyError", "recursion", "Expecting"):
        assert python not in text
    assert proc.poll() is None


def test_another_user_is_refused_by_peer_credentials(tmp_path) -> None:
    if os.getuid() != 0:
        pytest.skip("switching to another user needs root; this runs as an ordinary user")
    # a state directory outside pytest's own (kept 0700 by pytest) so that the way can be
    # opened on purpose (folder 0711, socket 0666): the peer check alone must refuse
    top = Path(tempfile.mkdtemp(prefix="fleetdeck-peer-"))
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(CONFIG)
    state = top / "state"
    env = cli_env(tmp_path)
    proc = start_daemon(cfg, state, env)
    try:
        for p in (top, state):
            os.chmod(p, 0o711)
        os.chmod(socket_path(state), 0o666)
        # the refusal comes at once, before any request: read it first (a send could meet
        # the already closed connection)
        probe = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(10);"
                 "s.connect(sys.argv[1]); print(s.recv(4096).decode())")
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        out = subprocess.run([python, "-c", probe, str(socket_path(state))],
                             capture_output=True, text=True, timeout=30,
                             preexec_fn=lambda: os.setuid(65534))  # nobody
        assert out.stdout.strip(), out.stderr
        assert json.loads(out.stdout) == {"id": None, "code": "forbidden",
                                          "error": "this fleetdeck belongs to another user"}
    finally:
        stop_daemon(proc)
        shutil.rmtree(top, ignore_errors=True)


def test_actions_through_the_socket_are_audited_with_the_peer(daemon) -> None:
    proc, cfg, state, env = daemon
    (run,) = asyncio.run(call(state, "run_job", {"name": "hello"}))
    with pytest.raises(DaemonError, match="no job named 'nope'"):
        asyncio.run(call(state, "run_job", {"name": "nope"}))
    out = cli(env, cfg, state, "audit", "--json")
    assert out.returncode == 0, out.stderr
    (rec,) = json.loads(out.stdout)
    assert rec["action"] == "run" and rec["targets"] == ["hello"]
    assert rec["uid"] == os.getuid() and rec["via"].startswith("socket pid ")
    assert rec["detail"] == f"#{run['id']}"


def test_a_client_that_does_not_read_is_dropped(daemon) -> None:
    proc, cfg, state, env = daemon
    with socket.socket(socket.AF_UNIX) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(str(socket_path(state)))
        s.sendall(b'{"id":1,"method":"subscribe"}\n')
        for _ in range(3):  # 120,000 output events, some 13 MB
            asyncio.run(call(state, "run_job", {"name": "chatty"}))
        # not reading meanwhile: its bytes pile up and the daemon says it drops us
        until(lambda: "dropped client pid" in proc.err(), "the daemon to drop the client")
        assert "bytes of replies and events unread" in proc.err()
        s.settimeout(10)
        got = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break  # the daemon hung up on us
            got += chunk
    assert got.count(b"\n") < 120_000
    assert asyncio.run(call(state, "ping"))["pid"] == proc.pid  # and carries on


def wait_jobs(state: Path, want: set[str]) -> set[str]:
    until_daemon(state, "list_jobs", {}, lambda jobs: {j["name"] for j in jobs} == want,
                 f"the jobs to be {sorted(want)}")
    return want


def until_daemon(state: Path, method: str, params: dict, ok, what: str) -> object:
    """Ask the daemon until its answer is ``ok``; that answer."""
    got: list[object] = []

    def answer() -> bool:
        got[:] = [asyncio.run(call(state, method, params))]
        return ok(got[0])

    until(answer, lambda: f"{what} ({method} stayed {got[0]!r})")
    return got[0]


def rejected_by_the_watch(state: Path) -> bool:
    return any(r["action"] == "reload" and r["via"] == "file change"
               and r.get("detail", "").startswith("rejected") for r in AuditLog(state).read())


def test_reload_by_command_signal_and_file_change_and_a_bad_config(daemon) -> None:
    proc, cfg, state, env = daemon
    cfg.write_text(CONFIG + '\n[jobs.added]\ncommand = "true"\n')
    out = cli(env, cfg, state, "reload")  # the file watch may have applied it already
    assert out.returncode == 0, out.stderr
    wait_jobs(state, {"hello", "chatty", "added"})
    cfg.write_text(CONFIG + '\n[jobs.added]\ncommand = "true"\nschedule = "every soon"\n'
                   'timeout = "5 minutes"\n')
    # the watcher sees it too and rejects it: the old config stays
    until(lambda: rejected_by_the_watch(state), "the file watch to reject it")
    out = cli(env, cfg, state, "reload")
    assert out.returncode == 2
    said = out.stderr.splitlines()  # the headline, then one line per error
    assert said[0] == ("fleetdeck: config reload rejected (2 errors); the old config keeps "
                       "running:")
    assert len(said) == 3 and said[1].startswith(f"{cfg}:") and said[2].startswith(f"{cfg}:")
    assert "jobs.added.schedule" in said[1] + said[2] and "jobs.added.timeout" in said[1] + said[2]
    assert wait_jobs(state, {"hello", "chatty", "added"})
    cfg.write_text(CONFIG)
    proc.send_signal(signal.SIGHUP)
    wait_jobs(state, {"hello", "chatty"})
    cfg.write_text(CONFIG + '\n[jobs.by-file]\ncommand = "true"\n')  # no command at all
    wait_jobs(state, {"hello", "chatty", "by-file"})
    actions = [r["action"] for r in json.loads(cli(env, cfg, state, "audit", "--json").stdout)]
    assert actions.count("reload") >= 4


def test_reload_applies_checks_log_sources_and_rules_too(daemon, tmp_path: Path) -> None:
    """Not only jobs: a reload starts new checks and log sources (the daemon had none),
    then changes one source's file and drops a check, without a restart."""
    proc, cfg, state, env = daemon
    one, two = tmp_path / "one.log", tmp_path / "two.log"
    one.write_text("")
    two.write_text("")
    extra = (f'\n[checks.system]\nkind = "metrics"\ntargets = "local"\ninterval = "1s"\n'
             f'[sources.app]\npath = "{one}"\n'
             f'[rules.errors]\nsources = ["app"]\nlevel = "error"\n'
             f'threshold = "> 0 in 60s"\n')
    cfg.write_text(CONFIG + extra)
    out = cli(env, cfg, state, "reload")
    assert out.returncode == 0, out.stderr
    until_daemon(state, "health_hosts", {}, lambda h: [r["host"] for r in h] == ["local"],
                 "the new check")
    until_daemon(state, "log_sources", {}, lambda s: s == ["app"], "the new source")
    until(lambda: has_open(one, proc.pid), "the daemon to follow the first file")
    with one.open("a") as f:
        f.write("ERROR one\n")
    until_daemon(state, "log_recent", {"source": "app"},
                 lambda lines: [t for _a, _l, t in lines] == ["ERROR one"], "the first file")
    cfg.write_text(CONFIG + extra.replace(str(one), str(two)).split("[checks")[0]
                   + extra.split('"1s"\n')[1].replace(str(one), str(two)))
    out = cli(env, cfg, state, "reload")
    assert out.returncode == 0, out.stderr
    until_daemon(state, "health_hosts", {}, lambda h: h == [], "the check dropped")
    until(lambda: has_open(two, proc.pid) and not has_open(one, proc.pid),
          "the daemon to follow the second file instead")
    with two.open("a") as f:
        f.write("ERROR two\n")
    with one.open("a") as f:
        f.write("ERROR one again, not followed any more\n")
    until_daemon(state, "log_recent", {"source": "app"},
                 lambda lines: [t for _a, _l, t in lines] == ["ERROR two"], "the second file")
    assert proc.poll() is None


def test_reload_without_a_daemon_says_so(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    out = subprocess.run([*FLEETDECK, "--state-dir", str(tmp_path / "s"), "reload"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("fleetdeck: no daemon is running for ")


def test_run_beside_a_daemon_goes_through_it(daemon) -> None:
    proc, cfg, state, env = daemon
    out = cli(env, cfg, state, "run", "hello")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello from the daemon\n"
    (rec,) = json.loads(cli(env, cfg, state, "audit", "--json").stdout)
    assert (rec["action"], rec["targets"]) == ("run", ["hello"])
    out = cli(env, cfg, state, "run", "nope")
    assert out.returncode == 2 and "no job named 'nope'" in out.stderr


def test_the_systemd_unit_reads_back_as_given_and_stops_fleetdeck_first(tmp_path):
    """A state directory with a space, a % and a $ in its path: each is a word systemd
    would split or expand unless quoted and doubled. And a stop signals fleetdeck alone
    (KillMode=mixed): it ends its runs itself and records them as cancelled."""
    analyze = require_tool("systemd-analyze", "systemd")
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(CONFIG)
    state = tmp_path / "odd dir%h" / "st$ate"
    unit = cli(cli_env(tmp_path), cfg, state, "daemon", "--print-systemd-unit")
    assert unit.returncode == 0, unit.stderr
    exec_start = next(line for line in unit.stdout.splitlines()
                      if line.startswith("ExecStart="))
    quoted = '"' + str(state).replace("%", "%%").replace("$", "$$") + '"'
    assert f" --state-dir {quoted} daemon --quiet" in exec_start
    assert "\nKillMode=mixed\n" in unit.stdout
    # typed relative to here, printed whole: systemd starts a user unit in $HOME
    here = subprocess.run([*FLEETDECK, "--config", cfg.name, "--state-dir", "rel state",
                           "daemon", "--print-systemd-unit"], cwd=tmp_path, env=cli_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert f' --config {cfg} --state-dir "{tmp_path}/rel state" daemon' in here.stdout
    path = tmp_path / "fleetdeck.service"
    path.write_text(unit.stdout + "\n")
    verify = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert verify.returncode == 0 and "fleetdeck.service" not in verify.stderr, verify.stderr


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_a_notify_unit_hears_ready_once_it_serves_and_stopping(tmp_path, abstract):
    """Type=notify: READY=1 comes once the daemon answers on its socket (so `systemctl
    start` waits for it, and fails with a start that fails), STOPPING=1 on SIGTERM."""
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(CONFIG + '\n[jobs.env]\ncommand = "echo notify=[${NOTIFY_SOCKET:-}]"\n')
    state = tmp_path / "state"
    env = cli_env(tmp_path)
    name = f"fleetdeck-test-{os.getpid()}-{tmp_path.name}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        if abstract:
            listener.bind("\0" + name)
            env["NOTIFY_SOCKET"] = "@" + name
        else:
            listener.bind(str(tmp_path / "notify.sock"))
            env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
        listener.settimeout(WAIT)
        proc = start_daemon(cfg, state, env, wait=False)
        try:
            ready = listener.recv(4096).decode()
            # told only once it serves: the socket answers at once
            assert asyncio.run(call(state, "ping"))["pid"] == proc.pid
            assert ready.splitlines()[:2] == ["READY=1", f"MAINPID={proc.pid}"]
            assert ready.splitlines()[2] == f"STATUS=serving {socket_path(state)}"
            # systemd's socket is the daemon's own: a run never speaks for it
            ran = cli(env, cfg, state, "run", "env")
            assert (ran.returncode, ran.stdout) == (0, "notify=[]\n"), ran.stderr
            proc.send_signal(signal.SIGTERM)
            assert listener.recv(4096).decode() == "STOPPING=1"
            assert proc.wait(WAIT) == 0
        finally:
            stop_daemon(proc)
    # a start that fails says nothing ready: the state is held by another daemon
    first = start_daemon(cfg, state, cli_env(tmp_path))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
            listener.bind(str(tmp_path / "again.sock"))
            listener.settimeout(0.5)
            env["NOTIFY_SOCKET"] = str(tmp_path / "again.sock")
            second = cli(env, cfg, state, "daemon", "--quiet")
            assert second.returncode == 2 and "in use by fleetdeck" in second.stderr
            with pytest.raises(TimeoutError):
                listener.recv(4096)
    finally:
        stop_daemon(first)


def test_metrics_endpoint_and_the_systemd_unit(tmp_path: Path) -> None:
    import urllib.request

    from tests.sshd import free_port

    cfg = tmp_path / "fleet.toml"
    cfg.write_text(CONFIG)
    state = tmp_path / "state"
    env = cli_env(tmp_path)
    port = free_port()
    unit = cli(env, cfg, state, "daemon", "--metrics", f"127.0.0.1:{port}",
               "--print-systemd-unit")
    assert unit.returncode == 0
    assert f"--config {cfg} --state-dir {state} daemon --quiet --metrics 127.0.0.1:{port}" \
        in unit.stdout and "ExecReload=/bin/kill -HUP $MAINPID" in unit.stdout
    bad = cli(env, cfg, state, "daemon", "--metrics", "nowhere")
    assert bad.returncode == 2 and bad.stderr.startswith("fleetdeck: --metrics: expected")
    far = cli(env, cfg, state, "daemon", "--metrics", "127.0.0.1:99999")
    assert (far.returncode, far.stderr) == (
        2, "fleetdeck: --metrics: port 99999 out of range (1-65535)\n")
    proc = start_daemon(cfg, state, env, "--metrics", f"127.0.0.1:{port}")
    try:
        (run,) = asyncio.run(call(state, "run_job", {"name": "hello"}))

        def metrics() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            return text if 'fleetdeck_runs_total{job="hello",state="succeeded"} 1.0' in text \
                else ""

        text = until(metrics, "the run in the metrics")
        assert 'fleetdeck_runs_total{job="hello",state="succeeded"} 1.0' in text
        assert 'fleetdeck_run_duration_seconds_count{job="hello"} 1.0' in text
        assert 'fleetdeck_queue_depth{state="running"} 0.0' in text
    finally:
        stop_daemon(proc)


def test_cli_fanout_beside_a_daemon_runs_in_the_daemon(daemon) -> None:
    """`fleetdeck fanout` streams a fan-out the daemon runs (its child, its audit row by
    socket); Ctrl-C cancels it there and still prints the summary."""
    proc, cfg, state, env = daemon
    out = cli(env, cfg, state, "fanout", "local", "--", "echo", "from-$PPID")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == f"local: from-{proc.pid}"
    assert "1 ok" in out.stdout.splitlines()[-1]
    gathered = cli(env, cfg, state, "fanout", "local", "--gather", "--", "echo", "same")
    assert gathered.returncode == 0 and "local (1)" in gathered.stdout
    rows = json.loads(cli(env, cfg, state, "audit", "--json").stdout)
    fan = [r for r in rows if r["action"] == "fan-out"]
    assert len(fan) == 2 and all(r["via"].startswith("socket pid ") for r in fan)

    slow = subprocess.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                             "fanout", "local", "--", "echo", "started;", "sleep", "30"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert slow.stdout is not None
    assert slow.stdout.readline().strip() == "local: started"  # it runs: now interrupt it
    slow.send_signal(signal.SIGINT)
    rest, err = slow.communicate(timeout=30)
    assert slow.returncode == 130, err
    assert "interrupted" in err and "1 cancelled" in rest
    assert proc.poll() is None
