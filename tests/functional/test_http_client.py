"""The HTTP client of probes and webhooks (core/httpclient.py) against real servers on
127.0.0.1 that misbehave on purpose: endless headers, a body dripping forever, broken
chunking, an endless body, an answer that is not HTTP, redirects and a redirect loop, a
self-signed TLS certificate, a proxy named by the environment, and a connection kept
alive between probes. Each failure must be one line a person reads: the URL and why,
never an exception's class name."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.alerts.config import NotifierConfig
from core.alerts.notifiers import DeliveryError, WebhookNotifier, make_notifiers
from core.health.config import CheckSpec
from core.health.probes import DOWN, MAX_BODY, OK, Sample, http_probe
from core.health.sampling import Sampler
from core.httpclient import MAX_REDIRECTS, SharedClient
from core.remote.inventory import LOCAL_HOST
from tests.helpers import until_async

HANG = 60.0  # a guard against a hang only: no test waits this long when it passes


@dataclass
class Server:
    """A server on 127.0.0.1: its port, the connections it accepted, the request heads
    it read, and how many of its connections have ended."""

    port: int = 0
    accepts: int = 0
    heads: list[str] = field(default_factory=list)
    closed: int = 0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def head(self, reader: asyncio.StreamReader) -> str:
        """The next request's head (request line and headers), recorded."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.heads.append(head)
        return head

    async def post(self, reader: asyncio.StreamReader) -> str:
        """The next POST's head, its body read and dropped."""
        head = await self.head(reader)
        length = re.search(r"(?im)^content-length: (\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        return head

    def paths(self) -> list[str]:
        return [h.split(" ", 2)[1] for h in self.heads]


Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
Handler = Callable[[Reader, Writer, Server], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.accepts += 1
        task = asyncio.current_task()
        assert task is not None
        server.tasks.add(task)
        try:
            await handler(reader, writer, server)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away: what a misbehaving server sees
        finally:
            server.closed += 1
            writer.close()

    srv = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
    server.port = srv.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        srv.close()
        for task in server.tasks:  # handlers still writing to a client that is gone
            task.cancel()


def answer(code: int, body: bytes = b"", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {code} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def one_line(sample: Sample, url: str) -> str:
    """The sample's reason, checked to be one plain line naming the URL."""
    detail = sample.detail
    assert sample.status == DOWN, detail
    assert detail.startswith(f"GET {url}: "), detail
    assert "\n" not in detail and "Traceback" not in detail
    assert not re.search(r"(Error|Exception|Timeout)\b", detail), detail  # a class name
    return detail.removeprefix(f"GET {url}: ")


async def probe(url: str, **kw: Any) -> Sample:
    return await asyncio.wait_for(http_probe(url, **kw), HANG)


# ------------------------------------------------------------- hostile answers ---
async def test_endless_headers_hit_the_header_limit() -> None:
    async def endless(reader: Reader, writer: Writer, srv: Server) -> None:
        await srv.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:  # never a blank line: the headers never end
            writer.write(b"X-More: " + b"h" * 1000 + b"\r\n")
            await writer.drain()

    async with serve(endless) as srv:
        url = f"http://127.0.0.1:{srv.port}/"
        sample = await probe(url, timeout=HANG)  # the limit ends it, not the clock
    assert one_line(sample, url) == "response headers too large"


async def test_a_dripping_body_ends_at_one_overall_deadline() -> None:
    async def drip(reader: Reader, writer: Writer, srv: Server) -> None:
        await srv.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        while True:  # a byte every 50 ms: no single read ever waits long
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    async with serve(drip) as srv:
        url = f"http://127.0.0.1:{srv.port}/"
        sample = await probe(url, body="ready", timeout=2.0)
        assert one_line(sample, url) == "timed out after 2s"
        # no body to judge: the status is the answer, a slow rest of the body is not
        status_only = await probe(url, timeout=2.0)
    assert status_only.status == OK and status_only.detail.startswith("HTTP 200 in ")


async def test_bad_chunked_encoding_is_a_malformed_response() -> None:
    async def bad_chunks(reader: Reader, writer: Writer, srv: Server) -> None:
        await srv.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\nnot-hex\r\nworld\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()  # held open: the framing, not a close, is what fails

    async with serve(bad_chunks) as srv:
        url = f"http://127.0.0.1:{srv.port}/"
        sample = await probe(url, body="world", timeout=HANG)
    assert one_line(sample, url) == "malformed response (bad chunked encoding)"


async def test_an_endless_body_is_read_only_up_to_max_body() -> None:
    sent = [0]

    async def endless(reader: Reader, writer: Writer, srv: Server) -> None:
        head = await srv.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        first = b"ok-marker" if "/early" in head else b""
        block = b"a" * 65536
        while True:  # a body without end: the probe must stop reading, not time out
            data = first + block
            first = b""
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            sent[0] += len(data)
            await writer.drain()

    async with serve(endless) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        early = await probe(f"{base}/early", body="ok-marker", timeout=HANG)
        assert early.status == OK and early.detail.startswith("HTTP 200 in "), early.detail
        sample = await probe(f"{base}/late", body="never-there", timeout=HANG)
    assert sample.status == DOWN
    assert sample.detail == "HTTP 200, body lacks 'never-there'"
    assert sent[0] >= MAX_BODY  # it read that far, and stopped: the body never ends


@pytest.mark.parametrize("reply, reason", [
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "malformed response (not HTTP)"),
    (b"", "the server closed the connection without an answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut", "the server closed the connection "
                                                          "mid-body"),
])
async def test_an_answer_that_is_not_http_or_is_cut_short(reply: bytes, reason: str) -> None:
    async def garbage(reader: Reader, writer: Writer, srv: Server) -> None:
        await srv.head(reader)
        writer.write(reply)
        await writer.drain()

    async with serve(garbage) as srv:
        url = f"http://127.0.0.1:{srv.port}/"
        sample = await probe(url, regex="c.t", timeout=HANG)
    assert one_line(sample, url) == reason


async def test_a_refused_connection_names_the_url() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/health"
    assert one_line(await probe(url), url) == "connection refused"


async def test_a_password_in_the_url_is_masked_in_every_message() -> None:
    port = free_port()
    sample = await probe(f"http://ops:pw-9f3e1a@127.0.0.1:{port}/health")
    assert "pw-9f3e1a" not in sample.detail
    assert sample.detail.startswith(f"GET http://ops:***@127.0.0.1:{port}/health: ")


# ------------------------------------------------------------------- redirects ---
async def redirector(reader: Reader, writer: Writer, srv: Server) -> None:
    while True:  # keep-alive: several requests on one connection
        head = await srv.head(reader)
        path = head.split(" ", 2)[1]
        if path == "/moved":
            writer.write(answer(301, b"see /landed", "Location: /landed\r\n"))
        elif path == "/loop":
            writer.write(answer(302, b"", "Location: /loop\r\n"))
        else:
            writer.write(answer(200, b"landed here"))
        await writer.drain()


async def test_a_redirect_is_followed_and_a_loop_is_cut() -> None:
    async with serve(redirector) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        followed = await probe(f"{base}/moved", body="landed", status=(200,))
        assert followed.status == OK, followed.detail
        assert re.fullmatch(r"HTTP 200 in \d+ ms \(after 1 redirect\)", followed.detail)
        assert srv.paths() == ["/moved", "/landed"]

        srv.heads.clear()
        looped = await probe(f"{base}/loop")
        assert one_line(looped, f"{base}/loop") == f"more than {MAX_REDIRECTS} redirects"
        assert len(srv.heads) == MAX_REDIRECTS + 1  # the first request and five follows

        srv.heads.clear()  # follow_redirects = false: the redirect itself is judged
        kept = await probe(f"{base}/moved", follow_redirects=False, status=(301,))
        assert kept.status == OK and kept.detail.startswith("HTTP 301 in "), kept.detail
        refused = await probe(f"{base}/moved", follow_redirects=False, status=(200,))
        assert refused.detail.startswith(f"HTTP 301 from {base}/moved in "), refused.detail
        assert srv.paths() == ["/moved", "/moved"]


def test_follow_redirects_is_a_declared_check_key() -> None:
    from core.fleetconfig import parse_config_text

    cfg = parse_config_text("""
[checks.plain]
kind = "http"
url = "http://127.0.0.1:1/"

[checks.kept]
kind = "http"
url = "http://127.0.0.1:1/"
follow_redirects = false
""", "t.toml")
    assert cfg.checks["plain"].follow_redirects is True
    assert cfg.checks["kept"].follow_redirects is False
    from core.fleetconfig import config_schema

    schema = config_schema()["properties"]["checks"]["additionalProperties"]
    assert schema["properties"]["follow_redirects"]["type"] == "boolean"


# ------------------------------------------------------------------------- TLS ---
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (cryptography, asyncssh's)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetdeck test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_is_verified_unless_verify_is_off(tmp_path: Path, monkeypatch) -> None:
    cert, key = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)

    async def hello(reader: Reader, writer: Writer, srv: Server) -> None:
        await srv.head(reader)
        writer.write(answer(200, b"secure hello"))
        await writer.drain()

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with serve(hello, tls) as srv:
        url = f"https://127.0.0.1:{srv.port}/"
        refused = await probe(url, body="hello")
        # OpenSSL's words: "self-signed certificate" (3.x), "self signed ..." (1.1)
        assert re.fullmatch(r"TLS certificate verify failed: self[- ]signed certificate",
                            one_line(refused, url))
        assert srv.heads == []  # not a byte of the request went to an unverified server
        unverified = await probe(url, body="hello", verify=False)
        assert unverified.status == OK and unverified.detail.startswith("HTTP 200 in ")
        # the system's trust store decides (here: SSL_CERT_FILE names this certificate)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = await probe(url, body="hello")
        assert trusted.status == OK, trusted.detail


# ----------------------------------------------------------------------- proxy ---
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clear_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def test_the_proxy_from_the_environment_is_used(monkeypatch) -> None:
    async def proxy(reader: Reader, writer: Writer, srv: Server) -> None:
        await srv.head(reader)
        writer.write(answer(200, b"via the proxy"))
        await writer.drain()

    target = f"http://127.0.0.1:{free_port()}/health"  # nothing listens there
    clear_proxy_env(monkeypatch)
    async with serve(proxy) as srv:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{srv.port}")
        # httpx has no built-in bypass for loopback: only NO_PROXY exempts a host
        via = await probe(target, body="via the proxy")
        assert via.status == OK, via.detail
        assert srv.heads[0].startswith(f"GET {target} HTTP/1.1\r\n")  # absolute form
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = await probe(target)
        assert one_line(direct, target) == "connection refused"
        assert len(srv.heads) == 1


# ------------------------------------------------------------------ keep-alive ---
async def counter(reader: Reader, writer: Writer, srv: Server) -> None:
    while True:
        await srv.head(reader)
        writer.write(answer(200, b"fine"))
        await writer.drain()


async def test_probes_through_one_client_reuse_one_connection() -> None:
    async with serve(counter) as srv:
        url = f"http://127.0.0.1:{srv.port}/"
        shared = SharedClient()
        try:
            for _ in range(3):
                sample = await probe(url, body="fine", client=shared.get())
                assert sample.status == OK, sample.detail
            assert (srv.accepts, len(srv.heads)) == (1, 3)
        finally:
            await shared.aclose()
        for _ in range(2):  # on their own: a client each, a connection each
            assert (await probe(url)).status == OK
        assert srv.accepts == 3


async def test_the_sampler_keeps_its_connection_until_it_is_closed() -> None:
    async with serve(counter) as srv:
        spec = CheckSpec("web", "http", url=f"http://127.0.0.1:{srv.port}/x", timeout=HANG)
        sampler = Sampler(engine=None)
        for _ in range(2):
            sample = await sampler.sample(spec, LOCAL_HOST, None)  # type: ignore[arg-type]
            assert sample.status == OK, sample.detail
        assert (srv.accepts, srv.closed) == (1, 0)
        await sampler.aclose()  # the owner's stop
        await until_async(lambda: srv.closed == 1, "the kept connection to be closed")


# -------------------------------------------------------------------- webhooks ---
def hook(url: str, **kw: Any) -> NotifierConfig:
    return NotifierConfig("hook", "webhook", url=url, **kw)


ENTRY = {"event": "firing", "key": "fleetdeck-abc-1-1-hook", "notifier": "hook",
         "alert": {"id": 1, "kind": "check", "source": "web", "target": "local",
                   "state": "firing", "severity": "crit", "detail": "HTTP 500",
                   "opened_at": 1000.0}}


async def test_a_webhook_redirect_is_not_followed_nor_named(monkeypatch) -> None:
    token = "hook-url-secret-93x"

    async def moved(reader: Reader, writer: Writer, srv: Server) -> None:
        while True:
            await srv.post(reader)
            writer.write(answer(301, b"", f"Location: http://127.0.0.1:{srv.port}/new/{token}"
                                          "\r\n"))
            await writer.drain()

    monkeypatch.setenv("FD_HOOK_TOKEN", token)
    async with serve(moved) as srv:
        notifier = WebhookNotifier(hook(f"http://127.0.0.1:{srv.port}/h/${{FD_HOOK_TOKEN}}"))
        with pytest.raises(DeliveryError) as err:
            await asyncio.wait_for(notifier.send(ENTRY), HANG)
        assert str(err.value) == "HTTP 301 (redirect not followed)"
        assert len(srv.heads) == 1  # the Location was not visited
        assert srv.heads[0].startswith(f"POST /h/{token} HTTP/1.1\r\n")
        assert re.search(rf"(?im)^idempotency-key: {ENTRY['key']}\r$", srv.heads[0])


async def test_webhook_failures_are_short_and_keep_the_url_out(monkeypatch) -> None:
    async def silent(reader: Reader, writer: Writer, srv: Server) -> None:
        await srv.head(reader)
        await reader.read()  # never answers

    token = "path-secret-41q"
    async with serve(silent) as srv:
        slow = WebhookNotifier(hook(f"http://127.0.0.1:{srv.port}/{token}", timeout=0.5))
        with pytest.raises(DeliveryError) as err:
            await asyncio.wait_for(slow.send(ENTRY), HANG)
        assert str(err.value) == "webhook timed out after 0.5s"
    gone = WebhookNotifier(hook(f"http://127.0.0.1:{free_port()}/{token}"))
    with pytest.raises(DeliveryError) as err:
        await asyncio.wait_for(gone.send(ENTRY), HANG)
    assert str(err.value) == "webhook failed: connection refused"


async def test_webhooks_share_one_kept_alive_connection() -> None:
    async def accept(reader: Reader, writer: Writer, srv: Server) -> None:
        while True:
            await srv.post(reader)
            writer.write(answer(204))
            await writer.drain()

    async with serve(accept) as srv:
        http = SharedClient()
        url = f"http://127.0.0.1:{srv.port}/hook"
        notifiers = make_notifiers({"a": hook(url), "b": hook(url)}, http)
        for name in ("a", "b", "a"):
            await asyncio.wait_for(notifiers[name].send(ENTRY), HANG)
        assert (srv.accepts, len(srv.heads), srv.closed) == (1, 3, 0)
        await http.aclose()
        await until_async(lambda: srv.closed == 1, "the kept connection to be closed")


async def test_the_monitor_and_the_alert_manager_close_their_clients_at_stop(
        start_engine) -> None:
    from core.fleetconfig import parse_config_text
    from core.services import attach_services

    async def failing(reader: Reader, writer: Writer, srv: Server) -> None:
        while True:
            await srv.head(reader)
            writer.write(answer(500, b"down"))
            await writer.drain()

    async def receiver(reader: Reader, writer: Writer, srv: Server) -> None:
        while True:
            await srv.post(reader)
            writer.write(answer(200))
            await writer.drain()

    async with serve(failing) as web, serve(receiver) as hook_srv:
        cfg = parse_config_text(f"""
[checks.web]
kind = "http"
url = "http://127.0.0.1:{web.port}/"
interval = "200ms"
timeout = "30s"
fail = [1, 1]

[notifiers.hook]
kind = "webhook"
url = "http://127.0.0.1:{hook_srv.port}/hook"
""", "test.toml")
        engine, _ = await start_engine(cfg, scheduling=False, before_start=attach_services)
        await until_async(lambda: len(web.heads) >= 3 and hook_srv.heads,
                          "three samples and a notification")
        assert (web.accepts, web.closed, hook_srv.accepts, hook_srv.closed) == (1, 0, 1, 0)
        await engine.stop()
        await until_async(lambda: (web.closed, hook_srv.closed) == (1, 1),
                          "both kept connections to be closed by the engine's stop")
