"""Runs of jobs on remote hosts: the engine's attempt loop over SSH.

``Engine._attempts`` hands a run whose host is not `local` to ``remote_attempts``. Each
host of a job occurrence is its own run (the engine creates them), under the job's
timeout, retry and overlap rules, like local runs. A host that cannot be reached (or
refuses: auth, host key) fails the attempt with its class in the reason, and is retried
by the job's retry policy like a non-zero exit. Connections come from one SSHPool per
engine, shared by every run (and closed by ``close_engine_pool``).
"""

from __future__ import annotations

import asyncio
import signal as _signal
from typing import Any

from core.jobs.process import ProcessOutcome
from core.jobs.runs import RunState
from core.remote.ssh import SSHError, SSHPool, Target, run_command, target_for

_POOL_ATTR = "_fleetdeck_ssh_pool"


def engine_pool(engine: Any) -> SSHPool:
    """The engine's shared SSH pool (known_hosts in its state directory)."""
    pool = getattr(engine, _POOL_ATTR, None)
    if pool is None:
        pool = SSHPool(state_dir=engine.state_dir)
        setattr(engine, _POOL_ATTR, pool)
    return pool


def set_engine_pool(engine: Any, pool: SSHPool) -> None:
    """Give an engine a pool of one's own making (tests, a daemon with custom settings)."""
    setattr(engine, _POOL_ATTR, pool)


async def close_engine_pool(engine: Any) -> None:
    pool = getattr(engine, _POOL_ATTR, None)
    if pool is not None:
        setattr(engine, _POOL_ATTR, None)
        await pool.close()


class RemoteProcess:
    """One command on one host over SSH, shaped like core.jobs.process.LocalProcess."""

    def __init__(self, pool: SSHPool, target: Target, command: str, *,
                 env: dict[str, str] | None, timeout: float | None, kill_grace: float,
                 on_line: Any) -> None:
        self.pool = pool
        self.target = target
        self.command = command
        self.env = env
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.on_line = on_line
        self.info = None  # no local pid: recovery after a crash relies on the remote wrapper
        self._conn: Any = None
        self._cancel = asyncio.Event()

    async def start(self) -> SSHError | None:
        try:
            self._conn = await self.pool.connect(self.target)
        except SSHError as e:
            return e
        return None

    def cancel(self) -> None:
        self._cancel.set()

    async def wait(self) -> ProcessOutcome:
        res = await run_command(self._conn, self.command, on_line=self.on_line,
                                timeout=self.timeout, kill_grace=self.kill_grace,
                                env=self.env, cancel=self._cancel)
        self.pool.touch(self.target)
        sig = None
        if res.signal:
            sig = getattr(_signal, f"SIG{res.signal}", None)
            sig = int(sig) if sig is not None else -1
        return ProcessOutcome(res.exit_code, sig, res.timed_out, res.cancelled,
                              res.error if res.lost else None)


async def remote_attempts(engine: Any, act: Any, job: Any, on_line: Any,
                          note: Any) -> tuple[RunState, str]:
    """Engine._attempts for a remote host: attempts, timeouts and retries of one run."""
    run = act.run
    host = engine.config.hosts.get(run.host)
    if host is None:
        return RunState.FAILED, f"host {run.host} is not in the inventory"
    try:
        target = target_for(host, engine.config.hosts)
    except ValueError as e:
        return RunState.FAILED, f"host {run.host}: {e}"
    pool = engine_pool(engine)
    while True:
        env = {**job.env, "FLEETDECK_JOB": job.name, "FLEETDECK_RUN_ID": str(run.id),
               "FLEETDECK_ATTEMPT": str(run.attempt)}
        if run.occurrence is not None:
            env["FLEETDECK_SCHEDULED_AT"] = str(int(run.occurrence))
        if run.attempt > 1:
            note(f"attempt {run.attempt} of {run.max_attempts}")
        command = job.command if not job.cwd else f"cd {_quote(job.cwd)} && {job.command}"
        proc = RemoteProcess(pool, target, command, env=env, timeout=job.timeout,
                             kill_grace=job.kill_grace, on_line=on_line)
        act.process = proc
        error = await proc.start()
        started = engine.clock()
        if run.started_at is None:
            run.started_at = started
        attempt: dict[str, Any] = {"number": run.attempt, "started_at": started}
        run.state = RunState.RUNNING.value
        run.reason = ""
        engine.store.save_run(run)
        from core.events import RunStarted

        engine.bus.publish(RunStarted(run.to_dict()))
        engine._dirty()
        if error is not None:
            state, reason = RunState.FAILED, f"{error.cls.value}: {error}"
            note(reason)
            act.process = None
        else:
            if act.cancel_reason:
                proc.cancel()
            outcome = await proc.wait()
            act.process = None
            run.exit_code = outcome.exit_code
            if outcome.cancelled:
                state, reason = RunState.CANCELLED, act.cancel_reason or "cancelled"
            elif outcome.timed_out:
                state, reason = RunState.TIMED_OUT, (f"timed out after {job.timeout:g}s; "
                                                     "stopped on the host")
            elif outcome.error:
                state, reason = RunState.FAILED, outcome.error
            elif outcome.exit_code == 0:
                state, reason = RunState.SUCCEEDED, ""
            elif outcome.signal:
                state, reason = RunState.FAILED, f"killed by signal {outcome.signal}"
            else:
                state, reason = RunState.FAILED, f"exit code {outcome.exit_code}"
        attempt.update(finished_at=engine.clock(), exit_code=run.exit_code, state=state.value)
        run.attempts.append(attempt)
        if state in (RunState.FAILED, RunState.TIMED_OUT) and run.attempt < run.max_attempts \
                and not act.cancel_reason:
            await engine._wait_to_retry(act, job, state, reason, note)
            if act.cancel_reason:
                return RunState.CANCELLED, act.cancel_reason
            continue
        return state, reason


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
