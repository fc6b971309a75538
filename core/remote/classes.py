"""How one host's part of a fan-out (or a remote run) ended: the classes every report,
metric and screen lists, in this order. Kept apart from the SSH client so a CLI table
or a metric can name them without loading asyncssh."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class HostClass(StrEnum):
    """How one host's part of a fan-out (or a remote run) ended."""

    OK = "ok"
    FAILED = "failed"  # non-zero exit, a signal, or the connection died mid-command
    TIMED_OUT = "timed_out"
    UNREACHABLE = "unreachable"  # refused, connect timeout, DNS, no route
    AUTH_FAILED = "auth_failed"
    BECOME_FAILED = "become_failed"  # sudo refused: a password needed, wrong, or not allowed
    HOST_KEY_UNKNOWN = "host_key_unknown"
    HOST_KEY_CHANGED = "host_key_changed"
    HOST_KEY_REVOKED = "host_key_revoked"  # an @revoked key, or a certificate's CA
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # never started: a rolling fan-out stopped before its batch


CONNECT_CLASSES = (HostClass.UNREACHABLE, HostClass.AUTH_FAILED, HostClass.HOST_KEY_UNKNOWN,
                   HostClass.HOST_KEY_CHANGED, HostClass.HOST_KEY_REVOKED)
HOST_CLASSES = tuple(c.value for c in HostClass)  # the order every report lists them in

# What a rerun selects, besides class names. `not_ok`: the hosts that did not end ok and
# that running again may fix; the host-key classes are not in it, since the same key is
# refused the same way until a person trusts or fixes it (they are named to be rerun).
NOT_OK = "not_ok"
ALL = "all"
NEEDS_A_PERSON = (HostClass.HOST_KEY_UNKNOWN.value, HostClass.HOST_KEY_CHANGED.value,
                  HostClass.HOST_KEY_REVOKED.value)
NOT_OK_CLASSES = tuple(c for c in HOST_CLASSES
                       if c != HostClass.OK.value and c not in NEEDS_A_PERSON)
SELECTORS = (*HOST_CLASSES, NOT_OK, ALL)


def select_classes(selectors: Iterable[str]) -> tuple[str, ...]:
    """The classes a rerun's selectors name (class names, `not_ok`, `all`), in report
    order; ValueError naming the first unknown one."""
    wanted: set[str] = set()
    for s in selectors:
        if s == NOT_OK:
            wanted.update(NOT_OK_CLASSES)
        elif s == ALL:
            wanted.update(HOST_CLASSES)
        elif s in HOST_CLASSES:
            wanted.add(s)
        else:
            raise ValueError(f"unknown class {s!r}; one of {', '.join(SELECTORS)}")
    return tuple(c for c in HOST_CLASSES if c in wanted)
