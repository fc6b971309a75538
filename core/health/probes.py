"""Probes: one look at one thing, each bounded by a timeout. A timeout, a refused
connection or an unreadable answer is a failing sample with its reason, never silence.

Every probe returns a ``Sample``: status ``ok`` | ``warn`` | ``crit``, a number
(latency in seconds, or the metric the check cares most about), a one-line detail, and
for metrics checks the whole sample of the host.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

OK, WARN, CRIT = "ok", "warn", "crit"
MAX_BODY = 256 * 1024  # an HTTP body is read at most this far for `body`/`regex`


@dataclass
class Sample:
    status: str
    detail: str = ""
    value: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == OK


def latency_status(seconds: float, limits: tuple[float, float] | None) -> str:
    if limits is None:
        return OK
    return CRIT if seconds >= limits[1] else WARN if seconds >= limits[0] else OK


def os_reason(e: BaseException) -> str:
    """A connection error in a few words (asyncio's own texts name the call, not why)."""
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def tcp_probe(host: str, port: int, *, latency: tuple[float, float] | None = None
                    ) -> Sample:
    t0 = time.monotonic()
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        return Sample(CRIT, f"tcp {host}:{port}: {os_reason(e)}")
    elapsed = time.monotonic() - t0
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    status = latency_status(elapsed, latency)
    return Sample(status, f"tcp {host}:{port} open in {fmt_ms(elapsed)}", elapsed)


async def http_probe(url: str, *, status: tuple[int, ...] = (), body: str | None = None,
                     regex: str | None = None, latency: tuple[float, float] | None = None,
                     verify: bool = True) -> Sample:
    """GET `url` (HTTP/1.1, TLS verified for https) and judge status, body and latency."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    t0 = time.monotonic()
    try:
        ctx = ssl.create_default_context() if https else None
        if ctx is not None and not verify:
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx,
                                                       server_hostname=host if https else None)
    except (OSError, ssl.SSLError) as e:
        return Sample(CRIT, f"GET {url}: {os_reason(e)}")
    try:
        netloc = parts.netloc.rsplit("@", 1)[-1]  # never send userinfo in the Host header
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: fleetdeck\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        first = head.split(b"\r\n", 1)[0].decode("latin-1")
        m = re.match(r"HTTP/\d(?:\.\d)? (\d{3})", first)
        if not m:
            return Sample(CRIT, f"GET {url}: not an HTTP answer: {first[:60]!r}")
        code = int(m.group(1))
        text = ""
        if body is not None or regex is not None:
            data = await _read_body(reader, head)
            text = data.decode("utf-8", "replace")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
        return Sample(CRIT, f"GET {url}: {type(e).__name__}: {e}")
    finally:
        writer.close()
    elapsed = time.monotonic() - t0
    ok_status = code in status if status else 200 <= code < 400
    if not ok_status:
        return Sample(CRIT, f"HTTP {code} from {url} in {fmt_ms(elapsed)}", elapsed)
    if body is not None and body not in text:
        return Sample(CRIT, f"HTTP {code}, body lacks {body!r}", elapsed)
    if regex is not None and not re.search(regex, text):
        return Sample(CRIT, f"HTTP {code}, body does not match /{regex}/", elapsed)
    return Sample(latency_status(elapsed, latency), f"HTTP {code} in {fmt_ms(elapsed)}",
                  elapsed)


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    headers = head.decode("latin-1").lower()
    m = re.search(r"\r\ncontent-length:\s*(\d+)", headers)
    if m:
        return await reader.readexactly(min(int(m.group(1)), MAX_BODY))
    if "transfer-encoding: chunked" in headers:
        out = b""
        while len(out) < MAX_BODY:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            out += await reader.readexactly(size)
            await reader.readline()
        return out
    return await reader.read(MAX_BODY)


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
        return Sample(CRIT, f"no process matches /{pattern}/", 0.0)
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
    """Nagios plugin convention: 0 ok, 1 warning, anything else critical."""
    return OK if code == 0 else WARN if code == 1 else CRIT
