"""`[checks.NAME]` in the config: what to probe, where, how often, and when it is bad.

    [checks.web-http]
    kind = "http"                    # metrics | tcp | http | process | command | ssh
    targets = "@web"                 # a target pattern (default "local")
    url = "http://{address}:8080/health"   # {host} and {address} of each target
    status = [200]                   # http: expected status codes (default 200-399)
    body = "ok"                      # http: substring the body must hold (or regex = "...")
    follow_redirects = true          # http: follow up to 5 redirects, judge the last answer
    latency = ["300ms", "1s"]        # http/tcp: warn and crit latency
    interval = "30s"
    timeout = "5s"
    fail = [3, 5]                    # down after 3 failed probes of the last 5 (warn,
                                     # crit: after 3 samples over that threshold)
    recover = [2, 3]                 # answering again after 2 of the last 3
    restart = "systemctl restart app"   # the watchdog: run on down (on the target)
    restart_grace = "30s"            # not judged for this long after a restart
    restart_limit = [3, "10m"]       # at most 3 restarts in 10 minutes, then gave_up

Metrics thresholds are [warn, crit] pairs in percent (`cpu`, `memory`, `swap`, `disk`,
`inodes`) or per core (`load`). A threshold crossed makes the check `warn` or `crit` on a
host that answers; only a failed probe makes it `down` (core/health/damping.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.confguard import clip, regex_problem
from core.durations import MIN_INTERVAL
from core.schema import Key, Section

KINDS = ("metrics", "tcp", "http", "process", "command", "ssh")
METRIC_KEYS = ("cpu", "memory", "swap", "disk", "inodes", "load")
DEFAULT_METRICS = {"cpu": (90.0, 98.0), "memory": (90.0, 97.0), "disk": (85.0, 95.0),
                   "inodes": (85.0, 95.0)}
CHECK = Section("checks", "health checks: what to probe, where, how often, when it is bad", (
    Key("kind", "string", "what to probe", choices=KINDS, required=True),
    Key("targets", "pattern", "the hosts it checks", "local"),
    Key("interval", "duration", "time between samples (10s for metrics, else 30s)"),
    Key("timeout", "duration", "a sample that takes longer is a failure", "5s"),
    Key("fail", "n-of-m", "down after N failed probes of the last M (warn/crit: N samples "
        "over that threshold)", [3, 5]),
    Key("recover", "n-of-m", "answering again (or back under a threshold) after N of the "
        "last M", [2, 3]),
    Key("port", "integer", "tcp: the port", minimum=1, maximum=65535),
    Key("url", "string", "http: the URL; {host} and {address} of each target"),
    Key("status", "status", "http: expected status codes (default: 200-399)"),
    Key("body", "string", "http: text the body must hold"),
    Key("regex", "string", "http: a regex the body must match"),
    Key("follow_redirects", "boolean", "http: follow up to 5 redirects and judge the last "
        "answer (false: judge the redirect itself)", True),
    Key("latency", "duration-pair", "http/tcp: [warn, crit] latency"),
    Key("pattern", "string", "process: a regex on the command line"),
    Key("command", "string", "command: exit 0 ok, 1 warn, other crit (killed: down)"),
    Key("restart", "string", "the watchdog: run this when the check goes down"),
    Key("restart_on", "string", "where the restart runs", "target",
        choices=("target", "local")),
    Key("restart_grace", "duration", "not judged for this long after a restart", "30s"),
    Key("restart_limit", "limit", "at most K restarts in a window, then gave_up",
        [3, "10m"]),
    Key("enabled", "boolean", "false: not run", True),
    Key("description", "text", "one line for the console", ""),
    Key("remediation", "string", "a workflow its alert offers to run on its host"),
    *(Key(m, "pair", f"metrics: [warn, crit] {m}" + (" per core" if m == "load" else
                                                       " percent"), minimum=0,
          maximum=1000 if m == "load" else 100) for m in METRIC_KEYS),
), named=True)
_ONLY = {"port": ("tcp",), "url": ("http",), "status": ("http",), "body": ("http",),
         "regex": ("http",), "follow_redirects": ("http",), "latency": ("tcp", "http"),
         "pattern": ("process",), "command": ("command",)}  # keys of some kinds only
_NEEDS = {"tcp": ("port",), "http": ("url",), "process": ("pattern",),
          "command": ("command",)}


@dataclass(frozen=True)
class CheckSpec:
    name: str
    kind: str
    targets: str = "local"
    interval: float = 30.0
    timeout: float = 5.0
    fail: tuple[int, int] = (3, 5)
    recover: tuple[int, int] = (2, 3)
    thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)
    port: int | None = None
    url: str | None = None
    status: tuple[int, ...] = ()  # empty: any 2xx or 3xx
    body: str | None = None
    regex: str | None = None
    follow_redirects: bool = True  # http: judge the answer at the end of the redirects
    latency: tuple[float, float] | None = None  # seconds: warn, crit
    pattern: str | None = None
    command: str | None = None
    restart: str | None = None
    restart_on: str = "target"  # "target" | "local"
    restart_grace: float = 30.0
    restart_limit: tuple[int, float] = (3, 600.0)
    enabled: bool = True
    description: str = ""
    remediation: str | None = None  # a workflow (core/workflows/)


def read_checks(c: Any, doc: dict[str, Any], hosts: dict[str, Any]) -> dict[str, CheckSpec]:
    """Every `[checks.NAME]` table, each mistake a one-line issue with its key path."""
    section = doc.get("checks")
    if section is None:
        return {}
    section = c.table(section, ("checks",))
    if section is None:
        return {}
    out: dict[str, CheckSpec] = {}
    for name, raw in section.items():
        p = ("checks", name)
        t = c.table(raw, p)
        if t is None or not c.name_ok(name, "check", p):
            continue
        c.known_keys(t, CHECK.names(), p)
        kind = c.choice(t, "kind", p, "", KINDS)
        if not kind:
            if "kind" not in t:
                c.add(p, f"missing key 'kind' (one of {', '.join(KINDS)})")
            continue
        for key in _NEEDS.get(kind, ()):
            if key not in t:
                c.add(p, f"missing key '{key}' (a {kind} check needs it)")
        for key in t:
            if kind in KINDS and kind not in _ONLY.get(key, (kind,)):
                c.add(p + (key,), f"{key} is for {' and '.join(_ONLY[key])} checks; a {kind} "
                                  f"check does not use it")
        targets = c.string(t, "targets", p, "local")
        _check_targets(c, targets, p + ("targets",), hosts)
        spec = CheckSpec(
            name=name, kind=kind, targets=targets,
            interval=_positive(c, t, "interval", p, 10.0 if kind == "metrics" else 30.0,
                               floor=MIN_INTERVAL),
            timeout=_positive(c, t, "timeout", p, 5.0),
            fail=_n_of_m(c, t, "fail", p, (3, 5)),
            recover=_n_of_m(c, t, "recover", p, (2, 3)),
            thresholds=_thresholds(c, t, p, kind),
            port=c.integer(t, "port", p, None, minimum=1, maximum=65535) if "port" in t
            else None,
            url=_url(c, t, p),
            status=_status(c, t, p),
            body=c.string(t, "body", p, None),
            regex=_regex(c, t, "regex", p),
            follow_redirects=c.boolean(t, "follow_redirects", p, True),
            latency=_pair(c, t, "latency", p, durations=True),
            pattern=_regex(c, t, "pattern", p),
            command=c.string(t, "command", p, None),
            restart=c.string(t, "restart", p, None),
            restart_on=c.choice(t, "restart_on", p, "target", ("target", "local")),
            restart_grace=_positive(c, t, "restart_grace", p, 30.0),
            restart_limit=_limit(c, t, p),
            enabled=c.boolean(t, "enabled", p, True),
            description=c.string(t, "description", p, "", nonempty=False),
            remediation=c.string(t, "remediation", p, None, line=True),
        )
        out[name] = spec
    return out


def _check_targets(c: Any, targets: str, path: tuple[str, ...],
                   hosts: dict[str, Any]) -> None:
    from core.remote.inventory import check_pattern

    for problem in check_pattern(targets, hosts):
        c.add(path, problem)


def _positive(c: Any, t: dict[str, Any], key: str, p: tuple[str, ...], default: float, *,
              floor: float = 0.0) -> float:
    value = c.duration(t, key, p, default)
    if value is not None and (value <= 0 or value < floor):
        c.add(p + (key,), f"{key} must be more than 0" if not floor else
              f"{key} must be at least {floor * 1000:g}ms (samples that often would fill "
              f"a core and flap the check)")
        return default
    return value


def _n_of_m(c: Any, t: dict[str, Any], key: str, p: tuple[str, ...],
            default: tuple[int, int]) -> tuple[int, int]:
    value = t.get(key)
    if value is None:
        return default
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        c.add(p + (key,), f"{key} must be [N, M]: N failing samples of the last M, "
                          f"e.g. [3, 5]")
        return default
    n, m = value
    if not 1 <= n <= m <= 100:
        c.add(p + (key,), f"{key} = [{n}, {m}]: need 1 <= N <= M <= 100")
        return default
    return (n, m)


def _pair(c: Any, t: dict[str, Any], key: str, p: tuple[str, ...], *,
          durations: bool = False) -> tuple[float, float] | None:
    value = t.get(key)
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2):
        example = '["300ms", "1s"]' if durations else "[80, 95]"
        c.add(p + (key,), f"{key} must be [warn, crit], e.g. {example}")
        return None
    out: list[float] = []
    for i, v in enumerate(value):
        if durations:
            got = c.duration({key: v}, key, p, None)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            lo, hi = CHECK[key].minimum or 0, CHECK[key].maximum or 0
            if not lo <= v <= hi:  # nan fails too
                c.add(p + (key,), f"{key}[{i}] must be {lo:g}..{hi:g}, got {clip(v)}")
                return None
            got = float(v)
        else:
            c.add(p + (key,), f"{key}[{i}] must be a number, got {clip(v)}")
            got = None
        if got is None:
            return None
        out.append(got)
    if out[0] > out[1]:
        c.add(p + (key,), f"{key}: warn {clip(value[0])} is above crit {clip(value[1])}")
        return None
    return (out[0], out[1])


def _thresholds(c: Any, t: dict[str, Any], p: tuple[str, ...],
                kind: str) -> dict[str, tuple[float, float]]:
    found = {k: _pair(c, t, k, p) for k in METRIC_KEYS if k in t}
    if found and kind != "metrics":
        for k in found:
            c.add(p + (k,), f"{k} thresholds apply to metrics checks only")
        return {}
    if kind != "metrics":
        return {}
    out = dict(DEFAULT_METRICS)
    out.update({k: v for k, v in found.items() if v is not None})
    return out


def _url(c: Any, t: dict[str, Any], p: tuple[str, ...]) -> str | None:
    url = c.string(t, "url", p, None)
    if url is not None and not re.match(r"^https?://[^/\s]+", url):
        c.add(p + ("url",), f"url must start with http:// or https://, got {clip(url)}")
        return None
    if url is not None and "${" in url:  # it would be sent as written, the token unsent
        c.add(p + ("url",), "a check's url fills in {host} and {address} only, not ${...} "
                            "references (those are for a job's env and a notifier)")
        return None
    unknown = [m for m in re.findall(r"\{([a-z_]+)\}", url or "")  # {job="x"}: PromQL
               if m not in ("host", "address")]
    if unknown:
        c.add(p + ("url",), f"unknown placeholder {{{unknown[0][:40]}}} in the url "
                            "({host} is the target's name, {address} its address)")
        return None
    return url


def _status(c: Any, t: dict[str, Any], p: tuple[str, ...]) -> tuple[int, ...]:
    value = t.get("status")
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599
               for v in values):
        c.add(p + ("status",), "status must be an HTTP status code or a list of them")
        return ()
    return tuple(values)


def _regex(c: Any, t: dict[str, Any], key: str, p: tuple[str, ...]) -> str | None:
    value = c.string(t, key, p, None)
    if value is None:
        return None
    _rx, problem = regex_problem(value)
    if problem:
        c.add(p + (key,), f"bad regex {clip(value)}: {problem}")
        return None
    return value


def _limit(c: Any, t: dict[str, Any], p: tuple[str, ...]) -> tuple[int, float]:
    value = t.get("restart_limit")
    if value is None:
        return (3, 600.0)
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
            and not isinstance(value[0], bool) and 1 <= value[0] <= 1000):
        c.add(p + ("restart_limit",), 'restart_limit must be [K, window], K 1..1000, '
                                      'e.g. [3, "10m"]')
        return (3, 600.0)
    window = c.duration({"restart_limit": value[1]}, "restart_limit", p, None)
    if window is None:
        return (3, 600.0)
    if window <= 0:
        c.add(p + ("restart_limit",), "restart_limit's window must be more than 0, e.g. "
                                      '[3, "10m"]')
        return (3, 600.0)
    return (value[0], window)
