"""Taking one sample of a check on a target: a probe of its own (TCP, HTTP), a look on
this machine, or a command over SSH through the engine's pool; bounded by the check's
timeout. A failure of any kind is a failing sample with its reason, never an exception.

This is where availability and thresholds part: a probe that gets no usable answer
(no connection, no login, a timeout, output it cannot read) is a `down` sample saying
why in words; an answer over a threshold is `warn` or `crit` saying what crossed what
("cpu 100% ≥ 98%"), and the host stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from core.health.config import CheckSpec
from core.health.metrics import REMOTE_COMMAND, MetricsError, Rates, local_metrics, parse_remote
from core.health.probes import (
    CRIT,
    DOWN,
    OK,
    SEVERITY,
    WARN,
    Sample,
    command_status,
    down,
    http_probe,
    local_process_probe,
    remote_process_command,
    tcp_probe,
)
from core.httpclient import SharedClient
from core.jobs.groups import popen_group
from core.remote.inventory import LOCAL_HOST

HTTP_BACKSTOP = 1.0  # seconds past an http check's timeout before the outer limit cuts in
_SSH_WORDS = {  # an SSH failure's class in words, for the cause when the text names a host
    "unreachable": "unreachable over SSH", "auth_failed": "SSH login failed",
    "host_key_unknown": "host key not trusted", "host_key_changed": "host key changed",
    "host_key_revoked": "host key revoked", "timed_out": "no answer over SSH",
}


def ssh_down(e: Any, target: str, address: str) -> Sample:
    """An SSH failure as a down sample: the pool's one-line reason (never a class name),
    with the trouble in words as its cause."""
    cls = getattr(e.cls, "value", str(e.cls))
    words = _SSH_WORDS.get(cls, "SSH failed")
    text = str(e)
    detail = text if text.startswith(words) else f"{words}: {text}"
    names_host = any(n and n in text for n in (target, address))
    return down(detail, words if names_host else detail)


def judge_metrics(m: Any, thresholds: dict[str, tuple[float, float]]) -> Sample:
    """A host's metrics against [warn, crit] thresholds: the worst level, a detail that
    says what crossed what ("cpu 100% ≥ 98%; memory 96% ≥ 90%") and as cause the
    crossings at that level without the values ("cpu ≥ 98%")."""
    worst, notes, causes = OK, [], {WARN: [], CRIT: []}
    for metric, (warn, crit) in thresholds.items():
        value = m.value(metric)
        if value is None:
            continue
        level = CRIT if value >= crit else WARN if value >= warn else OK
        if level == OK:
            continue
        limit = crit if level == CRIT else warn
        unit, shown = ("", f"{value:.2f}") if metric == "load" else ("%", f"{value:.0f}")
        per = " per core" if metric == "load" else ""
        notes.append(f"{metric} {shown}{unit} ≥ {limit:g}{unit}{per}")
        causes[level].append(f"{metric} ≥ {limit:g}{unit}{per}")
        if SEVERITY[level] > SEVERITY[worst]:
            worst = level
    if worst == OK:
        cpu = "-" if m.cpu is None else f"{m.cpu:.0f}"
        return Sample(OK, f"cpu {cpu}% mem {m.memory:.0f}% disk {m.disk:.0f}% "
                          f"load {m.load1:.2f}", m.cpu, m.to_dict())
    return Sample(worst, "; ".join(notes), m.cpu, m.to_dict(), cause=", ".join(causes[worst]))


class Sampler:
    """Samples checks for one engine (its hosts and SSH pool); `rates` carries a target's
    counters from one metrics sample to the next. Its HTTP probes share one keep-alive
    client, which `aclose` (the owner's stop) closes."""

    def __init__(self, engine: Any, clock: Any = time.time, pool: Any = None) -> None:
        self.engine = engine
        self.clock = clock
        self._pool = pool
        self.http = SharedClient()

    async def aclose(self) -> None:
        """Close the HTTP probes' connections (the SSH pool is the engine's)."""
        await self.http.aclose()

    @property
    def pool(self) -> Any:
        if self._pool is None:
            from core.remote.runs import engine_pool

            self._pool = engine_pool(self.engine)
        return self._pool

    async def sample(self, spec: CheckSpec, target: str, rates: Rates) -> Sample:
        from core.remote.ssh import SSHError

        # an http probe keeps its own deadline (its reason names the URL); this is a backstop
        limit = spec.timeout + (HTTP_BACKSTOP if spec.kind == "http" else 0.0)
        try:
            return await asyncio.wait_for(self._probe(spec, target, rates), limit)
        except TimeoutError:
            return down(f"no answer within {spec.timeout:g}s")
        except SSHError as e:
            return ssh_down(e, target, self._address(target))
        except _ProbeFailed as e:
            return e.sample

    async def _probe(self, spec: CheckSpec, target: str, rates: Rates) -> Sample:
        address = self._address(target)
        if spec.kind == "metrics":
            return await self._metrics(spec, target, rates)
        if spec.kind == "tcp":
            assert spec.port is not None
            return await tcp_probe(address, spec.port, latency=spec.latency)
        if spec.kind == "http":
            assert spec.url is not None
            url = spec.url.replace("{host}", target).replace("{address}", address)
            return await http_probe(url, status=spec.status, body=spec.body,
                                    regex=spec.regex, latency=spec.latency,
                                    follow_redirects=spec.follow_redirects,
                                    timeout=spec.timeout, client=self.http.get())
        if spec.kind == "process":
            assert spec.pattern is not None
            if target == LOCAL_HOST:
                return await asyncio.to_thread(local_process_probe, spec.pattern)
            code, out = await self._remote(target, remote_process_command(spec.pattern))
            n = int(out.strip() or 0) if code == 0 and out.strip().isdigit() else 0
            if n == 0:
                return Sample(DOWN, f"no process matches /{spec.pattern}/ on {target}", 0.0,
                              cause=f"no process matches /{spec.pattern}/")
            return Sample(OK, f"{n} process{'es' if n != 1 else ''} match /{spec.pattern}/",
                          float(n))
        if spec.kind == "command":
            assert spec.command is not None
            code, out = await self._command(target, spec.command)
            last = (out.strip().splitlines() or [""])[-1][:200]
            killed = _signal_name(-code) if code is not None and code < 0 else None
            if killed is not None:  # a local command a signal ended: no exit status either
                code = None
            status = command_status(code)
            said = (f"no exit status (killed{' by ' + killed if killed else ''})"
                    if code is None else f"exit {code}")
            return Sample(status, said + (f": {last}" if last else ""),
                          float(code) if code is not None else None,
                          cause="" if status == OK else said)
        if spec.kind == "ssh":
            t0 = time.monotonic()
            await self._connect(target)
            elapsed = time.monotonic() - t0
            return Sample(OK, f"ssh answered in {elapsed * 1000:.0f} ms", elapsed)
        return down(f"unknown check kind {spec.kind!r}")

    def _address(self, target: str) -> str:
        if target == LOCAL_HOST:
            return "127.0.0.1"
        host = self.engine.config.hosts.get(target)
        return (host.address or host.name) if host is not None else target

    async def _metrics(self, spec: CheckSpec, target: str, rates: Rates) -> Sample:
        if target == LOCAL_HOST:
            m = await asyncio.to_thread(local_metrics, rates)
        else:
            code, out = await self._remote(target, REMOTE_COMMAND)
            if code != 0 and not out:
                return down(f"the metrics command failed (exit {code})")
            try:
                m = parse_remote(out, rates, self.clock())
            except MetricsError as e:
                return down(str(e))
        return judge_metrics(m, spec.thresholds)  # an answer: never down for a threshold

    async def _connect(self, target: str) -> Any:
        from core.remote.ssh import target_for

        host = self.engine.config.hosts[target]
        return await self.pool.connect(target_for(host, self.engine.config.hosts))

    async def _remote(self, target: str, command: str) -> tuple[int | None, str]:
        import asyncssh

        from core.remote.ssh import SSHError, ssh_reason

        try:
            conn = await self._connect(target)
            async with conn.create_process(command, stderr=asyncssh.STDOUT,
                                           encoding=None) as proc:
                out = await _tail(proc.stdout)
                result = await proc.wait(check=False)
        except SSHError as e:
            raise _ProbeFailed(ssh_down(e, target, self._address(target))) from None
        except (asyncssh.Error, OSError) as e:  # the connection died under the command
            raise _ProbeFailed(down(f"unreachable over SSH: {ssh_reason(e)}",
                                    "unreachable over SSH")) from None
        return result.exit_status, out

    async def _command(self, target: str, command: str) -> tuple[int | None, str]:
        if target != LOCAL_HOST:
            return await self._remote(target, command)
        proc = await asyncio.create_subprocess_shell(
            command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, **popen_group())
        try:
            assert proc.stdout is not None
            out = await _tail(proc.stdout)
            await proc.wait()
        except asyncio.CancelledError:  # the timeout: do not leave it behind
            with contextlib.suppress(ProcessLookupError):
                import os
                import signal

                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        return proc.returncode, out


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


TAIL_BYTES = 64 * 1024  # of a command check's output: its verdict is its last line


async def _tail(stream: Any) -> str:
    """The end of a command's output, read as it comes: a check that prints gigabytes
    holds 64 KB of it, not all of it (communicate() kept everything)."""
    kept = bytearray()
    while chunk := await stream.read(65536):
        kept += chunk
        if len(kept) > 2 * TAIL_BYTES:
            del kept[:-TAIL_BYTES]
    return bytes(kept[-TAIL_BYTES:]).decode("utf-8", "replace")


class _ProbeFailed(Exception):
    def __init__(self, sample: Sample) -> None:
        super().__init__(sample.detail)
        self.sample = sample
