"""`[cluster]`: the Redis a cluster of fleetdeck daemons shares, this node's name and
capacity, the lease's timing. Without it nothing changes: one engine on its TinyDB."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from core.config import Checker, check_references, section
from core.schema import Key, Section

CLUSTER = Section("cluster", "several daemons on one Redis: one leader schedules, every "
                  "occurrence runs once across them", (
    Key("redis", "string", "redis://[:${PASSWORD}@]HOST:PORT/DB, rediss:// for TLS",
        example="redis://127.0.0.1:6379/0"),
    Key("node", "string", "this node's name, unique (default: the host name)"),
    Key("capacity", "integer", "runs at once here (default: max_concurrent_runs)",
        minimum=1, maximum=10_000),
    Key("lease", "duration", "a dead leader is replaced within this", "5s", minimum=0.3),
    Key("heartbeat", "duration", "how often a node renews and says it lives", "1s",
        minimum=0.1),
    Key("visibility", "duration", "a silent worker's runs are taken over after", "30s"),
    Key("prefix", "string", "the keys' prefix (clusters sharing a Redis)", "fleetdeck"),
))


@dataclass(frozen=True)
class ClusterConfig:
    redis: str
    node: str
    capacity: int | None = None
    lease: float = 5.0
    heartbeat: float = 1.0
    visibility: float = 30.0
    prefix: str = "fleetdeck"


def read_cluster(c: Checker, doc: dict[str, Any]) -> ClusterConfig | None:
    if "cluster" not in doc:
        return None
    t = section(c, doc, "cluster")
    p = ("cluster",)
    c.known_keys(t, CLUSTER.names(), p)
    url = c.string(t, "redis", p, None, line=True)
    if url is None:
        c.add(p, "missing key 'redis' (e.g. redis = \"redis://127.0.0.1:6379/0\")")
        return None
    problem = url_problem(url)
    if problem:
        c.add(p + ("redis",), problem)
    check_references(c, p + ("redis",), url)
    node = c.string(t, "node", p, None, line=True) or socket.gethostname()
    if node is not None:
        c.name_ok(node, "node", p + ("node",))
    lease = c.read(t, CLUSTER["lease"], p)
    beat = c.read(t, CLUSTER["heartbeat"], p)
    if beat * 3 > lease:
        c.add(p + ("heartbeat",), f"heartbeat ({beat:g}s) must be at most a third of the "
                                  f"lease ({lease:g}s): a leader renews it in time")
    seen = c.read(t, CLUSTER["visibility"], p)
    if seen < beat * 5:  # two beats missed are retried at once, the third after two
        c.add(p + ("visibility",), f"visibility ({seen:g}s) must be at least five "
                                   f"heartbeats ({beat * 5:g}s): a live worker keeps its "
                                   "runs")
    return ClusterConfig(redis=url, node=node, capacity=c.read(t, CLUSTER["capacity"], p),
                         lease=lease, heartbeat=beat, visibility=seen,
                         prefix=c.string(t, "prefix", p, "fleetdeck", line=True))


def url_problem(url: str) -> str:
    """Why a Redis URL cannot be used, or '' (redis-py's forms: the database is the
    path of redis:// and rediss://, ?db=N for a unix:// socket path)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        return f"not a Redis URL: {e}"
    shown = repr(safe_url(url))
    if parts.scheme not in ("redis", "rediss", "unix"):
        return f"not a Redis URL (redis://, rediss:// or unix://): {shown}"
    if parts.scheme == "unix":
        if not parts.path.startswith("/"):
            return f"no socket path in {shown} (unix:///run/redis/redis.sock)"
        db = parse_qs(parts.query).get("db", [""])[-1]
    else:
        if not parts.hostname:
            return f"no host in {shown}"
        db = parts.path.strip("/")
    if port is not None and not 0 < port < 65536:
        return f"port {port} out of range"
    if db and not db.isdigit():
        return f"the database must be a number, got {db!r}"
    return ""


def safe_url(url: str) -> str:
    """The URL as it may be shown: its password as ***."""
    try:
        parts = urlsplit(url)
        if not parts.password:
            return url
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<a Redis URL>"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}{port}"))
