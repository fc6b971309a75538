"""The engine's fan-outs: what the console (and later an attached client) calls.

`engine.fanouts` starts fan-outs over the engine's shared SSH pool, so a re-run on the
failed hosts goes over the connections still open; their events (``fanout_started``,
``host_result``, ``fanout_line``, ``fanout_done``) are published on the engine's bus.
Records and each host's output live in the state directory (``core/store/fanouts.py``),
where the CLI's fan-outs are too, so past fan-outs of both are browsable.
"""

from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path
from typing import Any

from core.api import Actor
from core.jobs.active import EngineError, NotFound
from core.remote.classes import select_classes
from core.remote.fanout import DEFAULT_FORKS, FanOut
from core.remote.inventory import fold_hosts, resolve_targets
from core.remote.results import hosts_of
from core.remote.rollout import Rollout, RolloutError, make_rollout
from core.remote.transfer import (
    Transfer,
    TransferError,
    ready_folder,
    transfer_from_dict,
)
from core.store.fanouts import FanOutStore

log = logging.getLogger("fleetdeck.fanout")

# commands that deserve a second, stronger confirmation before they reach many hosts
_DESTRUCTIVE = re.compile(
    r"(^|[;&|(`]|\$\(|\bsudo\s+|\bexec\s+)\s*("
    r"rm|rmdir|reboot|shutdown|halt|poweroff|mkfs(\.\w+)?|dd|kill|killall|pkill|wipefs|"
    r"fdisk|parted|truncate|shred|userdel|iptables\s+-F|"
    r"systemctl\s+(stop|restart|disable|mask|kill|reboot|poweroff|halt)|"
    r"service\s+\S+\s+(stop|restart)|init\s+[06]|crontab\s+-r|docker\s+(rm|kill|stop)|"
    r"kubectl\s+delete|zfs\s+destroy|lvremove|vgremove)\b")


def looks_destructive(command: str) -> bool:
    """Whether a command looks like it removes, stops or reboots something."""
    return bool(_DESTRUCTIVE.search(command.strip()))


class FanOuts:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._live: dict[int, FanOut] = {}
        self._store: FanOutStore | None = None

    @property
    def store(self) -> FanOutStore:
        if self._store is None:
            self._store = FanOutStore(self.engine.state_dir)
        return self._store

    # ------------------------------------------------------------------ reading ----
    def resolve(self, pattern: str) -> list[str]:
        """The hosts a pattern names (TargetError, one line, if it is wrong or empty)."""
        return resolve_targets(pattern, self.engine.config.hosts)

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """Fan-outs newest first, live ones with their current state."""
        stored = FanOutStore(self.engine.state_dir, read_only=True).list(limit)
        return [self._live[r["id"]].record() if r["id"] in self._live else r for r in stored]

    def get(self, fanout_id: int) -> dict[str, Any] | None:
        fo = self._live.get(fanout_id)
        if fo is not None:
            return fo.record()
        return FanOutStore(self.engine.state_dir, read_only=True).get(fanout_id)

    def is_live(self, fanout_id: int) -> bool:
        return fanout_id in self._live

    def output(self, fanout_id: int, host: str) -> str:
        """One host's output so far (the whole log for a past fan-out)."""
        fo = self._live.get(fanout_id)
        if fo is not None and host in fo.results:
            return fo.output(host)
        path = self.store.log_path(fanout_id, host)
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def gather(self, fanout_id: int) -> list[dict[str, Any]]:
        """Finished hosts grouped by identical output, class and exit code, largest first;
        each group but the first carries ``diff``: its text against the largest's."""
        fo = self._live.get(fanout_id)
        if fo is not None:
            groups = [g for g in fo.gather() if g["state"] not in ("pending", "connecting",
                                                                    "running")]
        else:
            groups = self._gather_record(fanout_id)
        if groups:
            base = groups[0]["text"].splitlines()
            for g in groups:
                g["diff"] = [] if g is groups[0] or not g["text"] else list(difflib.unified_diff(
                    base, g["text"].splitlines(), f"{groups[0]['folded']}", g["folded"],
                    lineterm="", n=1))
        return groups

    def _gather_record(self, fanout_id: int) -> list[dict[str, Any]]:
        from core.remote.inventory import fold_hosts

        rec = self.get(fanout_id)
        if rec is None:
            return []
        groups: dict[tuple[Any, ...], list[str]] = {}
        for name, r in rec["hosts"].items():
            groups.setdefault((r["state"], r.get("exit_code"), r.get("reason", ""),
                               r.get("digest", "")), []).append(name)
        out = [{"hosts": names, "folded": fold_hosts(names), "count": len(names),
                "state": st, "exit_code": code, "reason": reason,
                "text": self.output(fanout_id, names[0])}
               for (st, code, reason, _), names in groups.items()]
        out.sort(key=lambda g: (-g["count"], g["state"] != "ok", g["folded"]))
        return out

    # ------------------------------------------------------------------ actions ----
    def start(self, pattern: str, command: str, *, hosts: list[str] | None = None,
              forks: int = DEFAULT_FORKS, timeout: float | None = None,
              connect_timeout: float | None = None, actor: Actor,
              rerun_of: int | None = None, trust_new_keys: bool = False,
              rollout: Rollout | None = None, hold_canary: bool = False,
              out_dir: str | None = None, transfer: Transfer | None = None,
              become: str | None = None, become_password: str | None = None
              ) -> dict[str, Any]:
        """Start a fan-out (it runs as an engine task); returns its first record. The
        engine audits it with the `actor` who asked. `trust_new_keys`: unknown host keys
        are trusted (over a pool of its own), each audited. `rollout`: in batches
        (`core.remote.rollout`); `hold_canary`: wait after a canary batch for `proceed`;
        `out_dir`: each host's stdout and stderr in files there too; `transfer`: a push or
        pull (`core.remote.transfer`) instead of the command; `become`: every host's
        commands as this user through sudo (else each host's own `become`), with
        `become_password` when sudo needs one (kept by the fan-out alone)."""
        from core.remote.runs import engine_pool

        if transfer is None and not command.strip():
            raise EngineError("no command to run")
        names = hosts if hosts is not None else self.resolve(pattern)
        inventory = self.engine.config.hosts
        unknown = [n for n in names if n not in inventory]
        if unknown:  # refused before a fan-out id is taken
            raise NotFound(f"no host named {unknown[0]!r}")
        if forks < 1:
            raise EngineError("forks must be at least 1")
        if any(t is not None and t <= 0 for t in (timeout, connect_timeout)):
            raise EngineError("a timeout must be more than 0 seconds")
        where = _out_dir(out_dir) if out_dir else None
        store = self.store
        fid = store.allocate()
        who = actor.user
        pool = engine_pool(self.engine)
        if trust_new_keys:
            pool = pool.trusting()
        cls: Any = FanOut
        extra: dict[str, Any] = {}
        cluster = getattr(self.engine, "cluster", None)
        if cluster is not None and len(names) > 1 and transfer is None and \
                not become_password and where is None and \
                not (rollout is not None and rollout.rolling) and not trust_new_keys:
            cls, extra = cluster.shared_fanout()  # its hosts over the cluster's workers
        fo = cls(command, [inventory[n] for n in names], pool=pool,
                    inventory=inventory, bus=self.engine.bus, fanout_id=fid,
                    pattern=pattern, forks=forks, timeout=timeout,
                    connect_timeout=connect_timeout, log_dir=store.log_dir(fid),
                    requested_by=who, store=store, rerun_of=rerun_of, rollout=rollout,
                    hold_canary=hold_canary, out_dir=where, transfer=transfer,
                    become=become, become_password=become_password,
                    group_forks={g.name: g.forks for g in self.engine.config.groups.values()
                                 if g.forks}, **extra)
        self._live[fid] = fo
        task = self.engine._spawn(self._run(fo, actor, trust_new_keys))  # noqa: SLF001
        task.add_done_callback(lambda _t, fid=fid: self._live.pop(fid, None))
        command = fo.command
        how = f" ({_how(fo.rollout)})" if fo.rollout.rolling else ""
        log.info("fan-out #%d by %s: %s -- %s (%d hosts%s)", fid, who, pattern, command,
                 len(names), how)
        self.engine.audit(actor, "fan-out" if rerun_of is None else "fan-out rerun", names,
                          f"#{fid}{how}: {command}")
        return fo.record()

    async def _run(self, fo: FanOut, actor: Actor, own_pool: bool) -> None:
        try:
            await fo.run()
        finally:
            for name, where, fp in fo.pool.trusted:
                if own_pool:  # the shared pool's approvals were audited by trust()
                    self.engine.audit(actor, "trust host key", [name], fp)
                    log.warning("%s trusted the new host key of %s (%s): %s", actor.user,
                                name, where, fp)
            if own_pool:
                await fo.pool.close()

    def rerun(self, fanout_id: int, classes: list[str], *, actor: Actor,
              become_password: str | None = None) -> dict[str, Any]:
        """The same command again on the hosts of those classes (over the open pool).
        `classes` are class names or selectors (`core.remote.classes.select_classes`):
        `not_ok` is every host that did not end ok but the host-key classes, `all` all.
        A fan-out that became a user does so again (asked for its password again)."""
        rec = self.get(fanout_id)
        if rec is None:
            raise NotFound(f"no fan-out #{fanout_id}")
        try:
            selected = select_classes(classes)
        except ValueError as e:
            raise EngineError(str(e)) from None
        names = [n for n in hosts_of(rec, selected) if n in self.engine.config.hosts]
        if not names:
            raise EngineError(f"fan-out #{fanout_id} has no hosts in {', '.join(classes)}")
        return self._again(rec, names, actor, become_password)

    def _again(self, rec: dict[str, Any], names: list[str], actor: Actor,
               become_password: str | None = None) -> dict[str, Any]:
        """A recorded fan-out's command on some of its hosts, with its forks, timeouts
        and rollout (a rerun of a stopped rollout goes on in the same batches)."""
        return self.start(fold_hosts(names), rec["command"], hosts=names,
                          forks=rec.get("forks") or DEFAULT_FORKS, timeout=rec.get("timeout"),
                          connect_timeout=rec.get("connect_timeout"),
                          actor=actor, rerun_of=rec["id"],
                          rollout=Rollout.from_dict(rec.get("rollout")),
                          out_dir=rec.get("out_dir"), transfer=_transfer_of(rec),
                          become=rec.get("become"), become_password=become_password)

    def _running(self, fanout_id: int) -> FanOut:
        fo = self._live.get(fanout_id)
        if fo is not None:
            return fo
        rec = self.get(fanout_id)
        if rec is None:
            raise NotFound(f"no fan-out #{fanout_id}")
        if not rec.get("finished_at"):  # a CLI's engine of its own runs it, or ran it
            raise EngineError(f"fan-out #{fanout_id} is not running here: a fleetdeck "
                              "without a daemon runs it (stop it there with Ctrl-C) or "
                              "died while it ran")
        raise EngineError(f"fan-out #{fanout_id} has ended; nothing to stop")

    def cancel(self, fanout_id: int) -> None:
        self._running(fanout_id).cancel()

    def cancel_host(self, fanout_id: int, host: str) -> None:
        """Cancel one host; the rest of the batch goes on."""
        fo = self._running(fanout_id)
        r = fo.results.get(host)
        if r is None:
            raise NotFound(f"fan-out #{fanout_id} has no host {host!r}")
        if r.final:
            raise EngineError(f"{host} of fan-out #{fanout_id} has ended ({r.state})")
        fo.cancel_host(host)

    def proceed(self, fanout_id: int) -> None:
        """Go on with a rolling fan-out held after its canary batch."""
        if not self._running(fanout_id).proceed():
            raise EngineError(f"fan-out #{fanout_id} is not waiting after its canary")

    def trust(self, fanout_id: int, hosts: list[str], *, actor: Actor) -> dict[str, Any]:
        """Trust the unknown host keys these hosts presented (exactly those fingerprints,
        as shown to the person) and run the command on them again."""
        from core.remote.runs import engine_pool

        rec = self.get(fanout_id)
        if rec is None:
            raise NotFound(f"no fan-out #{fanout_id}")
        pool = engine_pool(self.engine)
        names = []
        for name in hosts:
            r = rec["hosts"].get(name) or {}
            if r.get("state") == "host_key_unknown" and r.get("fingerprint"):
                pool.approve(name, r["fingerprint"])
                names.append(name)
                self.engine.audit(actor, "trust host key", [name], r["fingerprint"])
                log.warning("%s approved the host key of %s: %s", actor.user, name,
                            r["fingerprint"])
        if not names:
            raise EngineError("none of those hosts presented an unknown host key")
        return self._again(rec, names, actor)


def _how(rollout: Rollout) -> str:
    parts = [f"serial {','.join(map(str, rollout.serial))}"] if rollout.serial else []
    if rollout.max_fail is not None:
        parts.append(f"max-fail {rollout.max_fail}")
    if rollout.pause_between:
        parts.append(f"pause {rollout.pause_between:g}s")
    return ", ".join(parts)


def rollout_of(serial: str | None, max_fail: str | None,
               pause_between: str | float | None) -> Rollout:
    """A rollout from an API call's values (EngineError, one line, when one is wrong)."""
    try:
        return make_rollout(serial, max_fail, pause_between)
    except RolloutError as e:
        raise EngineError(str(e)) from None


def _out_dir(text: str) -> Path:
    try:
        return ready_folder(text, "out-dir")
    except TransferError as e:
        raise EngineError(str(e)) from None


def _transfer_of(rec: dict[str, Any]) -> Transfer | None:
    """A recorded push or pull planned again: its files as they are now."""
    return _planned(rec["transfer"]) if rec.get("transfer") else None


def transfer_of(kind: str, src: str, dest: str, mode: Any = None, owner: Any = None,
                backup: bool = False) -> Transfer:
    """A push or pull from the engine API's parameters (EngineError: one line)."""
    return _planned({"kind": kind, "src": src, "dest": dest, "mode": mode, "owner": owner,
                     "backup": backup})


def _planned(d: dict[str, Any]) -> Transfer:
    try:
        return transfer_from_dict(d)
    except TransferError as e:
        raise EngineError(str(e)) from None
