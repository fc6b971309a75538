"""A real redis-server on a loopback port for the cluster tests (Debian's package,
installed by .ci/run): nothing saved to disk, stopped with the test."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.helpers import require_tool
from tests.sshd import free_port


class RedisServer:
    def __init__(self, folder: Path, *, port: int | None = None,
                 persist: bool = False) -> None:
        """`persist`: an append-only file in `folder`, so a restart keeps the keys (the
        lease, the term, the claims), as a production Redis for a cluster must."""
        binary = require_tool("redis-server", "redis-server")
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if persist else "no", "--appendfsync", "always",
             "--dir", str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=real_clock_env())
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = __import__("redis").Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.client.ping():
                    break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def real_clock_env() -> dict[str, str]:
    """The environment without libfaketime: redis-server cannot run under it (its
    clock_gettime recursion), and Redis is the cluster's infrastructure, not the thing
    under test: its TTLs are relative, so fleetdeck on another date agrees with it."""
    env = dict(os.environ)
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p and "faketime" not in p]
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    else:
        env.pop("LD_PRELOAD", None)
    for key in [k for k in env if k.startswith("FAKETIME")]:
        env.pop(key)
    return env
