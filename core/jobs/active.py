"""What the engine holds about a run while it is active, and the engine's refusal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from core.jobs.config import Job
from core.jobs.process import LocalProcess
from core.jobs.runs import ACTIVE_STATES, Run
from core.store.docs import run_doc


class EngineError(Exception):
    """A request the engine refuses; the message is one line for a person (the control
    socket passes it on with its `code`), `details` the lines under it, if any (each
    error of a config a reload refused)."""

    code = "engine_error"

    def __init__(self, message: str = "", details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = list(details or [])


class NotFound(EngineError):
    """No such job, run, alert, fan-out or log source."""

    code = "not_found"


@dataclass
class ActiveRun:
    run: Run
    job: Job | None
    finished: bool = False
    _done: asyncio.Event | None = None  # made when somebody waits: most runs nobody does
    process: LocalProcess | None = None
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    waiting_retry: asyncio.TimerHandle | None = None
    after: set[int] = field(default_factory=set)  # run ids this one must wait for
    extra_env: dict[str, str] | None = None  # a workflow step's outputs, never resolved
    on_output: Any = None  # (host, stream, line): a workflow step's lines, passed on
    on_finish: Any = None  # (act): a workflow step's run ended (not yet on disk)

    async def wait_done(self) -> None:
        if not self.finished:
            if self._done is None:
                self._done = asyncio.Event()
            await self._done.wait()

    def set_done(self) -> None:
        self.finished = True
        if self._done is not None:
            self._done.set()


def run_dict(run: Run) -> dict[str, Any]:
    """``run.to_dict()``, the same dict, made without ``asdict``'s deep-copy machinery
    (it was the larger part of the cost of queueing a run)."""
    try:
        return run_doc(run)
    except TypeError:  # something run_doc does not copy itself: let asdict do it
        return run.to_dict()


def active_states() -> tuple[str, ...]:
    return tuple(s.value for s in ACTIVE_STATES)
