"""How a fan-out's hosts ended: one `HostResult` per host, the counts per class, the
summary line and the exit status that the CLI, the console and a rerun all read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.remote.classes import CONNECT_CLASSES, HostClass

PENDING, CONNECTING, RUNNING = "pending", "connecting", "running"
FINAL = tuple(c.value for c in HostClass)


@dataclass
class HostResult:
    host: str
    state: str = PENDING  # pending | connecting | running | a HostClass value
    exit_code: int | None = None
    reason: str = ""
    fingerprint: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    lines: int = 0
    bytes: int = 0
    digest: str = ""  # sha256 of the output, for gathering identical outputs
    batch: int | None = None  # a rolling fan-out's batch (1 first), None when not rolling
    changed: bool | None = None  # a push or pull: whether it changed anything
    node: str | None = None  # in a cluster: the worker that ran it

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        """Every field holds a scalar, so a shallow copy is the whole copy (``asdict``'s
        deep copy was the larger part of publishing a host's change)."""
        d = dict(self.__dict__)
        d["duration"] = self.duration
        return d


def counts(results: Iterable[HostResult | dict[str, Any]]) -> dict[str, int]:
    """Hosts per class (and per in-progress state), in HostClass order."""
    out: dict[str, int] = {}
    for r in results:
        state = r.state if isinstance(r, HostResult) else r["state"]
        out[state] = out.get(state, 0) + 1
    order = [*FINAL, PENDING, CONNECTING, RUNNING]
    return {k: out[k] for k in order if k in out}


def exit_status(results: Iterable[HostResult | dict[str, Any]]) -> int:
    """0 all ok; 3 any unreachable or refused (auth, host key); else 1 any not ok."""
    c = counts(results)
    if any(c.get(k.value) for k in CONNECT_CLASSES):
        return 3
    if any(n for k, n in c.items() if k != HostClass.OK.value):
        return 1
    return 0


def abandoned(rec: dict[str, Any], why: str, now: float) -> dict[str, Any]:
    """A fan-out record whose process died before it ended (kill -9, a Ctrl-C before it
    could write its end): its unfinished hosts end `cancelled` with `why`, and the
    record ends with the counts and exit status of what it holds."""
    hosts = {n: h if h.get("state") in FINAL else
             dict(h, state=HostClass.CANCELLED.value, reason=why, finished_at=now)
             for n, h in (rec.get("hosts") or {}).items()}
    roll = rec.get("rollout")
    return dict(rec, hosts=hosts, state="cancelled", finished_at=now, interrupted=why,
                counts=counts(hosts.values()), exit_status=exit_status(hosts.values()),
                rollout=dict(roll, held=False) if roll else roll)


def summary_line(results: Iterable[HostResult | dict[str, Any]], elapsed: float | None = None,
                 fanout_id: int | None = None) -> str:
    """"12 ok, 1 failed (13 hosts, 2.1s, fan-out #4)"; a push or pull's ok hosts say how
    many changed: "12 ok (3 changed, 9 unchanged)"."""
    rs = list(results)
    parts = [f"{n} {k}" for k, n in counts(rs).items()]
    moved = [(r.changed if isinstance(r, HostResult) else r.get("changed")) for r in rs
             if (r.state if isinstance(r, HostResult) else r["state"]) == HostClass.OK.value]
    if parts and parts[0].endswith(" ok") and any(c is not None for c in moved):
        n = sum(1 for c in moved if c)
        parts[0] += f" ({n} changed, {len(moved) - n} unchanged)"
    tail = f"{len(rs)} host{'s' if len(rs) != 1 else ''}"
    if elapsed is not None:
        tail += f", {elapsed:.1f}s"
    if fanout_id:
        tail += f", fan-out #{fanout_id}"
    return f"{', '.join(parts) or 'no hosts'} ({tail})"


def hosts_of(record: Mapping[str, Any], classes: Iterable[str]) -> list[str]:
    """Host names of a fan-out record whose class is one of `classes`."""
    wanted = set(classes)
    return [h for h, r in record.get("hosts", {}).items() if r.get("state") in wanted]
