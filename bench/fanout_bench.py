"""Fan-out speed at scale: `uptime` on N real OpenSSH hosts, and a 10 MB push to 50,
fleetdeck beside the alternatives, as whole processes, interleaved (A B C A B C ...).

The fleet: real `sshd` processes on loopback (`-r`: no re-exec per connection), each
listening on 16 addresses 127.0.0.x at one port, so 1,000 hosts are 63 processes and
every host is its own address and port. Every tool verifies or skips host keys as it
does by default here (fleetdeck and the asyncssh script verify them against a
known_hosts file; Ansible's checking is off, as its docs advise for a bench), and every
run connects afresh.

`uptime` at each N (--hosts), each tool --repeat times, median counts:

* ``fleetdeck fanout --forks N @bench -- uptime`` (history recorded);
* a minimal asyncssh script: connect to every host at once, run, print (the floor);
* parallel-ssh (``ParallelSSHClient``, libssh2), pool size N;
* Ansible ``ansible all -m raw -a uptime`` (OpenSSH client, ControlPersist off), forks
  N up to 200: above that its forked workers (~30 MB each) would only thrash two cores.

Peak RSS of each whole process (wait4's ru_maxrss) is printed beside its time.

`push` (--push-hosts, default 50): a fresh 10 MB file each run (so nothing is skipped as
unchanged) to a folder per host: ``fleetdeck push``, parallel-ssh's ``copy_file`` (SFTP,
per-host paths through copy_args), Ansible's ``copy`` module.

Goals (fleetdeck time / the other's): <= 1.15x the asyncssh script; <= 1.0x parallel-ssh
at 200 hosts and above; <= 1/3 of Ansible; push <= 1/2 of Ansible's copy and <= 1.3x
parallel-ssh's copy_file.

Server-side costs every tool pays alike would hide the clients' differences on two
cores: run as root, the script logs in as a system user `fleetbench` (created if
missing, shell /bin/sh) rather than root, whose ~/.bashrc here runs `pyenv init`.

Run: .venv/bin/python bench/fanout_bench.py [--hosts 10,50,200,500,1000] [--repeat 5]
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.sshd import USER, Keys, Sshd, make_keys, sshd_binary  # noqa: E402

BENCH_USER = "fleetbench"
PER_SSHD = 16  # sshd listens on at most 16 addresses
ANSIBLE_MAX_FORKS = 200
PY = sys.executable
BIN = Path(PY).parent
LOGIN = USER  # set in main()


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


@dataclass(frozen=True)
class Node:
    address: str
    port: int


MINIMAL = r"""
import asyncio, sys
import asyncssh

async def one(addr, port, key, known):
    async with asyncssh.connect(addr, int(port), username=sys.argv[1],
                                client_keys=[key], known_hosts=known) as conn:
        result = await conn.run("uptime")
        return addr, port, result.stdout

async def main():
    user, key, known, *nodes = sys.argv[1:]
    results = await asyncio.gather(*(one(*n.split(":"), key, known) for n in nodes),
                                   return_exceptions=True)
    for r in results:
        print(r if isinstance(r, BaseException) else f"{r[0]}:{r[1]}: {r[2].strip()}")

asyncio.run(main())
"""

PSSH = r"""
import sys
from pssh.clients import ParallelSSHClient
from pssh.config import HostConfig

user, key, *nodes = sys.argv[1:]
hosts = [n.split(":") for n in nodes]
client = ParallelSSHClient([a for a, _ in hosts], user=user, pkey=key, pool_size=len(hosts),
                           host_config=[HostConfig(port=int(p)) for _, p in hosts])
output = client.run_command("uptime")
client.join(output)
for out in output:
    print(out.host, "".join(out.stdout))
"""

PSSH_COPY = r"""
import sys
from gevent import joinall
from pssh.clients import ParallelSSHClient
from pssh.config import HostConfig

user, key, src, dest_root, *nodes = sys.argv[1:]
hosts = [n.split(":") for n in nodes]
client = ParallelSSHClient([a for a, _ in hosts], user=user, pkey=key, pool_size=len(hosts),
                           host_config=[HostConfig(port=int(p)) for _, p in hosts])
names = [f"h{i:04d}" for i in range(len(hosts))]
cmds = client.copy_file(src, dest_root + "/%(n)s/payload",
                        copy_args=[{"n": n} for n in names])
joinall(cmds, raise_error=True)
for n in names:
    print("copied", n)
"""


def available(module: str) -> bool:
    return subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0


def timed(cmd: list[str], env: dict[str, str], expect: int,
          marker: str = "load average") -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one whole process; RuntimeError unless `expect`
    lines hold `marker`."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    ok_lines = text.count(marker)
    if proc.returncode != 0 or ok_lines < expect:
        raise RuntimeError(f"{cmd[0]}...: exit {proc.returncode}, {ok_lines}/{expect} "
                           f"hosts answered; {(errors or text).strip()[-300:]}")
    return elapsed, usage.ru_maxrss / 1024


def fleetdeck_config(folder: Path, keys: Keys, nodes: list[Node], known: Path) -> Path:
    lines = ["[engine]", "max_concurrent_runs = 8", ""]
    for i, n in enumerate(nodes):
        lines += [f"[hosts.h{i:04d}]", f'address = "{n.address}"', f"port = {n.port}",
                  f'user = "{LOGIN}"', 'groups = ["bench"]',
                  f'identity_file = "{keys.client_path}"', f'known_hosts = "{known}"', ""]
    path = folder / f"fleetdeck-{len(nodes)}.toml"
    path.write_text("\n".join(lines))
    return path


def ansible_inventory(folder: Path, keys: Keys, nodes: list[Node]) -> Path:
    lines = ["[bench]"]
    for i, n in enumerate(nodes):
        lines.append(f"h{i:04d} ansible_host={n.address} ansible_port={n.port} "
                     f"ansible_user={LOGIN} ansible_ssh_private_key_file={keys.client_path} "
                     "ansible_python_interpreter=/usr/bin/python3")
    path = folder / f"ansible-{len(nodes)}.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


class Bench:
    def __init__(self, folder: Path, keys: Keys, nodes: list[Node], known: Path,
                 tools: dict[str, bool]) -> None:
        self.folder, self.keys, self.nodes, self.known, self.tools = (
            folder, keys, nodes, known, tools)
        self.env = dict(os.environ, XDG_CONFIG_HOME=str(folder / "xdg-config"),
                        XDG_STATE_HOME=str(folder / "xdg-state"), PYTHONPATH=str(ROOT))
        self.env_ansible = dict(self.env, ANSIBLE_HOST_KEY_CHECKING="False",
                                ANSIBLE_SSH_ARGS="-o ControlMaster=no -o ControlPersist=no "
                                "-o UserKnownHostsFile=/dev/null",  # not ~/.ssh
                                ANSIBLE_LOCAL_TEMP=str(folder / "ansible-tmp"),
                                ANSIBLE_HOME=str(folder / "ansible-home"),
                                ANSIBLE_REMOTE_TMP="/tmp/.ansible-bench")
        for name, text in (("minimal.py", MINIMAL), ("pssh_run.py", PSSH),
                           ("pssh_copy.py", PSSH_COPY)):
            (folder / name).write_text(text)

    def _fd(self, n: int, *args: str) -> list[str]:
        config = fleetdeck_config(self.folder, self.keys, self.nodes[:n], self.known)
        return [str(BIN / "fleetdeck"), "--config", str(config), "--state-dir",
                str(self.folder / f"state-{n}"), *args]

    def uptime_cmds(self, n: int) -> dict[str, list[str]]:
        nodes = [f"{x.address}:{x.port}" for x in self.nodes[:n]]
        cmds = {
            "fleetdeck": self._fd(n, "fanout", "--forks", str(n), "@bench", "--", "uptime"),
            "asyncssh script": [PY, str(self.folder / "minimal.py"), LOGIN,
                                str(self.keys.client_path), str(self.known), *nodes],
        }
        if self.tools["parallel-ssh"]:
            cmds["parallel-ssh"] = [PY, str(self.folder / "pssh_run.py"), LOGIN,
                                    str(self.keys.client_path), *nodes]
        if self.tools["ansible"]:
            inv = ansible_inventory(self.folder, self.keys, self.nodes[:n])
            cmds["ansible -m raw"] = [str(BIN / "ansible"), "all", "-i", str(inv), "-m",
                                      "raw", "-a", "uptime", "--forks",
                                      str(min(n, ANSIBLE_MAX_FORKS))]
        return cmds

    def push_cmds(self, n: int, payload: Path, dest: Path) -> dict[str, list[str]]:
        nodes = [f"{x.address}:{x.port}" for x in self.nodes[:n]]
        cmds = {"fleetdeck push": self._fd(n, "push", "--forks", str(n), "@bench",
                                           str(payload), f"{dest}/fleetdeck/{{host}}/payload")}
        if self.tools["parallel-ssh"]:
            cmds["parallel-ssh copy_file"] = [
                PY, str(self.folder / "pssh_copy.py"), LOGIN, str(self.keys.client_path),
                str(payload), f"{dest}/pssh", *nodes]
        if self.tools["ansible"]:
            inv = ansible_inventory(self.folder, self.keys, self.nodes[:n])
            cmds["ansible copy"] = [
                str(BIN / "ansible"), "all", "-i", str(inv), "-m", "copy", "-a",
                f"src={payload} dest={dest}/ansible/{{{{ inventory_hostname }}}}/payload",
                "--forks", str(min(n, ANSIBLE_MAX_FORKS))]
        return cmds

    def run(self, cmds: dict[str, list[str]], n: int, repeat: int, marker: str,
            before: object = None) -> dict[str, tuple[float, float]]:
        """Each tool once to warm up, then `repeat` rounds of every tool in turn."""
        times: dict[str, list[float]] = {name: [] for name in cmds}
        rss: dict[str, float] = {name: 0.0 for name in cmds}
        for round_ in range(repeat + 1):
            for name, cmd in cmds.items():
                if callable(before):
                    before()
                env = self.env_ansible if name.startswith("ansible") else self.env
                try:
                    t, peak = timed(cmd, env, n, MARKERS.get(name, marker))
                except RuntimeError as e:  # said, and left out: the others still count
                    print(f"  {name} at {n} hosts failed: {e}", flush=True)
                    continue
                if round_:
                    times[name].append(t)
                    rss[name] = max(rss[name], peak)
        return {name: (statistics.median(xs), rss[name]) for name, xs in times.items()
                if xs}


MARKERS = {"fleetdeck push": ": changed", "parallel-ssh copy_file": "copied",
           "ansible copy": "CHANGED"}


def start_fleet(folder: Path, keys: Keys, binary: str, n: int) -> tuple[list[Sshd], list[Node]]:
    servers, nodes = [], []
    for k in range((n + PER_SSHD - 1) // PER_SSHD):
        addrs = tuple(f"127.0.{k + 1}.{j + 1}" for j in range(PER_SSHD))
        s = Sshd(binary, folder / "sshd", keys, keys.host_path, rexec=False,
                 addresses=addrs, extra_config="MaxStartups 2000:30:4000\n").start()
        servers.append(s)
        nodes += [Node(a, s.port) for a in addrs]
    return servers, nodes[:n]


def report(title: str, rows: list[tuple[int, str, float, float]], base: str,
           goals: list[tuple[str, float, int]]) -> None:
    print(f"\n{title}")
    print(f"{'N':>5}  {'tool':<24}{'median':>9}  {'vs ' + base:>26}{'peak RSS':>10}")
    by_n: dict[int, dict[str, float]] = {}
    for n, name, t, _peak in rows:
        by_n.setdefault(n, {})[name] = t
    for n, name, t, peak in rows:
        ref = by_n[n].get(base)
        vs = f"{t / ref:.2f}x" if ref else "-"
        print(f"{n:>5}  {name:<24}{t * 1000:>7.0f}ms  {vs:>26}{peak:>8.0f}MB")
    print("goals (fleetdeck time / the other's):")
    mine = next(name for _, name, _, _ in rows if name.startswith("fleetdeck"))
    for n, times in by_n.items():
        for name, goal, from_n in goals:
            if n < from_n:
                continue
            if name not in times:
                print(f"  N={n:<5} vs {name:<24} not measured (not installed)")
                continue
            ratio = times[mine] / times[name]
            print(f"  N={n:<5} vs {name:<24} {ratio:5.2f}x  goal <= {goal:.2f}x: "
                  f"{'PASS' if ratio <= goal else 'MISS'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", default="10,50,200,500,1000", help="host counts for uptime")
    p.add_argument("--push-hosts", type=int, default=50, help="hosts for the push (0: none)")
    p.add_argument("--push-mb", type=int, default=10)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    counts = [int(x) for x in args.hosts.split(",") if x]
    binary = sshd_binary()
    if binary is None:
        print("sshd (openssh-server) is not installed: nothing to measure")
        return 0
    global LOGIN
    LOGIN = login_user()
    subprocess.run([PY, "-m", "compileall", "-q", "core", "tui"], cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    tools = {"parallel-ssh": available("pssh.clients"),
             "ansible": shutil.which("ansible", path=str(BIN)) is not None}
    folder = Path(tempfile.mkdtemp(prefix="fleetdeck-fanout-bench-"))
    servers: list[Sshd] = []
    try:
        keys = make_keys(folder / "keys")
        for path in (folder, folder / "keys"):  # sshd reads authorized_keys as the user
            os.chmod(path, 0o755)
        os.chmod(keys.authorized, 0o644)
        known = folder / "known_hosts"
        servers, nodes = start_fleet(folder, keys, binary, max(counts + [args.push_hosts]))
        key = keys.host.export_public_key("openssh").decode().strip()
        known.write_text("".join(f"[{n.address}]:{n.port} {key}\n" for n in nodes))
        print(f"{len(nodes)} hosts on {len(servers)} sshd; parallel-ssh "
              f"{'yes' if tools['parallel-ssh'] else 'not installed'}, ansible "
              f"{'yes' if tools['ansible'] else 'not installed'}; median of {args.repeat}, "
              "interleaved", flush=True)
        bench = Bench(folder, keys, nodes, known, tools)
        rows = []
        for n in counts:
            for name, (t, peak) in bench.run(bench.uptime_cmds(n), n, args.repeat,
                                             "load average").items():
                rows.append((n, name, t, peak))
            print(f"  {n} hosts measured", flush=True)
        if rows:
            report("uptime", rows, "asyncssh script",
                   [("asyncssh script", 1.15, 0), ("parallel-ssh", 1.0, 200),
                    ("ansible -m raw", 1 / 3, 0)])
        if args.push_hosts:
            push_rows = push(bench, args.push_hosts, args.push_mb, args.repeat)
            report(f"push of a {args.push_mb} MB file", push_rows, "parallel-ssh copy_file",
                   [("ansible copy", 1 / 2, 0), ("parallel-ssh copy_file", 1.3, 0)])
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree("/tmp/.ansible-bench", ignore_errors=True)
    return 0


def push(bench: Bench, n: int, mb: int, repeat: int) -> list[tuple[int, str, float, float]]:
    import pwd

    dest = bench.folder / "dest"
    payload = bench.folder / "payload"
    for tool in ("fleetdeck", "pssh", "ansible"):
        for i in range(n):
            (dest / tool / f"h{i:04d}").mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and LOGIN != "root":
        pw = pwd.getpwnam(LOGIN)
        for path in [dest, *dest.rglob("*")]:
            os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(bench.folder, 0o755)

    def fresh() -> None:  # new content every run: nothing is skipped as unchanged
        payload.write_bytes(os.urandom(mb * 1024 * 1024))
        os.chmod(payload, 0o644)

    fresh()
    rows = [(n, name, t, peak) for name, (t, peak) in
            bench.run(bench.push_cmds(n, payload, dest), n, repeat, "", fresh).items()]
    return rows


if __name__ == "__main__":
    sys.exit(main())
