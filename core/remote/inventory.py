"""Hosts, groups and target patterns.

A target pattern is a comma list of items; each item adds hosts, or removes them when
it starts with `!`:

    web01             one host by name (`local` is the machine fleetdeck runs on)
    web[01-20]        a node set: ranges and lists in brackets, zero padding kept;
    db[1-3,7]         several brackets multiply (`r[1-2]n[1-3]` is six names)
    @db               every host of a group
    role=cache        every host with that tag (the value may be a glob: `dc=eu*`)
    *.eu  web?        a glob over host names
    !web07  !@canary  exclusions (any of the above after `!`)

Hosts come out in the order the pattern names them (each part's in inventory order),
without duplicates, as Ansible orders them. A pattern that matches nothing,
or names a host or group that does not exist, is an error (TargetError), never an empty
success. `fold_hosts` turns a list of names back into node-set notation for display.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.confguard import clip
from core.remote.config import LOCAL_HOST, Host

MAX_EXPANSION = 100_000  # names one node set may expand to

_RANGE_RE = re.compile(r"^(\d+)(?:-(\d+)(?:/(\d+))?)?$")  # 1, 1-9, 1-9/2 (ClusterShell)
_SET_OPERATORS = "!&^"  # ClusterShell's between-set operators; only a leading ! here
_GLOB_CHARS = set("*?")


class TargetError(ValueError):
    """A pattern that names nothing, names something unknown, or does not parse."""


@dataclass(frozen=True)
class Item:
    """One parsed item of a pattern."""

    text: str  # as written, without the `!`
    kind: str  # "name" | "group" | "tag" | "glob"
    exclude: bool = False
    names: tuple[str, ...] = ()  # name: the expanded node set; glob: the expanded globs
    key: str = ""  # tag key, or group name
    value: str = ""  # tag value (may be a glob)


# ------------------------------------------------------------------------ node sets ---
def split_items(pattern: str) -> list[str]:
    """Split on commas that are not inside brackets; items stripped, empty ones dropped."""
    items: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in pattern:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur).strip())
    return [i for i in items if i]


def _expand_ranges(body: str, whole: str) -> list[str]:
    out: list[str] = []
    for part in body.split(","):
        part = part.strip()
        m = _RANGE_RE.match(part)
        if not m:
            raise TargetError(f"bad range {clip(part)} in {clip(whole)}; write e.g. web[01-20] or "
                              "db[1-3,7]")
        lo_s, hi_s, step_s = m.group(1), m.group(2), m.group(3)
        if hi_s is None:
            out.append(lo_s)
            continue
        lo, hi, step = int(lo_s), int(hi_s), int(step_s or 1)
        if hi < lo:
            raise TargetError(f"range {clip(part)} in {clip(whole)} runs backwards")
        if step < 1:
            raise TargetError(f"range {clip(part)} in {clip(whole)}: the step must be 1 "
                              "or more")
        if (hi - lo) // step + 1 > MAX_EXPANSION:
            raise TargetError(f"range {clip(part)} in {clip(whole)} is too large")
        if hi_s.startswith("0") and len(hi_s) != len(lo_s):  # as ClusterShell: 1-03
            raise TargetError(f"range {clip(part)} in {clip(whole)}: the padding of "
                              f"{lo_s} and {hi_s} differs; write e.g. "
                              f"{lo:0{len(hi_s)}d}-{hi_s}")
        width = len(lo_s) if lo_s.startswith("0") and len(lo_s) > 1 else 0
        out.extend(str(n).zfill(width) for n in range(lo, hi + 1, step))
    return out


def expand_nodeset(text: str) -> list[str]:
    """`web[01-03]` -> web01, web02, web03; brackets multiply; no brackets -> [text].

    A glob class like `[ab]` (letters inside brackets) is not a node set: TargetError.
    """
    names = [""]
    pos = 0
    while pos < len(text):
        start = text.find("[", pos)
        if start < 0:
            names = [n + text[pos:] for n in names]
            break
        end = text.find("]", start)
        if end < 0:
            raise TargetError(f"unclosed '[' in {clip(text)}")
        if "]" in text[pos:start]:
            raise TargetError(f"unmatched ']' in {clip(text)}")
        prefix = text[pos:start]
        values = _expand_ranges(text[start + 1:end], text)
        if len(names) * len(values) > MAX_EXPANSION:
            raise TargetError(f"{clip(text)} expands to too many names")
        names = [n + prefix + v for n in names for v in values]
        pos = end + 1
    if any("]" in n for n in names):
        raise TargetError(f"unmatched ']' in {clip(text)}")
    return names


_NUM_RE = re.compile(r"^(.*?)(\d+)(\D*)$")


def fold_hosts(names: Iterable[str]) -> str:
    """Names folded back into node-set notation: web01..web18, db3 -> `db3,web[01-18]`.

    Names are grouped by what surrounds their last number; zero padding is kept.
    Inverse of the expansion: expand_nodeset over split_items(fold_hosts(x)) gives x
    (as a set).
    """
    uniq = list(dict.fromkeys(names))
    plain: list[str] = []
    groups: dict[tuple[str, str], list[str]] = {}
    for name in uniq:
        m = _NUM_RE.match(name)
        if not m or "[" in name or "]" in name:
            plain.append(name)
            continue
        groups.setdefault((m.group(1), m.group(3)), []).append(m.group(2))
    parts: list[tuple[str, str]] = [(n, n) for n in plain]  # (sort key, text)
    for (prefix, suffix), digits in groups.items():
        padded_widths = {len(d) for d in digits if d.startswith("0") and len(d) > 1}
        by_width: dict[int, set[int]] = {}
        for d in digits:
            width = len(d) if len(d) in padded_widths else 0
            by_width.setdefault(width, set()).add(int(d))
        for width, numbers in sorted(by_width.items()):
            ordered = sorted(numbers)
            fmt = (lambda n, w=width: str(n).zfill(w))  # noqa: E731
            if len(ordered) == 1:
                text = f"{prefix}{fmt(ordered[0])}{suffix}"
            else:
                text = f"{prefix}[{_ranges(ordered, fmt)}]{suffix}"
            parts.append((f"{prefix}{fmt(ordered[0])}{suffix}", text))
    parts.sort(key=lambda p: _natural_key(p[0]))
    return ",".join(text for _, text in parts)


def _ranges(numbers: list[int], fmt) -> str:  # type: ignore[no-untyped-def]
    out: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(fmt(start) if start == prev else f"{fmt(start)}-{fmt(prev)}")
        if n is not None:
            start = prev = n
    return ",".join(out)


def _natural_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# ---------------------------------------------------------------------- patterns ---
def parse_pattern(pattern: str) -> list[Item]:
    """The items of a pattern; TargetError when it does not parse or names nothing."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise TargetError("targets must name at least one host")
    items: list[Item] = []
    for raw in split_items(pattern):
        exclude = raw.startswith("!")
        text = raw[1:].strip() if exclude else raw
        if not text:
            raise TargetError(f"'!' needs something to exclude in {clip(pattern)}")
        inner = next((op for op in _SET_OPERATORS if op in text), None)
        if inner is not None:  # web[01-05]!web02, @web&dc=eu: ClusterShell's, not ours
            raise TargetError(f"{clip(raw)}: '{inner}' between sets is not supported; "
                              "list items with commas, excluding with a leading '!' "
                              "(e.g. 'web[01-05],!web02')")
        if text.startswith("@"):
            group = text[1:]
            if not group:
                raise TargetError(f"'@' needs a group name in {clip(pattern)}")
            items.append(Item(text, "group", exclude, key=group))
        elif "=" in text:
            key, _, value = text.partition("=")
            key, value = key.strip(), value.strip()
            if not key or not value:
                raise TargetError(f"tag item {clip(text)} needs key=value, e.g. role=cache")
            items.append(Item(text, "tag", exclude, key=key, value=value))
        elif _GLOB_CHARS & set(text):
            items.append(Item(text, "glob", exclude, names=tuple(expand_nodeset(text))))
        else:
            items.append(Item(text, "name", exclude, names=tuple(expand_nodeset(text))))
    if not items:
        raise TargetError("targets must name at least one host")
    if all(i.exclude for i in items):
        raise TargetError(f"{clip(pattern)} only excludes; say what to include, e.g. "
                          f"'*,{pattern.strip()}'")
    return items


def _match_item(item: Item, hosts: Mapping[str, Host]) -> tuple[list[str], list[str]]:
    """(names the item matches, problems)."""
    if item.kind == "group":
        members = [h.name for h in hosts.values() if item.key in h.groups]
        return members, ([] if members else [f"unknown group '@{item.key}'"])
    if item.kind == "tag":
        found = [h.name for h in hosts.values()
                 if item.key in h.tags and fnmatch.fnmatchcase(h.tags[item.key], item.value)]
        if found or item.exclude:
            return found, []
        return [], [f"no host has tag {item.text}"]
    if item.kind == "glob":
        found = [n for n in hosts if n != LOCAL_HOST
                 and any(fnmatch.fnmatchcase(n, g) for g in item.names)]
        if found or item.exclude:
            return found, []
        return [], [f"'{item.text}' matches no host"]
    missing = [n for n in item.names if n not in hosts and n != LOCAL_HOST]
    if missing:
        if len(item.names) == 1:
            return [], [f"unknown host '{missing[0]}'"]
        what = fold_hosts(missing)
        return [], [f"unknown host{'s' if len(missing) > 1 else ''} '{what}' "
                    f"(in '{item.text}')"]
    return list(item.names), []


def check_pattern(pattern: str, hosts: Mapping[str, Host]) -> list[str]:
    """Every problem with a pattern against an inventory; [] when it resolves to hosts."""
    try:
        items = parse_pattern(pattern)
    except TargetError as e:
        return [str(e)]
    problems: list[str] = []
    for item in items:
        problems.extend(_match_item(item, hosts)[1])
    if problems:
        return problems
    try:
        resolve_targets(pattern, hosts)
    except TargetError as e:
        return [str(e)]
    return []


def resolve_targets(pattern: str, hosts: Mapping[str, Host]) -> list[str]:
    """Host names a pattern names, without duplicates, in the order it names them (each
    part's hosts in inventory order), as Ansible orders them: `web07,@web` runs web07
    first, the canary a person chose.

    `local` is always known, even when the mapping does not hold it.
    """
    items = parse_pattern(pattern)
    include: dict[str, None] = {}
    exclude: set[str] = set()
    for item in items:
        names, problems = _match_item(item, hosts)
        if problems:
            raise TargetError(problems[0])
        if item.exclude:
            exclude.update(names)
        else:
            include.update(dict.fromkeys(names))
    out = [n for n in include if n not in exclude]
    if not out:
        raise TargetError(f"target pattern {clip(pattern)} matches no host"
                          + (" after exclusions" if include else ""))
    return out
