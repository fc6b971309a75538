"""Fan-out against many loopback SSH servers: in-process asyncssh ones and real sshd."""

from __future__ import annotations

import asyncio
import os

import asyncssh
import pytest

from core.remote.fanout import FanOut
from core.remote.results import exit_status, hosts_of, summary_line
from core.store.fanouts import FanOutStore
from tests.helpers import Recorder, until_async
from tests.sshd import (
    Sshd,
    closed_port,
    hang_server,
    host,
    known_line,
    make_keys,
    make_pool,
    require_sshd,
    start_servers,
)


@pytest.fixture
def keys(tmp_path):
    return make_keys(tmp_path / "keys")


@pytest.fixture
async def env(keys, tmp_path):
    """(servers factory, pool factory); everything stops at the end."""
    made, pools = [], []
    known = tmp_path / "known"

    async def servers(n=1):
        srv = await start_servers(keys, n, known)
        made.extend(srv)
        return srv

    def pool(**kw):
        p = make_pool(keys, known, **kw)
        pools.append(p)
        return p

    yield servers, pool
    for p in pools:
        await p.close()
    for s in made:
        await s.stop()


async def test_fifty_hosts_recorded_and_gathered(env, tmp_path):
    servers, pool = env
    srv = await servers(50)
    hosts = [host(f"web{i + 1:02d}", s.port) for i, s in enumerate(srv)]
    odd = {srv[6].port, srv[12].port}
    cmd = (f'case $TEST_SERVER_PORT in {"|".join(map(str, odd))}) echo odd one; exit 4;; '
           'esac; echo same; echo text')
    store = FanOutStore(tmp_path / "state")
    fid = store.allocate()
    rec = Recorder()
    fo = FanOut(cmd, hosts, pool=pool(), forks=16, fanout_id=fid, store=store,
                log_dir=store.log_dir(fid), pattern="web[01-50]", requested_by="tester")
    fo.bus.subscribe(rec)
    record = await fo.run()
    assert record["counts"] == {"ok": 48, "failed": 2}
    assert exit_status(record["hosts"].values()) == 1
    groups = fo.gather()
    assert [(g["folded"], g["count"], g["state"], g["exit_code"], g["text"]) for g in groups] == [
        ("web[01-06,08-12,14-50]", 48, "ok", 0, "same\ntext\n"),
        ("web[07,13]", 2, "failed", 4, "odd one\n"),
    ]
    # events: every host went pending -> connecting -> running -> final, lines streamed
    states = [e.result["state"] for e in rec.of("host_result") if e.result["host"] == "web07"]
    assert states == ["connecting", "running", "failed"]
    assert len(rec.of("fanout_line")) == 48 * 2 + 2
    assert rec.of("fanout_done")[0].fanout["counts"] == {"ok": 48, "failed": 2}
    # the record and the logs are on disk
    saved = store.get(fid)
    assert saved["command"] == cmd and saved["requested_by"] == "tester"
    assert saved["hosts"]["web13"]["exit_code"] == 4
    assert saved["hosts"]["web13"]["duration"] is not None
    assert store.log_path(fid, "web07").read_text() == "odd one\n"
    assert hosts_of(saved, ["failed"]) == ["web07", "web13"]
    assert summary_line(record["hosts"].values()) == "48 ok, 2 failed (50 hosts)"


async def test_every_kind_of_broken_host(env, tmp_path, keys):
    servers, pool = env
    ok, slow, dropper, changed, wrongkey = await servers(5)
    dropper.drop = True
    known = tmp_path / "known"
    known.write_text(known.read_text().replace(
        known_line(changed.port, keys.host),
        known_line(changed.port, asyncssh.generate_private_key("ssh-ed25519"))))
    (unknown,) = await start_servers(keys, 1, tmp_path / "not-known")
    hang, hang_port = await hang_server()
    stranger = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    hosts = [
        host("ok", ok.port),
        host("refused", closed_port()),
        host("hang", hang_port),
        host("slow", slow.port),
        host("dropper", dropper.port),
        host("changed", changed.port),
        host("unknown", unknown.port),
        host("wrongkey", wrongkey.port, identity_file=str(stranger)),
    ]
    cmd = f'[ "$TEST_SERVER_PORT" = {slow.port} ] && {{ echo begun; sleep 30; }}; seq 1 3'
    fo = FanOut(cmd, hosts, pool=pool(connect_timeout=1), timeout=1.5, kill_grace=1)
    try:
        record = await fo.run()
    finally:
        hang.close()
        await unknown.stop()
    got = {n: (r["state"], r["exit_code"]) for n, r in record["hosts"].items()}
    assert got == {
        "ok": ("ok", 0),
        "refused": ("unreachable", None),
        "hang": ("unreachable", None),
        "slow": ("timed_out", None),
        "dropper": ("failed", None),
        "changed": ("host_key_changed", None),
        "unknown": ("host_key_unknown", None),
        "wrongkey": ("auth_failed", None),
    }
    hosts_ = record["hosts"]
    assert hosts_["dropper"]["reason"] == "connection closed before the command finished"
    assert fo.output("dropper") == "1\n2\n3\n"
    assert fo.output("slow") == "begun\n"
    assert hosts_["unknown"]["fingerprint"] == "ssh-ed25519 " + keys.host.get_fingerprint()
    assert exit_status(hosts_.values()) == 3
    line = summary_line(hosts_.values())
    assert line == ("1 ok, 1 failed, 1 timed_out, 2 unreachable, 1 auth_failed, "
                    "1 host_key_unknown, 1 host_key_changed (8 hosts)")


async def test_large_output_is_logged_whole_and_gathered(env, tmp_path):
    servers, pool = env
    srv = await servers(3)
    store = FanOutStore(tmp_path / "state")
    fid = store.allocate()
    fo = FanOut("seq 1 200000; head -c 300000 /dev/zero | tr '\\0' x",
                [host(f"big{i}", s.port) for i, s in enumerate(srv)], pool=pool(),
                fanout_id=fid, log_dir=store.log_dir(fid))
    record = await fo.run()
    assert record["counts"] == {"ok": 3}
    assert record["hosts"]["big0"]["lines"] == 200001
    (group,) = fo.gather()
    assert group["count"] == 3
    text = group["text"].splitlines()
    assert text[0] == "1" and text[199999] == "200000" and text[-1] == "x" * 300000


async def test_cancel_stops_starting_hosts_and_cancels_running_ones(env):
    servers, pool = env
    srv = await servers(4)
    fo = FanOut("echo begun; sleep 30", [host(f"h{i}", s.port) for i, s in enumerate(srv)],
                pool=pool(), forks=2, kill_grace=1)
    rec = Recorder()
    fo.bus.subscribe(rec)
    task = asyncio.ensure_future(fo.run())
    await rec.wait_for(lambda e: e.kind == "fanout_line")
    await rec.wait_for(lambda e: len(rec.of("fanout_line")) == 2)
    fo.cancel()
    record = await task
    assert record["state"] == "cancelled"
    reasons = sorted(r["reason"] for r in record["hosts"].values())
    assert reasons == ["cancelled before it started"] * 2 + ["cancelled while running"] * 2
    assert record["counts"] == {"cancelled": 4}


async def test_cancel_one_host(env):
    servers, pool = env
    a, b = await servers(2)
    fo = FanOut(f'[ "$TEST_SERVER_PORT" = {a.port} ] && sleep 30; echo done',
                [host("a", a.port), host("b", b.port)], pool=pool(), kill_grace=1)
    rec = Recorder()
    fo.bus.subscribe(rec)
    task = asyncio.ensure_future(fo.run())
    await rec.wait_for(lambda e: e.kind == "fanout_line" and e.host == "b")
    fo.cancel_host("a")
    record = await task
    assert {n: r["state"] for n, r in record["hosts"].items()} == {"a": "cancelled", "b": "ok"}


async def test_local_host_runs_as_a_subprocess(env):
    _, pool = env
    from core.remote.config import Host

    fo = FanOut("echo here; exit 2", [Host("local")], pool=pool())
    record = await fo.run()
    assert record["hosts"]["local"]["state"] == "failed"
    assert record["hosts"]["local"]["exit_code"] == 2
    assert fo.output("local") == "here\n"


# ---------------------------------------------------------------- real OpenSSH sshd ---
@pytest.fixture
def sshd(keys, tmp_path):
    binary = require_sshd()
    made = []

    def start(host_key_path=None):
        d = Sshd(binary, tmp_path / "sshd", keys, host_key_path or keys.host_path).start()
        made.append(d)
        return d

    yield start
    for d in made:
        d.stop()


async def test_real_sshd_exit_codes_timeout_drop_and_keys(sshd, keys, tmp_path):
    a, b, drop = sshd(), sshd(), sshd()
    other = asyncssh.generate_private_key("ssh-ed25519")
    other_path = tmp_path / "other_host_key"
    other.write_private_key(str(other_path))
    os.chmod(other_path, 0o600)
    changed, fresh = sshd(other_path), sshd(other_path)
    known = tmp_path / "known"
    known.write_text("".join(known_line(d.port, keys.host) for d in (a, b, drop, changed)))
    pool = make_pool(keys, known, connect_timeout=5)
    pids = tmp_path / "pids"
    hosts = [host("a", a.port), host("b", b.port), host("drop", drop.port),
             host("changed", changed.port), host("fresh", fresh.port)]
    cmd = (f'case $SSH_CONNECTION in *" {a.port}") echo a; exit 0;; '
           f'*" {b.port}") sleep 30 & echo $! >> {pids}; echo $$ >> {pids}; sleep 31;; '
           f'*" {drop.port}") echo partial; kill -9 $PPID; sleep 5;; esac')
    # b outlasts any timeout; the others must finish within it even on a busy machine,
    # where a shell and its `kill` can take seconds to be scheduled
    fo = FanOut(cmd, hosts, pool=pool, timeout=8, kill_grace=1)
    try:
        record = await fo.run()
    finally:
        await pool.close()
    got = {n: r["state"] for n, r in record["hosts"].items()}
    assert got == {"a": "ok", "b": "timed_out", "drop": "failed",
                   "changed": "host_key_changed", "fresh": "host_key_unknown"}
    assert fo.output("drop") == "partial\n"
    # the timed-out command and its background child are gone from the host
    for pid in map(int, pids.read_text().split()):
        await until_async(lambda pid=pid: not _alive(pid), f"pid {pid} to go")
        assert not _alive(pid), pid


async def test_real_sshd_behind_a_real_jump_host(sshd, keys, tmp_path):
    jump, *inner = sshd(), sshd(), sshd(), sshd()
    known = tmp_path / "known"
    known.write_text("".join(known_line(d.port, keys.host) for d in (jump, *inner)))
    pool = make_pool(keys, known)
    inventory = {"bastion": host("bastion", jump.port)}
    inventory.update({f"in{i}": host(f"in{i}", d.port, jump_host="bastion")
                      for i, d in enumerate(inner)})
    targets = [inventory[f"in{i}"] for i in range(3)]
    fo = FanOut("echo through $SSH_CONNECTION", targets, pool=pool, inventory=inventory)
    try:
        record = await fo.run()
    finally:
        await pool.close()
    assert record["counts"] == {"ok": 3}
    assert pool.opened == 4  # the jump host once, then each inner host
    assert fo.output("in0").endswith(f" {inner[0].port}\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
