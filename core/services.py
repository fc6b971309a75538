"""The services an engine carries -- health checks, log sources and rules, file-change
triggers, alerts, fan-outs -- set up in one place, and their part of the engine API.

`attach_services` is the one setup point: the console, the daemon, the CLI's brief
engines and a config reload all call it, each naming the services it wants; what the
config does not ask for (no checks, no sources) is not attached. `Services` is the
Engine's half that reads and acts on them (core.api lists every method) and writes the
audit trail: an action is audited here, once, with the `Actor` that asked.
"""

from __future__ import annotations

import logging
from typing import Any

from core.api import Actor
from core.audit import AuditLog

log = logging.getLogger("fleetdeck.engine")

ALL = ("health", "logs", "triggers", "alerts", "cluster")


def attach_services(engine: Any, which: tuple[str, ...] = ALL, *,
                    deliver: bool = True, act: bool = True) -> list[str]:
    """Attach (not start) the services of `which` that the engine's config needs and
    it does not have yet; returns their names. `deliver=False`: alerts are recorded
    but notifications are left to the daemon (a brief CLI visit). `act=False` (a
    read-only console): checks sample, logs follow and alerts open, but nothing acts
    on the fleet or beyond it: no watchdog restart, no change trigger, no notification."""
    config = engine.config
    added = []
    if not act:
        which = tuple(w for w in which if w != "triggers")
        deliver = False
    if "health" in which and config.checks and engine.service("health") is None:
        from core.health.monitor import HealthMonitor

        engine.add_service(HealthMonitor(watchdog=act))
        added.append("health")
    if "logs" in which and config.sources and engine.service("logs") is None:
        from core.logs.monitor import LogMonitor

        engine.add_service(LogMonitor())
        added.append("logs")
    if "triggers" in which and any(j.on_change for j in config.jobs.values()) \
            and engine.service("triggers") is None:
        from core.logs.triggers import ChangeTriggers

        engine.add_service(ChangeTriggers())
        added.append("triggers")
    if "alerts" in which and engine.service("alerts") is None:
        from core.alerts.manager import AlertManager

        engine.add_service(AlertManager(deliver=deliver))
        added.append("alerts")
    if "cluster" in which and config.cluster is not None and engine.service("cluster") is None:
        from core.cluster.service import ClusterService

        engine.add_service(ClusterService(config.cluster))
        added.append("cluster")
    return added


def attach_alerts(engine: Any, *, deliver: bool = True) -> Any:
    """The engine's AlertManager, attached now if it has none yet."""
    attach_services(engine, ("alerts",), deliver=deliver)
    return engine.service("alerts")


def attach_health(engine: Any) -> Any:
    """The engine's HealthMonitor, attached now if its config has checks (else None)."""
    attach_services(engine, ("health",))
    return engine.service("health")


def attach_logs(engine: Any) -> Any:
    """The engine's LogMonitor, attached now if its config has sources (else None)."""
    attach_services(engine, ("logs",))
    return engine.service("logs")


def attach_triggers(engine: Any) -> Any:
    """The engine's file watcher, attached now if a job has `on_change` (else None)."""
    attach_services(engine, ("triggers",))
    return engine.service("triggers")


class Services:
    """The Engine's services half (a mixin: `_services` is made in Engine.__init__)."""

    _services: list[Any]
    _fanouts: Any
    reloader: Any

    def add_service(self, service: Any) -> None:
        """Attach a part that lives as long as the engine (health monitor, alerts...).

        It has a `service_name` and `async start(engine)` / `async stop()`; started
        after the engine, stopped before it, in reverse order.
        """
        self._services.append(service)

    def service(self, name: str) -> Any:
        """The attached service of that name, or None."""
        return next((s for s in self._services if getattr(s, "service_name", "") == name),
                    None)

    def has_service(self, name: str) -> bool:
        return self.service(name) is not None

    @property
    def health(self) -> Any:
        """The HealthMonitor (core.health.monitor) if one is attached, else None."""
        return self.service("health")

    @property
    def logs(self) -> Any:
        """The LogMonitor (core.logs.monitor) if one is attached, else None."""
        return self.service("logs")

    @property
    def alerts(self) -> Any:
        """The AlertManager (core.alerts.manager) if one is attached, else None."""
        return self.service("alerts")

    @property
    def fanouts(self) -> Any:
        """Fan-outs started here (core.remote.fanouts.FanOuts), over the engine's pool."""
        if self._fanouts is None:
            from core.remote.fanouts import FanOuts

            self._fanouts = FanOuts(self)
        return self._fanouts

    async def fresh(self, method: str, **params: Any) -> Any:
        """A read of the engine API answered now (an attached engine asks the daemon
        instead of showing its mirror): for a command that prints once."""
        return getattr(self, method)(**params)

    # ------------------------------------------------------------------- audit ----
    def audit(self, actor: Actor | None, action: str, targets: list[str] | tuple[str, ...],
              detail: str = "") -> None:
        """A person's action in the audit trail (core/audit.py); the engine's own doing
        (actor None: a trigger, a watchdog) is not a person's and is not audited."""
        if actor is None:
            return
        try:
            AuditLog(self.state_dir).record(action, targets, detail=detail, via=actor.via,
                                            uid=actor.uid)
        except OSError as e:
            log.error("cannot write the audit trail: %s", e)

    def audit_trail(self, since: float | None = None, limit: int | None = None
                    ) -> list[dict[str, Any]]:
        return AuditLog(self.state_dir).read(since=since, limit=limit)

    # ------------------------------------------------------------------ alerts ----
    def _alerts(self) -> Any:
        from core.jobs.active import EngineError

        manager = self.alerts
        if manager is None:
            raise EngineError("alerts are not running")
        return manager

    def list_alerts(self, include_resolved: bool = False, limit: int = 200
                    ) -> list[dict[str, Any]]:
        manager = self.alerts
        return [] if manager is None else manager.list_alerts(
            include_resolved=include_resolved, limit=limit)

    def get_alert(self, alert_id: int) -> dict[str, Any]:
        return self._alerts().get_alert(int(alert_id))

    async def ack_alert(self, alert_id: int, *, actor: Actor) -> dict[str, Any]:
        alert = await self._alerts().ack_alert(int(alert_id), requested_by=actor.user)
        self.audit(actor, "ack", [f"alert #{alert_id}"])
        return alert

    async def ack_alert_group(self, alert_id: int, *, actor: Actor) -> dict[str, Any]:
        group = await self._alerts().ack_alert_group(int(alert_id), requested_by=actor.user)
        self.audit(actor, "ack group", [f"alert #{i}" for i in group["acknowledged"]])
        return group

    async def silence(self, target: str, duration: str, *, actor: Actor) -> dict[str, Any]:
        rec = await self._alerts().silence(str(target), duration, requested_by=actor.user)
        self.audit(actor, "silence", [rec["target"]], str(duration))
        return rec

    async def unsilence(self, target: str, *, actor: Actor) -> dict[str, Any]:
        rec = await self._alerts().unsilence(str(target), requested_by=actor.user)
        self.audit(actor, "unsilence", [rec["target"]])
        return rec

    def list_silences(self) -> list[dict[str, Any]]:
        manager = self.alerts
        return [] if manager is None else manager.list_silences()

    # ---------------------------------------------------------- health and logs ----
    def health_hosts(self) -> list[dict[str, Any]]:
        return [] if self.health is None else self.health.hosts()

    def health_snapshot(self) -> list[dict[str, Any]]:
        return [] if self.health is None else self.health.snapshot()

    def log_sources(self) -> list[str]:
        return [] if self.logs is None else list(self.logs.sources)

    def log_recent(self, source: str, limit: int = 500) -> list[Any]:
        from core.jobs.active import NotFound

        if self.logs is None or source not in self.logs.sources:
            raise NotFound(f"no log source {source!r}")
        return self.logs.recent(source, int(limit))

    def log_stats(self) -> list[dict[str, Any]]:
        return [] if self.logs is None else self.logs.stats()

    # ---------------------------------------------------------------- fan-outs ----
    def fanout_list(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.fanouts.list(int(limit))

    def fanout_get(self, fanout_id: int) -> dict[str, Any] | None:
        return self.fanouts.get(int(fanout_id))

    def fanout_live(self, fanout_id: int) -> bool:
        return self.fanouts.is_live(int(fanout_id))

    def fanout_output(self, fanout_id: int, host: str) -> str:
        return self.fanouts.output(int(fanout_id), str(host))

    def fanout_gather(self, fanout_id: int) -> list[dict[str, Any]]:
        return self.fanouts.gather(int(fanout_id))

    async def fanout_start(self, pattern: str, command: str, hosts: list[str] | None = None,
                           forks: int | None = None, timeout: float | None = None,
                           connect_timeout: float | None = None,
                           trust_new_keys: bool = False, serial: str | None = None,
                           max_fail: str | None = None, pause_between: str | None = None,
                           hold_canary: bool = False, out_dir: str | None = None,
                           become: str | None = None, become_password: str | None = None,
                           *, actor: Actor) -> dict[str, Any]:
        return self._fan_out(pattern, command, hosts, forks, timeout, connect_timeout,
                             trust_new_keys, serial, max_fail, pause_between, hold_canary,
                             actor, out_dir=out_dir, become=become or None,
                             become_password=become_password)

    def _fan_out(self, pattern: str, command: str, hosts: list[str] | None,
                 forks: int | None, timeout: float | None, connect_timeout: float | None,
                 trust_new_keys: bool, serial: str | None, max_fail: str | None,
                 pause_between: str | None, hold_canary: bool, actor: Actor, *,
                 out_dir: str | None = None, transfer: Any = None,
                 become: str | None = None, become_password: str | None = None
                 ) -> dict[str, Any]:
        """A command, push or pull fan-out with what every kind shares."""
        from core.remote.fanouts import rollout_of

        kw = {k: v for k, v in (("hosts", hosts), ("forks", forks), ("timeout", timeout),
                                ("connect_timeout", connect_timeout)) if v is not None}
        return self.fanouts.start(str(pattern), str(command), actor=actor,
                                  trust_new_keys=bool(trust_new_keys),
                                  rollout=rollout_of(serial, max_fail, pause_between),
                                  hold_canary=bool(hold_canary),
                                  out_dir=str(out_dir) if out_dir else None,
                                  transfer=transfer, become=become,
                                  become_password=become_password, **kw)

    async def fanout_push(self, pattern: str, src: str, dest: str,
                          hosts: list[str] | None = None, forks: int | None = None,
                          timeout: float | None = None, connect_timeout: float | None = None,
                          trust_new_keys: bool = False, mode: str | None = None,
                          owner: str | None = None, backup: bool = False,
                          serial: str | None = None, max_fail: str | None = None,
                          pause_between: str | None = None, hold_canary: bool = False, *,
                          actor: Actor) -> dict[str, Any]:
        import asyncio

        from core.remote.fanouts import transfer_of

        # every file read and hashed once, off the loop (a large tree takes a while)
        push = await asyncio.to_thread(transfer_of, "push", str(src), str(dest), mode,
                                       owner, bool(backup))
        return self._fan_out(pattern, "", hosts, forks, timeout, connect_timeout,
                             trust_new_keys, serial, max_fail, pause_between, hold_canary,
                             actor, transfer=push)

    async def fanout_pull(self, pattern: str, src: str, dest_dir: str,
                          hosts: list[str] | None = None, forks: int | None = None,
                          timeout: float | None = None, connect_timeout: float | None = None,
                          trust_new_keys: bool = False, serial: str | None = None,
                          max_fail: str | None = None, pause_between: str | None = None,
                          hold_canary: bool = False, *, actor: Actor) -> dict[str, Any]:
        from core.remote.fanouts import transfer_of

        pull = transfer_of("pull", str(src), str(dest_dir))
        return self._fan_out(pattern, "", hosts, forks, timeout, connect_timeout,
                             trust_new_keys, serial, max_fail, pause_between, hold_canary,
                             actor, transfer=pull)

    async def fanout_rerun(self, fanout_id: int, classes: list[str],
                           become_password: str | None = None, *, actor: Actor
                           ) -> dict[str, Any]:
        return self.fanouts.rerun(int(fanout_id), [str(c) for c in classes], actor=actor,
                                  become_password=become_password)

    async def fanout_trust(self, fanout_id: int, hosts: list[str], *, actor: Actor
                           ) -> dict[str, Any]:
        return self.fanouts.trust(int(fanout_id), [str(h) for h in hosts], actor=actor)

    async def fanout_cancel(self, fanout_id: int, *, actor: Actor) -> dict[str, Any]:
        self.fanouts.cancel(int(fanout_id))
        self.audit(actor, "cancel fan-out", [f"#{fanout_id}"])
        return {"cancelled": int(fanout_id)}

    async def fanout_cancel_host(self, fanout_id: int, host: str, *, actor: Actor
                                 ) -> dict[str, Any]:
        self.fanouts.cancel_host(int(fanout_id), str(host))
        self.audit(actor, "cancel host", [str(host)], f"fan-out #{fanout_id}")
        return {"cancelled": str(host)}

    async def fanout_proceed(self, fanout_id: int, *, actor: Actor) -> dict[str, Any]:
        """The canary batch looked right: the rest of the rollout goes."""
        self.fanouts.proceed(int(fanout_id))
        self.audit(actor, "go on with rollout", [f"#{fanout_id}"])
        return {"proceeding": int(fanout_id)}

    # ------------------------------------------------------------------ reload ----
    async def reload(self, *, actor: Actor) -> dict[str, Any]:
        """Read the config file again and apply it (the daemon's; see core/reload.py)."""
        from core.jobs.active import EngineError

        if self.reloader is None:
            raise EngineError("this engine does not reload its config (only a daemon does)")
        return await self.reloader(actor)
