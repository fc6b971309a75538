"""The daemon's control socket: `<state dir>/control.sock`, mode 0600, owner only.

Each connection's peer is identified by SO_PEERCRED (uid, pid) and refused unless it is
the daemon's own user. Requests call a whitelist of the Engine's public methods; actions
are written to the audit trail with the peer's user, never a name the client sends.
A bad or oversized frame gets an error reply and the connection goes on (an oversized
one is then closed: the rest of it cannot be trusted); the daemon never goes down for
a client. Events go out through a bounded queue per client: one that does not read is
dropped, it cannot grow the daemon's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from pathlib import Path
from typing import Any

from core.audit import AuditLog
from core.control.protocol import MAX_FRAME, SOCKET_NAME, ProtocolError, decode_request, encode

log = logging.getLogger("fleetdeck.control")

CLIENT_QUEUE = 10_000  # events buffered per client before it is dropped
READS = ("ping", "list_jobs", "get_job", "list_runs", "get_run", "queue", "audit",
         "list_alerts", "health_hosts", "health_snapshot", "log_sources", "log_recent",
         "log_stats", "fanout_list", "fanout_get", "fanout_output", "fanout_gather",
         "fanout_live")
ACTIONS = ("run_job", "cancel_run", "pause_job", "resume_job", "reload", "ack_alert",
           "silence", "fanout_start", "fanout_rerun", "fanout_cancel_host", "fanout_trust",
           "fanout_cancel")


def socket_path(state_dir: Path) -> Path:
    return Path(state_dir) / SOCKET_NAME


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", data)
    return pid, uid, gid


class ControlServer:
    def __init__(self, engine: Any, *, reload: Any = None) -> None:
        self.engine = engine
        self.path = socket_path(engine.state_dir)
        self.audit = AuditLog(engine.state_dir)
        self.reload = reload  # an async callable: the daemon's config reload
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
        e = self.engine
        via = f"socket pid {client.pid}"
        if method == "subscribe":  # {"kinds": [...]} or nothing for every event
            kinds = params.get("kinds")
            client.kinds = {str(k) for k in kinds} if isinstance(kinds, list) else set()
            return {"subscribed": sorted(client.kinds) if client.kinds else "all"}
        if method not in READS and method not in ACTIONS:
            raise ProtocolError(f"unknown method {method!r}")
        if method == "ping":
            return {"pid": os.getpid(), "state_dir": str(e.state_dir)}
        if method == "audit":
            return self.audit.read(since=params.get("since"), limit=params.get("limit"))
        if method == "list_alerts":
            return e.alerts.list_alerts(include_resolved=bool(params.get("all"))) \
                if e.alerts is not None else []
        if method.startswith(("health_", "log_", "fanout_")) and method in READS:
            return _service_read(e, method, params)
        if method in READS:
            return getattr(e, method)(**params)
        # actions: who is the peer, whatever the client says
        who = f"{_user(client.uid)}"
        if method == "reload":
            if self.reload is None:
                raise ProtocolError("this daemon cannot reload")
            result = await self.reload(via)
            return result
        if method == "run_job":
            result = await e.run_job(params["name"], requested_by=who)
            self.audit.record("run", [params["name"]], uid=client.uid, via=via,
                              detail=", ".join(f"#{r['id']}" for r in result))
            return result
        if method == "cancel_run":
            result = await e.cancel_run(int(params["run_id"]), requested_by=who)
            self.audit.record("cancel", [f"#{params['run_id']}"], uid=client.uid, via=via)
            return result
        if method in ("pause_job", "resume_job"):
            result = await getattr(e, method)(params["name"], requested_by=who)
            self.audit.record(method.removesuffix("_job"), [params["name"]], uid=client.uid,
                              via=via)
            return result
        if method == "ack_alert":
            result = await e.alerts.ack_alert(int(params["alert_id"]), requested_by=who)
            self.audit.record("ack", [f"alert #{params['alert_id']}"], uid=client.uid, via=via)
            return result
        if method == "silence":
            result = await e.alerts.silence(params["target"], params["duration"],
                                            requested_by=who)
            self.audit.record("silence", [params["target"]], uid=client.uid, via=via,
                              detail=str(params["duration"]))
            return result
        if method.startswith("fanout_"):
            return self._fanout_action(e, method, params, client, via)
        raise ProtocolError(f"unknown method {method!r}")

    def _fanout_action(self, e: Any, method: str, params: dict[str, Any], client: _Client,
                       via: str) -> Any:
        """Fan-outs run in the daemon, over its pool; the audit names the peer."""
        who = _user(client.uid)
        audit = {"via": via, "uid": client.uid}
        fid = params.get("fanout_id")
        if method == "fanout_start":
            kw = {k: params[k] for k in ("hosts", "forks", "timeout", "connect_timeout",
                                         "rerun_of") if params.get(k) is not None}
            return e.fanouts.start(str(params["pattern"]), str(params["command"]),
                                   requested_by=who, audit=audit, **kw)
        if method == "fanout_rerun":
            return e.fanouts.rerun(int(fid), [str(c) for c in params["classes"]],
                                   requested_by=who, audit=audit)
        if method == "fanout_trust":
            return e.fanouts.trust(int(fid), [str(h) for h in params["hosts"]],
                                   requested_by=who, audit=audit)
        if method == "fanout_cancel":  # the whole batch (a CLI's Ctrl-C)
            e.fanouts.cancel(int(fid))
            self.audit.record("cancel fan-out", [f"#{fid}"], uid=client.uid, via=via)
            return {"cancelled": int(fid)}
        if method == "fanout_cancel_host":
            e.fanouts.cancel_host(int(fid), str(params["host"]))
            self.audit.record("cancel host", [str(params["host"])], uid=client.uid, via=via,
                              detail=f"fan-out #{fid}")
            return {"cancelled": params["host"]}
        raise ProtocolError(f"unknown method {method!r}")


def _service_read(e: Any, method: str, params: dict[str, Any]) -> Any:
    """What the console's Hosts, Logs and Fan-out screens read, from the daemon's own
    services (an attached console runs none of them)."""
    if method.startswith("health_"):
        if e.health is None:
            return []
        return e.health.hosts() if method == "health_hosts" else e.health.snapshot()
    if method.startswith("log_"):
        logs = e.logs
        if logs is None:
            return []
        if method == "log_sources":
            return list(logs.sources)
        if method == "log_stats":
            return logs.stats()
        source = str(params.get("source", ""))
        if source not in logs.sources:
            raise ProtocolError(f"no log source {source!r}")
        return logs.recent(source, int(params.get("limit", 500)))
    fo = e.fanouts
    if method == "fanout_list":
        return fo.list(int(params.get("limit", 50)))
    fid = int(params["fanout_id"])
    if method == "fanout_get":
        return fo.get(fid)
    if method == "fanout_live":
        return fo.is_live(fid)
    if method == "fanout_output":
        return fo.output(fid, str(params["host"]))
    return fo.gather(fid)  # fanout_gather


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


def _user(uid: int) -> str:
    from core.audit import user_name

    return user_name(uid)


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
