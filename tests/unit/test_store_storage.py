"""AtomicJSONStorage: atomic replacement, recovery of leftovers and corrupt files."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from tinydb import TinyDB

from core.store import AtomicJSONStorage

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def db_at(path: Path) -> tuple[TinyDB, AtomicJSONStorage]:
    storage = AtomicJSONStorage(path)
    return TinyDB(storage=lambda: storage), storage


def test_write_is_memory_only_until_flush(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    db, storage = db_at(path)
    db.table("t").insert({"a": 1})
    assert storage.dirty
    assert not path.exists()
    storage.flush()
    assert not storage.dirty
    assert json.loads(path.read_bytes()) == {"t": {"1": {"a": 1}}}
    assert b" " not in path.read_bytes()  # compact separators
    assert mode(path) == 0o600
    assert not (tmp_path / "t.json.tmp").exists()


def test_reopen_reads_what_was_flushed(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    db, storage = db_at(path)
    db.table("t").insert({"a": 1})
    db.close()  # close flushes
    db2, _ = db_at(path)
    assert db2.table("t").all() == [{"a": 1}]


def test_serialize_and_write_bytes_are_separate(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    db, storage = db_at(path)
    db.table("t").insert({"a": 1})
    v1, data1 = storage.version, storage.serialize()
    db.table("t").insert({"a": 2})
    v2, data2 = storage.version, storage.serialize()
    assert storage.write_bytes(data2, v2)
    # an older snapshot arriving late (a slow worker) never puts old state back
    assert not storage.write_bytes(data1, v1)
    assert len(json.loads(path.read_bytes())["t"]) == 2
    assert not storage.dirty


def test_missing_and_empty_files_are_empty(tmp_path: Path) -> None:
    assert AtomicJSONStorage(tmp_path / "none.json").read() == {}
    (tmp_path / "empty.json").write_bytes(b"")
    assert AtomicJSONStorage(tmp_path / "empty.json").read() == {}
    assert list(tmp_path.glob("*.corrupt-*")) == []


def test_leftover_temp_file_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"t":{"1":{"a":1}}}')
    (tmp_path / "t.json.tmp").write_text('{"t":{"1":{"a"')  # a write that died half way
    storage = AtomicJSONStorage(path)
    assert storage.read() == {"t": {"1": {"a": 1}}}
    assert not (tmp_path / "t.json.tmp").exists()


def test_corrupt_file_is_moved_aside_with_a_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"t":{"1":{"a":1}')  # truncated
    with caplog.at_level(logging.WARNING, logger="fleetdeck.store"):
        storage = AtomicJSONStorage(path)
    assert storage.read() == {}
    aside = list(tmp_path.glob("t.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_text() == '{"t":{"1":{"a":1}'  # kept, not deleted
    assert not path.exists()
    assert any("t.json" in r.getMessage() and "moved it aside" in r.getMessage()
               for r in caplog.records)


def test_wrong_shape_counts_as_corrupt(tmp_path: Path) -> None:
    for i, text in enumerate(['[1,2]', '{"t":[1]}', '{"t":{"x":{}}}', '{"t":{"1":3}}']):
        path = tmp_path / f"s{i}.json"
        path.write_text(text)
        assert AtomicJSONStorage(path).read() == {}
        assert len(list(tmp_path.glob(f"s{i}.json.corrupt-*"))) == 1


def test_two_corrupt_files_in_the_same_second_both_kept(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    for _ in range(2):
        path.write_text("garbage")
        AtomicJSONStorage(path)
    assert len(list(tmp_path.glob("t.json.corrupt-*"))) == 2


def test_read_only_changes_nothing_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("garbage")
    (tmp_path / "t.json.tmp").write_text("x")
    storage = AtomicJSONStorage(path, read_only=True)
    assert storage.read() == {}
    assert path.read_text() == "garbage"
    assert (tmp_path / "t.json.tmp").exists()
    assert list(tmp_path.glob("*.corrupt-*")) == []


CRASH_CHILD = textwrap.dedent("""
    import os, signal, sys
    from tinydb import TinyDB
    import core.store.storage as st

    def die(src, dst):  # the machine dies after the temp file, before the rename
        os.kill(os.getpid(), signal.SIGKILL)

    storage = st.AtomicJSONStorage(sys.argv[1])
    db = TinyDB(storage=lambda: storage)
    db.table("t").insert({"v": "new"})
    st.os.replace = die
    storage.flush()
""")


def test_a_crash_before_the_rename_leaves_the_old_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    db, storage = db_at(path)
    db.table("t").insert({"v": "old"})
    storage.flush()
    before = path.read_bytes()

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", CRASH_CHILD, str(path)], env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert path.read_bytes() == before  # the old state, whole
    assert (tmp_path / "t.json.tmp").exists()  # the new one never replaced it

    db2, _ = db_at(path)
    assert db2.table("t").all() == [{"v": "old"}]
    assert not (tmp_path / "t.json.tmp").exists()
    assert list(tmp_path.glob("*.corrupt-*")) == []


def test_what_orjson_refuses_is_still_stored_and_read_back(tmp_path: Path) -> None:
    """The state files' codec falls back to json: int keys, lone surrogates (output
    decoded with surrogateescape), huge integers survive a flush and a reopen; and a
    file an older fleetdeck wrote with NaN in it loads instead of being quarantined."""
    path = tmp_path / "db.json"
    s = AtomicJSONStorage(path)
    doc = {"counts": {3: "x"}, "line": "caf\udce9", "big": 2**70, "text": "é ☃"}
    s.write({"t": {"1": doc}})
    s.flush()
    back = AtomicJSONStorage(path).read()["t"]["1"]
    assert back == {"counts": {"3": "x"}, "line": "caf\udce9", "big": 2**70, "text": "é ☃"}
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"t": {"1": {"rate": float("nan"), "ok": 1}}}))
    loaded = AtomicJSONStorage(old)
    assert loaded.loaded_from_disk and loaded.read()["t"]["1"]["ok"] == 1
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_every_folder_the_state_makes_is_private_even_under_umask_000(tmp_path):
    """mkdir(parents=True)'s mode is for the last folder only: `fanouts/` above
    `fanouts/logs` was 0755, and 0777 under umask 000."""
    from core.store.fanouts import FanOutStore

    old = os.umask(0)
    try:
        store = FanOutStore(tmp_path / "state")
        store.log_dir(7)
    finally:
        os.umask(old)
    made = [tmp_path / "state", *(p for p in (tmp_path / "state").rglob("*") if p.is_dir())]
    assert {str(p.relative_to(tmp_path)): p.stat().st_mode & 0o777 for p in made} == {
        "state": 0o700, "state/fanouts": 0o700, "state/fanouts/logs": 0o700,
        "state/fanouts/logs/7": 0o700}
