"""The one HTTP client of fleetdeck (httpx) for HTTP probes and webhooks: TLS verified
against the system's trust store, proxies from the environment (HTTP_PROXY, HTTPS_PROXY,
NO_PROXY), keep-alive, and h11's framing limits on what a server sends back.

Redirects are never followed by the client itself: httpx reads a redirect's whole body
into memory before the next hop, so a caller that follows them (the HTTP probe) does so
hop by hop with ``next_hop``, reading each body as far as it reads any (``read_at_most``).
Bodies are read raw (we ask for ``identity``), never decompressed: a small gzip answer
must not grow without bound. No cookie is kept: every request is a first visit (a load
balancer's sticky cookie would pin every probe to one backend).

Every failure becomes one short line (``reason``) without the exception's class name,
and without the URL, which the caller adds or leaves out (a webhook's may hold a secret).
httpx itself is imported at first use: it costs about 0.1 s, and the engine starts
without a request to make.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import httpx

_E = TypeVar("_E", bound=BaseException)

MAX_REDIRECTS = 5
KEEPALIVE_EXPIRY = 60.0  # seconds an idle connection is kept: longer than a 30 s interval
HEADERS = {"User-Agent": "fleetdeck", "Accept": "*/*", "Accept-Encoding": "identity"}


def make_client(*, verify: bool = True) -> httpx.AsyncClient:
    """A client as every fleetdeck request wants it (see the module's docstring).

    No cap on connections: a fleet's checks fire together at the aligned tick, and a
    pool limit would make some wait and fail as timeouts."""
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    import httpx

    if verify:
        tls = ssl.create_default_context()  # the system's CAs (and SSL_CERT_FILE/_DIR)
    else:
        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    jar = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(
        verify=tls, trust_env=True, follow_redirects=False, headers=HEADERS, cookies=jar,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=100,
                            keepalive_expiry=KEEPALIVE_EXPIRY))


class SharedClient:
    """The keep-alive client of one owner (the health sampler, the alert manager), one per
    TLS mode, made at first use; the owner closes it when it stops."""

    def __init__(self) -> None:
        self._clients: dict[bool, httpx.AsyncClient] = {}

    def get(self, verify: bool = True) -> httpx.AsyncClient:
        client = self._clients.get(verify)
        if client is None or client.is_closed:
            client = self._clients[verify] = make_client(verify=verify)
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


@asynccontextmanager
async def client_for(client: httpx.AsyncClient | None, *,
                     verify: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """`client`, or a short-lived one when a caller has none (a probe called on its own)."""
    if client is not None:
        yield client
        return
    async with make_client(verify=verify) as own:
        yield own


def next_hop(response: httpx.Response) -> httpx.Request | None:
    """The request a redirect points to (httpx builds it: method, auth, cookies), or None."""
    return response.next_request if response.has_redirect_location else None


async def read_at_most(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of the body as sent, streamed; the rest is never read (the
    connection is then dropped rather than reused)."""
    out = bytearray()
    async for chunk in response.aiter_raw():
        out += chunk
        if len(out) >= limit:
            break
    return bytes(out[:limit])


def reason(e: BaseException) -> str:
    """A failed exchange in a few words a person can act on, never a class name. The
    caller names the URL (or not) and says how long a timeout was."""
    import httpx

    if isinstance(e, TimeoutError | httpx.TimeoutException):
        return "timed out"
    cert = _cause(e, ssl.SSLCertVerificationError)
    if cert is not None:
        return f"TLS certificate verify failed: {cert.verify_message or cert.reason}"
    tls = _cause(e, ssl.SSLError)
    if tls is not None:
        words = (tls.reason or "error").replace("_", " ").lower()
        return f"TLS handshake failed: {words}"
    if isinstance(e, httpx.RemoteProtocolError):
        return _protocol_reason(str(e))
    if isinstance(e, httpx.ProxyError):
        return "the proxy refused the request"
    if isinstance(e, httpx.UnsupportedProtocol):
        return "not a valid http(s) URL"
    if isinstance(e, httpx.InvalidURL):
        return "not a valid URL"
    if isinstance(e, httpx.LocalProtocolError | ValueError | TypeError):
        return "the request cannot be made from this URL and headers"
    os_error = _os_error(e)
    if os_error is not None:
        return os_reason(os_error)
    return "the request failed"


def os_reason(e: OSError) -> str:
    """A connection error in a few words (the library's texts name the call, not why)."""
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset by the server"
    text = e.strerror or str(e) or "connection failed"
    return text[0].lower() + text[1:]


_PROTOCOL = (  # h11's words for what the server sent -> ours
    ("receive buffer too long", "response headers too large"),
    ("illegal status line", "malformed response (not HTTP)"),
    ("chunk", "malformed response (bad chunked encoding)"),
    ("without sending a response", "the server closed the connection without an answer"),
    ("without sending complete message body", "the server closed the connection mid-body"),
)


def _protocol_reason(text: str) -> str:
    low = text.lower()
    for needle, words in _PROTOCOL:
        if needle in low:
            return words
    return "malformed response"


def _chain(e: BaseException) -> list[BaseException]:
    """e and its causes, outermost first (httpx wraps httpcore wraps anyio wraps the OS's);
    an exception group (anyio's "all connection attempts failed") by its members."""
    out: list[BaseException] = []
    todo: list[BaseException] = [e]
    while todo and len(out) < 32:
        cur = todo.pop(0)
        if any(cur is seen for seen in out):
            continue
        out.append(cur)
        if isinstance(cur, BaseExceptionGroup):
            todo.extend(cur.exceptions)
        nxt = cur.__cause__ or cur.__context__
        if nxt is not None:
            todo.append(nxt)
    return out


def _cause(e: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of `kind` in e's chain."""
    return next((c for c in _chain(e) if isinstance(c, kind)), None)


def _os_error(e: BaseException) -> OSError | None:
    """The OS's own error in e's chain: the innermost one with an errno, if any."""
    found = [c for c in _chain(e) if isinstance(c, OSError)]
    with_errno = [c for c in found if c.errno is not None]
    return (with_errno or found or [None])[-1]


def shown_url(url: str) -> str:
    """A URL as messages show it: a password in it masked (`user:***@host`), since a
    probe's detail goes to history, events, alerts and the screen."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<the url>"
