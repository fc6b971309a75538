"""File-change triggers: a job with `on_change = ["/etc/app/*.conf"]` runs when files
there change. inotify does the watching (through watchfiles, a Rust `notify` binding:
no polling); a burst of writes within the job's `change_debounce` runs it once, and the
changed paths reach it in `FLEETDECK_CHANGED_PATHS`, one per line.

A pattern's directory (the part before any wildcard) is watched; when it does not exist
yet, its nearest existing parent is, so a directory created later is seen too.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob as globmod
import logging
import os
from pathlib import PurePath
from typing import Any

from core.jobs.runs import Trigger

log = logging.getLogger("fleetdeck.triggers")
ENV = "FLEETDECK_CHANGED_PATHS"


def watch_root(pattern: str) -> str:
    """The directory to watch for a path or glob: its static part, or the nearest
    existing parent of it."""
    parts = PurePath(pattern).parts
    static: list[str] = []
    for part in parts:
        if globmod.has_magic(part):
            break
        static.append(part)
    root = str(PurePath(*static)) if static else "/"
    if root == pattern and not globmod.has_magic(pattern):
        root = os.path.dirname(pattern) or "/"  # a file: watch its directory
    while not os.path.isdir(root) and root not in ("/", ""):
        root = os.path.dirname(root)
    return root or "/"


def matches(path: str, pattern: str) -> bool:
    if not globmod.has_magic(pattern):
        return path == pattern or path.startswith(pattern.rstrip("/") + "/")
    return PurePath(path).match(pattern)


class ChangeTriggers:
    """An engine service: one watcher per job with `on_change`."""

    service_name = "triggers"

    def __init__(self) -> None:
        self.engine: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: list[Any] = []
        self._stop = asyncio.Event()

    async def start(self, engine: Any) -> None:
        self.engine = engine
        self._watch_all(engine.config.jobs)

    def _watch_all(self, jobs: dict[str, Any]) -> None:
        self._jobs = [job for job in jobs.values() if job.on_change and job.enabled]
        self._tasks = [asyncio.ensure_future(self._watch(job)) for job in self._jobs]

    def reconfigure(self, config: Any) -> list[str]:
        """A reloaded config: the watchers follow the jobs' `on_change` as they are now."""
        before = {j.name: j.on_change for j in self._jobs}
        for task in self._tasks:
            task.cancel()
        self._watch_all(config.jobs)
        after = {j.name: j.on_change for j in self._jobs}
        return sorted(f"watch {n}" for n in set(before) | set(after)
                      if before.get(n) != after.get(n))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _watch(self, job: Any) -> None:
        from watchfiles import awatch

        roots = sorted({watch_root(p) for p in job.on_change})
        quiet_ms = max(50, int(job.change_debounce * 1000))
        log.info("job %s watches %s", job.name, ", ".join(roots), extra={"job": job.name})
        # a burst ends when the files have been quiet for change_debounce (watchfiles'
        # `step`); its `debounce` only caps how long a never-ending stream is held
        async for changes in awatch(*roots, debounce=max(10 * quiet_ms, 2000), step=quiet_ms,
                                    stop_event=self._stop, recursive=True,
                                    ignore_permission_denied=True):
            paths = sorted({p for _, p in changes
                            if any(matches(p, pat) for pat in job.on_change)})
            if not paths:
                continue
            try:
                runs = await self.engine.run_job(job.name, requested_by="on_change",
                                                 trigger=Trigger.CHANGE,
                                                 env={ENV: "\n".join(paths)})
            except Exception as e:  # the job went away on a reload, or the engine stops
                log.error("job %s: a change could not start it: %s", job.name, e)
                continue
            log.info("job %s: %d changed path%s, run %s", job.name, len(paths),
                     "" if len(paths) == 1 else "s", ", ".join(f"#{r['id']}" for r in runs),
                     extra={"job": job.name})
