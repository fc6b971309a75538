"""Live reload of a daemon's config: on SIGHUP, on `fleetdeck reload`, when the file
changes. A valid config is applied without dropping running runs
(`Engine.apply_config`); an invalid one is rejected whole, with the same one-line errors
as `check-config`, published as an error notice (consoles show it), and the old one
keeps running."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from core.api import Actor
from core.config import ConfigError
from core.fleetconfig import load_config
from core.jobs.active import EngineError

log = logging.getLogger("fleetdeck.reload")


class Reloader:
    def __init__(self, engine: Any, path: Path | None) -> None:
        self.engine = engine
        self.path = path
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None

    async def __call__(self, actor: Actor) -> dict[str, Any]:
        """Reload now, for `actor` (a person through the socket, or the daemon's own user
        for SIGHUP and a file change); audited either way."""
        async with self._lock:
            if self.path is None:
                raise EngineError("running on the built-in default config: nothing to reload")
            try:
                config = load_config(self.path)
            except ConfigError as e:
                lines = [str(i) for i in e.issues]
                msg = f"config reload rejected ({len(lines)} error" \
                      f"{'s' if len(lines) != 1 else ''}); the old config keeps running: " \
                      + "; ".join(lines)
                self.engine._notice("error", msg)  # noqa: SLF001 - consoles show notices
                log.error("%s", msg)
                self.engine.audit(actor, "reload", [str(self.path)],
                                  f"rejected: {len(lines)} errors")
                raise EngineError(f"config reload rejected ({len(lines)} error"
                                  f"{'s' if len(lines) != 1 else ''}); the old config keeps "
                                  "running:", lines) from None
            summary = self.engine.apply_config(config)
            summary["services"] += await self._start_new_services()
            log.info("config reloaded from %s: %s", self.path, summary)
            self.engine.audit(actor, "reload", [str(self.path)],
                              ", ".join(f"{k}: {' '.join(v)}" for k, v in summary.items() if v))
            return summary

    async def _start_new_services(self) -> list[str]:
        """A config that now has checks, log sources or `on_change` jobs where the old
        one had none: the service it needs starts now (a running one was reconfigured)."""
        from core.services import attach_services

        e = self.engine
        names = {"health": "health checks", "logs": "log sources", "triggers": "file watches"}
        started = []
        for name in attach_services(e, ("health", "logs", "triggers")):
            await e.service(name).start(e)
            started.append(names[name])
        return started

    def watch(self) -> None:
        """Reload when the file changes (inotify through watchfiles)."""
        if self.path is not None:
            self._watch = asyncio.ensure_future(self._watch_file())

    async def _watch_file(self) -> None:
        from watchfiles import awatch

        assert self.path is not None
        target = str(self.path.resolve())
        async for changes in awatch(str(self.path.resolve().parent), debounce=500,
                                    step=50, recursive=False):
            if any(p == target for _, p in changes):
                with contextlib.suppress(EngineError):
                    await self(Actor.local("file change"))

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
