"""The LogMonitor: follows every source, reads levels and fields, feeds the rules.

It publishes ``LogLines`` (a batch per source, at most every ``BATCH`` seconds, each line
with its level: what a logs pane draws) and ``core.events.RuleChanged`` when a rule
starts or stops firing. Memory stays bounded: each source keeps a ring of its last
``RING`` lines; everything else stays in the files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from typing import Any

from core.events import LogLines, RuleChanged
from core.jobs.groups import popen_group
from core.logs.follow import Follower, GlobFollower, has_magic
from core.logs.levels import detect_level
from core.logs.rules import RuleSpec, RuleState
from core.logs.sources import SourceSpec
from core.logs.tally import count_levels

log = logging.getLogger("fleetdeck.logs")

RING = 10_000  # recent lines kept per source
BATCH = 0.2  # seconds between LogLines events of one source
PUBLISH = 1_000  # lines of one source in one LogLines event at most (the rest: skipped)
EVALUATE_EVERY = 1.0  # rules are looked at this often even without new lines (to resolve)
RATE_BUCKET = 10.0  # seconds per error-rate bucket
RATE_BUCKETS = 60  # ten minutes of them


class SourceState:
    """One source's counts and recent lines. Lines are kept as they were read, as blocks
    of text (a newline before each line), and split and given levels only when shown:
    a busy log costs a regex pass per block, not Python per line."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.fields_rx = re.compile(spec.fields) if spec.fields else None
        self.ring: deque[tuple[float, str, int]] = deque()  # (time, block, lines)
        self.ring_lines = 0
        self.counts: dict[str, int] = {}
        self.pending: deque[tuple[float, str, int]] = deque()
        self.pending_lines = 0
        self.skipped = 0
        self.total = 0
        # errors per RATE_BUCKET seconds, the last RATE_BUCKETS of them (the sparkline)
        self.error_rate: deque[list[float]] = deque(maxlen=RATE_BUCKETS)

    def count_errors(self, at: float, n: int) -> None:
        start = at // RATE_BUCKET * RATE_BUCKET
        if not self.error_rate or self.error_rate[-1][0] != start:
            self.error_rate.append([start, 0.0])
        self.error_rate[-1][1] += n

    def keep(self, at: float, text: str, n: int) -> None:
        """Into the ring (the last RING lines, give or take a block) and the next
        LogLines (the last PUBLISH; older ones are counted as skipped)."""
        item = (at, text, n)
        self.ring.append(item)
        self.ring_lines += n
        while self.ring_lines - self.ring[0][2] >= RING:
            self.ring_lines -= self.ring.popleft()[2]
        self.pending.append(item)
        self.pending_lines += n
        while self.pending_lines - self.pending[0][2] >= PUBLISH:
            dropped = self.pending.popleft()[2]
            self.pending_lines -= dropped
            self.skipped += dropped

    def take_pending(self) -> tuple[list[tuple[float, str | None, str]], int]:
        lines = tail(self.pending, PUBLISH)
        skipped = self.skipped + self.pending_lines - len(lines)
        self.pending.clear()
        self.pending_lines = self.skipped = 0
        return lines, skipped


def _changed(running: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The names a reload adds, removes or gives another spec (``running[n].spec``)."""
    return [n for n in set(running) | set(wanted)
            if n not in running or wanted.get(n) != running[n].spec]


def tail(blocks: deque[tuple[float, str, int]], limit: int
         ) -> list[tuple[float, str | None, str]]:
    """The last ``limit`` lines of some blocks, as (time, level, text)."""
    out: list[tuple[float, str | None, str]] = []
    for at, text, _n in reversed(blocks):
        if len(out) >= limit:
            break
        lines = text[1:].split("\n")[-(limit - len(out)):]
        out[:0] = [(at, detect_level(line), line) for line in lines]
    return out


class LogMonitor:
    """An engine service (``engine.add_service``); `engine.logs` finds it."""

    service_name = "logs"

    def __init__(self, sources: dict[str, SourceSpec] | None = None,
                 rules: dict[str, RuleSpec] | None = None, *, clock: Any = time.time,
                 poll: float = 0.25) -> None:
        self._sources = sources
        self._rules = rules
        self.clock = clock
        self.poll = poll
        self.engine: Any = None
        self.sources: dict[str, SourceState] = {}
        self.rules: dict[str, RuleState] = {}
        self._by_source: dict[str, list[RuleState]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._followers: dict[str, asyncio.Task[None]] = {}  # one per source

    # ------------------------------------------------------------------ life cycle ----
    async def start(self, engine: Any) -> None:
        self.engine = engine
        sources = self._sources if self._sources is not None else engine.config.sources
        rules = self._rules if self._rules is not None else engine.config.rules
        self.configure(sources, rules)
        for name, st in self.sources.items():
            self._followers[name] = asyncio.ensure_future(self._follow(st))
        self._tasks.append(asyncio.ensure_future(self._tick()))

    def configure(self, sources: dict[str, SourceSpec], rules: dict[str, RuleSpec]) -> None:
        self.sources = {n: SourceState(s) for n, s in sources.items()}
        self.rules = {n: RuleState(r) for n, r in rules.items()}
        self._index_rules()

    def _index_rules(self) -> None:
        self._by_source = {}
        for rs in self.rules.values():
            for src in rs.spec.sources:
                self._by_source.setdefault(src, []).append(rs)

    def reconfigure(self, config: Any) -> list[str]:
        """A reloaded config: unchanged sources keep following (ring, counts, place in
        the file) and unchanged rules keep their windows; changed ones start afresh,
        removed ones stop. Returns the sources and rules touched."""
        if self._sources is not None or self._rules is not None:
            return []  # given directly (tests, benches): not the config's
        touched = []
        for name in _changed(self.sources, config.sources):
            new = config.sources.get(name)
            touched.append(f"source {name}")
            task = self._followers.pop(name, None)
            if task is not None:
                task.cancel()
            self.sources.pop(name, None)
            if new is not None:
                st = self.sources[name] = SourceState(new)
                if self.engine is not None:
                    self._followers[name] = asyncio.ensure_future(self._follow(st))
        for name in _changed(self.rules, config.rules):
            new_rule = config.rules.get(name)
            touched.append(f"rule {name}")
            gone = self.rules.pop(name, None)
            for key, w in (gone.windows.items() if gone is not None else ()):
                if w.firing and self.engine is not None:  # its alert must not linger
                    t = gone.spec.threshold
                    self.engine.bus.publish(RuleChanged(
                        name, key if key != "*" else ",".join(gone.spec.sources), False,
                        0.0, t.value, t.window, self.clock(),
                        "the rule was " + ("removed" if new_rule is None else "changed")
                        + " by a config reload"))
            if new_rule is not None:
                self.rules[name] = RuleState(new_rule)
        self._index_rules()
        return sorted(touched)

    async def stop(self) -> None:
        tasks = [*self._followers.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._followers = {}

    # --------------------------------------------------------------------- reading ----
    def recent(self, source: str, limit: int = 500) -> list[tuple[float, str | None, str]]:
        return tail(self.sources[source].ring, limit) if limit > 0 else []

    def stats(self) -> list[dict[str, Any]]:
        return [{"source": n, "lines": s.total, "levels": dict(s.counts),
                 "colour": s.spec.colour, "error_rate": [c for _, c in s.error_rate]}
                for n, s in self.sources.items()]

    # ----------------------------------------------------------------- the lines ----
    def ingest(self, source: str, lines: list[bytes], at: float | None = None) -> None:
        """Lines of one source without their newlines (a remote stream, a command, a
        test): see ingest_block."""
        if lines:
            self.ingest_block(source, b"\n".join(lines) + b"\n", at)

    def ingest_block(self, source: str, data: bytes, at: float | None = None) -> None:
        """Complete lines of one source as read from a file, each ending in a newline:
        levels counted for the block at once (core.logs.tally), rules fed, the block kept
        for the screens."""
        if not data:
            return
        text = "\n" + data[:-1].decode("utf-8", "replace")  # a newline before each line
        st = self.sources[source]
        now = self.clock() if at is None else at
        levels: dict[str, int] = {}
        n = count_levels(data, levels)
        counts = st.counts
        for level, c in levels.items():
            counts[level] = counts.get(level, 0) + c
        for rs in self._by_source.get(source, ()):
            rs.feed_block(source, now, text, n, levels, st.fields_rx)
        st.keep(now, text, n)
        st.total += n
        st.count_errors(now, levels.get("error", 0))

    def evaluate(self, now: float | None = None) -> list[RuleChanged]:
        """Look at every rule's windows; publish (and return) the changes."""
        now = self.clock() if now is None else now
        changes = []
        for rs in self.rules.values():
            for key, firing, value in rs.evaluate(now):
                t = rs.spec.threshold
                what = f"{value:.1f}% of lines" if t.percent else f"{value:g} matches"
                ev = RuleChanged(rs.spec.name, key if key != "*" else ",".join(rs.spec.sources),
                                 firing, value, t.value, t.window, now,
                                 f"{what} in {t.window:g}s ({'firing' if firing else 'back'}"
                                 f": threshold {t})")
                changes.append(ev)
                if self.engine is not None:
                    self.engine.bus.publish(ev)
                log.log(logging.WARNING if firing else logging.INFO, "rule %s on %s: %s",
                        ev.rule, ev.source, ev.detail)
        return changes

    def _flush(self) -> None:
        for name, st in self.sources.items():
            if st.pending and self.engine is not None:
                lines, skipped = st.take_pending()
                self.engine.bus.publish(LogLines(name, lines, skipped))

    # ------------------------------------------------------------------ following ---
    async def _follow(self, st: SourceState) -> None:
        spec = st.spec

        def sink(_path: str, lines: list[bytes]) -> None:
            self.ingest(spec.name, lines)

        def block(_path: str, data: bytes) -> None:
            self.ingest_block(spec.name, data)

        if spec.host is not None:
            await self._remote(spec, sink)
        elif spec.path is not None:
            if has_magic(spec.path):
                await GlobFollower(spec.path, block, poll=self.poll).run()
            else:
                await Follower(spec.path, block, poll=self.poll,
                               from_start=spec.from_start).run()
        elif spec.command is not None:
            await self._command(spec, sink)

    async def _command(self, spec: SourceSpec, sink: Any) -> None:
        """A command's output as a source (`journalctl -f`), started again if it ends."""
        while True:
            proc = await asyncio.create_subprocess_shell(
                spec.command, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                **popen_group())
            assert proc.stdout is not None
            try:
                while True:
                    chunk = await proc.stdout.read(1 << 16)
                    if not chunk:
                        break
                    lines = chunk.split(b"\n")
                    # complete lines only; a partial last line waits for the next chunk
                    rest = lines.pop()
                    while rest and not chunk.endswith(b"\n"):
                        more = await proc.stdout.read(1 << 16)
                        if not more:
                            break
                        more_lines = (rest + more).split(b"\n")
                        rest = more_lines.pop()
                        lines.extend(more_lines)
                        chunk = more
                    if rest:
                        lines.append(rest)
                    if lines:
                        sink(spec.command or "", lines)
                code = await proc.wait()
            except asyncio.CancelledError:
                with contextlib.suppress(ProcessLookupError):
                    import os
                    import signal

                    os.killpg(proc.pid, signal.SIGTERM)
                await proc.wait()
                raise
            log.warning("log source %s: command ended (exit %s); starting it again in 5s",
                        spec.name, code)
            await asyncio.sleep(5)

    async def _remote(self, spec: SourceSpec, sink: Any) -> None:
        """A file on a host: `tail -F` there (rotation, truncation, a file that is not
        there yet: its own semantics), one long-lived stream over the pooled connection,
        opened again when the connection drops."""
        import shlex

        from core.remote.runs import engine_pool
        from core.remote.ssh import SSHError, target_for

        assert spec.host is not None and spec.path is not None
        start = "+1" if spec.from_start else "0"
        command = f"exec tail -F -n {start} -- {shlex.quote(spec.path)} 2>/dev/null"
        delay = 1.0
        while True:
            try:
                host = self.engine.config.hosts[spec.host]
                conn = await engine_pool(self.engine).connect(
                    target_for(host, self.engine.config.hosts))
                async with conn.create_process(command, encoding=None) as proc:
                    delay = 1.0
                    partial = b""
                    while True:
                        chunk = await proc.stdout.read(1 << 16)
                        if not chunk:
                            break
                        lines = (partial + chunk).split(b"\n")
                        partial = lines.pop()
                        if lines:
                            sink(spec.path, lines)
            except asyncio.CancelledError:
                raise
            except (SSHError, OSError, Exception) as e:  # noqa: BLE001 - the stream is retried
                log.warning("log source %s on %s: %s; trying again in %.0fs", spec.name,
                            spec.host, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _tick(self) -> None:
        last_eval = 0.0
        while True:
            await asyncio.sleep(BATCH)
            self._flush()
            now = time.monotonic()
            if now - last_eval >= min(EVALUATE_EVERY, BATCH * 5):
                last_eval = now
                self.evaluate()
