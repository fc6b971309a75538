"""SSH pool and host-key policy against in-process asyncssh servers on loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import asyncssh
import pytest

from core.remote.commands import run_command
from core.remote.config import Host
from core.remote.knownhosts import KnownHosts
from core.remote.ssh import HostClass, SSHError, Target, jump_target, target_for
from tests.helpers import until_async
from tests.sshd import (
    USER,
    closed_port,
    hang_server,
    host,
    known_line,
    make_keys,
    make_pool,
    start_servers,
)


@pytest.fixture
def keys(tmp_path):
    return make_keys(tmp_path / "keys")


@pytest.fixture
async def servers(keys, tmp_path):
    made = []

    async def start(n=1, known=None, host_key=None):
        srv = await start_servers(keys, n, known or tmp_path / "known", host_key)
        made.extend(srv)
        return srv

    yield start
    for s in made:
        await s.stop()


@pytest.fixture
async def pools(keys, tmp_path):
    made = []

    def make(known=None, **kw):
        pool = make_pool(keys, known or tmp_path / "known", **kw)
        made.append(pool)
        return pool

    yield make
    for p in made:
        await p.close()


async def run(pool, h, command="echo hi", **kw):
    conn = await pool.connect(target_for(h))
    lines = []
    res = await run_command(conn, command, on_line=lambda s, line: lines.append((s, line)),
                            **kw)
    return res, lines


def test_target_for_leaves_unset_fields_to_ssh_config():
    bare = Host("web01", address="web01")  # as config reads a host with no keys
    t = target_for(Host("web01", address="web01", explicit=("groups",)))
    assert (t.host, t.port, t.user) == ("web01", None, None)
    t = target_for(Host("web01", address="10.0.0.5", port=2222, user="ops",
                        identity_file="~/k", jump_host="bastion",
                        explicit=("address", "port", "user", "identity_file", "jump_host")),
                   {"bastion": Host("bastion", address="10.0.0.1", explicit=("address",))})
    assert (t.host, t.port, t.user, t.identity_file) == ("10.0.0.5", 2222, "ops", "~/k")
    assert t.jump is not None and (t.jump.name, t.jump.host) == ("bastion", "10.0.0.1")
    assert target_for(bare).host == "web01"
    j = jump_target("admin@gw.example:2200", {})
    assert (j.user, j.host, j.port) == ("admin", "gw.example", 2200)


async def test_runs_a_command_and_reuses_the_connection(servers, pools):
    (srv,) = await servers()
    pool = pools()
    h = host("a", srv.port)
    res, lines = await run(pool, h, "echo out; echo err >&2; exit 5")
    assert res.exit_code == 5 and not res.lost
    assert sorted(lines) == [("stderr", "err"), ("stdout", "out")]
    res, _ = await run(pool, h, "true")
    assert res.exit_code == 0
    assert pool.opened == 1 and srv.connections == 1


async def test_a_connection_the_host_dropped_is_opened_anew(servers, pools):
    """A long-lived engine's pool outlives its connections: after the host drops one
    (here after a command), the next run connects again instead of failing forever on
    the dead one ("the SSH connection closed under it")."""
    (srv,) = await servers()
    pool = pools()
    h = host("a", srv.port)
    first = await pool.connect(target_for(h))
    await run_command(first, "echo once #drop", on_line=lambda s, line: None)
    await until_async(first.is_closed, "the host to drop the connection")
    for _ in range(2):
        res, lines = await run(pool, h, "echo again")
        assert (res.exit_code, res.lost, lines) == (0, False, [("stdout", "again")])
    assert pool.opened == 2 and srv.connections == 2


async def test_env_reaches_the_remote_command(servers, pools):
    (srv,) = await servers()
    conn = await pools().connect(target_for(host("a", srv.port)))
    lines = []
    await run_command(conn, 'echo "$GREETING"', env={"GREETING": "it's me"},
                      on_line=lambda s, line: lines.append(line))
    assert lines == ["it's me"]


async def test_unknown_key_fails_with_its_fingerprint_and_trusting_writes_our_file(
        servers, pools, keys, tmp_path):
    empty = tmp_path / "empty_known"
    (srv,) = await servers(known=tmp_path / "elsewhere")
    h = host("a", srv.port)
    with pytest.raises(SSHError) as e:
        await pools(known=empty).connect(target_for(h))
    fp = keys.host.get_fingerprint("sha256")
    assert e.value.cls == HostClass.HOST_KEY_UNKNOWN
    assert fp in str(e.value) and "--trust-new-host-keys" in str(e.value)
    assert not empty.exists()
    pool = pools(known=empty, trust_new_keys=True)
    res, _ = await run(pool, h)
    assert res.exit_code == 0
    assert pool.trusted == [("a", f"[127.0.0.1]:{srv.port}", f"ssh-ed25519 {fp}")]
    assert oct(empty.stat().st_mode & 0o777) == "0o600"
    assert empty.read_text() == known_line(srv.port, keys.host)
    res, _ = await run(pools(known=empty), h)  # now known, without the flag
    assert res.exit_code == 0


async def test_changed_key_is_refused_even_when_trusting_new_keys(servers, pools, keys,
                                                                   tmp_path):
    known = tmp_path / "known"
    (srv,) = await servers(known=tmp_path / "real")
    other = asyncssh.generate_private_key("ssh-ed25519")
    known.write_text(known_line(srv.port, other))
    pool = pools(known=known, trust_new_keys=True)
    with pytest.raises(SSHError) as e:
        await pool.connect(target_for(host("a", srv.port)))
    assert e.value.cls == HostClass.HOST_KEY_CHANGED
    assert "HOST KEY CHANGED" in str(e.value)
    assert keys.host.get_fingerprint("sha256") in str(e.value)
    assert known.read_text() == known_line(srv.port, other)  # untouched
    assert pool.trusted == []


async def test_per_host_known_hosts_file(servers, pools, tmp_path):
    (srv,) = await servers(known=tmp_path / "host_known")
    h = host("a", srv.port, known_hosts=str(tmp_path / "host_known"))
    res, _ = await run(pools(known=tmp_path / "nothing"), h)
    assert res.exit_code == 0


async def test_rejected_client_key_is_auth_failed(servers, pools, tmp_path):
    (srv,) = await servers()
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "stranger"
    stranger.write_private_key(str(path))
    h = host("a", srv.port, identity_file=str(path))
    with pytest.raises(SSHError) as e:
        await pools().connect(target_for(h))
    assert e.value.cls == HostClass.AUTH_FAILED
    assert "authentication failed" in str(e.value)


async def test_a_missing_identity_file_is_auth_failed_naming_it(servers, pools, tmp_path):
    """As ssh's "Identity file ... not accessible": the host answered; the key here is
    what is wrong (it was `unreachable: No such file or directory`, naming nothing)."""
    (srv,) = await servers()
    missing = tmp_path / "no-such-key"
    with pytest.raises(SSHError) as e:
        await pools().connect(target_for(host("a", srv.port, identity_file=str(missing))))
    assert e.value.cls == HostClass.AUTH_FAILED
    assert str(e.value) == f"cannot read the private key {missing}: no such file or directory"


async def test_encrypted_key_error_does_not_leak_the_passphrase(servers, pools, tmp_path):
    (srv,) = await servers()
    k = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "locked"
    k.write_private_key(str(path), "pkcs8-pem", passphrase="s3cret-pass")
    with pytest.raises(SSHError) as e:
        await pools().connect(target_for(host("a", srv.port, identity_file=str(path))))
    assert e.value.cls == HostClass.AUTH_FAILED
    assert "s3cret" not in str(e.value)


async def test_password_and_passphrase_are_filled_in_from_references(
        servers, pools, tmp_path, monkeypatch, caplog):
    (srv,) = await servers()
    srv.password = "pw-from-env-81f3"
    # a key as ssh-keygen writes it with a passphrase (not authorized: the password is
    # what lets this client in)
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "phrase-in-file-27c9", "-f",
                    str(locked)], check=True)
    secret = tmp_path / "phrase"
    secret.write_text("phrase-in-file-27c9\n")
    secret.chmod(0o600)
    monkeypatch.setenv("FD_TEST_SSH_PW", "pw-from-env-81f3")
    h = host("a", srv.port, identity_file=str(locked), password="${FD_TEST_SSH_PW}",
             passphrase=f"${{file:{secret}}}")
    assert "pw-from-env" not in repr(h) and "FD_TEST" not in repr(target_for(h))
    res, lines = await run(pools(), h)
    assert res.exit_code == 0 and lines == [("stdout", "hi")]
    # a wrong password is auth_failed, and no message or log line holds either secret
    monkeypatch.setenv("FD_TEST_SSH_PW", "wrong-pw-55aa")
    with pytest.raises(SSHError) as e:
        await pools().connect(target_for(h))
    assert e.value.cls == HostClass.AUTH_FAILED
    for text in (str(e.value), caplog.text):
        assert "pw-from-env" not in text and "phrase-in-file" not in text
        assert "wrong-pw" not in text


async def test_a_reference_that_cannot_be_filled_in_names_itself(servers, pools,
                                                                 monkeypatch, tmp_path):
    (srv,) = await servers()
    monkeypatch.delenv("FD_TEST_UNSET", raising=False)
    with pytest.raises(SSHError) as e:
        await pools().connect(target_for(host("a", srv.port, password="${FD_TEST_UNSET}")))
    assert e.value.cls == HostClass.AUTH_FAILED
    assert str(e.value) == ("cannot fill in the password: environment variable "
                            "FD_TEST_UNSET is not set")
    loose = tmp_path / "loose"
    loose.write_text("x" * 8)
    loose.chmod(0o644)
    with pytest.raises(SSHError) as e:
        await pools().connect(target_for(host("a", srv.port, passphrase=f"${{file:{loose}}}")))
    assert "readable by others" in str(e.value) and "xxxx" not in str(e.value)


async def test_refused_and_hanging_hosts_are_unreachable(pools):
    pool = pools(connect_timeout=0.5)
    with pytest.raises(SSHError) as e:
        await pool.connect(target_for(host("gone", closed_port())))
    assert (e.value.cls, str(e.value)) == (HostClass.UNREACHABLE, "connection refused")
    srv, port = await hang_server()
    try:
        with pytest.raises(SSHError) as e:
            await pool.connect(target_for(host("hang", port)))
        assert e.value.cls == HostClass.UNREACHABLE
        assert "timed out after 0.5s" in str(e.value)
    finally:
        srv.close()
    with pytest.raises(SSHError) as e:
        await pool.connect(target_for(Host("dns", address="no-such-host.invalid",
                                           explicit=("address",))))
    assert e.value.cls == HostClass.UNREACHABLE and "cannot resolve" in str(e.value)


async def test_concurrent_connects_share_one_connection(servers, pools):
    (srv,) = await servers()
    pool = pools()
    t = target_for(host("a", srv.port))
    conns = await asyncio.gather(*(pool.connect(t) for _ in range(10)))
    assert len({id(c) for c in conns}) == 1 and srv.connections == 1


async def test_jump_host_is_opened_once_and_shared(servers, pools):
    jump, *inner = await servers(4)
    pool = pools()
    inventory = {"bastion": host("bastion", jump.port)}
    inventory.update({f"in{i}": host(f"in{i}", s.port, jump_host="bastion")
                      for i, s in enumerate(inner)})
    for i in range(3):
        conn = await pool.connect(target_for(inventory[f"in{i}"], inventory))
        res = await run_command(conn, "echo via", on_line=lambda s, line: None)
        assert res.exit_code == 0
    assert jump.connections == 1 and jump.tunnels == 3
    assert all(s.connections == 1 for s in inner)


async def test_timeout_stops_the_remote_command_and_its_children(servers, pools, tmp_path):
    (srv,) = await servers()
    pidfile = tmp_path / "pids"
    res, lines = await run(pools(), host("a", srv.port),
                           f"sleep 30 & echo $! > {pidfile}; echo started; sleep 31",
                           timeout=0.5, kill_grace=1)
    assert res.timed_out and lines == [("stdout", "started")]
    pid = int(pidfile.read_text())
    await until_async(lambda: not _alive(pid), f"pid {pid} to go")
    assert not _alive(pid)


async def test_cancel_event_stops_the_command(servers, pools):
    (srv,) = await servers()
    conn = await pools().connect(target_for(host("a", srv.port)))
    ev = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, ev.set)
    res = await run_command(conn, "sleep 30", on_line=lambda s, line: None, cancel=ev,
                            kill_grace=1)
    assert res.cancelled and not res.timed_out


async def test_connection_dropped_mid_output_is_lost(servers, pools):
    (srv,) = await servers()
    res, lines = await run(pools(), host("a", srv.port), "#drop\necho one; echo two")
    assert res.lost and res.exit_code is None
    assert [line for _, line in lines] == ["one", "two"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_known_hosts_check(tmp_path, keys):
    own = tmp_path / "own"
    kh = KnownHosts(own, system_files=[tmp_path / "missing"])
    assert kh.check("127.0.0.1", 2222, keys.host) == "unknown"
    kh.trust("127.0.0.1", 2222, keys.host)
    assert kh.check("127.0.0.1", 2222, keys.host) == "ok"
    other = asyncssh.generate_private_key("ssh-ed25519")
    assert kh.check("127.0.0.1", 2222, other) == "changed"
    # ssh's order: a key of the most preferred type on record keeps the default list
    algs = kh.algorithms("127.0.0.1", 2222)
    assert algs[:2] == ["ssh-ed25519-cert-v01@openssh.com",
                        "ecdsa-sha2-nistp256-cert-v01@openssh.com"]
    # else the types on record come first, and every other type stays offered
    kh.trust("10.0.0.1", None, asyncssh.generate_private_key("ecdsa-sha2-nistp256"))
    algs = kh.algorithms("10.0.0.1", None)
    assert algs[:2] == ["ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp256"]
    assert "ssh-ed25519" in algs and "rsa-sha2-256" in algs
    assert kh.algorithms("10.0.0.1", None, certificates=False)[0] == "ecdsa-sha2-nistp256"


async def test_ssh_config_decides_where_and_as_whom_as_ssh_does(servers, keys, tmp_path):
    """The pool reads ssh_config as `ssh -G` does (core.remote.sshconfig): Include files
    in sorted order (the first value wins), a Match exec with a % token, Host patterns
    matched against the name as typed (ssh lowercases it only after)."""
    (srv,) = await servers()
    inc = tmp_path / "conf.d"
    inc.mkdir()
    (inc / "b.conf").write_text("Host *\n  User nobody-from-b\n")  # written first
    (inc / "a.conf").write_text(f"Host *\n  User {USER}\n")  # sorts first: it wins
    flag = tmp_path / "flag-db1"
    flag.touch()
    config = tmp_path / "ssh_config"
    config.write_text(
        f'Match exec "test -e {tmp_path}/flag-%h"\n  Port {srv.port}\n'
        f"Host db1\n  HostName 127.0.0.1\n  IdentityFile {keys.client_path}\n"
        f"Include {inc}/*.conf\n")
    from core.remote.knownhosts import KnownHosts
    from core.remote.ssh import SSHPool

    pool = SSHPool(known_hosts=KnownHosts(tmp_path / "known", system_files=[]),
                   ssh_config=[config], agent_path=None, connect_timeout=5)
    try:
        with pytest.raises(SSHError) as e:  # `Host db1` does not match DB1, as in ssh
            await pool.connect(Target(name="db1", host="DB1"))
        assert e.value.cls == HostClass.UNREACHABLE
        conn = await pool.connect(Target(name="db1", host="db1"))
        res = await run_command(conn, "echo $USER-ok", on_line=lambda s, line: None)
        assert res.exit_code == 0
        assert conn.get_extra_info("username") == USER
    finally:
        await pool.close()
    broken = tmp_path / "broken"
    broken.write_text("Host x\n  Prot 22\n")
    pool = SSHPool(known_hosts=KnownHosts(tmp_path / "known", system_files=[]),
                   ssh_config=[broken], agent_path=None, connect_timeout=5)
    with pytest.raises(SSHError) as e:
        await pool.connect(Target(name="x", host="x"))
    await pool.close()
    assert str(e.value).startswith(f"bad SSH settings: {broken}:2: ")


def test_ssh_failures_read_as_words_not_class_names():
    from core.remote.ssh import ssh_reason

    cases = {
        asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "SSH connection closed"):
            "the SSH connection closed under it",
        asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "No more sessions"):
            "the host refused a session (No more sessions)",
        asyncssh.ConnectionLost("Connection lost"): "the SSH connection was lost",
        asyncssh.DisconnectError(asyncssh.DISC_BY_APPLICATION, "bye"):
            "the host disconnected: bye",
        ConnectionResetError(104, "Connection reset by peer"): "Connection reset by peer",
    }
    for exc, words in cases.items():
        assert ssh_reason(exc) == words
        assert type(exc).__name__ not in ssh_reason(exc)
