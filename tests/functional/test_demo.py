"""`fleetdeck demo`: the simulated fleet as real processes and real SSH on loopback."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from core.demo import FLEET, DemoFleet
from core.fleetconfig import load_config
from tests.helpers import FLEETDECK, cli_env, console_app, pilot_until, ready, until_async

DOWN = {h.name for h in FLEET if h.behaviour == "down"}
FLAKY = {h.name for h in FLEET if h.behaviour == "flaky"}


def start_fleet(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-m", "core.demo", "serve", "--dir", str(folder),
                             "--seed", "7"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("ready "), line
    return proc, Path(line.split(" ", 1)[1])


def test_fanout_over_the_demo_fleet_shows_every_kind_of_host(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    fleet, config = start_fleet(tmp_path / "demo", env)
    try:
        assert oct(os.stat(tmp_path / "demo").st_mode & 0o777) == "0o700"
        out = subprocess.run([*FLEETDECK, "--config", str(config), "--state-dir",
                              str(tmp_path / "state"), "fanout", "*", "--", "hostname"],
                             capture_output=True, text=True, env=env, timeout=120)
        lines = out.stdout.splitlines()
        for host in FLEET:
            if host.name in DOWN:
                assert f"{host.name}: [unreachable] connection refused" in out.stderr
            elif host.name not in FLAKY:
                assert f"{host.name}: {host.name}" in lines  # each answers its own name
        assert out.returncode == 3  # some unreachable
        assert "2 unreachable (12 hosts" in out.stdout
        # host keys were verified: nothing was trusted on the way
        assert not (tmp_path / "state" / "known_hosts").exists() or \
            (tmp_path / "state" / "known_hosts").read_text() == ""
    finally:
        assert fleet.stdin is not None
        fleet.stdin.close()  # the parent going away stops the fleet
        assert fleet.wait(timeout=30) == 0


def test_fleet_only_mode_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    proc = subprocess.Popen([*FLEETDECK, "demo", "--fleet-only", "--dir", str(tmp_path / "d")],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("demo fleet up (") and str(tmp_path / "d") in first
        assert "fanout '*' -- uptime" in proc.stdout.readline()
        config = load_config(tmp_path / "d" / "config.toml")
        assert len(config.hosts) == len(FLEET) + 1  # and `local`
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0  # generous: only a hang fails it (busy machines)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_broken_demo_folder_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = subprocess.run([*FLEETDECK, "demo", "--fleet-only", "--dir", str(blocker / "demo")],
                         capture_output=True, text=True, env=cli_env(tmp_path), timeout=60)
    assert out.returncode == 2
    # the path, what is wrong with it, and what to do: one line, nothing started
    assert out.stderr == (f"fleetdeck: {blocker / 'demo'}: {blocker} is not a folder; "
                          "choose another path (--dir)\n")


async def test_console_on_the_demo_inventory_runs_remote_jobs(tmp_path: Path) -> None:
    fleet = DemoFleet(tmp_path / "demo", seed=7)
    config_path = await fleet.start()
    try:
        app = console_app(load_config(config_path), tmp_path / "state")
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            assert {"web-uptime", "db-disk", "cache-check"} <= set(app.engine.config.jobs)
            runs = await app.engine.run_job("web-uptime", actor=app.actor)
            assert sorted(r["host"] for r in runs) == [f"web0{i}" for i in range(1, 6)]

            def finished() -> list[dict]:
                got = [app.engine.get_run(r["id"]) for r in runs]
                return got if all(r["state"] not in ("queued", "running") for r in got) \
                    else []

            done = await pilot_until(pilot, finished, "web-uptime on five hosts", timeout=60)
            assert [r["state"] for r in done] == ["succeeded"] * 5
            log = app.engine.run_log_path(done[0]["id"]).read_text()
            assert "load average" in log
    finally:
        await fleet.stop()


def test_fleet_only_prints_commands_that_work_from_any_shell(tmp_path: Path) -> None:
    """Started in one folder with relative paths (one with a space), the printed command
    works pasted into /bin/sh in another folder, with none of the test's environment."""
    start, elsewhere, home = tmp_path / "start", tmp_path / "elsewhere", tmp_path / "home"
    for d in (start, elsewhere, home):
        d.mkdir()
    proc = subprocess.Popen([*FLEETDECK, "--state-dir", "my state", "demo", "--fleet-only",
                             "--dir", "my demo"], stdout=subprocess.PIPE, text=True,
                            env=cli_env(tmp_path), cwd=start)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("demo fleet up (")
        fanout, console = proc.stdout.readline().strip(), proc.stdout.readline().strip()
        words = shlex.split(fanout)
        assert Path(words[0]).is_absolute()
        assert words[words.index("--config") + 1] == str(start / "my demo" / "config.toml")
        assert words[words.index("--state-dir") + 1] == str(start / "my state")
        assert words[-4:] == ["fanout", "*", "--", "uptime"]
        assert shlex.split(console)[-1] == "console"
        bare = {"PATH": "/usr/bin:/bin", "HOME": str(home)}  # no PYTHONPATH, XDG_*, venv
        out = subprocess.run(["/bin/sh", "-c", fanout], cwd=elsewhere, env=bare,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 3, out.stderr  # the two down hosts
        assert "2 unreachable (12 hosts" in out.stdout
        assert any(line.startswith("web01: ") and "load average" in line
                   for line in out.stdout.splitlines())
        assert (start / "my state" / "fanouts").is_dir()  # the state it named
        assert not (elsewhere / "my state").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_a_command_cancelled_while_a_slow_host_waits_never_runs(tmp_path: Path) -> None:
    """db2 waits 4 s before it starts a command; a cancel in that time (fleetdeck's EOF
    on the channel) reaches the command when it starts, as with sshd: it is stopped at
    once, and what it would have done after a second is never done."""
    from core.remote.commands import run_command
    from core.remote.ssh import SSHPool, target_for

    fleet = DemoFleet(tmp_path / "demo", seed=7)
    config = load_config(await fleet.start())
    pool = SSHPool(state_dir=tmp_path / "state")
    marker = tmp_path / "ran"
    try:
        conn = await pool.connect(target_for(config.hosts["db2"], config.hosts))
        others = set(fleet._tasks)  # the fleet's own (app logs, the flapping service)
        cancel = asyncio.Event()
        cancel.set()
        res = await run_command(conn, f"sleep 1; touch {marker}", on_line=lambda s, line: None,
                                kill_grace=1, cancel=cancel)
        assert res.cancelled
        await until_async(lambda: fleet._tasks <= others, "db2's session to end", timeout=60)
        assert not marker.exists()
    finally:
        await pool.close()
        await fleet.stop()
