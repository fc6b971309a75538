"""LogIndex on real files: growth, partial lines, truncation, replacement, scanning."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from core.logs.index import LogIndex


def write(path: Path, data: str | bytes, mode: str = "w") -> None:
    raw = data.encode() if isinstance(data, str) else data
    with path.open(mode + "b") as f:
        f.write(raw)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "run.log"


def test_missing_file_has_no_lines_until_it_appears(log: Path):
    with LogIndex(log) as ix:
        assert ix.update() == 0
        assert ix.line_count == 0
        assert ix.lines(0, 10) == []
        write(log, "a\nb\n")
        assert ix.update() == 2
        assert ix.lines(0, 10) == ["a", "b"]


def test_empty_one_and_many_lines(log: Path):
    write(log, "")
    ix = LogIndex(log)
    assert ix.update() == 0 and ix.line_count == 0
    write(log, "only\n")
    assert ix.update() == 1
    assert ix.line(0) == "only" and ix.line(-1) == "only"
    write(log, "".join(f"line {i}\n" for i in range(1, 500)), "a")
    assert ix.update() == 499
    assert ix.line_count == 500
    assert ix.line(250) == "line 250"
    assert ix.lines(498, 5) == ["line 498", "line 499"]
    assert ix.update() == 0  # nothing new
    with pytest.raises(IndexError):
        ix.line(500)
    ix.close()


def test_empty_lines_count(log: Path):
    write(log, "\n\nx\n\n")
    ix = LogIndex(log)
    ix.update()
    assert ix.lines(0, 10) == ["", "", "x", ""]


def test_partial_last_line_is_a_line_and_is_read_again_when_it_grows(log: Path):
    write(log, "first\nsec")
    ix = LogIndex(log)
    assert ix.update() == 2
    assert ix.partial
    assert ix.line(1) == "sec"
    write(log, "ond", "a")
    assert ix.update() == 0
    assert ix.changed_from == 1  # line 1 changed
    assert ix.line(1) == "second"
    write(log, "\nthird\n", "a")
    assert ix.update() == 1
    assert not ix.partial
    assert ix.lines(0, 3) == ["first", "second", "third"]


def test_crlf_and_bytes_split_across_updates(log: Path):
    write(log, "a\r\nb")
    ix = LogIndex(log)
    ix.update()
    write(log, "\r", "a")
    ix.update()
    write(log, "\nc\r\n", "a")
    ix.update()
    assert ix.lines(0, 5) == ["a", "b", "c"]


def test_truncated_file_is_indexed_again(log: Path):
    write(log, "".join(f"old {i}\n" for i in range(100)))
    ix = LogIndex(log)
    ix.update()
    gen = ix.generation
    write(log, "new 0\nnew 1\n")  # same inode, shorter
    assert ix.update() == 2
    assert ix.generation == gen + 1
    assert ix.changed_from == 0
    assert ix.lines(0, 10) == ["new 0", "new 1"]


def test_replaced_file_is_indexed_again(log: Path, tmp_path: Path):
    write(log, "old a\nold b\n")
    ix = LogIndex(log)
    ix.update()
    other = tmp_path / "other.log"
    write(other, "new a\nnew b\nnew c\n")  # bigger, another inode
    os.replace(other, log)
    assert ix.update() == 3
    assert ix.lines(0, 10) == ["new a", "new b", "new c"]


def test_deleted_file_empties_the_index(log: Path):
    write(log, "a\n")
    ix = LogIndex(log)
    ix.update()
    log.unlink()
    assert ix.update() == 0
    assert ix.line_count == 0


def test_update_in_slices(log: Path):
    write(log, "".join(f"{i:05d}\n" for i in range(10_000)))  # 60 KB
    ix = LogIndex(log)
    ix.update(max_bytes=10_000)
    assert ix.behind and 0 < ix.line_count < 10_000
    while ix.behind:
        ix.update(max_bytes=10_000)
    assert ix.line_count == 10_000
    assert ix.lines(9_998, 2) == ["09998", "09999"]
    assert ix.line(1234) == "01234"


def test_unicode_and_invalid_utf8(log: Path):
    write(log, "héllo wörld ✓\n".encode() + b"bad \xff\xfe bytes\n" + "日本語\n".encode())
    ix = LogIndex(log)
    ix.update()
    assert ix.lines(0, 3) == ["héllo wörld ✓", "bad \ufffd\ufffd bytes", "日本語"]
    assert ix.search("wÖrld", 0) == 0  # case-insensitive beyond ASCII
    assert ix.search("日本", 0) == 2


def test_long_lines_can_be_cut(log: Path):
    write(log, "x" * 100_000 + "\nshort\n")
    ix = LogIndex(log)
    ix.update()
    assert ix.max_line_bytes == 100_000
    assert ix.lines(0, 2, max_bytes=50) == ["x" * 50, "short"]
    assert len(ix.line(0)) == 100_000


@pytest.fixture
def numbered(log: Path) -> LogIndex:
    lines = []
    for i in range(3000):
        if i in (10, 1500, 2990):
            lines.append(f"2024-01-01 ERROR step {i} failed")
        elif i in (20, 2000):
            lines.append(f"2024-01-01 WARN disk at {i}%")
        else:
            lines.append(f"2024-01-01 INFO step {i} ok")
    write(log, "\n".join(lines) + "\n")
    ix = LogIndex(log)
    ix.update()
    return ix


def test_search_forward_backward_and_wrap(numbered: LogIndex):
    ix = numbered
    assert ix.search("step 1500 ", 0) == 1500
    assert ix.search("STEP 15", 0) == 15  # case-insensitive
    assert ix.search("failed", 11) == 1500
    assert ix.search("failed", 1500) == 1500  # start is included
    assert ix.search("failed", 2991) is None
    assert ix.search("failed", 2991, wrap=True) == 10
    assert ix.search("failed", 1499, backward=True) == 10
    assert ix.search("failed", 9, backward=True) is None
    assert ix.search("failed", 9, backward=True, wrap=True) == 2990
    assert ix.search(r"^2024-01-01 warn disk at 2000%$", 0) == 2000  # ^ $ per line
    assert ix.search(re.compile(r"Step \d+ FAILED"), 0) is None  # a Pattern keeps its flags
    assert ix.search(re.compile(r"step \d+ failed"), 0) == 10
    assert ix.search(r"\S+ ERROR", 100) == 1500  # not lower-cased (\S), still insensitive
    assert ix.search("nothing like this", 0, wrap=True) is None


def test_search_across_chunks(log: Path, monkeypatch: pytest.MonkeyPatch):
    import core.logs.index as mod

    monkeypatch.setattr(mod, "CHUNK", 64)  # many small chunks
    write(log, "".join(f"line {i:04d}\n" for i in range(1000)))
    ix = LogIndex(log)
    ix.update()
    assert ix.line_count == 1000
    assert ix.search("line 0777", 0) == 777
    assert ix.search("line 0777", 900, backward=True) == 777
    assert ix.search("line 0003", 500, wrap=True) == 3
    assert ix.search("line 09", 1000, backward=True) == 999


def test_next_level(numbered: LogIndex):
    ix = numbered
    assert ix.next_level(0) == 10
    assert ix.next_level(11) == 1500
    assert ix.next_level(2991) is None
    assert ix.next_level(2991, wrap=True) == 10
    assert ix.next_level(2999, backward=True) == 2990
    assert ix.next_level(1499, backward=True) == 10
    assert ix.next_level(9, backward=True) is None
    assert ix.next_level(0, {"warning"}) == 20
    assert ix.next_level(21, {"warning", "error"}) == 1500
    with pytest.raises(ValueError):
        ix.next_level(0, {"loud"})


def test_next_level_shapes(log: Path):
    write(log, "\n".join([
        "plain",
        '{"level": 50, "msg": "pino error"}',
        "plain",
        "<3>syslog error",
        "E0102 12:00:00.1 klog error",
        "[fleetdeck] run failed with error",  # fleetdeck's notes have no level
        "Traceback (most recent call last):",
    ]) + "\n")
    ix = LogIndex(log)
    ix.update()
    found, line = [], 0
    while (hit := ix.next_level(line)) is not None:
        found.append(hit)
        line = hit + 1
    assert found == [1, 3, 4, 6]


def test_million_lines(log: Path):
    with log.open("w") as f:
        for i in range(1_000_000):
            f.write(f"{i} {'ERROR boom' if i == 765_432 else 'ok'}\n")
    ix = LogIndex(log)
    assert ix.update() == 1_000_000
    assert ix.line_count == 1_000_000
    assert ix.line(0) == "0 ok"
    assert ix.line(999_999) == "999999 ok"
    assert ix.lines(500_000, 2) == ["500000 ok", "500001 ok"]
    assert ix.next_level(0) == 765_432
    assert ix.search("^999990 ", 0) == 999_990
    with log.open("a") as f:
        f.write("1000000 tail\n")
    assert ix.update() == 1
    assert ix.line(1_000_000) == "1000000 tail"
