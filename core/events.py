"""Events and the EventBus: the only way state changes reach a screen or a notifier.

Events are plain dataclasses so they can cross a socket as JSON later
(`to_message` / `event_from_message`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

log = logging.getLogger("fleetdeck.events")


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_message(self) -> dict[str, Any]:
        """The event as a message, sharing its values (an event is immutable and its
        values are read, never changed: the socket encodes them at once)."""
        return {"event": self.kind, **self.__dict__}


@dataclass(frozen=True)
class RunQueued(Event):
    kind: ClassVar[str] = "run_queued"
    run: dict[str, Any]


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run: dict[str, Any]


@dataclass(frozen=True)
class OutputLine(Event):
    kind: ClassVar[str] = "output_line"
    run_id: int
    job: str
    host: str
    stream: str  # "stdout" | "stderr" | "fleetdeck" (notes the engine writes into the log)
    line: str
    ts: float


@dataclass(frozen=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    run: dict[str, Any]


@dataclass(frozen=True)
class RunRetrying(Event):
    kind: ClassVar[str] = "run_retrying"
    run: dict[str, Any]
    delay: float


@dataclass(frozen=True)
class JobChanged(Event):
    """A job's state changed: paused, resumed, next fire time moved, config reloaded."""

    kind: ClassVar[str] = "job_changed"
    job: dict[str, Any]


@dataclass(frozen=True)
class EngineNotice(Event):
    """Something the engine did and a person should see (recovery, misfire, reload)."""

    kind: ClassVar[str] = "engine_notice"
    level: str
    message: str
    job: str | None = None
    run_id: int | None = None
    ts: float = 0.0


@dataclass(frozen=True)
class CheckChanged(Event):
    """A health check's damped state changed on one target (core/health publishes it).

    States: "up", "warn", "crit" (answering; "warn"/"crit": over a threshold),
    "pending", "down" (the probe failed: no usable answer), "maintenance", "gave_up"
    (the watchdog stopped restarting). The alerts pipeline opens and resolves alerts
    from these.
    """

    kind: ClassVar[str] = "check_changed"
    check: str  # check name from the config
    target: str  # host name ("local" for the local host)
    old: str
    new: str
    at: float
    detail: str = ""  # what the last sample said, e.g. "tcp 10.0.0.5:80: connection refused"
    severity: str = "crit"  # "warn" for warn; "crit" for crit, down and gave_up
    cause: str = ""  # the trouble without the host: "connection refused", "cpu ≥ 98%"


@dataclass(frozen=True)
class RuleChanged(Event):
    """A log rule crossed its threshold (firing) or fell back (core/logrules publishes it)."""

    kind: ClassVar[str] = "rule_changed"
    rule: str
    source: str  # source name, or the group the rule counts across
    firing: bool
    count: float  # matches (or percent of lines) in the window when it changed
    threshold: float
    window: float  # seconds
    at: float
    detail: str = ""


_EVENT_TYPES: dict[str, type[Event]] = {}


def _register() -> None:
    for cls in (RunQueued, RunStarted, OutputLine, RunFinished, RunRetrying, JobChanged,
                EngineNotice, CheckChanged, RuleChanged):
        _EVENT_TYPES[cls.kind] = cls


_register()


def register_event(cls: type[Event]) -> type[Event]:
    """Other modules (fan-out, health) add their events here so messages round-trip."""
    _EVENT_TYPES[cls.kind] = cls
    return cls


def event_from_message(msg: dict[str, Any]) -> Event:
    kind = msg.get("event")
    cls = _EVENT_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in msg.items() if k in names})


Subscriber = Callable[[Event], None]


@dataclass
class _Stream:
    queue: asyncio.Queue[Event]
    kinds: frozenset[str] | None
    dropped: int = 0


@dataclass
class EventBus:
    """Fan events out to callbacks and bounded async streams.

    publish() never blocks and never raises: a failing subscriber is logged, and a stream
    whose reader falls behind drops its newest events (counted)
    so one slow pane cannot grow the engine's memory.
    """

    stream_limit: int = 10_000
    _subscribers: list[Subscriber] = field(default_factory=list)
    _streams: list[_Stream] = field(default_factory=list)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for cb in list(self._subscribers):
            try:
                cb(event)
            except Exception:  # a broken subscriber must not break the engine
                log.exception("event subscriber %r failed on %s", cb, event.kind)
        for st in self._streams:
            if st.kinds is not None and event.kind not in st.kinds:
                continue
            try:
                st.queue.put_nowait(event)
            except asyncio.QueueFull:
                st.dropped += 1

    async def stream(self, kinds: set[str] | None = None) -> AsyncIterator[Event]:
        st = _Stream(asyncio.Queue(self.stream_limit), frozenset(kinds) if kinds else None)
        self._streams.append(st)
        try:
            while True:
                yield await st.queue.get()
        finally:
            self._streams.remove(st)


# ------------------------------------------------- the services' events (one catalogue) ---
@register_event
@dataclass(frozen=True)
class LogLines(Event):
    kind: ClassVar[str] = "log_lines"
    source: str
    lines: list[tuple[float, str | None, str]]  # (time, level, text)
    skipped: int = 0  # lines before these that came too fast to show (in the file)


@register_event
@dataclass(frozen=True)
class HealthSample(Event):
    """One sample of one check on one target (light: what a pane needs to redraw)."""

    kind: ClassVar[str] = "health_sample"
    check: str
    target: str
    status: str  # ok | warn | crit
    state: str  # the damped state after it
    value: float | None
    detail: str
    at: float


@register_event
@dataclass(frozen=True)
class FanOutStarted(Event):
    kind: ClassVar[str] = "fanout_started"
    fanout: dict[str, Any]


@register_event
@dataclass(frozen=True)
class FanOutHost(Event):
    """One host's state changed; ``result`` is a HostResult as a dict."""

    kind: ClassVar[str] = "host_result"
    fanout_id: int
    result: dict[str, Any]


@register_event
@dataclass(frozen=True)
class FanOutBatch(Event):
    """A rolling fan-out's batch started, or (``held``) its canary ended and it waits
    for a person to go on."""

    kind: ClassVar[str] = "fanout_batch"
    fanout_id: int
    batch: int
    batches: int
    hosts: list[str]
    phase: str  # "started" | "held"


@register_event
@dataclass(frozen=True)
class FanOutLine(Event):
    kind: ClassVar[str] = "fanout_line"
    fanout_id: int
    host: str
    stream: str  # "stdout" | "stderr"
    line: str
    ts: float


@register_event
@dataclass(frozen=True)
class FanOutDone(Event):
    kind: ClassVar[str] = "fanout_done"
    fanout: dict[str, Any]


@register_event
@dataclass(frozen=True)
class AlertChanged(Event):
    """An alert opened, was acknowledged, silenced, reminded of, or resolved."""

    kind: ClassVar[str] = "alert_changed"
    alert: dict[str, Any]
    action: str  # opened | notified | acknowledged | silenced | reminded | resolved | updated
    notified: bool = False  # a notification was queued for this change


@register_event
@dataclass(frozen=True)
class ViewRefreshed(Event):
    """The attached view reread the state directory: screens redraw from it."""

    kind: ClassVar[str] = "view_refreshed"
    at: float


@register_event
@dataclass(frozen=True)
class ApprovalChanged(Event):
    """A workflow step's approval gate: `waiting` (a person is asked), then `approved`,
    `rejected`, `timed_out`, `cancelled` or `interrupted`. Published once on disk."""

    kind: ClassVar[str] = "approval_changed"
    run_id: int
    workflow: str
    step: str
    state: str
    by: tuple[str, ...]  # who may approve (users and @groups)
    decided_by: str = ""
    host: str = "local"
    requested_by: str | None = None
