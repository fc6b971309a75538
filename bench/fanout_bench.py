"""Fan-out speed: `uptime` on N real OpenSSH hosts, fleetdeck beside the alternatives.

Starts N real `sshd` processes on loopback ports (each with the same host key and an
authorized client key; `-r`: no re-exec per connection), then times, as whole
processes, in one run and interleaved:

* ``fleetdeck fanout @bench -- uptime`` (host keys verified, history recorded);
* a minimal asyncssh script: connect to every host at once, run, print (the floor);
* parallel-ssh (``ParallelSSHClient``, libssh2) where it is installed;
* Debian's ``parallel-ssh`` command (package pssh: OpenSSH clients side by side) where
  it is installed, for reference beside the library of the same name;
* Ansible ad-hoc ``ansible all -m raw -a uptime --forks N`` where it is installed
  (OpenSSH client; ControlPersist off, so every run connects afresh like the others).

Each tool runs --repeat times per N; the median counts. Prints the ratios and the goals:
fleetdeck within 1.3x of the asyncssh script, at least 1.5x faster than parallel-ssh and
3x faster than Ansible.

Server-side costs every tool pays alike would hide the clients' differences on two
cores: run as root, the script logs in as a system user `fleetbench` (created if
missing, shell /bin/sh, empty home) rather than root, whose ~/.bashrc here runs
`pyenv init` (~90 ms of shell start-up per SSH session, as sshd has bash read it).

Run: .venv/bin/python bench/fanout_bench.py [--hosts 10,50] [--repeat 5]
A measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.sshd import USER, Keys, Sshd, known_line, make_keys, sshd_binary  # noqa: E402

BENCH_USER = "fleetbench"


def login_user() -> str:
    """The user the clients log in as: a plain one, as root (see the module docstring)."""
    if os.geteuid() != 0:
        return USER
    if subprocess.run(["id", BENCH_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--create-home", "--shell", "/bin/sh",
                        BENCH_USER], check=True, capture_output=True)
    # no password, but not "locked" (sshd without PAM refuses locked accounts)
    subprocess.run(["usermod", "-p", "*", BENCH_USER], check=True, capture_output=True)
    return BENCH_USER

PY = sys.executable
LOGIN = USER  # set in main()
BIN = Path(PY).parent

MINIMAL = r"""
import asyncio, sys
import asyncssh

async def one(port, key, known):
    async with asyncssh.connect("127.0.0.1", port, username=sys.argv[1],
                                client_keys=[key], known_hosts=known) as conn:
        result = await conn.run("uptime")
        return port, result.stdout

async def main():
    user, key, known, *ports = sys.argv[1:]
    results = await asyncio.gather(*(one(int(p), key, known) for p in ports),
                                   return_exceptions=True)
    for r in results:
        print(r if isinstance(r, BaseException) else f"{r[0]}: {r[1].strip()}")

asyncio.run(main())
"""

PSSH = r"""
import sys
from pssh.clients import ParallelSSHClient
from pssh.config import HostConfig

user, key, *ports = sys.argv[1:]
client = ParallelSSHClient(["127.0.0.1"] * len(ports), user=user, pkey=key,
                           pool_size=len(ports),
                           host_config=[HostConfig(port=int(p)) for p in ports])
output = client.run_command("uptime")
client.join(output)
for out in output:
    print(out.host, "".join(out.stdout))
"""


def available(module: str) -> bool:
    return subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0


def timed(cmd: list[str], env: dict[str, str], expect: int) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    elapsed = time.perf_counter() - t0
    ok_lines = out.stdout.count("load average")
    if out.returncode != 0 or ok_lines < expect:
        raise RuntimeError(f"{cmd[0]}...: exit {out.returncode}, {ok_lines}/{expect} hosts "
                           f"answered; {(out.stderr or out.stdout).strip()[-300:]}")
    return elapsed


def write_fleetdeck_config(folder: Path, keys: Keys, ports: list[int], known: Path) -> Path:
    lines = ["[engine]", "max_concurrent_runs = 8", ""]
    for i, port in enumerate(ports):
        lines += [f"[hosts.h{i:03d}]", 'address = "127.0.0.1"', f"port = {port}",
                  f'user = "{LOGIN}"', 'groups = ["bench"]',
                  f'identity_file = "{keys.client_path}"', f'known_hosts = "{known}"', ""]
    path = folder / f"fleetdeck-{len(ports)}.toml"
    path.write_text("\n".join(lines))
    return path


def write_ansible_inventory(folder: Path, keys: Keys, ports: list[int]) -> Path:
    lines = ["[bench]"]
    for i, port in enumerate(ports):
        lines.append(f"h{i:03d} ansible_host=127.0.0.1 ansible_port={port} ansible_user={LOGIN} "
                     f"ansible_ssh_private_key_file={keys.client_path}")
    path = folder / f"ansible-{len(ports)}.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_n(n: int, servers: list[Sshd], keys: Keys, folder: Path, known: Path,
            repeat: int, tools: dict[str, bool]) -> dict[str, float]:
    ports = [s.port for s in servers[:n]]
    env = dict(os.environ, XDG_CONFIG_HOME=str(folder / "xdg-config"),
               XDG_STATE_HOME=str(folder / "xdg-state"), PYTHONPATH=str(ROOT))
    config = write_fleetdeck_config(folder, keys, ports, known)
    state = folder / f"state-{n}"
    minimal = folder / "minimal.py"
    minimal.write_text(MINIMAL)
    cmds: dict[str, list[str]] = {
        "fleetdeck": [str(BIN / "fleetdeck"), "--config", str(config), "--state-dir",
                      str(state), "fanout", "--forks", str(max(64, n)), "@bench", "--",
                      "uptime"],
        "asyncssh script": [PY, str(minimal), LOGIN, str(keys.client_path), str(known),
                            *map(str, ports)],
    }
    if tools["parallel-ssh"]:
        pssh = folder / "pssh_run.py"
        pssh.write_text(PSSH)
        cmds["parallel-ssh"] = [PY, str(pssh), LOGIN, str(keys.client_path), *map(str, ports)]
    if tools["pssh command"]:
        hosts_file = folder / f"pssh-hosts-{n}"
        hosts_file.write_text("".join(f"127.0.0.1:{port}\n" for port in ports))
        cmds["pssh command"] = [
            "parallel-ssh", "-h", str(hosts_file), "-l", LOGIN, "-p", str(n), "-i",
            "-O", f"IdentityFile={keys.client_path}", "-O", f"UserKnownHostsFile={known}",
            "-O", "StrictHostKeyChecking=yes", "-O", "ControlMaster=no", "uptime"]
    if tools["ansible"]:
        inv = write_ansible_inventory(folder, keys, ports)
        env_ansible = dict(env, ANSIBLE_HOST_KEY_CHECKING="False",
                           ANSIBLE_SSH_ARGS="-o ControlMaster=no -o ControlPersist=no",
                           ANSIBLE_LOCAL_TEMP=str(folder / "ansible-tmp"),
                           ANSIBLE_HOME=str(folder / "ansible-home"))
        cmds["ansible -m raw"] = [str(BIN / "ansible"), "all", "-i", str(inv), "-m", "raw",
                                  "-a", "uptime", "--forks", str(n)]
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for name, cmd in cmds.items():  # warm-up: caches, bytecode, first connections
        timed(cmd, env_ansible if name.startswith("ansible") else env, n)
    for _ in range(repeat):
        for name, cmd in cmds.items():
            times[name].append(timed(cmd, env_ansible if name.startswith("ansible") else env,
                                     n))
    return {name: statistics.median(xs) for name, xs in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", default="10,50", help="host counts, comma separated")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    counts = [int(x) for x in args.hosts.split(",")]
    binary = sshd_binary()
    if binary is None:
        print("sshd (openssh-server) is not installed: nothing to measure")
        return 0
    global LOGIN
    LOGIN = login_user()
    subprocess.run([PY, "-m", "compileall", "-q", "core", "tui"], cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    tools = {"parallel-ssh": available("pssh.clients"),
             "pssh command": shutil.which("parallel-ssh") is not None,
             "ansible": shutil.which("ansible", path=str(BIN)) is not None}
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-fanout-bench-"))
    servers: list[Sshd] = []
    try:
        keys = make_keys(folder / "keys")
        # sshd reads authorized_keys as the user logging in
        for path in (folder, folder / "keys"):
            os.chmod(path, 0o755)
        os.chmod(keys.authorized, 0o644)
        known = folder / "known_hosts"
        for _ in range(max(counts)):
            servers.append(Sshd(binary, folder / "sshd", keys, keys.host_path,
                                rexec=False).start())
        known.write_text("".join(known_line(s.port, keys.host) for s in servers))
        print(f"{len(servers)} sshd on loopback; parallel-ssh "
              f"{'yes' if tools['parallel-ssh'] else 'not installed'}, pssh command "
              f"{'yes' if tools['pssh command'] else 'not installed'}, ansible "
              f"{'yes' if tools['ansible'] else 'not installed'}; median of {args.repeat}")
        rows = []
        for n in counts:
            medians = bench_n(n, servers, keys, folder, known, args.repeat, tools)
            base = medians["asyncssh script"]
            f = medians["fleetdeck"]
            for name, t in medians.items():
                rows.append((n, name, t, t / base, f / t))
        print(f"\n{'N':>3}  {'tool':<16}{'median':>9}{'vs asyncssh':>13}{'fleetdeck/it':>14}")
        for n, name, t, vs_base, f_vs in rows:
            print(f"{n:>3}  {name:<16}{t * 1000:>7.0f}ms{vs_base:>12.2f}x{f_vs:>13.2f}x")
        print("\ngoals (fleetdeck time / other's time):")
        for n in counts:
            by = {name: t for m, name, t, _, _ in rows if m == n}
            f = by["fleetdeck"]
            checks = [("asyncssh script", 1.3, "<="), ("parallel-ssh", 1 / 1.5, "<="),
                      ("ansible -m raw", 1 / 3, "<=")]
            for name, goal, _ in checks:
                if name not in by:
                    print(f"  N={n:<3} vs {name:<16} not measured (not installed)")
                    continue
                ratio = f / by[name]
                print(f"  N={n:<3} vs {name:<16} {ratio:5.2f}x  goal <= {goal:.2f}x: "
                      f"{'PASS' if ratio <= goal else 'MISS'}")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
