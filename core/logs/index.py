"""Byte-offset index of a (possibly huge, possibly growing) plain text log file.

A run log may hold millions of lines and grow while it is read. `LogIndex` keeps only
the byte offset where each line starts (8 bytes a line, in an `array('Q')`) and reads
the text of the lines asked for, so a viewer can show any page of a big file at once
without loading it.

- `update()` reads only the bytes appended since the last call, in 1 MiB chunks; a
  file that shrank or was replaced (another inode) is indexed again from the start.
- A last line without its newline counts as a line; it is read again as it grows.
- Text is decoded as UTF-8 with replacement characters; a trailing ``\\r`` is dropped.
- Reads use ``os.pread`` on one open handle, and the offsets are guarded by a lock, so
  a worker thread may `search` while the owning thread calls `update`.
"""

from __future__ import annotations

import os
import re
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import accumulate, islice, repeat
from operator import add
from pathlib import Path

from core.logs.levels import candidate_regex, detect_level

CHUNK = 1 << 20  # bytes read at a time when indexing and scanning


class LogIndex:
    """Line-start offsets of the log file at `path`; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._starts = array("Q")
        self._end = 0  # bytes of the file indexed so far
        self._partial = False  # the last indexed byte is not a newline
        self._size_seen = 0  # file size at the last stat
        self.generation = 0  # +1 each time the index starts over (file truncated/replaced)
        self.changed_from = 0  # lowest line whose text the last update() may have changed
        self.max_line_bytes = 0  # the longest line seen, in bytes (a width estimate)

    # ---------------------------------------------------------------- indexing

    def update(self, max_bytes: int | None = None) -> int:
        """Index what was appended since the last call; return how many lines were added.

        With `max_bytes`, index at most about that many bytes now (`behind` tells if
        more is waiting), so a caller on a UI loop can index a huge file in slices.
        After a reset (the file shrank or was replaced) all lines count as added.
        """
        with self._lock:
            before = len(self._starts)
            self.changed_from = before
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                if self._fd is not None or self._starts:
                    self._reset()
                    self.changed_from = 0
                return 0
            inode = (st.st_dev, st.st_ino)
            if self._fd is None or inode != self._inode or st.st_size < self._end:
                if self._fd is not None or self._starts:
                    self._reset()
                    before = 0
                    self.changed_from = 0
                try:
                    self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
                except FileNotFoundError:
                    return 0
                self._inode = inode
            self._size_seen = size = st.st_size
            if size == self._end:
                return 0
            if max_bytes is not None:
                size = min(size, self._end + max(max_bytes, 1))
            if self._partial and self._starts:
                self.changed_from = len(self._starts) - 1
            self._index_range(size)
            return len(self._starts) - before

    def _index_range(self, size: int) -> None:
        starts = self._starts
        pos = self._end
        fd = self._fd
        assert fd is not None
        if not self._partial:
            starts.append(pos)  # there is at least one new byte: a line starts here
        longest = self.max_line_bytes
        line_start = starts[-1]
        while pos < size:
            chunk = os.pread(fd, min(CHUNK, size - pos), pos)
            if not chunk:  # the file shrank under us; the next update() resets
                size = pos
                break
            parts = chunk.split(b"\n")
            if len(parts) > 1:
                # offsets just after each newline: pos + len(p0) + 1, + len(p1) + 1, ...
                sizes = map(add, map(len, parts), repeat(1))
                starts.extend(islice(accumulate(sizes, initial=pos), 1, len(parts)))
                longest = max(longest, pos + len(parts[0]) - line_start,
                              max(map(len, parts[1:-1]), default=0))
                line_start = starts[-1]
            pos += len(chunk)
        longest = max(longest, pos - line_start)
        if starts and starts[-1] == pos:
            starts.pop()  # the file ends with a newline: no line has started yet
            self._partial = False
        else:
            self._partial = pos > 0
        if not starts and pos == 0:
            self._partial = False
        self._end = pos
        self.max_line_bytes = longest

    def _reset(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None
        self._inode = None
        self._starts = array("Q")
        self._end = 0
        self._partial = False
        self._size_seen = 0
        self.max_line_bytes = 0
        self.generation += 1

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                try:
                    os.close(self._fd)
                except OSError:
                    pass
            self._fd = None
            self._inode = None

    def __enter__(self) -> LogIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- reading

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def size(self) -> int:
        """Bytes indexed so far."""
        return self._end

    @property
    def behind(self) -> bool:
        """More bytes were seen in the file than indexed (after `update(max_bytes=...)`)."""
        return self._size_seen > self._end

    @property
    def partial(self) -> bool:
        """The last line has no newline yet (it may still grow)."""
        return self._partial

    def _span(self, start: int, stop: int) -> tuple[int, int]:
        """Byte range of lines [start, stop) (newline of the last one included)."""
        starts = self._starts
        return starts[start], (starts[stop] if stop < len(starts) else self._end)

    def _read(self, begin: int, end: int) -> bytes:
        if self._fd is None or end <= begin:
            return b""
        out = []
        while begin < end:
            data = os.pread(self._fd, end - begin, begin)
            if not data:
                break
            out.append(data)
            begin += len(data)
        return b"".join(out)

    def line(self, i: int) -> str:
        """The text of line `i` (0-based; negative counts from the end)."""
        n = len(self._starts)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"line {i} out of range (0..{n - 1})")
        return self.lines(i, 1)[0]

    def lines(self, start: int, count: int, max_bytes: int | None = None) -> list[str]:
        """Lines [start, start+count), clipped to the file, read as one byte range.

        With `max_bytes`, each line is cut to its first `max_bytes` bytes (a viewer
        needs no more than a screen width of a 100 MB line).
        """
        with self._lock:
            n = len(self._starts)
            start = max(0, start)
            stop = min(n, start + max(0, count))
            if start >= stop:
                return []
            begin, end = self._span(start, stop)
            if max_bytes is not None and end - begin > max_bytes:
                spans = [self._span(i, i + 1) for i in range(start, stop)]
                if any(b - a > max_bytes + 1 for a, b in spans):  # +1: the newline
                    return [self._decode(self._read(a, min(b, a + max_bytes)))[0]
                            for a, b in spans]
            data = self._read(begin, end)
        return self._decode(data)

    @staticmethod
    def _decode(data: bytes) -> list[str]:
        text = data.decode("utf-8", "replace")
        if text.endswith("\n"):
            text = text[:-1]
        if "\r" in text:
            return [s[:-1] if s.endswith("\r") else s for s in text.split("\n")]
        return text.split("\n")

    def line_at_offset(self, offset: int) -> int:
        """The line holding byte `offset`."""
        return max(0, bisect_right(self._starts, offset) - 1)

    # ---------------------------------------------------------------- scanning

    def _chunks(self, start: int, backward: bool) -> Iterable[tuple[int, int, bytes]]:
        """(first line, byte offset, bytes) of whole-line chunks of about CHUNK bytes,
        from line `start` to the end (or, backward, from line `start` to the top)."""
        gen = self.generation
        line = start
        while True:
            with self._lock:
                if self.generation != gen:
                    return
                starts = self._starts
                n = len(starts)
                if backward:
                    if line < 0:
                        return
                    stop = min(line + 1, n)
                    if stop <= 0:
                        return
                    end = starts[stop] if stop < n else self._end
                    first = min(bisect_left(starts, max(0, end - CHUNK)), stop - 1)
                    begin = starts[first]
                    line = first - 1
                else:
                    if line >= n:
                        return
                    first = max(line, 0)
                    begin = starts[first]
                    stop = max(bisect_left(starts, begin + CHUNK), first + 1)
                    end = starts[stop] if stop < n else self._end
                    line = stop
                try:
                    data = self._read(begin, end)
                except OSError:
                    return
            yield first, begin, data

    def search(self, pattern: re.Pattern[str] | str, start: int = 0, backward: bool = False,
               wrap: bool = False) -> int | None:
        """The first line at or after `start` (backward: the last at or before it) that
        `pattern` matches, or None. A `str` pattern is a case-insensitive regex; `^`
        and `$` match at line boundaries. With `wrap`, the search goes on from the
        other end of the file back to `start`."""
        regex, lower = _compile_search(pattern)
        found = self._search(regex, lower, start, backward)
        if found is None and wrap and len(self._starts):
            if backward:
                found = self._search(regex, lower, len(self._starts) - 1, True, stop_at=start)
            else:
                found = self._search(regex, lower, 0, False, stop_at=start)
        return found

    def _search(self, regex: re.Pattern[str], lower: bool, start: int, backward: bool,
                stop_at: int | None = None) -> int | None:
        for first, _begin, data in self._chunks(start, backward):
            text = data.decode("utf-8", "replace")
            if text.endswith("\n"):
                text = text[:-1]
            if "\r" in text:
                text = text.replace("\r\n", "\n")
                if text.endswith("\r"):
                    text = text[:-1]
            if lower:
                text = text.lower()
            if backward:
                m = None
                for m in regex.finditer(text):  # noqa: B007 - the last match is wanted
                    pass
            else:
                m = regex.search(text)
            if m is not None:
                found = first + text.count("\n", 0, m.start())
                if stop_at is not None and (found < stop_at if backward else found > stop_at):
                    return None
                return found
            if stop_at is not None and (first <= stop_at if backward else
                                        first + text.count("\n") >= stop_at):
                return None
        return None

    def next_level(self, start: int, levels: Iterable[str] = ("error",), backward: bool = False,
                   wrap: bool = False) -> int | None:
        """The first line at or after `start` (backward: the last at or before it) whose
        level (`core.logs.levels.detect_level`) is one of `levels`, or None."""
        wanted = frozenset(levels)
        candidates = candidate_regex(wanted)
        found = self._next_level(candidates, wanted, start, backward)
        if found is None and wrap and len(self._starts):
            if backward:
                found = self._next_level(candidates, wanted, len(self._starts) - 1, True)
                if found is not None and found < start:
                    found = None
            else:
                found = self._next_level(candidates, wanted, 0, False)
                if found is not None and found > start:
                    found = None
        return found

    def _next_level(self, candidates: re.Pattern[bytes], wanted: frozenset[str], start: int,
                    backward: bool) -> int | None:
        for first, _begin, data in self._chunks(start, backward):
            low = b"\n" + data.lower()  # see core.logs.levels.candidate_regex
            hit = None
            line, counted = first, 0  # line number at byte `counted` of the chunk
            pos = 0
            size = len(data)
            while pos < size:
                m = candidates.search(low, pos)  # low[pos] is the newline before `pos`
                if m is None:
                    break
                at = m.start() if low[m.start()] == 10 else m.start() - 1  # in `data`
                a = data.rfind(b"\n", 0, at) + 1
                b = data.find(b"\n", at)
                if b < 0:
                    b = size
                line += data.count(b"\n", counted, a)
                counted = a
                raw = data[a:b]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                if detect_level(raw.decode("utf-8", "replace")) in wanted:
                    if not backward:
                        return line
                    hit = line
                pos = b + 1
            if hit is not None:
                return hit
        return None


# Escapes whose meaning changes when lower-cased (\S vs \s), or that name characters
# by number (\x41 is "A"), and named groups: such patterns are not searched lower-cased.
_NOT_LOWERABLE = re.compile(r"\\[A-Zxu0-7]|\(\?P")


def _compile_search(pattern: re.Pattern[str] | str) -> tuple[re.Pattern[str], bool]:
    """(regex, lower): a case-insensitive pattern whose text can be lower-cased safely is
    compiled lower-cased without IGNORECASE, to run on lower-cased text: `re` is several
    times faster that way. `^` and `$` always match at line boundaries."""
    if isinstance(pattern, str):
        text, flags = pattern, re.IGNORECASE
    elif isinstance(pattern.pattern, str):
        text, flags = pattern.pattern, pattern.flags
    else:
        raise TypeError("search() takes a str pattern, not bytes")
    flags |= re.MULTILINE
    if flags & re.IGNORECASE and not _NOT_LOWERABLE.search(text):
        try:
            return re.compile(text.lower(), flags & ~re.IGNORECASE), True
        except re.error:
            pass
    return re.compile(text, flags), False
