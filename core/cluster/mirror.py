"""The cluster's history on every node. Where it lives: each node's TinyDB holds the
runs it ran, and a copy of every run the other nodes report on the results stream
(Redis keeps the newest 100,000 of them, the shared index). A copy is a run of this
history like any other (its own id here, `origin` "NODE#ID" there, `node` where it
ran, the tail of its log), so `runs`, the console and the job summaries show the whole
cluster with no Redis at hand; a copy never raises an alert (its node did). How far
the stream was copied is kept in the same commit as the copies.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from core.events import RunFinished
from core.jobs.active import run_dict
from core.jobs.runs import Run

log = logging.getLogger("fleetdeck.cluster")

META_KEY = "cluster_results"  # the last results entry copied
SEEN = 10_000  # origins remembered, to copy a report sent twice once
_KEPT = ("job", "host", "command", "trigger", "occurrence", "state", "reason",
         "queued_at", "started_at", "finished_at", "exit_code", "attempt",
         "max_attempts", "attempts", "requested_by", "claim", "node", "parent", "step")


class Mirror:
    def __init__(self, engine: Any, queue: Any) -> None:
        self.engine = engine
        self.queue = queue
        self.last: str | None = None
        self.copied = 0
        self._seen: dict[str, None] = {}  # the newest copies' origins, oldest first

    async def catch_up(self) -> int:
        """Copy what the other nodes reported since the last time: runs copied."""
        store = self.engine.store
        if self.last is None:
            last = str(store.meta().get(META_KEY) or "0")
            first = await self.queue.first_result()
            if last != "0" and first is not None and _entry_key(first) > _entry_key(last):
                # away for longer than Redis keeps reports: say so, copy what is left
                msg = ("cluster history: some runs the other nodes reported while this "
                       "node was away are no longer in Redis and are not copied here")
                log.warning(msg)
                self.engine._notice("warning", msg)
            self.last = last
        total = 0
        while True:
            got = await self.queue.results_after(self.last, 500)
            if not got:
                return total
            page = 0
            for entry, doc in got:
                if isinstance(doc, dict) and doc.get("node") != self.queue.node:
                    origin = f"{doc.get('node')}#{doc.get('id')}"
                    if origin not in self._seen:  # a report sent twice is copied once
                        self._seen[origin] = None
                        if len(self._seen) > SEEN:
                            del self._seen[next(iter(self._seen))]
                        self._copy(doc)
                        page += 1
                self.last = entry
            store.set_meta(META_KEY, self.last)
            self.engine._dirty()
            self.copied += page
            total += page
            if len(got) < 500:
                return total

    def _copy(self, doc: dict[str, Any]) -> None:
        eng = self.engine
        store = eng.store
        fields = {k: doc[k] for k in _KEPT if k in doc}
        fields["parent"] = None  # its parent's id is another node's
        if not isinstance(fields.get("attempts"), list):
            fields["attempts"] = []
        try:
            run = Run(id=store.next_run_id(), origin=f"{doc.get('node')}#{doc.get('id')}",
                      **fields)
        except TypeError as e:
            log.warning("a results entry that is not a run: %s", e)
            return
        tail = doc.get("log_tail") or ""
        path = store.log_path(run.id)
        try:
            fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            with open(fd, "w", encoding="utf-8") as f:
                f.write(f"[fleetdeck] ran on {doc.get('node')} as run #{doc.get('id')}; "
                        f"its whole log is {doc.get('log', 'there')}\n")
                f.write(tail if not tail or tail.endswith("\n") else tail + "\n")
        except OSError as e:
            log.warning("run #%d: cannot write its copied log: %s", run.id, e)
        store.add_run(run)
        if run.job in eng.config.jobs:
            eng._note_result(run)
            eng._job_changed(run.job)
        eng._announce(RunFinished(run_dict(run)))


def _entry_key(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms or 0), int(seq or 0)
