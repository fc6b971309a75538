"""`[sources.NAME]`: where lines come from, and what fields to read out of them.

    [sources.nginx]
    path = "/var/log/nginx/*.log"      # a file or a glob, followed like `tail -F`
    fields = '" (?P<status>\\d{3}) (?P<bytes>\\d+)'   # named groups become fields
    colour = "cyan"

    [sources.api]
    command = "journalctl -f -u api"   # a command's output, restarted if it exits

    [sources.web-nginx]
    host = "web1"                      # a remote file: `tail -F` on the host, one
    path = "/var/log/nginx/error.log"  # long-lived stream over the pooled SSH connection
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from core.confguard import clip, regex_problem
from core.paths import from_root
from core.schema import Key, Section

SOURCE = Section("sources", "log sources to follow: a file, a glob, a command, or a file "
                  "on a host", (
    Key("path", "string", "a file or a glob (local), or one file on `host`"),
    Key("command", "string", "a command whose output is the log (e.g. journalctl -f)"),
    Key("host", "string", "an inventory host: `path` is followed there over SSH"),
    Key("fields", "string", "a regex with named groups, for rules on fields"),
    Key("colour", "string", "the source's colour on the Logs screen"),
    Key("description", "text", "one line for the console", ""),
    Key("from_start", "boolean", "read a file from its start, not its end", False),
), named=True)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    path: str | None = None
    command: str | None = None
    host: str | None = None  # an inventory host: the file is followed there, over SSH
    fields: str | None = None  # a regex with named groups
    colour: str | None = None
    description: str = ""
    from_start: bool = False  # read a file from its start when following begins


def read_sources(c: Any, doc: dict[str, Any],
                 hosts: dict[str, Any] | None = None) -> dict[str, SourceSpec]:
    section = doc.get("sources")
    if section is None:
        return {}
    section = c.table(section, ("sources",))
    if section is None:
        return {}
    out: dict[str, SourceSpec] = {}
    for name, raw in section.items():
        p = ("sources", name)
        t = c.table(raw, p)
        if t is None or not c.name_ok(name, "source", p):
            continue
        c.known_keys(t, SOURCE.names(), p)
        path = c.string(t, "path", p, None)
        command = c.string(t, "command", p, None)
        host = c.string(t, "host", p, None)
        if host is not None and host != "local":
            if hosts is not None and host not in hosts:
                c.add(p + ("host",), f"unknown host {clip(host)}")
                continue
            if path is None or command is not None or "*" in (path or ""):
                c.add(p, "a remote source needs 'path' (one file, no glob) and no 'command'")
                continue
        else:
            host = None
        if (path is None) == (command is None):
            c.add(p, "a source needs exactly one of 'path' or 'command'")
            continue
        if path is not None and host is None and not from_root(path):
            c.add(p + ("path",), f"{clip(path)}: write an absolute path (or one from ~)")
            continue
        if path is not None and host is None:
            path = os.path.expanduser(path)
        fields = c.string(t, "fields", p, None)
        if fields is not None:
            rx, problem = regex_problem(fields)
            if rx is None:
                c.add(p + ("fields",), f"bad regex {clip(fields)}: {problem}")
                continue
            if not rx.groupindex:
                c.add(p + ("fields",), "the regex names no fields; use (?P<name>...)")
                continue
        colour = c.string(t, "colour", p, None)
        if colour is not None and not _is_colour(colour):
            c.add(p + ("colour",), f"not a colour: {clip(colour)} (a name such as cyan or "
                  "bright_red, #rrggbb, color(N), or a style such as 'red on blue')")
            continue
        out[name] = SourceSpec(name, path, command, host, fields, colour,
                               c.string(t, "description", p, "", nonempty=False),
                               c.boolean(t, "from_start", p, False))
    return out


def _is_colour(text: str) -> bool:
    """A style the Logs screen can paint the source's name in ("bold <colour>"): a colour
    (cyan, #rrggbb, color(N)) or a whole rich style ("red on blue", "italic cyan")."""
    from rich.errors import StyleSyntaxError  # only for a source that sets one
    from rich.style import Style

    try:
        Style.parse(f"bold {text}")
    except StyleSyntaxError:
        return False
    return True
