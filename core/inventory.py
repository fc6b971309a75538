"""Hosts and target patterns.

For now a target pattern is a comma list of host names and `@group` names; the richer
language (node sets, tags, globs, exclusions) grows here with remote execution.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.config import LOCAL_HOST, Host


class TargetError(ValueError):
    """A pattern that names nothing, or names something unknown."""


def resolve_targets(pattern: str, hosts: Mapping[str, Host]) -> list[str]:
    """Host names a pattern names, in inventory order, without duplicates."""
    names: list[str] = []
    for item in (p.strip() for p in pattern.split(",")):
        if not item:
            continue
        if item.startswith("@"):
            group = item[1:]
            members = [h.name for h in hosts.values() if group in h.groups]
            if not members:
                raise TargetError(f"unknown group '{item}'")
            names.extend(members)
        elif item == LOCAL_HOST or item in hosts:
            names.append(item)
        else:
            raise TargetError(f"unknown host '{item}'")
    if not names:
        raise TargetError(f"target pattern {pattern!r} matches no host")
    return list(dict.fromkeys(names))
