"""How one host's part of a fan-out (or a remote run) ended: the classes every report,
metric and screen lists, in this order. Kept apart from the SSH client so a CLI table
or a metric can name them without loading asyncssh."""

from __future__ import annotations

from enum import StrEnum


class HostClass(StrEnum):
    """How one host's part of a fan-out (or a remote run) ended."""

    OK = "ok"
    FAILED = "failed"  # non-zero exit, a signal, or the connection died mid-command
    TIMED_OUT = "timed_out"
    UNREACHABLE = "unreachable"  # refused, connect timeout, DNS, no route
    AUTH_FAILED = "auth_failed"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    HOST_KEY_CHANGED = "host_key_changed"
    HOST_KEY_REVOKED = "host_key_revoked"  # an @revoked key, or a certificate's CA
    CANCELLED = "cancelled"


CONNECT_CLASSES = (HostClass.UNREACHABLE, HostClass.AUTH_FAILED, HostClass.HOST_KEY_UNKNOWN,
                   HostClass.HOST_KEY_CHANGED, HostClass.HOST_KEY_REVOKED)
HOST_CLASSES = tuple(c.value for c in HostClass)  # the order every report lists them in
