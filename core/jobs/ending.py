"""Ending the engine's work (a mixin over the Engine's state): the runs in flight
counted, waited for or cancelled by a person, and the stop itself.

Stopping is never a failure: a run still going when fleetdeck is stopped on purpose
(the console quits, the daemon gets SIGTERM) ends `cancelled`, saying so; `interrupted`
is kept for runs a dead engine left behind (see the engine's recovery), which is a
failure worth a look."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.api import Actor
from core.jobs.runs import RunState

log = logging.getLogger("fleetdeck.engine")

STOPPED_WHILE_RUNNING = "fleetdeck was stopped while it ran"
STOPPED_BEFORE_START = "fleetdeck was stopped before it started"


class Ending:
    """In-flight runs and the stop."""

    def in_flight(self) -> dict[str, int]:
        """Runs not ended yet: {"running": n, "queued": n} (a run waiting to retry is
        running: it has started)."""
        running = sum(1 for a in self._active.values() if a.task is not None)
        return {"running": running, "queued": len(self._active) - running}

    async def drain(self) -> None:
        """Stop scheduling new occurrences and return once every queued and running run
        has ended on its own (a console quitting that waits for its runs)."""
        task = self._scheduler_task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._scheduler_task = None
        while self._active:
            await asyncio.gather(*(a.wait_done() for a in list(self._active.values())))

    async def cancel_all(self, *, actor: Actor | None = None, why: str = "") -> int:
        """Cancel every queued and running run (their process groups get TERM, then
        KILL), recorded `cancelled by <who>`; returns how many. One audit row."""
        acts = list(self._active.values())
        if not acts:
            return 0
        who = actor.user if actor is not None else "fleetdeck"
        reason = f"cancelled by {who}" + (f" {why}" if why else "")
        self.audit(actor, "cancel", [f"#{a.run.id}" for a in acts])
        for act in acts:
            self._cancel(act, reason)
        await asyncio.gather(*(a.wait_done() for a in acts))
        return len(acts)

    async def stop(self) -> None:
        """Stop scheduling, end what runs (recorded `cancelled`: stopping on purpose is not
        a failure), commit, release."""
        if not self._started:
            return
        self._stopping = True
        for service in reversed(self._services):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %r failed", service)
        task = self._scheduler_task
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for act in list(self._active.values()):
            if act.task is None:
                self._finish(act, RunState.CANCELLED, STOPPED_BEFORE_START)
            else:
                act.cancel_reason = STOPPED_WHILE_RUNNING
        running = [a.task for a in self._active.values() if a.task is not None]
        for t in running:
            t.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        for t in list(self._tasks):
            t.cancel()
        if getattr(self, "_fleetdeck_ssh_pool", None) is not None:  # remote hosts ran
            from core.remote.runs import close_engine_pool

            await close_engine_pool(self)
        assert self.store is not None
        try:
            self.store.close()  # the last commit
        except OSError as e:
            self._unwritable(e)
            log.error("stopped with changes not written, now lost: %s", self.write_error)
        else:
            self.write_error = None  # everything reached the disk in the end
        if self._lock:
            self._lock.release()
        self._started = False
        log.info("engine stopped")
