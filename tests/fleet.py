"""A fleet of real OpenSSH sshd hosts on loopback, and `fleetdeck` run against it as a
person runs it (its own config, state directory and HOME)."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import FLEETDECK, cli_env
from tests.sshd import USER, Keys, Sshd, known_line, make_keys, require_sshd


@dataclass
class Fleet:
    """Hosts PREFIX01.. on real sshd (group `web` unless told), and dead hosts dead1..
    whose ports nothing listens on (group `dead`)."""

    config: str
    known: str
    keys: Keys
    daemons: list[Sshd] = field(default_factory=list)
    refusing: list[socket.socket] = field(default_factory=list)  # the dead hosts' ports

    def port_of(self, i: int) -> int:
        """The port of the i-th live host (0-based), to tell hosts apart on the far side
        by $SSH_CONNECTION."""
        return self.daemons[i].port

    def stop(self) -> None:
        for d in self.daemons:
            d.stop()
        for held in self.refusing:
            held.close()


def start_fleet(root: Path, live: int, dead: int = 2, *, prefix: str = "web",
                extra_config: str = "", user: str = USER) -> Fleet:
    binary = require_sshd()
    keys = make_keys(root / "keys")
    daemons = [Sshd(binary, root / "sshd", keys, keys.host_path,
                    extra_config=extra_config).start() for _ in range(live)]
    config = "".join(
        f'[hosts.{prefix}{i + 1:02d}]\naddress = "127.0.0.1"\nport = {d.port}\n'
        f'user = "{user}"\nidentity_file = "{keys.client_path}"\ngroups = ["{prefix}"]\n'
        f'tags = {{ n = "{i + 1}" }}\n' for i, d in enumerate(daemons))
    # a dead host's port is held by a bound socket that does not listen: it refuses
    # every connection, and no other test's server can take it meanwhile
    refusing = []
    for _ in range(dead):
        held = socket.socket()
        held.bind(("127.0.0.1", 0))
        refusing.append(held)
    config += "".join(
        f'[hosts.dead{i}]\naddress = "127.0.0.1"\nport = {held.getsockname()[1]}\n'
        f'user = "{USER}"\nidentity_file = "{keys.client_path}"\ngroups = ["dead"]\n'
        for i, held in enumerate(refusing, 1))
    known = "".join(known_line(d.port, keys.host) for d in daemons)
    return Fleet(config, known, keys, daemons, refusing)


def fleet_files(tmp_path: Path, fleet: Fleet, *, known: bool = True,
                extra_config: str = "") -> tuple[Path, Path]:
    """(config, state directory) in tmp_path: the fleet's config (and more TOML after
    it) and, unless told, its host keys known."""
    state = tmp_path / "state"
    state.mkdir(exist_ok=True, mode=0o700)
    if known and not (state / "known_hosts").exists():
        (state / "known_hosts").write_text(fleet.known)
    cfg = tmp_path / "config.toml"
    cfg.write_text(fleet.config + extra_config)
    return cfg, state


def run_fd(tmp_path: Path, fleet: Fleet, *args: str, known: bool = True,
           extra_config: str = "", stdin: str = "",
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`fleetdeck --config … --state-dir … ARGS` on the fleet's files (fleet_files)."""
    cfg, state = fleet_files(tmp_path, fleet, known=known, extra_config=extra_config)
    return subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state), *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=fleet_env(tmp_path))


def without_login_noise(text: str) -> str:
    """What a command printed, without what the far side's login shell added: here
    root's ~/.bashrc runs `pyenv init`, whose rehash, racing another session's, now and
    then prints its own lines on stderr. Not the command's, nor fleetdeck's."""
    noise = ("pyenv: cannot rehash:", "rm: cannot remove '")
    return "".join(line for line in text.splitlines(keepends=True)
                   if not (line.startswith(noise) and ".pyenv" in line or
                           line.startswith("pyenv: cannot rehash:")))


def fleet_env(tmp_path: Path) -> dict[str, str]:
    env = cli_env(tmp_path)
    env["HOME"] = str(tmp_path / "home")  # no ~/.ssh of the person running the tests
    env.pop("SSH_AUTH_SOCK", None)
    return env
