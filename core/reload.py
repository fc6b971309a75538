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

from core.config import ConfigError
from core.fleetconfig import load_config

log = logging.getLogger("fleetdeck.reload")


class Reloader:
    def __init__(self, engine: Any, path: Path | None, audit: Any = None) -> None:
        self.engine = engine
        self.path = path
        self.audit = audit
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None

    async def __call__(self, via: str = "signal") -> dict[str, Any]:
        async with self._lock:
            if self.path is None:
                raise ValueError("running on the built-in default config: nothing to reload")
            try:
                config = load_config(self.path)
            except ConfigError as e:
                lines = [str(i) for i in e.issues]
                msg = f"config reload rejected ({len(lines)} error" \
                      f"{'s' if len(lines) != 1 else ''}); the old config keeps running: " \
                      + "; ".join(lines)
                self.engine._notice("error", msg)  # noqa: SLF001 - consoles show notices
                log.error("%s", msg)
                if self.audit is not None:
                    self.audit.record("reload", [str(self.path)], via=via,
                                      detail=f"rejected: {len(lines)} errors")
                raise ValueError(msg) from None
            summary = self.engine.apply_config(config)
            summary["services"] += await self._start_new_services()
            log.info("config reloaded from %s: %s", self.path, summary)
            if self.audit is not None:
                self.audit.record("reload", [str(self.path)], via=via,
                                  detail=", ".join(f"{k}: {' '.join(v)}"
                                                   for k, v in summary.items() if v))
            return summary

    async def _start_new_services(self) -> list[str]:
        """A config that now has checks, log sources or `on_change` jobs where the old
        one had none: the service it needs starts now (a running one was reconfigured)."""
        from core.health.monitor import attach_health
        from core.logs.monitor import attach_logs
        from core.logs.triggers import attach_triggers

        e = self.engine
        started = []
        for what, attach in (("health checks", attach_health), ("log sources", attach_logs),
                             ("file watches", attach_triggers)):
            running = list(e._services)  # noqa: SLF001 - each attach_* returns the one running
            service = attach(e)
            if service is not None and service not in running:
                await service.start(e)
                started.append(what)
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
                with contextlib.suppress(ValueError):
                    await self("file change")

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
