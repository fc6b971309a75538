"""The daemon's control socket: `<state dir>/control.sock`, mode 0600, owner only.

Each connection's peer is identified by SO_PEERCRED (uid, pid) and refused unless it is
the daemon's own user. Requests call the engine API (core.api.METHODS, the one list);
an action's actor is the peer's user, never a name the client sends, and the engine
writes its audit row.
A bad or oversized frame gets an error reply and the connection goes on (an oversized
one is then closed: the rest of it cannot be trusted); the daemon never goes down for
a client. Events go out through a bounded queue per client: one that does not read is
dropped, it cannot grow the daemon's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import struct
from pathlib import Path
from typing import Any

from core.api import BY_NAME, Actor
from core.control.protocol import MAX_FRAME, SOCKET_NAME, ProtocolError, decode_request, encode

log = logging.getLogger("fleetdeck.control")

CLIENT_QUEUE = 10_000  # events buffered per client before it is dropped


def socket_path(state_dir: Path) -> Path:
    return Path(state_dir) / SOCKET_NAME


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", data)
    return pid, uid, gid


class ControlServer:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.path = socket_path(engine.state_dir)
        self._server: asyncio.AbstractServer | None = None
        self.clients: set[_Client] = set()
        self.dropped = 0

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a dead daemon's socket (we hold the state lock)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, str(self.path),
                                                           limit=MAX_FRAME)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
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
            if not c.send(msg):
                self.dropped += 1
                log.warning("control: dropped client pid %s: it read no events (%d queued)",
                            c.pid, CLIENT_QUEUE)
                c.close()

    # ------------------------------------------------------------------ clients ---
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        pid, uid, _gid = peer_credentials(sock)
        if uid != os.getuid():
            log.warning("control: refused a connection from uid %d (pid %d)", uid, pid)
            with contextlib.suppress(Exception):
                writer.write(encode({"error": "this fleetdeck belongs to another user"}))
                await writer.drain()
            writer.close()
            return
        client = _Client(writer, pid, uid)
        self.clients.add(client)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return  # the client went away
                except asyncio.LimitOverrunError:
                    if not await _skip_frame(reader):
                        return
                    client.send(encode({"error": f"frame larger than {MAX_FRAME} bytes; "
                                                 "dropped"}))
                    continue
                await self._handle(client, line)
        except (ConnectionError, OSError):
            return
        finally:
            self.clients.discard(client)
            client.close()

    async def _handle(self, client: _Client, line: bytes) -> None:
        rid: Any = None
        try:
            rid, method, params = decode_request(line)
            result = await self._call(client, method, params)
            client.send(encode({"id": rid, "result": result}))
        except ProtocolError as e:
            client.send(encode({"id": rid, "error": str(e)}))
        except Exception as e:  # an engine refusal, a wrong argument: one line back
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            client.send(encode({"id": rid, "error": msg}))

    async def _call(self, client: _Client, method: str, params: dict[str, Any]) -> Any:
        """A request is a method of the engine API (core.api.METHODS), or one of the
        socket's own (subscribe, ping). An action's actor is the peer, from its
        credentials, whatever the client says; the engine audits it."""
        if method == "subscribe":  # {"kinds": [...]} or nothing for every event
            kinds = params.get("kinds")
            client.kinds = {str(k) for k in kinds} if isinstance(kinds, list) else set()
            return {"subscribed": sorted(client.kinds) if client.kinds else "all"}
        if method == "ping":
            path = self.engine.config.path  # the config file in force (None: built-in)
            return {"pid": os.getpid(), "state_dir": str(self.engine.state_dir),
                    "config": str(path) if path is not None else None}
        spec = BY_NAME.get(method)
        if spec is None:
            raise ProtocolError(f"unknown method {method!r}")
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise ProtocolError(f"{method}: unknown parameter {unknown[0]!r}")
        kwargs = dict(params)
        if spec.is_action:
            kwargs["actor"] = Actor.peer(client.uid, client.pid)
        result = getattr(self.engine, method)(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


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
    def __init__(self, writer: asyncio.StreamWriter, pid: int, uid: int) -> None:
        self.writer = writer
        self.pid = pid
        self.uid = uid
        self.kinds: set[str] | None = None  # None: not subscribed; empty: every event
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(CLIENT_QUEUE)
        self.task = asyncio.ensure_future(self._pump())
        self.closed = False

    def send(self, data: bytes) -> bool:
        if self.closed:
            return True
        try:
            self.queue.put_nowait(data)
            return True
        except asyncio.QueueFull:
            return False

    async def _pump(self) -> None:
        try:
            while True:
                data = await self.queue.get()
                self.writer.write(data)
                await self.writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.task.cancel()
        with contextlib.suppress(Exception):
            self.writer.close()
