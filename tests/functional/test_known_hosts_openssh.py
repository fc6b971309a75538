"""Host-key verdicts against OpenSSH's own: two real sshd on loopback with the same host
key, one also with a CA-signed host certificate; a known_hosts file per case, and for
each case and server the real `ssh` client (StrictHostKeyChecking=yes) and fleetdeck's
SSH pool connecting to it. Both must give the verdict written in the case: hashed
entries, [host]:port, wildcards, negation, letter case, several keys and key types,
@cert-authority and @revoked."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from core.remote.classes import HostClass
from core.remote.knownhosts import KnownHosts
from core.remote.ssh import SSHError, SSHPool, Target
from tests.sshd import USER, Sshd, make_keys, require_sshd


def require_ssh() -> str:
    found = shutil.which("ssh")
    if found is None:
        require_sshd()  # fails in CI, where openssh-client comes with the server
        pytest.skip("the OpenSSH client (ssh) is not installed")
    return found


@dataclass
class World:
    folder: Path
    servers: dict[str, Sshd]  # "plain" and "certified"
    client_key: Path
    host: str  # "ssh-ed25519 AAAA..." of the server's host key
    other: str  # another ed25519 key
    ecdsa: str  # a key of another type
    ca: str  # the authority that signed the host certificate
    other_ca: str



def public(key: asyncssh.SSHKey) -> str:
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    binary = require_sshd()
    folder = tmp_path_factory.mktemp("known")
    keys = make_keys(folder / "keys")
    keys.host.write_public_key(str(keys.host_path) + ".pub")
    ca = asyncssh.generate_private_key("ssh-ed25519")
    ca_path = folder / "ca"
    ca.write_private_key(str(ca_path))
    ca_path.chmod(0o600)
    # the certificate names localhost only: reached as 127.0.0.1 it is not valid
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca_path), "-I", "test-host", "-h",
                    "-n", "localhost", str(keys.host_path) + ".pub"], check=True)
    cert = Path(str(keys.host_path) + "-cert.pub")
    servers = {"plain": Sshd(binary, folder / "sshd", keys, keys.host_path).start(),
               "certified": Sshd(binary, folder / "sshd", keys, keys.host_path,
                                 extra_config=f"HostCertificate {cert}\n").start()}
    yield World(folder, servers, keys.client_path, public(keys.host),
                public(asyncssh.generate_private_key("ssh-ed25519")),
                public(asyncssh.generate_private_key("ecdsa-sha2-nistp256")), public(ca),
                public(asyncssh.generate_private_key("ssh-ed25519")))
    for sshd in servers.values():
        sshd.stop()


def hashed(world: World, name: str, key: str) -> str:
    """A hashed line made by ssh-keygen -H (OpenSSH's own hashing)."""
    plain = world.folder / f"plain-{abs(hash(name))}"
    plain.write_text(f"{name} {key}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(plain)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return plain.read_text()


# (case, connect to, known_hosts lines with {P} the port and {H} {O} {E} {CA} {CA2} keys,
#  the verdict OpenSSH gives: one for both servers, or (plain server, certified server))
CASES = [
    ("exact name and port", "localhost", "[localhost]:{P} {H}", "ok"),
    ("recorded without the port", "localhost", "localhost {H}", "ok"),
    ("another key without the port", "localhost", "localhost {O}", "unknown"),
    # with a certificate shown, ssh's second look (bare name) runs before the first
    ("another key with the port, right key without", "localhost",
     "[localhost]:{P} {O}\nlocalhost {H}", ("changed", "ok")),
    ("recorded for the address only", "localhost", "[127.0.0.1]:{P} {H}", "unknown"),
    ("hashed", "localhost", "HASH [localhost]:{P} {H}", "ok"),
    ("hashed, another name", "localhost", "HASH [otherhost]:{P} {H}", "unknown"),
    ("wildcard", "localhost", "[local*]:{P} {H}", "ok"),
    ("single-character wildcard", "localhost", "[localhos?]:{P} {H}", "ok"),
    ("negated", "localhost", "[local*]:{P},![localhost]:{P} {H}", "unknown"),
    ("pattern in upper case", "localhost", "[LocalHost]:{P} {H}", "ok"),
    ("host typed in upper case", "LOCALHOST", "[localhost]:{P} {H}", "ok"),
    ("another key of the same type", "localhost", "[localhost]:{P} {O}", "changed"),
    ("a key of another type", "localhost", "[localhost]:{P} {E}", "changed"),
    ("several keys, one right", "localhost",
     "[localhost]:{P} {O}\n[localhost]:{P} {E}\n[localhost]:{P} {H}", "ok"),
    ("revoked", "localhost", "[localhost]:{P} {H}\n@revoked [localhost]:{P} {H}", "revoked"),
    ("revoked by wildcard", "localhost", "@revoked * {H}", "revoked"),
    ("revoked without the port", "localhost", "@revoked localhost {H}", "revoked"),
    ("revoked without the port, known with it", "localhost",
     "[localhost]:{P} {H}\n@revoked localhost {H}", "ok"),
    ("authority for the host", "localhost", "@cert-authority [localhost]:{P} {CA}",
     ("unknown", "ok")),
    ("authority by wildcard", "localhost", "@cert-authority * {CA}", ("unknown", "ok")),
    ("authority without the port", "localhost", "@cert-authority localhost {CA}",
     ("unknown", "ok")),
    ("authority for another host", "localhost", "@cert-authority [other]:{P} {CA}",
     "unknown"),
    ("another authority", "localhost", "@cert-authority * {CA2}", "unknown"),
    ("authority, but the name is not in the certificate", "127.0.0.1",
     "@cert-authority * {CA}", "unknown"),
    ("authority not for the name, plain key known", "127.0.0.1",
     "@cert-authority * {CA}\n[127.0.0.1]:{P} {H}", "ok"),
    ("revoked authority", "localhost", "@cert-authority * {CA}\n@revoked * {CA}",
     ("unknown", "revoked")),
    ("authority, but the host key is revoked", "localhost",
     "@cert-authority * {CA}\n@revoked [localhost]:{P} {H}", "revoked"),
]


def render(world: World, text: str, port: int) -> str:
    out = []
    for line in text.format(P=port, H=world.host, O=world.other, E=world.ecdsa,
                            CA=world.ca, CA2=world.other_ca).splitlines():
        if line.startswith("HASH "):
            name, key = line[5:].split(" ", 1)
            out.append(hashed(world, name, key).strip())
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def openssh_verdict(world: World, known: Path, host: str, port: int) -> str:
    res = subprocess.run(
        [require_ssh(), "-F", "/dev/null", "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
         "-o", "ConnectTimeout=60", "-i", str(world.client_key), "-p", str(port),
         "-l", USER, host, "true"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    err = res.stderr
    if res.returncode == 0:
        return "ok"
    if "REVOKED HOST KEY" in err or "was revoked" in err:
        return "revoked"
    if "HOST IDENTIFICATION HAS CHANGED" in err or "has changed" in err:
        return "changed"
    if "host key is known" in err:
        return "unknown"
    return f"other: {err.strip()[-200:]}"


CLASS_VERDICT = {HostClass.HOST_KEY_UNKNOWN: "unknown", HostClass.HOST_KEY_CHANGED: "changed",
                 HostClass.HOST_KEY_REVOKED: "revoked"}


async def fleetdeck_verdict(world: World, known: Path, host: str, port: int) -> str:
    pool = SSHPool(known_hosts=KnownHosts(None, system_files=[known]), ssh_config=None,
                   client_keys=[str(world.client_key)], agent_path=None,
                   connect_timeout=60)
    try:
        conn = await pool.connect(Target(name="h", host=host, port=port, user=USER))
        conn.close()
        return "ok"
    except SSHError as e:
        return CLASS_VERDICT.get(e.cls, f"other: {e.cls.value}: {e}")
    finally:
        await pool.close()


@pytest.mark.parametrize("server", ["plain", "certified"])
@pytest.mark.parametrize(("case", "host", "lines", "expected"), CASES,
                         ids=[c[0] for c in CASES])
async def test_verdict_is_openssh_s(world, tmp_path, server, case, host, lines, expected):
    if isinstance(expected, tuple):
        expected = expected[server == "certified"]
    port = world.servers[server].port
    known = tmp_path / "known_hosts"
    known.write_text(render(world, lines, port))
    theirs = await asyncio.to_thread(openssh_verdict, world, known, host, port)
    ours = await fleetdeck_verdict(world, known, host, port)
    assert (theirs, ours) == (expected, expected), known.read_text()


async def test_revoked_reason_names_the_marker(world, tmp_path):
    known = tmp_path / "known_hosts"
    port = world.servers["certified"].port
    known.write_text(render(world, "@revoked * {H}", port))
    pool = SSHPool(known_hosts=KnownHosts(None, system_files=[known]), ssh_config=None,
                   client_keys=[str(world.client_key)], agent_path=None)
    with pytest.raises(SSHError) as err:
        await pool.connect(Target(name="h", host="localhost", port=port, user=USER))
    await pool.close()
    assert err.value.cls == HostClass.HOST_KEY_REVOKED
    assert "@revoked" in str(err.value) and "Traceback" not in str(err.value)
    assert str(err.value).startswith(f"REVOKED HOST KEY: [localhost]:{port} presents ")


# ssh_config naming the files: (what it says, the key in the default file, the verdict)
CONFIG_FILES = [
    ("UserKnownHostsFile {dir}/kh_%h\nGlobalKnownHostsFile /dev/null", "{O}", "ok"),
    ("UserKnownHostsFile none\nGlobalKnownHostsFile none", "{H}", "unknown"),
    ("UserKnownHostsFile /dev/null\nGlobalKnownHostsFile {dir}/kh_localhost", "{O}", "ok"),
    ("Host elsewhere\n  UserKnownHostsFile /dev/null", "{H}", "ok"),
]


@pytest.mark.parametrize(("config", "default", "expected"), CONFIG_FILES,
                         ids=["user file with %h", "none", "global file", "another host's"])
async def test_the_files_ssh_config_names_are_the_ones_read(world, tmp_path, config,
                                                             default, expected):
    """UserKnownHostsFile and GlobalKnownHostsFile in ssh_config replace the default
    files for the hosts they apply to, as ssh reads them (%h expanded in the user's,
    "none" for none); the default file here holds another key or the right one."""
    port = world.servers["plain"].port
    (tmp_path / "kh_localhost").write_text(render(world, "[localhost]:{P} {H}", port))
    defaults = tmp_path / "default_known_hosts"
    defaults.write_text(render(world, "[localhost]:{P} " + default, port))
    cfg = tmp_path / "ssh_config"
    cfg.write_text(config.format(dir=tmp_path) + "\n")
    res = await asyncio.to_thread(subprocess.run, [
        require_ssh(), "-F", str(cfg), "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
        "-o", "ConnectTimeout=60", "-i", str(world.client_key), "-p", str(port),
        "-l", USER, "localhost", "true"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    theirs = "ok" if res.returncode == 0 else "changed" if "HAS CHANGED" in res.stderr \
        else "unknown" if "Host key verification failed" in res.stderr \
        else f"other: {res.stderr.strip()[-200:]}"
    pool = SSHPool(known_hosts=KnownHosts(None, system_files=[defaults]), ssh_config=[cfg],
                   client_keys=[str(world.client_key)], agent_path=None, connect_timeout=60)
    try:
        conn = await pool.connect(Target(name="h", host="localhost", port=port, user=USER))
        conn.close()
        ours = "ok"
    except SSHError as e:
        ours = CLASS_VERDICT.get(e.cls, f"other: {e.cls.value}: {e}")
    finally:
        await pool.close()
    assert ours == expected
    if "elsewhere" not in config:  # ssh's default files are in the passwd home
        assert theirs == expected, res.stderr


# ----------------------------------------------------------------------- trust-ca ---
def fleetdeck(tmp_path: Path, world: World, *args: str, stdin: str | None = None,
              host_lines: str = "") -> subprocess.CompletedProcess[str]:
    from tests.helpers import FLEETDECK, cli_env

    state = tmp_path / "state"
    state.mkdir(exist_ok=True, mode=0o700)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[hosts.certified]\naddress = "localhost"\n'
                   f'port = {world.servers["certified"].port}\nuser = "{USER}"\n'
                   f'identity_file = "{world.client_key}"\n{host_lines}')
    env = cli_env(tmp_path)
    env["HOME"] = str(tmp_path / "home")  # no ~/.ssh of the person running the tests
    env.pop("SSH_AUTH_SOCK", None)
    return subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                           *args], capture_output=True, text=True, timeout=120, env=env,
                          input=stdin)


def test_trust_ca_explains_then_a_certified_host_is_accepted(world, tmp_path):
    ca = tmp_path / "host_ca.pub"
    ca.write_text(world.ca + " ops-host-ca\n")
    before = fleetdeck(tmp_path, world, "fanout", "certified", "--", "echo", "in")
    assert before.returncode != 0 and "host_key_unknown" in before.stdout + before.stderr
    # without a terminal and without --yes nothing is written
    refused = fleetdeck(tmp_path, world, "trust-ca", str(ca), "--hosts", "localhost")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert not (tmp_path / "state" / "known_hosts").exists()
    done = fleetdeck(tmp_path, world, "trust-ca", str(ca), "--hosts", "localhost", "--yes")
    assert done.returncode == 0, done.stderr
    assert "Whoever holds the CA's private" in done.stdout and "principals" in done.stdout
    line = (tmp_path / "state" / "known_hosts").read_text()
    assert line == f"@cert-authority localhost {world.ca} ops-host-ca\n"
    assert oct((tmp_path / "state" / "known_hosts").stat().st_mode & 0o777) == "0o600"
    after = fleetdeck(tmp_path, world, "fanout", "certified", "--", "echo", "in")
    assert after.returncode == 0, after.stdout + after.stderr
    listed = fleetdeck(tmp_path, world, "trust-ca", "--list")
    assert "@cert-authority" in listed.stdout and "localhost" in listed.stdout


@pytest.mark.parametrize(("content", "hosts", "message"), [
    (None, "localhost", "not found"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n", "localhost", "is a private key"),
    ("hello\n", "localhost", "not an SSH public key"),
    ("CA", "local host", "without spaces"),
    ("CA", ",", "without spaces"),
    ("CA", "!", "without spaces"),
    ("CA", "a,,b", "without spaces"),
    ("CA", "!db*", "only negated patterns match no host"),
])
def test_trust_ca_refuses_bad_input_in_one_line(world, tmp_path, content, hosts, message):
    ca = tmp_path / "ca.pub"
    if content is not None:
        ca.write_text(world.ca + "\n" if content == "CA" else content)
    res = fleetdeck(tmp_path, world, "trust-ca", str(ca), "--hosts", hosts, "--yes")
    assert res.returncode == 2
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "state" / "known_hosts").exists()



def test_trust_ca_list_reads_the_files_connections_read(world, tmp_path):
    """--list shows an authority or revocation wherever a connection would meet it: a
    host's own known_hosts file too, not only ssh's default files."""
    own = tmp_path / "certified_hosts"
    own.write_text(f"@revoked localhost {world.ca} old-ca\n")
    listed = fleetdeck(tmp_path, world, "trust-ca", "--list",
                       host_lines=f'known_hosts = "{own}"\n')
    assert listed.returncode == 0, listed.stderr
    assert "@revoked" in listed.stdout and f"{own}:1" in listed.stdout
