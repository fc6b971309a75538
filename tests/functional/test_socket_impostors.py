"""`approve --socket PATH` at something that is not a fleetdeck daemon (real Unix sockets
served by small impostors, a folder, a plain file, nothing): one line saying what is
there, never a traceback, and no waiting beyond the request's timeout."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.control.client import DaemonError, call
from tests.helpers import FLEETDECK, cli_env


def impostor(path: Path, answer: Callable[[socket.socket], None]) -> Iterator[None]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    answer(conn)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()


ANSWERS: dict[str, tuple[Callable[[socket.socket], None], str]] = {
    "garbage": (lambda c: c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
                "not a fleetdeck daemon (its answer is not a JSON object)"),
    "closes at once": (lambda c: None,
                       "the daemon closed the connection or sent a broken answer (it ended "
                       "mid-answer)"),
    "json without an id": (lambda c: c.sendall(b'{"result": {"id": 3}}\n'),
                           "not a fleetdeck daemon (an answer without the request's id)"),
    "a json list": (lambda c: c.sendall(b"[1, 2]\n"),
                    "not a fleetdeck daemon (its answer is not a JSON object)"),
    "a frame over the limit": (lambda c: c.sendall(b"x" * (2 << 20)),
                               "the daemon closed the connection or sent a broken answer "
                               "(a frame over 1 MB)"),
}


@pytest.mark.parametrize("kind", list(ANSWERS))
async def test_an_impostor_is_one_daemon_error(tmp_path, kind):
    path = tmp_path / "s.sock"
    answer, said = ANSWERS[kind]
    gen = impostor(path, answer)
    next(gen)
    try:
        with pytest.raises(DaemonError) as refused:
            await call(Path("/"), "approve", {"run_id": 1}, path=path, timeout=30)
    finally:
        next(gen, None)
    assert str(refused.value) == f"{path}: {said}"


async def test_silence_is_a_timeout_named_as_such(tmp_path):
    path = tmp_path / "s.sock"
    gen = impostor(path, lambda c: c.recv(1))  # reads, never answers
    next(gen)
    try:
        with pytest.raises(DaemonError) as refused:
            await asyncio.wait_for(call(Path("/"), "approve", {"run_id": 1}, path=path,
                                        timeout=0.5), 60)
    finally:
        next(gen, None)
    assert str(refused.value) == f"{path}: no answer to approve in 0.5s"


def approve(tmp_path: Path, where: Path) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "fleet.toml"
    cfg.write_text("")
    return subprocess.run([*FLEETDECK, "--config", str(cfg), "--state-dir",
                           str(tmp_path / "state"), "approve", "1", "--socket", str(where)],
                          capture_output=True, text=True, timeout=120, env=cli_env(tmp_path))


def test_approve_says_what_is_at_the_path(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    garbage = tmp_path / "g.sock"
    gen = impostor(garbage, ANSWERS["garbage"][0])
    next(gen)
    try:
        cases = {tmp_path / "missing.sock": "no such socket; the daemon's is in its state "
                                            "directory (control.sock)",
                 tmp_path: "is a folder, not a daemon's socket",
                 plain: "not a socket (a daemon's is control.sock)",
                 garbage: "not a fleetdeck daemon (its answer is not a JSON object)"}
        for where, said in cases.items():
            out = approve(tmp_path, where)
            assert (out.returncode, out.stderr) == (2, f"fleetdeck: {where}: {said}\n")
    finally:
        next(gen, None)
