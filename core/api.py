"""The engine API: every read and action that the console, the CLI and the control socket
use, declared once.

`METHODS` lists them with their parameters; the control socket's dispatch table and the
proxies of an attached console or a CLI beside a daemon are made from it, so a method
exists everywhere or nowhere. `EngineAPI` is the same list as a typed Protocol: the
engine, the attached engine and the daemon client each implement it.

Every action takes an `Actor`: who (the OS user: this process's, or a socket peer's from
its credentials, never a name a client sends) and through what (`console`, `cli`,
`socket pid N`). The engine writes the audit row for an action itself, once, wherever
the action came from.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def current_user() -> str:
    """The name of the user this process runs as (its uid's, not $USER's)."""
    return user_name(os.getuid())


@dataclass(frozen=True)
class Actor:
    """Who asked for an action, and through what."""

    uid: int
    user: str
    via: str  # console | cli | socket pid N | fleetdeck (the engine's own doing)

    @classmethod
    def local(cls, via: str) -> Actor:
        uid = os.getuid()
        return cls(uid, user_name(uid), via)

    @classmethod
    def peer(cls, uid: int, pid: int) -> Actor:
        return cls(uid, user_name(uid), f"socket pid {pid}")


@dataclass(frozen=True)
class Method:
    name: str
    params: tuple[str, ...] = ()  # keyword names, in positional order
    audit: str = ""  # an action's word in the audit trail; "" for a read

    @property
    def is_action(self) -> bool:
        return bool(self.audit)


METHODS: tuple[Method, ...] = (
    # reads: jobs and history
    Method("list_jobs"),
    Method("get_job", ("name",)),
    Method("list_runs", ("job", "states", "since", "limit", "host", "triggers")),
    Method("count_runs", ("job", "states", "since", "host", "triggers")),
    Method("get_run", ("run_id",)),
    Method("queue"),
    Method("audit_trail", ("since", "limit")),
    # reads: the services (health, logs, alerts, fan-outs)
    Method("list_alerts", ("include_resolved", "limit")),
    Method("get_alert", ("alert_id",)),
    Method("list_silences"),
    Method("health_hosts"),
    Method("health_snapshot"),
    Method("log_sources"),
    Method("log_recent", ("source", "limit")),
    Method("log_stats"),
    Method("fanout_list", ("limit",)),
    Method("fanout_get", ("fanout_id",)),
    Method("fanout_live", ("fanout_id",)),
    Method("fanout_output", ("fanout_id", "host")),
    Method("fanout_gather", ("fanout_id",)),
    Method("list_approvals"),
    # actions: a person's, audited by the engine
    Method("run_job", ("name",), audit="run"),
    Method("cancel_run", ("run_id",), audit="cancel"),
    Method("pause_job", ("name",), audit="pause"),
    Method("resume_job", ("name",), audit="resume"),
    Method("ack_alert", ("alert_id",), audit="ack"),
    Method("ack_alert_group", ("alert_id",), audit="ack group"),
    Method("silence", ("target", "duration"), audit="silence"),
    Method("unsilence", ("target",), audit="unsilence"),
    Method("fanout_start", ("pattern", "command", "hosts", "forks", "timeout",
                            "connect_timeout", "trust_new_keys", "serial", "max_fail",
                            "pause_between", "hold_canary", "out_dir", "become",
                            "become_password"), audit="fan-out"),
    Method("fanout_push", ("pattern", "src", "dest", "hosts", "forks", "timeout",
                           "connect_timeout", "trust_new_keys", "mode", "owner", "backup",
                           "serial", "max_fail", "pause_between", "hold_canary"),
           audit="push"),
    Method("fanout_pull", ("pattern", "src", "dest_dir", "hosts", "forks", "timeout",
                           "connect_timeout", "trust_new_keys", "serial", "max_fail",
                           "pause_between", "hold_canary"), audit="pull"),
    Method("fanout_rerun", ("fanout_id", "classes", "become_password"),
           audit="fan-out rerun"),
    Method("fanout_trust", ("fanout_id", "hosts"), audit="trust host key"),
    Method("fanout_cancel", ("fanout_id",), audit="cancel fan-out"),
    Method("fanout_cancel_host", ("fanout_id", "host"), audit="cancel host"),
    Method("fanout_proceed", ("fanout_id",), audit="go on with rollout"),
    Method("reload", audit="reload"),
    # workflows: gates, retries, remediation
    Method("approve", ("run_id", "step", "reason"), audit="approve"),
    Method("reject", ("run_id", "step", "reason"), audit="reject"),
    Method("retry_workflow", ("run_id",), audit="retry"),
    Method("remediate", ("alert_id",), audit="remediate"),
)
BY_NAME: dict[str, Method] = {m.name: m for m in METHODS}
READS = tuple(m.name for m in METHODS if not m.is_action)
ACTIONS = tuple(m.name for m in METHODS if m.is_action)


def bind(method: Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments as the named parameters a socket request carries."""
    if len(args) > len(method.params):
        raise TypeError(f"{method.name} takes at most {len(method.params)} arguments")
    params = dict(zip(method.params, args, strict=False))
    for key, value in kwargs.items():
        if key not in method.params:
            raise TypeError(f"{method.name} has no parameter {key!r}")
        params[key] = value
    return {k: v for k, v in params.items() if v is not None}


class EngineAPI(Protocol):
    """What a console or the CLI may ask of an engine, its own or a daemon's."""

    state_dir: Path
    config: Any
    attached: bool  # a daemon's engine, over its socket

    def has_service(self, name: str) -> bool: ...  # health, logs, triggers, alerts

    # reads
    def list_jobs(self) -> list[dict[str, Any]]: ...
    def get_job(self, name: str) -> dict[str, Any]: ...
    def list_runs(self, *, job: str | None = None, states: list[str] | None = None,
                  since: float | None = None, limit: int | None = 50,
                  host: str | None = None, triggers: list[str] | None = None,
                  ) -> list[dict[str, Any]]: ...
    def count_runs(self, *, job: str | None = None, states: list[str] | None = None,
                   since: float | None = None, host: str | None = None,
                   triggers: list[str] | None = None) -> int: ...
    def get_run(self, run_id: int) -> dict[str, Any]: ...
    def queue(self) -> list[dict[str, Any]]: ...
    def audit_trail(self, since: float | None = None, limit: int | None = None
                    ) -> list[dict[str, Any]]: ...
    def list_alerts(self, include_resolved: bool = False, limit: int = 200
                    ) -> list[dict[str, Any]]: ...
    def get_alert(self, alert_id: int) -> dict[str, Any]: ...
    def list_silences(self) -> list[dict[str, Any]]: ...
    def health_hosts(self) -> list[dict[str, Any]]: ...
    def health_snapshot(self) -> list[dict[str, Any]]: ...
    def log_sources(self) -> list[str]: ...
    def log_recent(self, source: str, limit: int = 500) -> list[Any]: ...
    def log_stats(self) -> list[dict[str, Any]]: ...
    def fanout_list(self, limit: int = 50) -> list[dict[str, Any]]: ...
    def fanout_get(self, fanout_id: int) -> dict[str, Any] | None: ...
    def fanout_live(self, fanout_id: int) -> bool: ...
    def fanout_output(self, fanout_id: int, host: str) -> str: ...
    def fanout_gather(self, fanout_id: int) -> list[dict[str, Any]]: ...
    def list_approvals(self) -> list[dict[str, Any]]: ...
    async def fresh(self, method: str, **params: Any) -> Any: ...

    # actions
    async def run_job(self, name: str, *, actor: Actor) -> list[dict[str, Any]]: ...
    async def cancel_run(self, run_id: int, *, actor: Actor) -> dict[str, Any]: ...
    async def pause_job(self, name: str, *, actor: Actor) -> dict[str, Any]: ...
    async def resume_job(self, name: str, *, actor: Actor) -> dict[str, Any]: ...
    async def ack_alert(self, alert_id: int, *, actor: Actor) -> dict[str, Any]: ...
    async def approve(self, run_id: int, step: str | None = None, reason: str = "", *,
                      actor: Actor) -> dict[str, Any]: ...
    async def reject(self, run_id: int, step: str | None = None, reason: str = "", *,
                     actor: Actor) -> dict[str, Any]: ...
    async def retry_workflow(self, run_id: int, *, actor: Actor) -> dict[str, Any]: ...
    async def remediate(self, alert_id: int, *, actor: Actor) -> dict[str, Any]: ...

    async def ack_alert_group(self, alert_id: int, *, actor: Actor) -> dict[str, Any]: ...
    async def silence(self, target: str, duration: str, *, actor: Actor
                      ) -> dict[str, Any]: ...
    async def unsilence(self, target: str, *, actor: Actor) -> dict[str, Any]: ...
    async def fanout_start(self, pattern: str, command: str, hosts: list[str] | None = None,
                           forks: int | None = None, timeout: float | None = None,
                           connect_timeout: float | None = None,
                           trust_new_keys: bool = False, serial: str | None = None,
                           max_fail: str | None = None, pause_between: str | None = None,
                           hold_canary: bool = False, out_dir: str | None = None,
                           become: str | None = None, become_password: str | None = None,
                           *, actor: Actor) -> dict[str, Any]: ...
    async def fanout_push(self, pattern: str, src: str, dest: str,
                          hosts: list[str] | None = None, forks: int | None = None,
                          timeout: float | None = None, connect_timeout: float | None = None,
                          trust_new_keys: bool = False, mode: str | None = None,
                          owner: str | None = None, backup: bool = False,
                          serial: str | None = None, max_fail: str | None = None,
                          pause_between: str | None = None, hold_canary: bool = False, *,
                          actor: Actor) -> dict[str, Any]: ...
    async def fanout_pull(self, pattern: str, src: str, dest_dir: str,
                          hosts: list[str] | None = None, forks: int | None = None,
                          timeout: float | None = None, connect_timeout: float | None = None,
                          trust_new_keys: bool = False, serial: str | None = None,
                          max_fail: str | None = None, pause_between: str | None = None,
                          hold_canary: bool = False, *, actor: Actor) -> dict[str, Any]: ...
    async def fanout_rerun(self, fanout_id: int, classes: list[str],
                           become_password: str | None = None, *, actor: Actor
                           ) -> dict[str, Any]: ...
    async def fanout_trust(self, fanout_id: int, hosts: list[str], *, actor: Actor
                           ) -> dict[str, Any]: ...
    async def fanout_cancel(self, fanout_id: int, *, actor: Actor) -> dict[str, Any]: ...
    async def fanout_cancel_host(self, fanout_id: int, host: str, *, actor: Actor
                                 ) -> dict[str, Any]: ...
    async def fanout_proceed(self, fanout_id: int, *, actor: Actor) -> dict[str, Any]: ...
    async def reload(self, *, actor: Actor) -> dict[str, Any]: ...
