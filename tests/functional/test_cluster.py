"""A cluster of real `fleetdeck daemon` processes on a real redis-server (loopback):
one leader schedules; kill -9 the leader and another takes over within the lease + 1 s;
across the cluster every occurrence ran once (the failover gap handled by the misfire
and overlap policies, and listed in history); a node name in use is refused; a Redis
that cannot be reached is one line at start."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import FLEETDECK, cli_env, start_daemon, stop_daemon, until
from tests.redisd import RedisServer, real_clock_env

LEASE = 2.0


@pytest.fixture
def redis_server(tmp_path: Path):
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def _config(tmp_path: Path, url: str, node: str, ticks: Path, jobs: str = "") -> Path:
    cfg = tmp_path / f"{node}.toml"
    cfg.write_text(f'[cluster]\nredis = "{url}"\nnode = "{node}"\nlease = "{LEASE:g}s"\n'
                   'heartbeat = "500ms"\nvisibility = "3s"\n\n' + (jobs or '[jobs.tick]\n'
                   f'command = \'echo "$FLEETDECK_SCHEDULED_AT $FLEETDECK_NODE" >> {ticks}\'\n'
                   'schedule = "every 1s"\n'))
    return cfg


def _runs(tmp_path: Path, name: str, env: dict[str, str]) -> list[dict]:
    return json.loads(subprocess.run(
        [*FLEETDECK, "--config", str(tmp_path / f"{name}.toml"), "--state-dir",
         str(tmp_path / f"state-{name}"), "runs", "--json", "--limit", "1000"],
        env=env, capture_output=True, text=True, check=True).stdout)


def _leader(server: RedisServer) -> str | None:
    value = server.client.get("fleetdeck:leader")
    return value.decode().split(" ")[0] if value else None


def _ticks(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    return [(int(a), b) for a, b in (line.split() for line in path.read_text().splitlines())]


def test_failover_after_kill_9_and_every_occurrence_once(tmp_path, redis_server) -> None:
    ticks = tmp_path / "ticks"
    env = cli_env(tmp_path)
    nodes = {}
    try:
        for name in ("a", "b", "c"):
            cfg = _config(tmp_path, redis_server.url, name, ticks)
            nodes[name] = (start_daemon(cfg, tmp_path / f"state-{name}", env), cfg)
        until(lambda: _leader(redis_server) in nodes, "a leader")
        until(lambda: len(_ticks(ticks)) >= 3, "three ticks")
        old = _leader(redis_server)
        status = json.loads(subprocess.run(
            [*FLEETDECK, "--config", str(nodes["a"][1]), "cluster", "status", "--json"],
            env=env, capture_output=True, text=True, check=True).stdout)
        assert status["leader"] == old and status["term"] >= 1
        assert sorted(n["node"] for n in status["nodes"]) == ["a", "b", "c"]
        assert {n["node"]: n["pid"] for n in status["nodes"]} == {
            k: p.pid for k, (p, _c) in nodes.items()}
        assert all(n["capacity"] == 16 and "T" in n["heartbeat"] for n in status["nodes"])

        killed = time.monotonic()
        nodes[old][0].send_signal(signal.SIGKILL)
        nodes[old][0].wait()
        until(lambda: _leader(redis_server) not in (None, old), "a new leader")
        took = time.monotonic() - killed
        assert took <= LEASE + 1.0, f"failover took {took:.2f}s"
        seen = len(_ticks(ticks))
        until(lambda: len(_ticks(ticks)) >= seen + 3, "three more ticks")
        # the cluster's history on each live node: every run any node reported
        for name in (n for n in nodes if n != old):
            want = {o for o, n in _ticks(ticks)[:seen + 3] if n != old}
            until(lambda name=name, want=want: want <= {
                int(r["occurrence"]) for r in _runs(tmp_path, name, env)
                if r["state"] == "succeeded"}, f"{name} to list the cluster's runs",
                interval=0.3)
    finally:
        for proc, _cfg in nodes.values():
            if proc.poll() is None:
                stop_daemon(proc)
    ran = [occ for occ, _node in _ticks(ticks)]
    assert len(ran) == len(set(ran)), f"an occurrence ran twice: {sorted(ran)}"
    assert len({n for _o, n in _ticks(ticks)}) >= 2  # the work is shared
    # the failover gap: each occurrence ran, or is in a node's history as skipped
    skipped, taken = set(), set()
    for name in nodes:
        runs = _runs(tmp_path, name, env)
        skipped |= {int(r["occurrence"]) for r in runs if r["state"] == "skipped"}
        # claimed by the killed node, which died before running it: taken over and
        # recorded interrupted by a live one (retries = 0), never run
        taken |= {int(r["occurrence"]) for r in runs if r["state"] == "interrupted"
                  and "stopped answering" in r["reason"]}
        own = [r for r in runs if not r["origin"]]
        assert all(r["node"] == name for r in own), own
        # each claim is a leader's, a node of this cluster (a loaded leader may miss its
        # renewal: a third node then takes a term of its own, legitimately)
        assert {r["claim"].split()[0] for r in runs if r["claim"]} <= set(nodes), runs
        copies = [r for r in runs if r["origin"]]
        assert all(r["origin"].split("#")[0] == r["node"] != name for r in copies)
    every = set(range(min(ran), max(ran) + 1))
    assert every <= set(ran) | skipped | taken, sorted(every - set(ran) - skipped - taken)
    assert not (set(ran) & skipped) and not (set(ran) & taken)


def test_a_node_name_in_use_is_refused(tmp_path, redis_server) -> None:
    env = cli_env(tmp_path)
    from tests.sshd import free_port

    cfg = _config(tmp_path, redis_server.url, "a", tmp_path / "ticks")
    port = free_port()
    first = start_daemon(cfg, tmp_path / "state-1", env, "--metrics", f"127.0.0.1:{port}")
    try:
        import httpx

        until(lambda: _leader(redis_server) == "a", "a to lead")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'fleetdeck_cluster_node_info{node="a"} 1.0' in metrics
        assert "fleetdeck_cluster_leader 1.0" in metrics
        assert "fleetdeck_cluster_redis_connected 1.0" in metrics
        assert "fleetdeck_cluster_capacity 16.0" in metrics
        assert "fleetdeck_cluster_taken_over 0.0" in metrics
        second = subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir",
                                 str(tmp_path / "state-2"), "daemon", "--quiet"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            "fleetdeck: node 'a' is already in the cluster ("), second.stderr
        assert first.poll() is None  # the first goes on
    finally:
        stop_daemon(first)


def test_redis_unreachable_or_misconfigured_is_one_line(tmp_path) -> None:
    from tests.sshd import free_port

    env = cli_env(tmp_path)
    port = free_port()
    cfg = _config(tmp_path, f"redis://127.0.0.1:{port}/0", "a", tmp_path / "ticks")
    done = subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir",
                           str(tmp_path / "state"), "daemon", "--quiet"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"fleetdeck: cannot reach Redis at redis://127.0.0.1:{port}/0")
    reach = subprocess.run([*FLEETDECK, "check-config", "--connect", str(cfg)], env=env,
                           capture_output=True, text=True)
    assert reach.returncode == 2
    assert reach.stderr.startswith(f"{cfg}:2: cluster.redis: cannot reach Redis at "
                                   f"redis://127.0.0.1:{port}/0: "), reach.stderr
    assert len(reach.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[cluster]\nredis = "http://x:1/0"\nheartbeat = "3s"\nvisibility = "2s"\n')
    check = subprocess.run([*FLEETDECK, "check-config", str(bad)], env=env,
                           capture_output=True, text=True)
    assert check.returncode == 2
    assert check.stderr.splitlines()[:3] == [
        f"{bad}:2: cluster.redis: not a Redis URL (redis://, rediss:// or unix://): "
        "'http://x:1/0'",
        f"{bad}:3: cluster.heartbeat: heartbeat (3s) must be at most a third of the lease "
        "(5s): a leader renews it in time",
        f"{bad}:4: cluster.visibility: visibility (2s) must be at least five heartbeats "
        "(15s): a live worker keeps its runs"]


def test_redis_restarted_nodes_reconnect_without_a_duplicate(tmp_path) -> None:
    """Redis stopped for longer than the lease while a run goes on: the run ends, and its
    report reaches the cluster once Redis is back (each node lists it); nothing ran twice
    and no worker's run was taken over for a dead one's."""
    folder = tmp_path / "redis"
    server = RedisServer(folder, persist=True)
    ticks = tmp_path / "ticks"
    jobs = ('[jobs.span]\nschedule = "every 1s"\noverlap = "skip"\n'
            f"command = 'sleep 1.5; echo \"$FLEETDECK_SCHEDULED_AT $FLEETDECK_NODE\" >> "
            f"{ticks}'\n")
    env = cli_env(tmp_path)
    nodes = []
    try:
        for name in ("a", "b"):
            cfg = _config(tmp_path, server.url, name, ticks, jobs)
            nodes.append(start_daemon(cfg, tmp_path / f"state-{name}", env))
        until(lambda: len(_ticks(ticks)) >= 2, "two ticks")
        server.stop()
        time.sleep(LEASE + 1.0)  # longer than the lease: the leader must have stepped down
        during = len(_ticks(ticks))
        time.sleep(2.0)
        assert len(_ticks(ticks)) <= during + 1  # at most one run that was already going
        server = RedisServer(folder, port=server.port, persist=True)
        until(lambda: _leader(server) is not None, "a leader again")
        seen = len(_ticks(ticks))
        until(lambda: len(_ticks(ticks)) >= seen + 3, "ticks again")
        logs = "".join(p.err() + p.out() for p in nodes)
        assert "Redis answers again" in "".join(
            (tmp_path / f"state-{n}" / "fleetdeck.log").read_text() for n in ("a", "b")), logs
        for name in ("a", "b"):  # the run that ended while Redis was away included
            want = {o for o, _n in _ticks(ticks)[:seen]}
            until(lambda name=name, want=want: want <= {
                int(r["occurrence"]) for r in _runs(tmp_path, name, env)
                if r["state"] == "succeeded"}, f"{name} to list every run", interval=0.3)
    finally:
        for proc in nodes:
            if proc.poll() is None:
                stop_daemon(proc)
        server.stop()
    ran = [occ for occ, _node in _ticks(ticks)]
    assert len(ran) == len(set(ran)), f"an occurrence ran twice: {sorted(ran)}"
    lost = [r for n in ("a", "b") for r in _runs(tmp_path, n, env)
            if r["state"] == "interrupted"]
    assert not lost, lost


def test_check_config_connect_tells_a_missing_or_wrong_password(tmp_path, redis_server
                                                                ) -> None:
    env = cli_env(tmp_path)
    cfg = _config(tmp_path, redis_server.url, "a", tmp_path / "ticks")
    ok = subprocess.run([*FLEETDECK, "check-config", "--connect", str(cfg)], env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == f"{cfg}: ok; its Redis answers", \
        ok.stderr
    # redis-py's unix:// form, the database as ?db=N: a valid URL, and reached
    sock = tmp_path / "redis.sock"
    by_socket = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock),
                                  "--save", "", "--appendonly", "no"], env=real_clock_env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):
            if sock.exists():
                break
            time.sleep(0.05)
        else:
            pytest.fail("redis-server on a unix socket did not start in 60 s")
        cfg = _config(tmp_path, f"unix://{sock}?db=1", "a", tmp_path / "ticks")
        unix = subprocess.run([*FLEETDECK, "check-config", "--connect", str(cfg)], env=env,
                              capture_output=True, text=True)
        assert unix.returncode == 0 and unix.stdout.strip().endswith("its Redis answers"), \
            unix.stderr
    finally:
        by_socket.terminate()
        by_socket.wait(timeout=30)
    redis_server.client.config_set("requirepass", "s3cret-pw")
    for url, said in ((redis_server.url, "wants a password"),
                      (f"redis://:wrong-pw@127.0.0.1:{redis_server.port}/0",
                       "refused the password")):
        cfg = _config(tmp_path, url, "a", tmp_path / "ticks")
        got = subprocess.run([*FLEETDECK, "check-config", "--connect", str(cfg)], env=env,
                             capture_output=True, text=True)
        assert got.returncode == 2, got.stderr
        assert said in got.stderr and len(got.stderr.strip().splitlines()) == 1, got.stderr
        assert got.stderr.startswith(f"{cfg}:2: cluster.redis: "), got.stderr
        assert "wrong-pw" not in got.stderr  # the password is never shown
    env["REDIS_PASSWORD"] = "s3cret-pw"
    cfg = _config(tmp_path, f"redis://:${{REDIS_PASSWORD}}@127.0.0.1:{redis_server.port}/0",
                  "a", tmp_path / "ticks")
    good = subprocess.run([*FLEETDECK, "check-config", "--connect", str(cfg)], env=env,
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stderr


async def test_the_console_says_this_nodes_part(tmp_path, redis_server) -> None:
    from textual.widgets import Static

    from core.fleetconfig import parse_config_text
    from tests.helpers import console_app, pilot_until, ready

    cfg = parse_config_text(f'[cluster]\nredis = "{redis_server.url}"\nnode = "ops1"\n'
                            'lease = "2s"\nheartbeat = "500ms"\n')
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)

        def status() -> str:
            return str(app.screen.query_one("#status", Static).render())

        # any term: a loaded loop may miss a renewal, and the node leads again in term 2
        await pilot_until(pilot, lambda: "cluster ops1: leader (term " in status(),
                          "the status bar to name the node's part")
        redis_server.client.set("fleetdeck:leader", "other 9")  # another node took it
        await pilot_until(pilot, lambda: "cluster ops1: standby" in status(),
                          "the node to stand by")


def _starts(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _long_job(starts: Path, every: str, retries: int) -> str:
    """A job that notes each start (node, occurrence, pid) in `starts` and runs long."""
    return (f'[jobs.long]\nschedule = "every {every}"\noverlap = "skip"\n'
            f'retries = {retries}\nretry_backoff = "1s"\n'
            f"command = 'echo \"$FLEETDECK_NODE $FLEETDECK_SCHEDULED_AT $$\" >> {starts}; "
            "sleep 120'\n")


def _end_orphans(starts: Path) -> None:
    """The long runs a killed daemon left behind (each its own process group)."""
    for s in _starts(starts):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(s[2]), signal.SIGKILL)


@pytest.mark.parametrize("retries", [1, 0])
def test_a_worker_killed_mid_run_has_its_run_taken_over(tmp_path, redis_server,
                                                        retries) -> None:
    """kill -9 the worker of a long run: after the visibility timeout another node
    records it `interrupted` (naming the worker) and, while the job's retries allow,
    runs the occurrence again; the dead worker's orphan is the test's to end."""
    starts = tmp_path / "starts"
    jobs = _long_job(starts, "2s", retries)
    env = cli_env(tmp_path)
    nodes = {}
    try:
        for name in ("a", "b"):
            cfg = _config(tmp_path, redis_server.url, name, starts, jobs)
            nodes[name] = start_daemon(cfg, tmp_path / f"state-{name}", env)
        first = until(lambda: _starts(starts), "the first start")[0]
        worker, occ = first[0], first[1]
        nodes[worker].send_signal(signal.SIGKILL)
        nodes[worker].wait()
        other = "b" if worker == "a" else "a"

        def lost() -> list[dict]:
            return [r for r in _runs(tmp_path, other, env)
                    if r["state"] == "interrupted" and not r["origin"]]

        marked = until(lost, "the lost run recorded", interval=0.3)[0]
        assert str(int(marked["occurrence"])) == occ
        assert marked["node"] == other and marked["claim"]
        assert f"worker {worker} stopped answering" in marked["reason"]
        if retries:
            assert f"run again on {other} (retries=1)" in marked["reason"]
            again = until(lambda: [s for s in _starts(starts) if s[0] == other],
                          "the occurrence run again")[0]
            assert again[1] == occ  # the same occurrence, not a new one
        else:
            assert "not run again (retries=0)" in marked["reason"]
            time.sleep(2.5)  # a run again would have started by now
            assert [s[1] for s in _starts(starts)].count(occ) == 1
        assert len({(s[0], s[1]) for s in _starts(starts)}) == len(_starts(starts))
    finally:
        for proc in nodes.values():
            if proc.poll() is None:
                stop_daemon(proc)
        _end_orphans(starts)


async def test_the_console_shows_the_cluster_and_where_a_run_ran(tmp_path, redis_server
                                                                 ) -> None:
    """`:cluster` lists the nodes from Redis (the leader and its term, a node whose
    heartbeat stopped); a run's row and preview say the node it ran on."""
    from core.fleetconfig import parse_config_text
    from tests.helpers import command, console_app, pilot_until, ready

    cfg = parse_config_text(f'[cluster]\nredis = "{redis_server.url}"\nnode = "ops1"\n'
                            'lease = "2s"\nheartbeat = "500ms"\n\n'
                            '[jobs.hello]\ncommand = "echo hi"\n')
    app = console_app(cfg, tmp_path / "state")
    redis_server.client.hset("fleetdeck:nodes", "gone", json.dumps(
        {"node": "gone", "pid": 4242, "host": "elsewhere", "running": 0, "capacity": 4,
         "heartbeat": time.time() - 600, "leader_term": None}))
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await pilot_until(pilot, lambda: app.engine.mode_label.startswith(
            "cluster ops1: leader (term "), "ops1 to lead")
        await command(pilot, "run hello")
        await command(pilot, "runs")

        def hello_row() -> tuple | None:
            rows = [cells for _k, cells, _t in app.screen._rows if cells[1].plain == "hello"]
            return rows[0] if rows and rows[0][3].plain.endswith("succeeded") else None

        row = await pilot_until(pilot, hello_row, "the run's row")
        assert row[2].plain == "local@ops1"
        await command(pilot, "cluster")

        def nodes() -> dict[str, list[str]]:
            return {k: [c.plain for c in cells] for k, cells, _t in
                    getattr(app.screen, "_rows", [])
                    if type(app.screen).__name__ == "ClusterScreen"}

        shown = await pilot_until(pilot, lambda: len(nodes()) == 2 and nodes(),
                                  "the two nodes")
        assert shown["ops1"][:2] == ["ops1", "leader"]
        assert shown["ops1"][5] and shown["ops1"][6] == str(os.getpid())
        assert shown["gone"][1] == "not answering"
        assert app.screen.TITLE_TEXT.startswith("Cluster · leader ops1 (term ")
        # Enter on a node: the runs that ran there
        app.screen.table.reselect("ops1")
        await pilot.press("enter")

        def filtered() -> list[str]:
            screen = app.screen
            if type(screen).__name__ != "RunsScreen" or not screen.row_filter.regex:
                return []
            return [k for k, _c, text in screen._rows if screen.row_filter.keep(text)]

        kept = await pilot_until(pilot, filtered, "the runs of ops1")
        assert kept == [str(row[0].plain.lstrip("#"))]


def test_overlap_skip_holds_across_the_cluster(tmp_path, redis_server) -> None:
    """A job every second that runs 2.5 s, overlap=skip, on three nodes: never two of
    its runs at once anywhere; the occurrences due meanwhile are recorded as skipped."""
    spans = tmp_path / "spans"
    jobs = ('[jobs.slow]\nschedule = "every 1s"\noverlap = "skip"\n'
            f"command = 'a=$(date +%s.%N); sleep 2.5; "
            f"echo \"$a $(date +%s.%N) $FLEETDECK_NODE\" >> {spans}'\n")
    env = cli_env(tmp_path)
    nodes = []
    try:
        for name in ("a", "b", "c"):
            cfg = _config(tmp_path, redis_server.url, name, spans, jobs)
            nodes.append(start_daemon(cfg, tmp_path / f"state-{name}", env))
        until(lambda: spans.exists() and len(spans.read_text().splitlines()) >= 3,
              "three runs of the slow job")
    finally:
        for proc in nodes:
            stop_daemon(proc)
    ran = sorted((float(a), float(b)) for a, b, _n in
                 (line.split() for line in spans.read_text().splitlines()))
    for (_s1, e1), (s2, _e2) in zip(ran, ran[1:], strict=False):
        assert s2 >= e1 - 0.05, f"two runs at once: {ran}"
    skipped = [r for name in ("a", "b", "c") for r in _runs(tmp_path, name, env)
               if r["state"] == "skipped" and not r["origin"]]
    assert skipped and all("still active in the cluster (overlap=skip)" in r["reason"]
                           for r in skipped), skipped


def test_a_node_killed_and_restarted_takes_over_its_own_lost_run(tmp_path, redis_server
                                                                 ) -> None:
    """One node, kill -9 while its run goes on, started again under the same name: the
    entry its earlier life held is taken over after the visibility timeout (recorded
    interrupted, not run again: retries=0), so the job's overlap=skip is free again and
    its next occurrences run (before, the entry stayed pending and skipped them all)."""
    starts = tmp_path / "starts"
    jobs = _long_job(starts, "1s", 0)
    env = cli_env(tmp_path)
    cfg = _config(tmp_path, redis_server.url, "a", starts, jobs)
    node = start_daemon(cfg, tmp_path / "state-a", env)
    again = None
    try:
        first = until(lambda: _starts(starts), "the first start")[0]
        node.send_signal(signal.SIGKILL)
        node.wait()
        until(lambda: redis_server.client.get("fleetdeck:node:a") is None,
              "the dead node's name to expire")
        again = start_daemon(cfg, tmp_path / "state-a", env)

        def lost() -> list[dict]:
            return [r for r in _runs(tmp_path, "a", env) if r["state"] == "interrupted"
                    and "stopped answering" in r["reason"]]

        marked = until(lost, "the lost run recorded", interval=0.3)[0]
        assert str(int(marked["occurrence"])) == first[1]
        assert "worker a stopped answering" in marked["reason"]
        assert "not run again (retries=0)" in marked["reason"]
        # the first run is no longer in flight anywhere (its process was ended by the
        # restart's recovery): a later occurrence starts
        until(lambda: len(_starts(starts)) >= 2, "a later occurrence to start")
        later = _starts(starts)[1]
        assert int(later[1]) > int(first[1])
    finally:
        for proc in (node, again):
            if proc is not None and proc.poll() is None:
                stop_daemon(proc)
        _end_orphans(starts)


def test_a_worker_stopped_on_purpose_reports_its_runs(tmp_path, redis_server) -> None:
    """SIGTERM a worker while its run goes on: the run ends `cancelled` and is reported
    (the other node copies it), so nobody takes it over for a dead worker's and the
    job's next occurrences run on the node that is left."""
    starts = tmp_path / "starts"
    jobs = _long_job(starts, "1s", 1)
    env = cli_env(tmp_path)
    nodes = {}
    try:
        for name in ("a", "b"):
            cfg = _config(tmp_path, redis_server.url, name, starts, jobs)
            nodes[name] = start_daemon(cfg, tmp_path / f"state-{name}", env)
        first = until(lambda: _starts(starts), "the first start")[0]
        worker, occ = first[0], first[1]
        other = "b" if worker == "a" else "a"
        stop_daemon(nodes[worker])
        assert nodes[worker].returncode == 0

        def copied() -> list[dict]:
            return [r for r in _runs(tmp_path, other, env) if r["origin"]
                    and r["state"] == "cancelled"]

        run = until(copied, "the stopped run's report", interval=0.3)[0]
        assert str(int(run["occurrence"])) == occ and run["node"] == worker
        assert run["reason"] == "fleetdeck was stopped while it ran"
        until(lambda: any(s[0] == other for s in _starts(starts)),
              "a later occurrence on the node left")
        time.sleep(3.5)  # past the visibility timeout: nothing was taken over
        assert not [r for r in _runs(tmp_path, other, env) if r["state"] == "interrupted"]
        assert [s[1] for s in _starts(starts)].count(occ) == 1
    finally:
        for proc in nodes.values():
            if proc.poll() is None:
                stop_daemon(proc)
        _end_orphans(starts)
