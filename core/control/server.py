"""The daemon's control socket: `<state dir>/control.sock`, mode 0600, owner only.

Each connection's peer is identified by SO_PEERCRED (uid, pid) and refused unless it is
the daemon's own user. Requests call the engine API (core.api.METHODS, the one list),
their parameters checked against its signatures first (core/control/params.py); an
action's actor is the peer's user, never a name the client sends, and the engine writes
its audit row.

No client can grow the daemon or take it down (`Limits`): at most `clients` connections
at once; each may queue at most `queued` bytes of replies and events it has not read,
past which it is disconnected with a logged reason and its buffer freed at once (never a
reply dropped with the client kept); its requests are metered by a token bucket (past
it a `too_many_requests` reply, and a client that keeps sending regardless is
disconnected). A bad frame gets an error reply with a code and the connection goes on;
an error never carries Python's own text (an unexpected one is `internal`, its details
in the daemon's log).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import grp
import inspect
import logging
import os
import socket
import stat
import struct
import time
from dataclasses import dataclass
from typing import Any

from core.alerts.book import AlertError
from core.api import BY_NAME, Actor
from core.control.params import check_params
from core.control.protocol import (
    BAD_REQUEST,
    ENGINE_ERROR,
    FORBIDDEN,
    INTERNAL,
    MAX_FRAME,
    TOO_MANY_CLIENTS,
    TOO_MANY_REQUESTS,
    RequestError,
    decode_request,
    encode,
    error_reply,
    socket_path,
)
from core.durations import DurationError
from core.jobs.active import EngineError
from core.remote.inventory import TargetError

log = logging.getLogger("fleetdeck.control")

BACKLOG = 1024  # connections waiting to be accepted (a burst of CLI calls)
# refusals written for a person: their message goes back as it is, with their code
PERSON_ERRORS = (EngineError, AlertError, TargetError, DurationError)


@dataclass(frozen=True)
class Limits:
    """What one client may take of the daemon."""

    clients: int = 64  # connections at once
    queued: int = 8 << 20  # bytes written to a client and not yet read by it
    rate: float = 200.0  # requests a second, sustained, per connection
    burst: int = 400  # requests at once
    flood: int = 100  # requests refused in a row before the client is cut off


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", data)
    return pid, uid, gid


class ControlServer:
    def __init__(self, engine: Any, limits: Limits | None = None, *,
                 path: Any = None, only: frozenset[str] | None = None,
                 group: str | None = None) -> None:
        """`path`, `only`, `group`: a shared socket (the approvals socket) other users
        may connect to, which answers only the methods in `only`; its mode is 0660 with
        `group` as its group, or 0666 without one (each request is still authorized by
        the engine: an approval by the gate's list)."""
        self.engine = engine
        self.limits = limits or Limits()
        self.path = socket_path(engine.state_dir) if path is None else path
        self.only = only
        self.group = group
        self._server: asyncio.AbstractServer | None = None
        self.clients: set[_Client] = set()
        self.dropped = 0

    async def start(self) -> None:
        try:
            if self.only is not None and not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise OSError(f"{self.path} exists and is not a socket; not replaced")
            self.path.unlink()  # a dead daemon's socket (we hold the state lock)
        except FileNotFoundError:
            pass
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, str(self.path),
                                                           limit=MAX_FRAME, backlog=BACKLOG)
        finally:
            os.umask(old)
        mode = 0o600
        if self.only is not None:
            mode = 0o660 if self.group else 0o666
            if self.group:
                os.chown(self.path, -1, grp.getgrnam(self.group).gr_gid)
        os.chmod(self.path, mode)
        self.engine.bus.subscribe(self._on_event)
        log.info("control socket %s", self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for c in list(self.clients):
                c.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # ------------------------------------------------------------------ events ----
    def _on_event(self, event: Any) -> None:
        if not self.clients:
            return
        msg = None
        for c in list(self.clients):
            if c.kinds is None or (c.kinds and event.kind not in c.kinds):
                continue  # not subscribed, or not to this kind
            if msg is None:
                msg = encode(event.to_message())
            c.send(msg)

    # ------------------------------------------------------------------ clients ---
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        pid, uid, _gid = peer_credentials(sock)
        if uid != os.getuid() and self.only is None:
            log.warning("control: refused a connection from uid %d (pid %d)", uid, pid)
            await _refuse(writer, FORBIDDEN, "this fleetdeck belongs to another user")
            return
        if len(self.clients) >= self.limits.clients:
            log.warning("control: refused pid %d: %d clients connected already", pid,
                        len(self.clients))
            await _refuse(writer, TOO_MANY_CLIENTS, f"the daemon serves at most "
                          f"{self.limits.clients} connections at once; try again")
            return
        client = _Client(self, writer, pid, uid)
        self.clients.add(client)
        try:
            while not client.closed:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return  # the client went away
                except asyncio.LimitOverrunError:
                    if not await _skip_frame(reader):
                        return
                    if client.admit(None):
                        client.send(error_reply(None, BAD_REQUEST, f"frame larger than "
                                                f"{MAX_FRAME} bytes; dropped"))
                    continue
                await self._handle(client, line)
        except (ConnectionError, OSError):
            return
        finally:
            self.clients.discard(client)
            client.close()
            if client.peak > 1 << 20:
                _trim()  # its megabytes of buffer, back to the system

    async def _handle(self, client: _Client, line: bytes) -> None:
        rid: Any = None
        method = "?"
        try:
            if not client.admit(line):
                return
            rid, method, params = decode_request(line)
            kwargs = check_params(method, params)
            reply = encode({"id": rid, "result": await self._call(client, method, kwargs)})
        except RequestError as e:
            reply = error_reply(rid if rid is not None else e.rid, e.code, str(e))
        except PERSON_ERRORS as e:
            reply = error_reply(rid, getattr(e, "code", ENGINE_ERROR), _one_line(e),
                                getattr(e, "details", None))
        except Exception:  # a fault of ours: the client learns that much, the log the rest
            log.exception("control: %s from pid %d failed", method, client.pid)
            reply = error_reply(rid, INTERNAL, "internal error; the daemon's log has the "
                                               "details")
        client.send(reply)

    async def _call(self, client: _Client, method: str, kwargs: dict[str, Any]) -> Any:
        """A request is a method of the engine API (core.api.METHODS), or one of the
        socket's own (subscribe, ping). An action's actor is the peer, from its
        credentials, whatever the client says; the engine audits it."""
        if self.only is not None and method not in self.only:
            raise RequestError(FORBIDDEN, f"{method} is not answered on this socket "
                                          f"(it answers {', '.join(sorted(self.only))})")
        if method == "subscribe":  # {"kinds": [...]} or nothing for every event
            client.kinds = set(kwargs.get("kinds") or ())
            return {"subscribed": sorted(client.kinds) if client.kinds else "all"}
        if method == "ping":
            path = self.engine.config.path  # the config file in force (None: built-in)
            return {"pid": os.getpid(), "state_dir": str(self.engine.state_dir),
                    "config": str(path) if path is not None else None}
        if BY_NAME[method].is_action:
            kwargs["actor"] = Actor.peer(client.uid, client.pid)
        result = getattr(self.engine, method)(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


def _one_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:1000] if text else "refused"


async def _refuse(writer: asyncio.StreamWriter, code: str, message: str) -> None:
    with contextlib.suppress(Exception):
        writer.write(error_reply(None, code, message))
        await asyncio.wait_for(writer.drain(), 5.0)
    writer.close()


def _trim() -> None:
    """Hand freed heap pages back to the system: glibc keeps them otherwise, and a
    dropped client's megabytes would stay in the daemon's RSS after it left."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


async def _skip_frame(reader: asyncio.StreamReader) -> bool:
    """Read and drop an oversized frame up to its newline, a chunk at a time (memory
    stays bounded); False if the client went away first."""
    while True:
        chunk = await reader.read(MAX_FRAME)
        if not chunk:
            return False
        cut = chunk.find(b"\n")
        if cut >= 0:
            rest = chunk[cut + 1:]
            if rest:
                _unread(reader, rest)
            return True


def _unread(reader: asyncio.StreamReader, data: bytes) -> None:
    """Put back what followed the dropped frame (the next request)."""
    reader._buffer[:0] = data  # noqa: SLF001 - StreamReader has no public unread


class _Client:
    """One connection: what it subscribed to, its request meter, its unread bytes."""

    def __init__(self, server: ControlServer, writer: asyncio.StreamWriter, pid: int,
                 uid: int) -> None:
        self.limits = server.limits
        self.server = server
        self.writer = writer
        self.transport = writer.transport
        self.pid = pid
        self.uid = uid
        self.kinds: set[str] | None = None  # None: not subscribed; empty: every event
        self.tokens = float(self.limits.burst)
        self.metered = time.monotonic()
        self.refused = 0
        self.peak = 0  # the most bytes it ever left unread
        self.closed = False

    def admit(self, line: bytes | None) -> bool:
        """Whether a request may be served now (a token bucket); if not, it gets a
        too_many_requests reply, and a client that keeps on is cut off."""
        now = time.monotonic()
        self.tokens = min(float(self.limits.burst),
                          self.tokens + (now - self.metered) * self.limits.rate)
        self.metered = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.refused = 0
            return True
        self.refused += 1
        if self.refused > self.limits.flood:
            self.drop(f"it sent {self.refused} requests in a row past its rate "
                      f"({self.limits.rate:g}/s)")
            return False
        rid = None
        with contextlib.suppress(RequestError):
            rid = decode_request(line)[0] if line is not None else None
        self.send(error_reply(rid, TOO_MANY_REQUESTS, f"more than {self.limits.rate:g} "
                              "requests a second; slow down"))
        return False

    def send(self, data: bytes) -> None:
        """Written at once to the transport (whose buffer is what the client has not
        read yet); over the limit the client is dropped."""
        if self.closed:
            return
        self.transport.write(data)
        queued = self.transport.get_write_buffer_size()
        self.peak = max(self.peak, queued)
        if queued > self.limits.queued:
            self.drop(f"it left {queued} bytes of replies and events unread "
                      f"(at most {self.limits.queued})")

    def drop(self, reason: str) -> None:
        if self.closed:
            return
        self.server.dropped += 1
        log.warning("control: dropped client pid %s: %s", self.pid, reason)
        self.close(abort=True)

    def close(self, abort: bool = False) -> None:
        """Close; ``abort``: at once, its unsent bytes freed rather than flushed."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            if abort:
                self.transport.abort()
            else:
                self.writer.close()
