"""Runs of jobs on remote hosts: processes over SSH for the engine's attempt loop.

The engine's attempt loop (core.jobs.execution) makes its processes for a host that is
not `local` with ``remote_launcher``: each
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
from core.remote.commands import run_command
from core.remote.ssh import SSHError, SSHPool, Target, target_for

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

    retry_failed_start = True  # an unreachable host may answer the next attempt
    timeout_note = "; stopped on the host"

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

    async def start(self) -> str | None:
        try:
            self._conn = await self.pool.connect(self.target)
        except SSHError as e:
            return f"{e.cls.value}: {e}"
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


class PushProcess(RemoteProcess):
    """A job's `push` on one host, shaped like a process: its result is a line of
    output ("changed", "unchanged", or why not) and an exit code (0, or 1)."""

    timeout_note = "; its temporary file removed"

    def __init__(self, pool: SSHPool, target: Target, spec: dict[str, Any], *,
                 timeout: float | None, on_line: Any) -> None:
        super().__init__(pool, target, "", env=None, timeout=timeout, kill_grace=0,
                         on_line=on_line)
        self.spec = spec

    async def wait(self) -> ProcessOutcome:
        from core.remote.sftp import CANCELLED, bounded, push
        from core.remote.transfer import TransferError, make_push

        s = self.spec
        try:  # planned at each run: the files as they are now
            plan = await asyncio.to_thread(make_push, s["src"], s["dest"], mode=s.get("mode"),
                                           owner=s.get("owner"), backup=bool(s.get("backup")))
        except TransferError as e:
            self.on_line("stderr", str(e))
            return ProcessOutcome(1, None, False, False, None)
        out = await bounded(push(self._conn, plan, self.target.name), self._cancel,
                            self.timeout)
        if isinstance(out, str):
            return ProcessOutcome(None, None, out != CANCELLED, out == CANCELLED, None)
        self.pool.touch(self.target)
        self.on_line("stdout" if out.ok else "stderr", out.reason)
        return ProcessOutcome(0 if out.ok else 1, None, False, False, None)


def remote_launcher(engine: Any, host_name: str) -> Any:
    """The engine's launcher for `host_name` (see core.jobs.execution), or why there is
    none: the host is not in the inventory, or its SSH settings cannot be used."""
    host = engine.config.hosts.get(host_name)
    if host is None:
        return f"host {host_name} is not in the inventory"
    try:
        target = target_for(host, engine.config.hosts)
    except ValueError as e:
        return f"host {host_name}: {e}"
    pool = engine_pool(engine)

    def launch(job: Any, env: dict[str, str], on_line: Any) -> RemoteProcess:
        if job.push:
            return PushProcess(pool, target, job.push, timeout=job.timeout, on_line=on_line)
        command = job.command if not job.cwd else f"cd {_remote_dir(job.cwd)} && {job.command}"
        return RemoteProcess(pool, target, command, env=env, timeout=job.timeout,
                             kill_grace=job.kill_grace, on_line=on_line)

    return launch


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _remote_dir(cwd: str) -> str:
    """`cwd` for the host's shell: quoted, a leading ~ left to it (the host's home)."""
    if cwd == "~" or cwd.startswith("~/"):
        return "~" + (f"/{_quote(cwd[2:])}" if cwd[2:] else "")
    return _quote(cwd)
