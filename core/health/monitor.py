"""The HealthMonitor: every check on every target, each on its own interval.

One task per (check, target) sleeps to the next tick of its interval (ticks are aligned
to the clock, so a fleet is sampled together), takes one sample bounded by the check's
timeout, judges it against the thresholds, feeds the damper, and publishes:

* ``HealthSample`` for every sample (the screens draw from these), and
* ``core.events.CheckChanged`` when the damped state changes (the alerts pipeline).

A slow or dead host only delays its own task (core/health/sampling.py takes the
samples). Samples are kept per (check, target) in a ring (``HISTORY`` samples) and
written to ``health.json`` in the state directory now and then, so the trends survive a
restart. The watchdog: a check with `restart` runs it (as a run in history) when the
check goes down, then does not judge for `restart_grace`; after K restarts within the
window it gives up (`gave_up`, its own alert) until the check recovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.events import CheckChanged, HealthSample
from core.health.config import CheckSpec
from core.health.damping import (
    ANSWERING,
    CRIT,
    DOWN,
    GAVE_UP,
    MAINTENANCE,
    PENDING,
    UP,
    WARN,
    Damper,
)
from core.health.metrics import Rates
from core.health.probes import OK, Sample, down
from core.health.sampling import Sampler
from core.remote.inventory import LOCAL_HOST, TargetError, resolve_targets

log = logging.getLogger("fleetdeck.health")

HISTORY = 360  # samples kept per check and target (an hour at 10 s)
SAVE_EVERY = 60.0  # seconds between writes of the sample history


@dataclass
class CheckState:
    spec: CheckSpec
    target: str
    damper: Damper
    rates: Rates = field(default_factory=Rates)
    last: Sample | None = None
    history: deque[tuple[float, str, float | None]] = field(
        default_factory=lambda: deque(maxlen=HISTORY))
    state: str = PENDING  # the state last published (the damper's, or set from outside)
    since: float = 0.0  # when the state last changed
    maintenance_until: float | None = None
    grace_until: float = 0.0
    restarts: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.spec.name}@{self.target}"

    def to_dict(self) -> dict[str, Any]:
        last = self.last
        return {"check": self.spec.name, "kind": self.spec.kind, "target": self.target,
                "state": self.state, "since": self.since,
                "status": last.status if last else None,
                "detail": last.detail if last else "waiting for the first sample",
                "cause": last.cause if last else "",
                "value": last.value if last else None,
                "metrics": last.metrics if last else {},
                "at": last.at if last else None,
                "restarts": len(self.restarts),
                "maintenance_until": self.maintenance_until,
                "history": list(self.history)}


def restart_timeout(spec: CheckSpec) -> float:
    """How long a watchdog's restart may run: 12 times the check's timeout, at least a
    minute (a service's stop and start can take that)."""
    return max(spec.timeout * 12, 60.0)


class HealthMonitor:
    """An engine service (``engine.add_service``); `engine.health` finds it."""

    service_name = "health"

    def __init__(self, checks: dict[str, CheckSpec] | None = None, *,
                 clock: Any = time.time, pool: Any = None, watchdog: bool = True) -> None:
        self._specs = checks
        self.watchdog = watchdog  # False: a read-only console's, which restarts nothing
        self.clock = clock
        self._pool = pool
        self.engine: Any = None
        self.sampler: Sampler | None = None  # made at start, with the engine
        self.states: dict[str, CheckState] = {}
        self._tasks: list[asyncio.Task[None]] = []  # watchdog restarts
        self._loops: dict[str, asyncio.Task[None]] = {}  # one per check@target
        self._stopping = False  # the loops end by it too: a cancel can be lost (below)
        self._saver: asyncio.Task[None] | None = None
        self._path: Path | None = None

    # ------------------------------------------------------------------ life cycle ----
    async def start(self, engine: Any) -> None:
        self.engine = engine
        self._stopping = False
        self.sampler = Sampler(engine, self.clock, self._pool)
        specs = self._specs if self._specs is not None else engine.config.checks
        self.states = self._states_for(specs, engine.config.hosts)
        self._path = Path(engine.state_dir) / "health.json"
        self._load_history()
        self._count_past_restarts()
        for st in self.states.values():
            self._loops[st.key] = asyncio.ensure_future(self._loop(st))
        self._saver = asyncio.ensure_future(self._save_loop())

    def _count_past_restarts(self) -> None:
        """The restarts within each limit's window, from history: a daemon restarted
        mid-storm does not get K fresh restarts (the count was in memory only)."""
        if not self.watchdog or not hasattr(self.engine, "list_runs"):
            return
        now = self.clock()
        for st in self.states.values():
            spec = st.spec
            if not spec.restart:
                continue
            host = LOCAL_HOST if spec.restart_on == "local" else st.target
            runs = self.engine.list_runs(job=f"watchdog:{spec.name}", host=host,
                                         since=now - spec.restart_limit[1], limit=None)
            st.restarts = sorted(r["queued_at"] for r in runs)

    def _states_for(self, specs: dict[str, CheckSpec], hosts: Any) -> dict[str, CheckState]:
        now = self.clock()
        states = {}
        for spec in specs.values():
            if not spec.enabled:
                continue
            try:
                targets = resolve_targets(spec.targets, hosts)
            except TargetError as e:
                log.error("check %s: %s", spec.name, e)
                continue
            for target in targets:
                st = CheckState(spec, target, Damper(spec.fail, spec.recover), since=now)
                states[st.key] = st
        return states

    def reconfigure(self, config: Any) -> list[str]:
        """A reloaded config: unchanged checks go on (state, damping, history); changed
        and new ones start afresh; removed ones stop. Returns the checks touched."""
        if self._specs is not None:
            return []  # given its checks directly (tests, benches): not the config's
        wanted = self._states_for(config.checks, config.hosts)
        touched = set()
        for key, st in list(self.states.items()):
            new = wanted.get(key)
            if new is None or new.spec != st.spec:
                task = self._loops.pop(key, None)
                if task is not None:
                    task.cancel()
                del self.states[key]
                touched.add(f"check {st.spec.name}")
                if st.state != UP and self.engine is not None:  # its alert must not linger
                    self.engine.bus.publish(CheckChanged(
                        st.spec.name, st.target, st.state, UP, self.clock(),
                        "the check was " + ("removed" if new is None else "changed")
                        + " by a config reload"))
        for key, st in wanted.items():
            if key not in self.states:
                self.states[key] = st
                self._loops[key] = asyncio.ensure_future(self._loop(st))
                touched.add(f"check {st.spec.name}")
        return sorted(touched)

    async def stop(self) -> None:
        # Python 3.11's wait_for loses a cancel that lands as the probe it waits for
        # completes; the loop then went on sampling and stop() waited for it forever
        self._stopping = True
        tasks = [*self._loops.values(), *self._tasks, *([self._saver] if self._saver else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._loops = {}
        if self.sampler is not None:
            await self.sampler.aclose()
        self._save_history()

    # --------------------------------------------------------------------- reading ----
    def snapshot(self) -> list[dict[str, Any]]:
        return [st.to_dict() for st in self.states.values()]

    def hosts(self) -> list[dict[str, Any]]:
        """One row per host: whether it answers (`state`: down when a check's probe
        fails, else its worst of pending, maintenance, up), apart from how it does
        (`level`: ok, warn or crit, the worst threshold crossed on it), its latest
        metrics, failing checks and CPU trend."""
        order = {DOWN: 0, GAVE_UP: 0, PENDING: 2, MAINTENANCE: 3, UP: 4}
        levels = ("ok", WARN, CRIT)
        rows: dict[str, dict[str, Any]] = {}
        for st in self.states.values():
            row = rows.setdefault(st.target, {"host": st.target, "state": UP, "level": "ok",
                                              "checks": 0, "failing": [], "metrics": {},
                                              "cpu_trend": []})
            row["checks"] += 1
            state = UP if st.state in ANSWERING else st.state
            if order.get(state, 9) < order.get(row["state"], 9):
                row["state"] = state
            if st.state in (WARN, CRIT) and levels.index(st.state) > levels.index(row["level"]):
                row["level"] = st.state
            if st.state not in (UP, PENDING, MAINTENANCE) or (st.last and st.last.status != OK):
                row["failing"].append(st.spec.name)
            if st.spec.kind == "metrics" and st.last is not None:
                row["metrics"] = st.last.metrics
                row["cpu_trend"] = [v for _, _, v in st.history]
        return sorted(rows.values(), key=lambda r: (order.get(r["state"], 9),
                                                    -levels.index(r["level"]), r["host"]))

    # ------------------------------------------------------------------- acting ----
    def set_maintenance(self, target: str | None = None, check: str | None = None,
                        until: float | None = None) -> int:
        """Put the checks of a target and/or a check name in maintenance until `until`
        (None ends it). No alert opens for a state change meanwhile. Returns how many."""
        n = 0
        for st in self.states.values():
            if (target is None or st.target == target) and (check is None
                                                             or st.spec.name == check):
                n += 1
                st.maintenance_until = until
                if until is not None:
                    self._change(st, MAINTENANCE, "maintenance window")
                else:
                    st.damper.reset(st.state)
                    self._change(st, PENDING, "maintenance over")
        return n

    async def sample_once(self, check: str, target: str) -> Sample:
        """One sample now, outside the schedule (the CLI's `fleetdeck health`)."""
        st = self.states[f"{check}@{target}"]
        return await self._sample(st)

    # --------------------------------------------------------------------- the loop ---
    async def _loop(self, st: CheckState) -> None:
        interval = st.spec.interval
        while not self._stopping:
            now = self.clock()
            tick = (now // interval + 1) * interval  # aligned: the fleet is sampled together
            await asyncio.sleep(max(0.0, tick - now))
            try:
                sample = await self._sample(st)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the check: it shows as failing
                log.exception("check %s on %s failed inside fleetdeck", st.spec.name, st.target)
                sample = down("fleetdeck could not take the sample (its log says why)")
            sample.at = self.clock()
            self._judge(st, sample, tick)

    async def _sample(self, st: CheckState) -> Sample:
        assert self.sampler is not None
        return await self.sampler.sample(st.spec, st.target, st.rates)

    # ------------------------------------------------------------------- judging ---
    def _judge(self, st: CheckState, sample: Sample, tick: float) -> None:
        st.last = sample
        st.history.append((round(sample.at, 3), sample.status, sample.value))
        now = sample.at
        if st.maintenance_until is not None:
            if now < st.maintenance_until:
                self._publish_sample(st, sample)
                return
            st.maintenance_until = None
            st.damper.reset(st.state)
            self._change(st, PENDING, "maintenance over")
        if now < st.grace_until:  # a restart is settling: recorded, not judged
            self._publish_sample(st, sample)
            return
        # the one verdict: a threshold crossed is warn or crit on an answering target,
        # only a failed probe counts towards down (and the watchdog)
        new = st.damper.add(sample.status)
        if new is not None:
            self._change(st, new, sample.detail, sample.cause)
            if new == DOWN:
                self._watchdog(st, now)
        self._publish_sample(st, sample)

    def _publish_sample(self, st: CheckState, sample: Sample) -> None:
        self.engine.bus.publish(HealthSample(st.spec.name, st.target, sample.status,
                                             st.state, sample.value, sample.detail, sample.at))

    def _change(self, st: CheckState, new: str, detail: str, cause: str = "") -> None:
        """Publish a state change (once): the damper's verdict, or one set from outside.
        Its severity is the state's own: warn for warn, crit for crit, down, gave_up."""
        old = st.state
        st.damper.force(new)
        if old == new:
            return
        st.state = new
        st.since = self.clock()
        severity = WARN if new == WARN else CRIT
        log.log(logging.WARNING if new in (DOWN, GAVE_UP, CRIT) else logging.INFO,
                "check %s on %s: %s -> %s: %s", st.spec.name, st.target, old, new, detail)
        self.engine.bus.publish(CheckChanged(st.spec.name, st.target, old, new, st.since,
                                             detail, severity, cause))

    def _watchdog(self, st: CheckState, now: float) -> None:
        spec = st.spec
        if not spec.restart or not self.watchdog:
            return
        window_name = self._maintenance(st)
        if window_name is not None:  # a person stopped it on purpose: no fight over it
            log.info("watchdog %s on %s: down in maintenance %s; no restart", spec.name,
                     st.target, window_name)
            return
        k, window = spec.restart_limit
        # restarts count within the window whatever came between: a service that comes
        # back by itself and dies again (flapping) is not restarted more than K times
        st.restarts = [t for t in st.restarts if now - t < window]
        if len(st.restarts) >= k:
            self._change(st, GAVE_UP, f"{len(st.restarts)} restarts within "
                                      f"{window:g}s did not help; giving up")
            return
        st.restarts.append(now)
        st.grace_until = math.inf  # not judged while the restart runs: one at a time
        st.damper.reset(PENDING)  # judged afresh after a restart: N more failures to act
        host = LOCAL_HOST if spec.restart_on == "local" else st.target
        from core.jobs.runs import Trigger

        async def restart() -> None:
            try:
                run = await self.engine.run_action(
                    f"watchdog:{spec.name}", spec.restart, host, trigger=Trigger.WATCHDOG,
                    timeout=restart_timeout(spec), requested_by="watchdog")
                await self.engine.wait_run(run["id"])
            except Exception as e:
                log.error("watchdog %s on %s: cannot start the restart: %s", spec.name,
                          st.target, e)
            finally:  # the grace counts from the restart's end, as Monit's does
                st.grace_until = self.clock() + spec.restart_grace

        log.warning("watchdog %s on %s: restart %d of %d within %gs: %s", spec.name, st.target,
                    len(st.restarts), k, window, spec.restart)
        self._tasks.append(asyncio.ensure_future(restart()))

    def _maintenance(self, st: CheckState) -> str | None:
        """The maintenance window covering this check on this target now, if any."""
        alerts = getattr(self.engine, "alerts", None)
        if alerts is None:
            return None
        return alerts.in_maintenance(st.spec.name, st.target)

    # ------------------------------------------------------------------- history ---
    def _load_history(self) -> None:
        import json

        if self._path is None or not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_bytes())
            history = data["history"]
            if not isinstance(history, dict):
                raise ValueError("'history' is not an object")
        except OSError as e:
            log.warning("health history %s unreadable (%s); starting empty", self._path, e)
            return
        except (ValueError, KeyError, TypeError) as e:  # not JSON, or not ours: kept aside
            from core.store.storage import quarantine

            quarantine(self._path, str(e) or type(e).__name__)
            return
        for key, rows in history.items():
            st = self.states.get(key)
            if st is not None:
                st.history.extend(tuple(r) for r in rows[-HISTORY:])  # type: ignore[misc]

    def _history_bytes(self) -> bytes:
        """The trends as JSON (made on the loop's thread: the states change there)."""
        import json

        data = {"history": {k: list(st.history) for k, st in self.states.items()}}
        return json.dumps(data, separators=(",", ":")).encode()

    def _save_history(self, data: bytes | None = None) -> None:
        """health.json is a plain JSON file, not a TinyDB one: written whole, atomically."""
        if self._path is None:
            return
        from core.store.storage import atomic_write

        try:
            atomic_write(self._path, self._history_bytes() if data is None else data)
        except OSError as e:
            log.error("cannot write health history %s: %s", self._path, e)

    async def _save_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(SAVE_EVERY)
            await asyncio.to_thread(self._save_history, self._history_bytes())


async def sample_all(engine: Any, pattern: str | None = None) -> list[dict[str, Any]]:
    """One sample of every check on every target (matching `pattern`), now, all at once:
    `fleetdeck health` without a running engine. `engine` need not be started: its config,
    bus and SSH pool are used."""
    from core.remote.runs import close_engine_pool

    sampler = Sampler(engine)
    wanted = set(resolve_targets(pattern, engine.config.hosts)) if pattern else None
    pairs = []
    for spec in engine.config.checks.values():
        if not spec.enabled:
            continue
        for target in resolve_targets(spec.targets, engine.config.hosts):
            if wanted is None or target in wanted:
                pairs.append((spec, target))
    try:
        samples = await asyncio.gather(*(sampler.sample(spec, target, Rates())
                                         for spec, target in pairs))
    finally:
        await sampler.aclose()
        await close_engine_pool(engine)
    return [{"check": spec.name, "kind": spec.kind, "target": target,
             "status": s.status, "detail": s.detail, "cause": s.cause, "value": s.value,
             "metrics": s.metrics}
            for (spec, target), s in zip(pairs, samples, strict=True)]
