"""What keeps the demo's screens moving: application logs written on some demo hosts and
on this machine (the Logs screen follows them, a rule counts their errors and fires in
bursts), and a service that goes away and comes back (a check that flaps, so alerts
open and resolve while you watch). Runs in the demo fleet's process (core/demo.py)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_HOSTS = ("web01", "web02", "db1")  # their app.log is followed over SSH
PATHS = ("/api/orders", "/api/cart", "/api/users", "/health", "/api/search")
BURST = "ERROR upstream timed out: payment-gw"  # what the demo's log rule counts


@dataclass
class Rhythm:
    """How fast things happen; the tests use short ones."""

    line_every: tuple[float, float] = (0.3, 1.5)  # between two log lines
    burst_every: float = 75.0  # an error burst on web01 this often
    burst_lines: int = 8
    service_up: float = 40.0  # the flapping service: up this long, then down
    service_down: float = 25.0


class DemoLive:
    def __init__(self, folder: Path, rng: random.Random, rhythm: Rhythm | None = None
                 ) -> None:
        self.folder = folder
        self.rng = rng
        self.rhythm = rhythm or Rhythm()
        self.flap_port = 0
        self._server: asyncio.AbstractServer | None = None

    def log_path(self, host: str) -> Path:
        return self.folder / "logs" / host / ("deploy.log" if host == "local" else "app.log")

    async def start(self, spawn: Any) -> None:
        for host in (*LOG_HOSTS, "local"):
            self.log_path(host).parent.mkdir(parents=True, exist_ok=True)
            self.log_path(host).touch()
        await self._open_service(port=0)
        spawn(self._write_logs())
        spawn(self._flap())

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    # ------------------------------------------------------------------------ logs ---
    def _line(self, host: str) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        if host == "local":
            step = self.rng.randint(1, 7)
            level = "WARN" if self.rng.random() < 0.1 else "INFO"
            what = "migration slower than usual" if level == "WARN" else "ok"
            return f"{stamp} {level} deploy step {step}/7 {what}\n"
        roll = self.rng.random()
        level, status = ("ERROR", 500) if roll < 0.02 else ("WARN", 404) if roll < 0.1 \
            else ("INFO", 200)
        ms = int(self.rng.expovariate(1 / 40))
        return f"{stamp} {level} GET {self.rng.choice(PATHS)} {status} {ms}ms\n"

    def _append(self, host: str, text: str) -> None:
        with open(self.log_path(host), "a") as f:
            f.write(text)

    async def _write_logs(self) -> None:
        r = self.rhythm
        next_burst = time.monotonic() + r.burst_every / 3
        while True:
            await asyncio.sleep(self.rng.uniform(*r.line_every))
            host = self.rng.choice((*LOG_HOSTS, "local"))
            self._append(host, self._line(host))
            if time.monotonic() >= next_burst:
                next_burst = time.monotonic() + r.burst_every
                for _ in range(r.burst_lines):
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
                    self._append("web01", f"{stamp} {BURST} (502) after 5000ms\n")
                    await asyncio.sleep(0.2)

    # -------------------------------------------------------------------- service ---
    async def _open_service(self, port: int) -> None:
        async def answer(_reader: Any, writer: Any) -> None:
            writer.close()

        self._server = await asyncio.start_server(answer, "127.0.0.1", port,
                                                  reuse_address=True)
        self.flap_port = self._server.sockets[0].getsockname()[1]

    async def _flap(self) -> None:
        r = self.rhythm
        while True:
            await asyncio.sleep(r.service_up)
            if self._server is not None:
                self._server.close()
                with contextlib.suppress(Exception):
                    await self._server.wait_closed()
                self._server = None
            await asyncio.sleep(r.service_down)
            with contextlib.suppress(OSError):  # the port was taken meanwhile: next round
                await self._open_service(self.flap_port)

    def config_lines(self, inventory: set[str]) -> list[str]:
        """The sources, the rules and the flapping check, as TOML lines (remote sources
        only for the demo hosts in `inventory`)."""
        out: list[str] = []
        fields = r"' (?P<status>\d{3}) (?P<ms>\d+)ms'"
        hosts = [h for h in LOG_HOSTS if h in inventory]
        for host in hosts:
            out += [f"[sources.{host}-app]", f'host = "{host}"',
                    f'path = "{self.log_path(host)}"', f"fields = {fields}",
                    f'description = "The app log of {host}, followed over SSH."', ""]
        out += ["[sources.deploy]", f'path = "{self.log_path("local")}"',
                'description = "A local log: a deploy tool on this machine."', ""]
        web = [f'"{h}-app"' for h in hosts if h.startswith("web")]
        if web:
            out += ["[rules.web-errors]",
                    'description = "Errors on the web tier: web01 has bursts of upstream '
                    'timeouts."',
                    f"sources = [{', '.join(web)}]", 'level = "error"',
                    'threshold = "> 5 in 60s"', "",
                    "[rules.web-5xx]", 'description = "A share of 5xx answers."',
                    f"sources = [{', '.join(web)}]", 'field = "status >= 500"',
                    'threshold = "> 20% in 2m"', ""]
        out += [
                "[checks.api-flap]",
                'description = "A local service that goes away and comes back: this '
                'check flaps."',
                'kind = "tcp"', 'targets = "local"', f"port = {self.flap_port}",
                'interval = "5s"', "fail = [2, 3]", "recover = [2, 3]", ""]
        return out
