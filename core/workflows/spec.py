"""A workflow as the engine runs it: its steps, their edges (`needs`), when each runs,
and the approval gate in front of a step. Plain frozen data, read from
`[workflows.NAME]` (core/workflows/config.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.remote.rollout import Rollout

WHEN = ("success", "failure", "always")
ON_TIMEOUT = ("fail", "skip")
# how a step ended, as its record says; "rejected" is a gate a person said no to
FAILED_STEP = frozenset({"failed", "timed_out", "interrupted", "rejected"})
FINAL_STEP = FAILED_STEP | {"succeeded", "skipped", "cancelled"}


@dataclass(frozen=True)
class Gate:
    """Who may let a step start (user names and `@group`s of this machine), how long the
    run waits for them, and what a timeout means."""

    by: tuple[str, ...]
    timeout: float | None = None
    on_timeout: str = "fail"
    allow_self: bool = False  # the person who requested the run may approve it too

    def describe(self) -> str:
        return ", ".join(self.by)


@dataclass(frozen=True)
class Step:
    name: str
    job: str | None = None  # a configured job, or:
    command: str | None = None  # an inline command, or:
    push: dict[str, Any] | None = None  # files pushed over SFTP
    targets: str | None = None  # None: the job's, or the workflow run's host
    needs: tuple[str, ...] = ()
    when: str = "success"
    timeout: float | None = None
    timeout_set: bool = False  # the step says its own timeout (None: no limit)
    retries: int | None = None
    retry_backoff: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    rollout: Rollout | None = None
    approve: Gate | None = None


@dataclass(frozen=True)
class WorkflowSpec:
    name: str
    steps: tuple[Step, ...]
    order: tuple[str, ...]  # the step names, every step after the steps it needs

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {s.name: s for s in self.steps})

    def step(self, name: str) -> Step:
        return self._by_name[name]  # type: ignore[attr-defined, no-any-return]

    def ancestors(self, name: str) -> list[str]:
        """Every step `name` needs, directly or not, in the workflow's order."""
        needs = {s.name: s.needs for s in self.steps}
        seen: set[str] = set()
        todo = list(needs.get(name, ()))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(needs.get(n, ()))
        return [n for n in self.order if n in seen]


def find_cycle(edges: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle of `needs` edges as its path (`a -> b -> a`), or None: the first one found
    walking the steps in their written order."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(edges, WHITE)
    for root in edges:
        if color[root] != WHITE:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path = [root]
        color[root] = GREY
        while stack:
            node, i = stack[-1]
            nexts = [n for n in edges.get(node, ()) if n in edges]
            if i < len(nexts):
                stack[-1] = (node, i + 1)
                n = nexts[i]
                if color[n] == GREY:
                    return path[path.index(n):] + [n]
                if color[n] == WHITE:
                    color[n] = GREY
                    stack.append((n, 0))
                    path.append(n)
            else:
                color[node] = BLACK
                stack.pop()
                path.pop()
    return None


def topological(edges: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The steps in an order that puts each after what it needs, ties in written order
    (Kahn's algorithm); the graph has no cycle (checked first)."""
    names = list(edges)
    rank = {n: i for i, n in enumerate(names)}
    waiting = {n: len([m for m in edges[n] if m in edges]) for n in names}
    users: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        for m in edges[n]:
            if m in users:
                users[m].append(n)
    import heapq

    ready = [(rank[n], n) for n in names if waiting[n] == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, n = heapq.heappop(ready)
        out.append(n)
        for u in users[n]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, (rank[u], u))
    return tuple(out)
