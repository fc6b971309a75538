"""`fleetdeck run` through a daemon that dies: Ctrl-C cannot cancel the run there, so
the command says so and stops waiting (exit 130) instead of hanging."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from tests.helpers import FLEETDECK, cli_env, start_daemon, stop_daemon


def test_ctrl_c_after_the_daemon_died_stops_waiting(tmp_path: Path) -> None:
    cfg = tmp_path / "fleet.toml"
    marker = tmp_path / "started"
    cfg.write_text(f'[jobs.long]\ncommand = "echo $$ > {marker}; echo started; sleep 60"\n')
    state = tmp_path / "state"
    env = cli_env(tmp_path)
    daemon = start_daemon(cfg, state, env)
    waiting = subprocess.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                                "run", "long"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        # its first line printed: the command has the run (its answer came back)
        assert waiting.stdout is not None and waiting.stdout.readline() == "started\n"
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        waiting.send_signal(signal.SIGINT)
        _out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 130, err
        assert "stopped waiting: run #1 left as the daemon has them" in err
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
        stop_daemon(daemon)
        if marker.exists() and marker.read_text().strip():  # the dead daemon's run
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(marker.read_text()), signal.SIGKILL)
