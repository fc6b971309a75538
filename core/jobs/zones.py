"""Time zones: the host's zone name, found as the system finds it, and offset changes.

The host zone is looked up in the order the C library and systemd use: ``$TZ`` (a name,
``:name`` or a path), ``/etc/timezone``, the ``/etc/localtime`` symlink's target, and,
when /etc/localtime is a regular (copied) file, the zoneinfo file with the same bytes;
only then UTC. Every path is a parameter, so tests can point it at a directory of their
own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["first_offset_change", "local_timezone_name", "offset_changes", "zone_or_none",
           "zoneinfo_dirs"]

_SYSTEM_ZONEINFO = "/usr/share/zoneinfo"
_NOT_ZONES = {"localtime", "posixrules", "Factory"}
_SKIP_DIRS = {"posix", "right"}
_MAX_TZIF = 1 << 20
_content_cache: dict[tuple, str | None] = {}


def zone_or_none(name: str) -> ZoneInfo | None:
    """ZoneInfo(name), or None for a name that is no zone."""
    if not name or name in _NOT_ZONES:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zoneinfo_dirs() -> tuple[str, ...]:
    """The zoneinfo databases to match a copied /etc/localtime against: the system's, then
    the tzdata package's."""
    dirs = [_SYSTEM_ZONEINFO]
    try:
        import tzdata

        dirs.append(os.path.join(os.path.dirname(tzdata.__file__), "zoneinfo"))
    except ImportError:
        pass
    return tuple(dirs)


def local_timezone_name(
    *,
    environ: Mapping[str, str] | None = None,
    timezone_file: str = "/etc/timezone",
    localtime: str = "/etc/localtime",
    zoneinfo: Iterable[str] | None = None,
) -> str:
    """The host's IANA zone name: $TZ, /etc/timezone, the /etc/localtime link target, a
    zoneinfo file with /etc/localtime's content, else 'UTC'."""
    env = os.environ if environ is None else environ
    dirs = tuple(zoneinfo_dirs() if zoneinfo is None else zoneinfo)
    tz = env.get("TZ", "").strip()
    if tz.startswith(":"):
        tz = tz[1:]
    if tz:
        if tz.startswith("/"):
            name = _name_from_path(tz) or _name_from_content(tz, dirs)
        else:
            name = tz
        if name and zone_or_none(name) is not None:
            return name
    name = _read_first_line(timezone_file)
    if name and zone_or_none(name) is not None:
        return name
    name = _name_from_link(localtime)
    if name:
        return name
    name = _name_from_content(localtime, dirs)
    if name:
        return name
    return "UTC"


def _read_first_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline(256).strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _name_from_path(path: str) -> str:
    """'Europe/Berlin' from '/usr/share/zoneinfo/Europe/Berlin' (or posix/, right/)."""
    marker = "zoneinfo/"
    i = path.rfind(marker)
    if i < 0:
        return ""
    name = path[i + len(marker):]
    for prefix in ("posix/", "right/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name if zone_or_none(name) is not None else ""


def _name_from_link(path: str) -> str:
    """The zone a symlink names: its own target first (a zone linked to another keeps its
    name), then where the chain ends."""
    try:
        target = os.readlink(path)
    except OSError:
        return ""
    first = os.path.normpath(os.path.join(os.path.dirname(path), target))
    name = _name_from_path(first)
    if name:
        return name
    try:
        return _name_from_path(os.path.realpath(path))
    except OSError:
        return ""


def _name_from_content(path: str, dirs: tuple[str, ...]) -> str:
    """The zone whose zoneinfo file has the same bytes as `path` ('' when none does)."""
    try:
        st = os.stat(path)
        if not os.path.isfile(path) or st.st_size > _MAX_TZIF:
            return ""
        key = (path, st.st_size, st.st_mtime_ns, st.st_ino, dirs)
        if key in _content_cache:
            return _content_cache[key] or ""
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    if not data.startswith(b"TZif"):
        _content_cache[key] = None
        return ""
    found = None
    for d in dirs:
        matches = _same_content(d, data)
        if matches:
            found = _best_name(d, matches)
            if found:
                break
    _content_cache[key] = found
    return found or ""


def _same_content(root: str, data: bytes) -> list[str]:
    out = []
    size = len(data)
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [n for n in dirnames if n not in _SKIP_DIRS]
        for fn in filenames:
            full = os.path.join(dirpath, fn)
            try:
                if os.path.getsize(full) != size:
                    continue
                with open(full, "rb") as f:
                    if f.read() != data:
                        continue
            except OSError:
                continue
            out.append(os.path.relpath(full, root).replace(os.sep, "/"))
    return out


def _tab_names(root: str, filename: str) -> set[str]:
    names = set()
    try:
        with open(os.path.join(root, filename), encoding="utf-8") as f:
            for line in f:
                if line.startswith("#"):
                    continue
                cols = line.split("\t")
                if len(cols) >= 3:
                    names.add(cols[2].strip())
    except OSError:
        pass
    return names


def _best_name(root: str, names: list[str]) -> str:
    """Of identical zone files, the canonical name (zone1970.tab, then zone.tab), else
    'UTC', else the shortest (e.g. 'Etc/GMT' over 'Etc/Greenwich')."""
    canonical = _tab_names(root, "zone1970.tab")
    listed = _tab_names(root, "zone.tab")
    ranked = sorted(names, key=lambda n: (n not in canonical, n not in listed, n != "UTC",
                                          len(n), n))
    for name in ranked:
        if zone_or_none(name) is not None:
            return name
    return ""


# ------------------------------------------------------------------- offset changes ----
def first_offset_change(zone: tzinfo, lo: int, hi: int) -> int:
    """The first whole second in (lo, hi] whose UTC offset differs from lo's."""
    before = datetime.fromtimestamp(lo, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


def wall_instant(naive: datetime, zone: tzinfo) -> float:
    """The instant a wall-clock time names in a zone: in a spring-forward gap, the moment
    of the change (the skipped time never happened, and what was meant for it happens
    as the clocks jump); in a repeated hour, its first pass."""
    t0 = naive.replace(tzinfo=zone, fold=0).timestamp()
    t1 = naive.replace(tzinfo=zone, fold=1).timestamp()
    if t0 > t1:
        return float(first_offset_change(zone, int(t1 // 1), -int(-t0 // 1)))
    return t0


_PROBE = 6 * 3600  # offsets are compared every 6 hours; no zone changes twice that fast


def offset_changes(zone: tzinfo, start: float, end: float) -> list[tuple[int, int, int]]:
    """(instant, old offset seconds, new offset seconds) of each UTC offset change in the
    zone in (start, end]."""
    out: list[tuple[int, int, int]] = []
    try:
        lo = int(start // 1)
        stop = int(end // 1)
        prev = datetime.fromtimestamp(lo, zone).utcoffset()
        while lo < stop:
            hi = min(lo + _PROBE, stop)
            cur = datetime.fromtimestamp(hi, zone).utcoffset()
            if cur != prev:
                at = first_offset_change(zone, lo, hi)
                new = datetime.fromtimestamp(at, zone).utcoffset()
                assert prev is not None and new is not None
                out.append((at, int(prev.total_seconds()), int(new.total_seconds())))
                prev, lo = new, at
                continue
            lo = hi
    except (OverflowError, ValueError, OSError):
        pass
    return out
