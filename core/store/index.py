"""The run index: a few compact columns per run and posting lists, in memory, so that
a filtered listing or a count over a window never parses history files.

Columns are arrays indexed by ``run id - base``: state, job, host, trigger (small
codes) and the time it was queued. Posting lists (ascending run ids) exist per job,
per host, per trigger and per final state; a listing walks the shortest of the lists
its filters allow, newest first, from the first id of its time window (found by
bisection: ids are handed out in queue order), and checks every candidate against
the columns, so an entry made stale by a pruned segment is never shown. About 30
bytes a run. ``core.store.index_files`` makes it durable in sealed chunks.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from typing import Any

from core.jobs.runs import RunState, Trigger

STATE_CODES: dict[str, int] = {s.value: i + 1 for i, s in enumerate(RunState)}  # 0: no run
TRIGGER_CODES: dict[str, int] = {t.value: i + 1 for i, t in enumerate(Trigger)}  # 0: other
FINAL_CODES = frozenset(STATE_CODES[s.value] for s in RunState if s.finished)
_STALE_SHARE = 8  # a posting list drops its pruned prefix once it is 1/8 of it


class Names:
    """Strings numbered in first-seen order (a job's or host's code); append only."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: list[str] = list(names)
        self.codes: dict[str, int] = {n: i for i, n in enumerate(self.names)}

    def code(self, name: str) -> int:
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
        return code


def _ids() -> array:
    return array("I")


class RunIndex:
    """Columns and posting lists of every run on record (see the module's docstring)."""

    def __init__(self) -> None:
        self.base = 1  # the run id of slot 0
        self.state = array("b")
        self.job = array("I")
        self.host = array("I")
        self.trigger = array("b")
        self.queued = array("d")  # kept ascending: a gap repeats the time before it
        self.jobs = Names()
        self.hosts = Names()
        self.by_job: dict[int, array] = {}
        self.by_host: dict[int, array] = {}
        self.by_trigger: dict[int, array] = {}
        self.by_state: dict[int, array] = {}  # final states only; active ones are few
        self.holes: list[tuple[int, int]] = []  # pruned id ranges after base (a segment
        # older than them was kept for an active run)
        self.last_by_job_host: dict[tuple[int, int], int] = {}  # last finished run id
        self.last_occurrence: dict[int, float] = {}  # per job: latest occurrence on record

    # ----------------------------------------------------------------- writing ----
    def __len__(self) -> int:
        return len(self.state)

    def end(self) -> int:
        """One past the highest run id with a slot."""
        return self.base + len(self.state)

    def grow(self, run_id: int) -> None:
        n = run_id - self.end() + 1
        if n <= 0:
            return
        last = self.queued[-1] if self.queued else 0.0
        self.state.extend(bytes(n))
        self.job.extend(array("I", bytes(4 * n)))
        self.host.extend(array("I", bytes(4 * n)))
        self.trigger.extend(bytes(n))
        self.queued.extend(array("d", [last]) * n)

    def put(self, doc: dict[str, Any]) -> None:
        """Index a run document, new or changed (only its state changes once made)."""
        run_id = doc["id"]
        if run_id < self.base:
            if self.state or run_id < 1:
                return  # pruned already
            self.base = run_id
        self.grow(run_id)
        slot = run_id - self.base
        code = STATE_CODES.get(doc.get("state") or "", 0) or STATE_CODES["failed"]
        old = self.state[slot]
        if old == 0:
            self._new(run_id, slot, doc)
        self.state[slot] = code
        if code in FINAL_CODES and code != old:
            if old in FINAL_CODES:  # a finished run does not change; if it did, unlist it
                _remove(self.by_state.get(old), run_id)
            _add(self.by_state, code, run_id)
            key = (self.job[slot], self.host[slot])
            if run_id > self.last_by_job_host.get(key, 0):
                self.last_by_job_host[key] = run_id

    def _new(self, run_id: int, slot: int, doc: dict[str, Any]) -> None:
        job = self.jobs.code(str(doc.get("job")))
        host = self.hosts.code(str(doc.get("host")))
        trigger = TRIGGER_CODES.get(doc.get("trigger") or "", 0)
        queued = float(doc.get("queued_at") or 0.0)
        self.job[slot], self.host[slot], self.trigger[slot] = job, host, trigger
        self.queued[slot] = queued
        nxt = slot + 1  # keep the times ascending across the gap this run may close
        while nxt < len(self.queued) and self.state[nxt] == 0 and self.queued[nxt] < queued:
            self.queued[nxt] = queued
            nxt += 1
        _add(self.by_job, job, run_id)
        _add(self.by_host, host, run_id)
        _add(self.by_trigger, trigger, run_id)
        occ = doc.get("occurrence")
        if isinstance(occ, (int, float)) and occ > self.last_occurrence.get(job, float("-inf")):
            self.last_occurrence[job] = float(occ)

    def drop(self, first: int, stop: int) -> None:
        """Runs ``first .. stop-1`` left history (retention dropped their segment)."""
        lo, hi = max(first, self.base), min(stop, self.end())
        if lo >= hi:
            return
        a, b = lo - self.base, hi - self.base
        if a == 0:
            for col in (self.state, self.job, self.host, self.trigger, self.queued):
                del col[:b]
            self.base = hi
            self.holes = [(x, y) for x, y in self.holes if y > hi]
            self._trim_prefix()
            return
        self.holes.append((lo, hi))
        self.state[a:b] = array("b", bytes(b - a))

    def _trim_prefix(self) -> None:
        for lists in (self.by_job, self.by_host, self.by_trigger, self.by_state):
            for code, ids in list(lists.items()):
                stale = bisect_left(ids, self.base)
                if stale * _STALE_SHARE >= len(ids):
                    del ids[:stale]
                    if not ids:
                        del lists[code]

    # ----------------------------------------------------------------- reading ----
    def first_since(self, since: float | None) -> int:
        """The first run id queued at or after ``since``."""
        if since is None:
            return self.base
        return self.base + bisect_left(self.queued, since)

    def ids(self, *, job: str | None = None, states: Iterable[str] | None = None,
            host: str | None = None, triggers: Iterable[str] | None = None,
            since: float | None = None, active: Iterable[int] = ()) -> Iterator[int]:
        """Run ids matching every filter, newest first. ``active``: the ids of queued
        and running runs (kept by the history), used when ``states`` asks for those."""
        first = self.first_since(since)
        job_code = host_code = None
        if job is not None:
            job_code = self.jobs.codes.get(job)
            if job_code is None:
                return
        if host is not None:
            host_code = self.hosts.codes.get(host)
            if host_code is None:
                return
        state_codes = trigger_codes = None
        sources: list[list[Iterator[int] | None]] = []
        if states is not None:
            state_codes = {STATE_CODES.get(str(s), -1) for s in states}
            final = state_codes & FINAL_CODES
            live = state_codes - FINAL_CODES - {-1}
            lists = [self.by_state.get(c) for c in sorted(final)]
            size = sum(_tail_len(ids, first) for ids in lists)
            feeds = [_newest(ids, first) for ids in lists if ids]
            if live:
                act = sorted((i for i in active if i >= first), reverse=True)
                size += len(act)
                feeds.append(iter(act))
            sources.append([size, _merged(feeds)])
        if triggers is not None:
            trigger_codes = {TRIGGER_CODES.get(str(t), 0) for t in triggers}
            lists = [self.by_trigger.get(c) for c in sorted(trigger_codes)]
            sources.append([sum(_tail_len(ids, first) for ids in lists),
                            _merged([_newest(ids, first) for ids in lists if ids])])
        if job_code is not None:
            ids = self.by_job.get(job_code)
            sources.append([_tail_len(ids, first), _newest(ids, first)])
        if host_code is not None:
            ids = self.by_host.get(host_code)
            sources.append([_tail_len(ids, first), _newest(ids, first)])
        if sources:
            feed = min(sources, key=lambda s: s[0])[1]
        else:
            feed = iter(range(self.end() - 1, first - 1, -1))
        base, state, end = self.base, self.state, self.end()
        for run_id in feed:
            if run_id < base or run_id >= end:
                continue
            slot = run_id - base
            code = state[slot]
            if code == 0:
                continue
            if state_codes is not None and code not in state_codes:
                continue
            if job_code is not None and self.job[slot] != job_code:
                continue
            if host_code is not None and self.host[slot] != host_code:
                continue
            if trigger_codes is not None and self.trigger[slot] not in trigger_codes:
                continue
            if since is not None and self.queued[slot] < since:
                continue
            yield run_id

    def count(self, *, states: Iterable[str] | None = None, since: float | None = None,
              active: Iterable[int] = (), **filters: Any) -> int:
        """How many runs match; O(log n) for finished states in a window (the status
        bar's question), else the length of the shortest posting list walked."""
        first = self.first_since(since)
        if states is not None and not filters and all(y <= first for _, y in self.holes):
            codes = {STATE_CODES.get(str(s), -1) for s in states}
            if codes <= FINAL_CODES:
                return sum(_tail_len(self.by_state.get(c), first) for c in codes)
        return sum(1 for _ in self.ids(states=states, since=since, active=active, **filters))

    def last_run_of(self, job: str, host: str) -> int | None:
        """The id of the job's last finished run on that host."""
        key = (self.jobs.codes.get(job, -1), self.hosts.codes.get(host, -1))
        return self.last_by_job_host.get(key)

    def latest_occurrence(self, job: str) -> float | None:
        code = self.jobs.codes.get(job)
        return None if code is None else self.last_occurrence.get(code)

    def memory(self) -> int:
        """Bytes held by the columns and posting lists (not counting dict overhead)."""
        cols = (self.state, self.job, self.host, self.trigger, self.queued)
        lists = [ids for d in (self.by_job, self.by_host, self.by_trigger, self.by_state)
                 for ids in d.values()]
        return sum(c.buffer_info()[1] * c.itemsize for c in (*cols, *lists))


def _add(lists: dict[int, array], code: int, run_id: int) -> None:
    ids = lists.get(code)
    if ids is None:
        ids = lists[code] = _ids()
    if not ids or ids[-1] < run_id:
        ids.append(run_id)
    else:
        pos = bisect_left(ids, run_id)
        if pos == len(ids) or ids[pos] != run_id:
            insort(ids, run_id)


def _remove(ids: array | None, run_id: int) -> None:
    if ids is None:
        return
    pos = bisect_left(ids, run_id)
    if pos < len(ids) and ids[pos] == run_id:
        del ids[pos]


def _tail_len(ids: array | None, first: int) -> int:
    return 0 if ids is None else len(ids) - bisect_left(ids, first)


def _newest(ids: array | None, first: int) -> Iterator[int]:
    if ids is None:
        return iter(())
    stop = bisect_left(ids, first)
    return (ids[i] for i in range(len(ids) - 1, stop - 1, -1))


def _merged(feeds: list[Iterator[int]]) -> Iterator[int]:
    """Descending feeds merged into one, without repeats."""
    if len(feeds) == 1:
        return feeds[0]

    def merge() -> Iterator[int]:
        last = None
        for run_id in heapq.merge(*feeds, reverse=True):
            if run_id != last:
                yield run_id
                last = run_id

    return merge()
