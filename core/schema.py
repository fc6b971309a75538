"""Config keys declared once: each section's keys with their type, default, range and
what they mean. The readers take names, defaults and ranges from here (an unknown key is
an error with a did-you-mean), `fleetdeck config-schema` prints the JSON Schema made
from it, and `fleetdeck init` writes its comments from the same words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# What a key holds, as a JSON Schema fragment (TOML editors such as taplo read it).
_DURATION = {"type": ["string", "number"], "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$",
             "description": "a duration: '250ms', '30s', '5m', '1h30m', '2d' or seconds"}
_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "text": {"type": "string"},  # may be empty
    "path": {"type": "string"},  # one line, no control characters
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "duration": _DURATION,
    "duration-or-none": {"anyOf": [_DURATION, {"const": "none"}]},
    "zone": {"type": "string", "description": "an IANA time zone, e.g. 'Europe/Berlin'"},
    "pattern": {"type": "string", "description": "a target pattern: 'web[01-20]', '@db', "
                                                 "'role=cache', '*.eu,!web07'"},
    "schedule": {"type": "string", "description": "cron (5 fields, or 6-7 Quartz), "
                                                  "@daily, 'every 30s' or 'at 2026-12-01 03:00'"},
    "strings": {"type": "array", "items": {"type": "string"}},
    "serial": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"},
                         {"type": "array", "items": {"anyOf": [{"type": "integer"},
                                                               {"type": "string"}]}}]},
    "push": {"type": "object", "required": ["src", "dest"], "additionalProperties": False,
             "properties": {"src": {"type": "string"}, "dest": {"type": "string"},
                            "mode": {"type": "string"}, "owner": {"type": "string"},
                            "backup": {"type": "boolean"}}},
    "string-map": {"type": "object", "additionalProperties": {"type": "string"}},
    "pair": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}},
    "duration-pair": {"type": "array", "minItems": 2, "maxItems": 2, "items": _DURATION},
    "n-of-m": {"type": "array", "minItems": 2, "maxItems": 2,
               "items": {"type": "integer", "minimum": 1, "maximum": 100}},
    "limit": {"type": "array", "minItems": 2, "maxItems": 2,
              "prefixItems": [{"type": "integer", "minimum": 1}, _DURATION]},
    "status": {"anyOf": [{"type": "integer", "minimum": 100, "maximum": 599},
                         {"type": "array", "items": {"type": "integer", "minimum": 100,
                                                     "maximum": 599}}]},
    "instant": {"type": "string", "description": "a local date and time, "
                                                 "'2026-12-01 03:00', or a TOML date-time"},
    "steps": {"type": "array", "items": {"type": "object"},
              "description": "[[workflows.NAME.steps]] tables: name, job or command or "
                             "push, needs, when, targets, timeout, retries, approve"},
    "gate": {"type": "object", "required": ["by"], "additionalProperties": False,
             "properties": {"by": {"type": "array", "items": {"type": "string"}},
                            "timeout": _DURATION,
                            "on_timeout": {"enum": ["fail", "skip"]},
                            "allow_self": {"type": "boolean"}}},
    "any": {},
}


@dataclass(frozen=True)
class Key:
    """One config key: its name, what it holds and what it means."""

    name: str
    type: str  # one of _TYPES
    doc: str
    default: Any = None  # as written in the file; None: no default (or "not set")
    minimum: float | None = None  # numbers and durations: the allowed range, checked by
    maximum: float | None = None  # the reader (durations: at most 366 days unless set)
    max_length: int | None = None  # strings: default 64 kB (core/confguard.py)
    choices: tuple[str, ...] = ()
    required: bool = False
    example: Any = None  # what the template shows for a key with no default

    def template_example(self) -> str:
        """TOML for the template's commented-out line: the default, else an example."""
        if self.default is not None:
            return self.toml_default()
        if self.example is not None:
            return json.dumps(self.example) if not isinstance(self.example, str) \
                or not self.example.startswith(("{", "[")) else self.example
        if self.choices:
            return json.dumps(self.choices[0])
        return {"integer": "0", "boolean": "false", "strings": "[]", "string-map": "{}",
                "duration": '"30s"', "zone": '"Europe/Berlin"'}.get(self.type, '""')

    def json_schema(self) -> dict[str, Any]:
        out = dict(_TYPES[self.type])
        if self.choices:
            out = {"enum": list(self.choices)}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        doc = self.doc + (f" (default: {self.toml_default()})" if self.default is not None
                          else "")
        out["description"] = doc
        return out

    def value(self) -> Any:
        """The default as fleetdeck uses it (a duration in seconds, 'none' as None)."""
        if self.default is None:
            return None
        if self.type.startswith("duration") and isinstance(self.default, str):
            if self.default == "none":
                return None
            from core.durations import parse_duration

            return parse_duration(self.default)
        if self.type == "strings":
            return tuple(self.default)
        return self.default

    def toml_default(self) -> str:
        """The default as TOML, for the template and the docs."""
        return json.dumps(self.default) if not isinstance(self.default, bool) \
            else str(self.default).lower()


@dataclass(frozen=True)
class Section:
    """A config table: `[engine]`, or a table of named tables like `[jobs.NAME]`."""

    name: str
    doc: str
    keys: tuple[Key, ...]
    named: bool = False  # [name.ITEM] tables, each with these keys

    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    def default(self, name: str) -> Any:
        """A key's default as fleetdeck uses it: what the section's dataclass starts from."""
        return self[name].value()

    def __getitem__(self, name: str) -> Key:
        for k in self.keys:
            if k.name == name:
                return k
        raise KeyError(name)

    def json_schema(self) -> dict[str, Any]:
        table = {
            "type": "object",
            "description": self.doc,
            "properties": {k.name: k.json_schema() for k in self.keys},
            "additionalProperties": False,
        }
        required = [k.name for k in self.keys if k.required]
        if required:
            table["required"] = required
        if not self.named:
            return table
        return {"type": "object", "description": self.doc,
                "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
                "additionalProperties": table}


def json_schema(sections: tuple[Section, ...], top: tuple[Key, ...],
                key_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON Schema of a whole config file (draft 2020-12)."""
    props: dict[str, Any] = {k.name: k.json_schema() for k in top}
    for s in sections:
        props[s.name] = s.json_schema()
    keys: dict[str, Any] = {"type": "object", "description": "console key bindings: "
                            "binding id -> key(s), e.g. 'app.quit' = 'ctrl+q'",
                            "additionalProperties": {"type": "string", "minLength": 1}}
    if key_ids:
        keys["propertyNames"] = {"enum": sorted(key_ids)}
    props["keys"] = keys
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://fleetdeck.invalid/config.schema.json",
        "title": "fleetdeck configuration",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
