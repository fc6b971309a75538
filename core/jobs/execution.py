"""Execution: one run from start to a final state, attempts and retries included, for
local and remote hosts alike (one loop over a small process protocol)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.events import (
    OutputLine,
    RunRetrying,
    RunStarted,
)
from core.jobs.active import ActiveRun, run_dict
from core.jobs.config import Job
from core.jobs.process import MAX_EVENT_LINE, LocalProcess, ProcessOutcome
from core.jobs.runs import RunState
from core.remote.config import LOCAL_HOST
from core.secrets import SecretError, longest_first, mask, resolve

log = logging.getLogger("fleetdeck.engine")


class Execution:
    """The execution half of the Engine (a mixin over the Engine's state)."""

    async def _execute(self, act: ActiveRun) -> None:
        """One run from start to a final state, attempts and retries included."""
        run, job = act.run, act.job
        assert self.store is not None and job is not None
        logfile = None
        try:
            logfile = _LazyLog(functools.partial(self.store.log_path, run.id))
            state, reason = await self._attempts(act, job, logfile)
        except asyncio.CancelledError:  # the engine's stop: on purpose, not a failure
            state, reason = RunState.CANCELLED, act.cancel_reason or "fleetdeck was stopped"
        except Exception as e:  # a bug must not leave a run hanging as `running`
            log.exception("run #%d failed inside fleetdeck", run.id)
            state, reason = RunState.FAILED, f"fleetdeck error: {e}"
        finally:
            if logfile is not None:
                logfile.close()
            self._running -= 1
        if logfile is not None and logfile.error:
            lost = f"its output was not saved: {logfile.error.lower()}"
            reason = f"{reason}; {lost}" if reason else lost
        self._finish(act, state, reason)
        log.info("run #%d of %s %s%s", run.id, run.job, state.value,
                 f": {reason}" if reason else "", extra={"job": run.job, "run_id": run.id})
        self._pump()

    async def _attempts(self, act: ActiveRun, job: Job, logfile: Any) -> tuple[RunState, str]:
        """Attempts of one run until it ends or runs out of retries, on any host: the
        host decides only how a process is made (`_launcher`)."""
        run = act.run
        written = 0
        cap = self.config.engine.log_retention_bytes
        truncated = False
        try:  # ${NAME} and ${file:PATH} in its environment, filled in only here
            found: list[str] = []
            job_env = {k: resolve(v, found) for k, v in job.env.items()}
        except SecretError as e:
            return RunState.FAILED, f"cannot start: {e}"
        secrets = longest_first(found)

        def on_line(stream: str, line: str) -> None:
            nonlocal written, truncated
            if secrets:  # what a run prints of a secret never reaches a log or a screen
                line = mask(line, secrets)
            if written < cap:
                logfile.write(line + "\n")
                written += len(line) + 1
            elif not truncated:
                truncated = True
                logfile.write(f"[fleetdeck] log capped at {cap} bytes; output dropped\n")
            self.bus.publish(OutputLine(run.id, run.job, run.host, stream,
                                        line[:MAX_EVENT_LINE], time.time()))
            if act.on_output is not None:  # a workflow step's line, in the workflow's log
                act.on_output(run.host, stream, line)

        def note(text: str) -> None:
            logfile.write(f"[fleetdeck] {text}\n")
            self.bus.publish(OutputLine(run.id, run.job, run.host, "fleetdeck", text,
                                        time.time()))

        launch = self._workflow_launcher(act) if job.workflow is not None else \
            self._launcher(run.host, job)
        if isinstance(launch, str):  # the host cannot be run on at all
            return RunState.FAILED, launch
        while True:
            env = {
                **job_env,
                **(act.extra_env or {}),
                "FLEETDECK_INSTALL": self._install_id,  # finds it after a crash
                "FLEETDECK_JOB": job.name,
                "FLEETDECK_RUN_ID": str(run.id),
                "FLEETDECK_ATTEMPT": str(run.attempt),
            }
            if run.occurrence is not None:
                env["FLEETDECK_SCHEDULED_AT"] = str(int(run.occurrence))
            if self.cluster is not None:
                env["FLEETDECK_NODE"] = self.cluster.node
            if run.attempt > 1:
                note(f"attempt {run.attempt} of {run.max_attempts}")
            proc = launch(job, env, on_line)
            act.process = proc
            error = await proc.start()
            started = self.clock()
            if run.started_at is None:
                run.started_at = started
            attempt: dict[str, Any] = {"number": run.attempt, "started_at": started}
            if error is None and proc.info is not None:
                run.pid, run.pgid, run.proc_started = (proc.info.pid, proc.info.pgid,
                                                       proc.info.started)
            run.state = RunState.RUNNING.value
            run.reason = ""
            self.store.save_run(run)
            self.bus.publish(RunStarted(run_dict(run)))
            self._dirty()
            if error is not None:
                act.process = None
                note(error)
                attempt.update(finished_at=self.clock(), state=RunState.FAILED.value)
                run.attempts.append(attempt)
                state, reason = RunState.FAILED, error
                if not proc.retry_failed_start:  # a local command that cannot start won't
                    return state, reason
            else:
                if act.cancel_reason:  # cancelled while it was starting
                    proc.cancel()
                outcome = await proc.wait()
                act.process = None
                run.exit_code = outcome.exit_code
                state, reason = _result(outcome, job, act, proc.timeout_note)
                attempt.update(finished_at=self.clock(), exit_code=outcome.exit_code,
                               state=state.value)
                run.attempts.append(attempt)
            if state in (RunState.FAILED, RunState.TIMED_OUT) \
                    and run.attempt < run.max_attempts and not act.cancel_reason:
                await self._wait_to_retry(act, job, state, reason, note)
                if act.cancel_reason:
                    return RunState.CANCELLED, act.cancel_reason
                continue
            return state, reason

    def _launcher(self, host: str, job: Job) -> Launcher | str:
        """How processes are made on `host`, or why they cannot be."""
        if host == LOCAL_HOST:
            if job.push:
                return "a push goes over SSH; 'local' is this machine"
            return _local
        from core.remote.runs import remote_launcher

        return remote_launcher(self, host)

    async def _wait_to_retry(self, act: ActiveRun, job: Job, state: RunState, reason: str,
                             note: Any) -> None:
        """Record the next attempt and wait its backoff with the slot given back.

        Shared by local and remote runs; the caller checks `act.cancel_reason` after.
        """
        run = act.run
        delay = self._backoff(job, run.attempt)
        note(f"attempt {run.attempt} {state.value} ({reason}); retrying in {delay:.1f}s")
        run.attempt += 1
        run.state = RunState.QUEUED.value
        run.reason = f"retry {run.attempt}/{run.max_attempts} in {delay:.0f}s after: {reason}"
        run.pid = run.pgid = run.proc_started = None
        assert self.store is not None
        self.store.save_run(run)
        self.bus.publish(RunRetrying(run_dict(run), delay))
        self._dirty()
        self._running -= 1  # the slot is given back while it waits
        self._pump()
        try:
            await self._sleep_unless_cancelled(act, delay)
        finally:
            self._running += 1

    async def _sleep_unless_cancelled(self, act: ActiveRun, delay: float) -> None:
        loop = asyncio.get_running_loop()
        woke = asyncio.Event()
        act.waiting_retry = loop.call_later(delay, woke.set)
        original = act.process
        act.process = _RetryWait(woke)  # type: ignore[assignment]
        try:
            await woke.wait()
        finally:
            act.waiting_retry.cancel()
            act.waiting_retry = None
            act.process = original

    @staticmethod
    def _backoff(job: Job, attempt: int) -> float:
        base = min(job.retry.backoff_max, job.retry.backoff * (2 ** (attempt - 1)))
        spread = base * job.retry.jitter
        return max(0.0, base + random.uniform(-spread, spread))


Launcher = Callable[[Job, dict[str, str], Any], Any]
"""(job, env, on_line) -> a process: `info`, `retry_failed_start`, `timeout_note`,
`async start() -> error line | None`, `cancel()`, `async wait() -> ProcessOutcome`."""


def _local(job: Job, env: dict[str, str], on_line: Any) -> LocalProcess:
    return LocalProcess(job.command, env=env, cwd=job.cwd, timeout=job.timeout,
                        kill_grace=job.kill_grace, on_line=on_line)


def _result(outcome: ProcessOutcome, job: Job, act: ActiveRun,
            timeout_note: str) -> tuple[RunState, str]:
    """A finished attempt's state and reason."""
    if outcome.cancelled:
        return RunState.CANCELLED, act.cancel_reason or "cancelled"
    if outcome.timed_out:
        return RunState.TIMED_OUT, f"timed out after {job.timeout:g}s{timeout_note}"
    if outcome.error:
        return RunState.FAILED, outcome.error
    if outcome.exit_code == 0:
        return RunState.SUCCEEDED, ""
    if outcome.signal:
        return RunState.FAILED, f"killed by signal {outcome.signal}"
    return RunState.FAILED, f"exit code {outcome.exit_code}"


class _LazyLog:
    """A run's log file, created at its first line: a silent run costs no file.

    A log that cannot be written (a full disk, a quota) stops being written, and says
    so in `error`: the run goes on and ends as its process does, its reason telling
    that the output was not saved; an exception here would stop reading the process's
    pipes and hang the run."""

    def __init__(self, path: Callable[[], Path]) -> None:
        self._path = path  # asked at the first line: its folder is made then
        self._file: Any = None
        self.error: str | None = None

    def write(self, text: str) -> None:
        if self.error is not None:
            return
        try:
            if self._file is None:
                fd = os.open(self._path(), os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
                self._file = open(fd, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._file.write(text)
        except OSError as e:
            self.error = e.strerror or str(e)
            log.error("a run's log could not be written: %s", e)
            self.close()

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError as e:  # the last buffered line, on a full disk
                self.error = self.error or e.strerror or str(e)


class _RetryWait:
    """Stands in for the process while a run waits to retry, so cancel() wakes it."""

    def __init__(self, woke: asyncio.Event) -> None:
        self._woke = woke

    def cancel(self) -> None:
        self._woke.set()

