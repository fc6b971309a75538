"""A fan-out to 60 hosts (real sshd on loopback; some failing, some down) through a
cluster of three daemons on a real redis-server: its host batches spread over the
three workers, and each host's result (class, exit code, reason, output) is the same
as the fan-out of one fleetdeck with no cluster."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.fleet import fleet_env, start_fleet
from tests.helpers import FLEETDECK, start_daemon, stop_daemon, until
from tests.redisd import RedisServer

# every 7th port fails, with its own output; the dead hosts are refused
COMMAND = ('p=${SSH_CONNECTION##* }; echo "host on port $p"; '
           'if [ $((p % 7)) = 0 ]; then echo "refusing $p" >&2; exit 3; fi')


def _fd(env: dict[str, str], cfg: Path, state: Path, *args: str
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                           *args], env=env, capture_output=True, text=True, timeout=180)


def _start_nodes(tmp_path: Path, fleet, server: RedisServer, env: dict[str, str],
                 names: tuple[str, ...], daemons: list) -> None:
    """A daemon per name on the fleet's config in a cluster on `server` (each with its
    own state directory, the fleet's host keys known), put in `daemons` as it starts
    (the caller's cleanup stops them), until all have joined."""
    for name in names:
        state = tmp_path / f"state-{name}"
        state.mkdir(mode=0o700)
        (state / "known_hosts").write_text(fleet.known)
        node_cfg = tmp_path / f"{name}.toml"
        node_cfg.write_text(f'[cluster]\nredis = "{server.url}"\nnode = "{name}"\n'
                            'lease = "2s"\nheartbeat = "500ms"\nvisibility = "5s"\n\n'
                            + fleet.config)
        daemons.append(start_daemon(node_cfg, state, env))
    until(lambda: server.client.hlen("fleetdeck:nodes") == len(names), "every node to join")


def _hosts(record: dict, state: Path) -> dict[str, tuple]:
    """Each host's class, exit code, reason and the lines the command printed (the far
    side's shell start-up may add its own, here root's pyenv at random: not compared).
    The lines are sorted: stdout and stderr are two streams of the SSH channel, and which
    of a line on each arrives first is up to the network, with OpenSSH as here."""
    from core.store.fanouts import FanOutStore

    logs = FanOutStore(state, read_only=True)
    out = {}
    for h in record["hosts"].values():
        path = logs.log_path(record["id"], h["host"])
        lines = path.read_text().splitlines() if path.exists() else []
        said = sorted(x for x in lines if x.startswith(("host on port", "refusing")))
        out[h["host"]] = (h["state"], h["exit_code"], h["reason"], said)
    return out


def test_a_fanout_of_60_hosts_over_three_workers_matches_one_node(tmp_path) -> None:
    fleet = start_fleet(tmp_path / "fleet", 56, dead=4)
    server = RedisServer(tmp_path / "redis")
    env = fleet_env(tmp_path)
    daemons = []
    try:
        # one node, no cluster: the reference
        alone = tmp_path / "alone"
        alone.mkdir(mode=0o700)
        (alone / "known_hosts").write_text(fleet.known)
        cfg = tmp_path / "alone.toml"
        cfg.write_text(fleet.config)
        ref = _fd(env, cfg, alone, "fanout", "--json", "--connect-timeout", "20s",
                  "@web,@dead", "--", COMMAND)
        assert ref.returncode == 3, ref.stderr  # some hosts unreachable, some failed
        expected = _hosts(json.loads(ref.stdout), alone)
        assert len(expected) == 60
        classes = {v[0] for v in expected.values()}
        assert {"ok", "failed", "unreachable"} <= classes, classes
        p = fleet.port_of(0)  # web01 says its port, and refuses when 7 divides it
        said = sorted([f"host on port {p}"] + ([f"refusing {p}"] if p % 7 == 0 else []))
        assert expected["web01"][3] == said

        _start_nodes(tmp_path, fleet, server, env, ("a", "b", "c"), daemons)
        got = _fd(env, tmp_path / "a.toml", tmp_path / "state-a", "fanout", "--json",
                  "--connect-timeout", "20s", "@web,@dead", "--", COMMAND)
        assert got.returncode == 3, got.stderr
        record = json.loads(got.stdout)
        assert _hosts(record, tmp_path / "state-a") == expected
        workers = {h["node"] for h in record["hosts"].values()}
        assert workers == {"a", "b", "c"}, workers  # the batches went to every worker
    finally:
        for d in daemons:
            stop_daemon(d)
        server.stop()
        fleet.stop()


def test_cancelling_a_shared_fanout_stops_it_on_the_workers(tmp_path) -> None:
    """`cancel --fanout ID` on the node that started a shared fan-out: its hosts end
    `cancelled` there at once, and each worker stops its batch at its next heartbeat
    (the far side's commands end: none of them gets past its sleep)."""
    import subprocess as sp
    import time

    fleet = start_fleet(tmp_path / "fleet", 6, dead=0)
    server = RedisServer(tmp_path / "redis")
    env = fleet_env(tmp_path)
    marks = tmp_path / "marks"
    marks.mkdir()
    daemons = []
    started = None
    try:
        _start_nodes(tmp_path, fleet, server, env, ("a", "b", "c"), daemons)
        cfg, state = tmp_path / "a.toml", tmp_path / "state-a"
        started = sp.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                            "fanout", "--json", "@web", "--",
                            f"sleep 12.345; touch {marks}/${{SSH_CONNECTION##* }}"],
                           env=env, stdout=sp.PIPE, stderr=sp.PIPE, text=True)

        def running() -> bool:
            listed = _fd(env, cfg, state, "fanouts", "--json")
            rows = json.loads(listed.stdout) if listed.returncode == 0 else []
            return bool(rows) and rows[0]["state"] == "running" and all(
                h["state"] == "pending" for h in rows[0]["hosts"].values())

        until(running, "the fan-out to run")
        until(lambda: server.client.xpending("fleetdeck:work", "workers")["pending"] >= 3,
              "the workers to take its batches")
        time.sleep(1.0)  # the commands under way on the far side
        done = _fd(env, cfg, state, "cancel", "--fanout", "1")
        assert done.returncode == 0, done.stderr
        out, err = started.communicate(timeout=60)
        record = json.loads(out)
        assert {h["state"] for h in record["hosts"].values()} == {"cancelled"}, record
        until(lambda: server.client.xpending("fleetdeck:work", "workers")["pending"] == 0,
              "the workers to end their batches", timeout=10)
        time.sleep(13.0)  # past the sleep: a command not stopped would leave its mark
        assert not list(marks.iterdir())
    finally:
        if started is not None and started.poll() is None:
            started.kill()
        for d in daemons:
            stop_daemon(d)
        server.stop()
        fleet.stop()


def test_a_shared_fanout_streams_its_hosts_lines_as_they_come(tmp_path) -> None:
    """`fanout --stream` through a daemon in a cluster: a host's first line shows while
    the host still runs (the workers send lines as they come, not at the end)."""
    import subprocess as sp

    fleet = start_fleet(tmp_path / "fleet", 4, dead=0)
    server = RedisServer(tmp_path / "redis")
    env = fleet_env(tmp_path)
    gate = tmp_path / "gate"
    daemons = []
    started = None
    try:
        _start_nodes(tmp_path, fleet, server, env, ("a", "b"), daemons)
        started = sp.Popen([*FLEETDECK, "--config", str(tmp_path / "a.toml"), "--state-dir",
                            str(tmp_path / "state-a"), "fanout", "--stream", "@web", "--",
                            f"echo first; echo oops >&2; while [ ! -e {gate} ]; do "
                            "sleep 0.1; done; echo second"],
                           env=env, stdout=sp.PIPE, stderr=sp.PIPE, text=True)
        assert started.stdout is not None
        seen: list[str] = []
        while len([x for x in seen if x.endswith(": first")]) < 4:
            line = started.stdout.readline()
            assert line, f"the fan-out ended first: {seen} {started.stderr.read()}"
            seen.append(line.rstrip("\n"))
        assert started.poll() is None  # every host's first line, and none has ended
        gate.touch()
        out, err = started.communicate(timeout=60)
        lines = seen + out.splitlines()
        assert started.returncode == 0, err
        assert sorted(x for x in lines if x.endswith(": second")) == [
            f"web0{i}: second" for i in range(1, 5)]
        # stderr kept apart, as on one node
        assert sorted(x for x in err.splitlines() if x.endswith(": oops")) == [
            f"web0{i}: oops" for i in range(1, 5)], err
    finally:
        gate.touch()
        if started is not None and started.poll() is None:
            started.kill()
        for d in daemons:
            stop_daemon(d)
        server.stop()
        fleet.stop()
