"""Probes: one look at one thing, each bounded by a timeout. A timeout, a refused
connection or an unreadable answer is a failing sample with its reason, never silence.

Every probe returns a ``Sample``. Its status keeps availability apart from thresholds,
as Nagios keeps a host's UP/DOWN apart from a service's OK/WARNING/CRITICAL:

* ``down``: the probe failed: no answer (refused, timed out, DNS, SSH login) or not the
  answer it needs (HTTP status or body, no such process);
* ``ok`` | ``warn`` | ``crit``: it answered, and what it measured (latency, a metric,
  a command's own verdict) is judged against the thresholds.

A sample also has a number (latency in seconds, or the metric the check cares most
about), a one-line detail for a person, a `cause` that names the same trouble on any
host (alert groups gather by it: "connection refused", "cpu ≥ 98%"), and for metrics
checks the whole sample of the host.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.httpclient import MAX_REDIRECTS, os_reason

if TYPE_CHECKING:
    import httpx

OK, WARN, CRIT, DOWN = "ok", "warn", "crit", "down"
SEVERITY = {OK: 0, WARN: 1, CRIT: 2}  # of an answered sample; DOWN is another axis
MAX_BODY = 256 * 1024  # an HTTP body is read at most this far for `body`/`regex`


@dataclass
class Sample:
    status: str
    detail: str = ""
    value: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0
    cause: str = ""  # the trouble in words without the host: "connection refused"

    @property
    def ok(self) -> bool:
        return self.status == OK


def down(detail: str, cause: str | None = None) -> Sample:
    """A failed probe: `detail` for a person, `cause` the same without the host."""
    return Sample(DOWN, detail, cause=detail if cause is None else cause)


def latency_status(seconds: float, limits: tuple[float, float] | None) -> str:
    if limits is None:
        return OK
    return CRIT if seconds >= limits[1] else WARN if seconds >= limits[0] else OK


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def latency_sample(seconds: float, limits: tuple[float, float] | None, said: str,
                   tail: str = "") -> Sample:
    """An answer judged by its latency: `said` is what answered ("HTTP 200"), the detail
    says what crossed what ("HTTP 200 in 1200 ms ≥ 1000 ms")."""
    status = latency_status(seconds, limits)
    if status == OK or limits is None:
        return Sample(OK, f"{said} in {fmt_ms(seconds)}{tail}", seconds)
    limit = limits[1] if status == CRIT else limits[0]
    return Sample(status, f"{said} in {fmt_ms(seconds)} ≥ {fmt_ms(limit)}{tail}", seconds,
                  cause=f"latency ≥ {fmt_ms(limit)}")


async def tcp_probe(host: str, port: int, *, latency: tuple[float, float] | None = None
                    ) -> Sample:
    t0 = time.monotonic()
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        return down(f"tcp {host}:{port}: {os_reason(e)}", os_reason(e))
    elapsed = time.monotonic() - t0
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return latency_sample(elapsed, latency, f"tcp {host}:{port} open")


async def http_probe(url: str, *, status: tuple[int, ...] = (), body: str | None = None,
                     regex: str | None = None, latency: tuple[float, float] | None = None,
                     verify: bool = True, follow_redirects: bool = True, timeout: float = 5.0,
                     client: httpx.AsyncClient | None = None) -> Sample:
    """GET `url` and judge status, body and latency (core/httpclient.py does the HTTP).

    One deadline, `timeout`, covers the whole exchange (connect, every redirect, headers,
    body), so a server dripping bytes cannot hold a probe longer. Redirects are followed
    up to MAX_REDIRECTS. `client` is the owner's keep-alive client, made with `verify` as
    its TLS mode; without one the probe makes a short-lived client of its own."""
    import httpx

    from core.httpclient import client_for, read_at_most, reason, shown_url

    t0 = time.monotonic()
    shown = shown_url(url)  # what messages name: a password in the URL masked
    verdict: Sample | None = None  # the status judged, before the body is drained
    hops = [0]
    try:
        async with asyncio.timeout(timeout), client_for(client, verify=verify) as c:
            response = await _get(c, url, follow_redirects, timeout, hops)
            try:
                if body is None and regex is None:
                    verdict = _judge(shown, response.status_code, hops[0], t0, status,
                                     latency)
                    await read_at_most(response, MAX_BODY)  # read out: the connection is reused
                else:
                    data = await read_at_most(response, MAX_BODY)
                    verdict = _judge(shown, response.status_code, hops[0], t0, status, latency,
                                     data.decode("utf-8", "replace"), body, regex)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        if verdict is not None:  # only the draining was slow: the answer stands
            return verdict
        return down(f"GET {shown}: timed out after {timeout:g}s{_after(hops[0])}",
                    f"timed out after {timeout:g}s")
    except _TooManyRedirects:
        return down(f"GET {shown}: more than {MAX_REDIRECTS} redirects",
                    f"more than {MAX_REDIRECTS} redirects")
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as e:
        if verdict is not None:
            return verdict
        return down(f"GET {shown}: {reason(e)}{_after(hops[0])}", reason(e))
    assert verdict is not None
    return verdict


async def _get(c: httpx.AsyncClient, url: str, follow: bool, timeout: float,
               hops: list[int]) -> httpx.Response:
    """The response to GET `url`, its body not read yet; redirects followed hop by hop
    when `follow` (httpx's own following reads every redirect's body whole)."""
    from core.httpclient import next_hop, read_at_most

    request = c.build_request("GET", url, timeout=timeout)
    while True:
        response = await c.send(request, stream=True)
        following = next_hop(response) if follow else None
        if following is None:
            return response
        try:
            await read_at_most(response, MAX_BODY)
        finally:
            await response.aclose()
        if hops[0] >= MAX_REDIRECTS:
            raise _TooManyRedirects
        hops[0] += 1
        request = following


class _TooManyRedirects(Exception):
    pass


def _after(hops: int) -> str:
    return f" (after {hops} redirect{'s' if hops != 1 else ''})" if hops else ""


def _judge(url: str, code: int, hops: int, t0: float, status: tuple[int, ...],
           latency: tuple[float, float] | None, text: str = "", body: str | None = None,
           regex: str | None = None) -> Sample:
    elapsed = time.monotonic() - t0
    ok_status = code in status if status else 200 <= code < 400
    if not ok_status:  # an answer, but not the one the service gives when it works
        return Sample(DOWN, f"HTTP {code} from {url} in {fmt_ms(elapsed)}{_after(hops)}",
                      elapsed, cause=f"HTTP {code}")
    if body is not None and body not in text:
        return Sample(DOWN, f"HTTP {code}, body lacks {body!r}", elapsed,
                      cause=f"body lacks {body!r}")
    if regex is not None and not re.search(regex, text):
        return Sample(DOWN, f"HTTP {code}, body does not match /{regex}/", elapsed,
                      cause=f"body does not match /{regex}/")
    return latency_sample(elapsed, latency, f"HTTP {code}", _after(hops))


def local_process_probe(pattern: str) -> Sample:
    """A process whose name or command line matches `pattern` runs here (psutil)."""
    import os

    import psutil

    rx = re.compile(pattern)
    found = []
    me = os.getpid()
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        if p.info["pid"] == me:
            continue
        try:
            cmd = " ".join(p.info["cmdline"] or []) or p.info["name"] or ""
        except (psutil.Error, OSError):
            continue
        if rx.search(p.info["name"] or "") or rx.search(cmd):
            found.append(p.info["pid"])
    if not found:
        return Sample(DOWN, f"no process matches /{pattern}/", 0.0,
                      cause=f"no process matches /{pattern}/")
    return Sample(OK, f"{len(found)} process{'es' if len(found) != 1 else ''} match "
                      f"/{pattern}/ (pid {found[0]})", float(len(found)))


def remote_process_command(pattern: str) -> str:
    """Counts matching processes on a host. The pattern travels base64-encoded: written
    plainly it would be in the command line of the shell running pgrep, which would then
    find that shell."""
    import base64

    b64 = base64.b64encode(pattern.encode()).decode()
    return f'p=$(printf %s {b64} | base64 -d) && pgrep -f -- "$p" | wc -l'


def command_status(code: int | None) -> str:
    """Nagios plugin convention: 0 ok, 1 warning, any other exit critical (the command
    ran and judged); no exit status at all (killed) is a failed probe."""
    if code is None:
        return DOWN
    return OK if code == 0 else WARN if code == 1 else CRIT
