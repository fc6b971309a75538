"""Reading TOML config: the document, the line of each key, and every issue collected.

Every mistake becomes a ConfigIssue naming the file, the key path and what is wrong, so
`check-config` can print them all at once and a reload can refuse a bad file whole. Each
package reads its own sections with a `Checker` (core.jobs.config, core.remote.config,
core.alerts.config, core.health.config, core.logs.sources/rules); core.fleetconfig puts
them together.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.confguard import (
    CLIP,
    MAX_DURATION,
    MAX_ISSUES,
    MAX_NAME,
    MAX_STRING,
    Refusal,
    bad_char,
    clip,
    format_seconds,
    one_line,
    prescan,
)
from core.configlines import LineIndex
from core.durations import DurationError, parse_duration
from core.schema import Key


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: where (file, line if known, key path) and what."""

    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return one_line(text, 600)  # one line whatever a value held


class ConfigError(Exception):
    """Raised with every issue found; str() is one line per issue."""

    def __init__(self, issues: list[ConfigIssue], os_error: OSError | None = None):
        self.issues = issues
        self.os_error = os_error  # the file could not be read at all: the CLI words it
        super().__init__("\n".join(str(i) for i in issues))


# ------------------------------------------------------------------------ validation ---
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_INDEX_RE = re.compile(r"\[\d+\]")
KeyPath = tuple[str, ...]
MISSING: Any = object()
_NAME_HINT = "use letters, digits, '_', '.' and '-', starting with a letter or digit"


def key_path(path: KeyPath) -> str:
    """A key path as written in TOML; a part longer than a message should hold is cut."""
    out = ""
    for p in path:
        if _INDEX_RE.fullmatch(p):  # an array of tables' item: steps[2]
            out += p
            continue
        part = p if _BARE_KEY_RE.fullmatch(p) and len(p) <= CLIP else \
            json.dumps(p[:CLIP]) + ("…" if len(p) > CLIP else "")
        out += ("." if out else "") + part
    return out


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    if isinstance(value, datetime.datetime):
        return "date-time"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    return type(value).__name__


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Checker:
    """Reads one parsed document into typed values, collecting every issue on the way."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = LineIndex(text)
        self.issues: list[ConfigIssue] = []

    def add(self, path: KeyPath, message: str) -> None:
        """One issue; past MAX_ISSUES only a last one saying so (a hostile file can hold
        millions, and finding each one's line costs the file's length)."""
        if len(self.issues) >= MAX_ISSUES:
            if len(self.issues) == MAX_ISSUES:
                self.issues.append(ConfigIssue(
                    self.source, key_path(path), f"more than {MAX_ISSUES} errors; the rest "
                    "are not listed", self.lines.find(path)))
            return
        self.issues.append(
            ConfigIssue(self.source, key_path(path), one_line(message),
                        self.lines.find(path)))

    def wrong_type(self, path: KeyPath, expected: str, value: object) -> None:
        self.add(path, f"expected {expected}, got {type_name(value)}")

    # -- shapes --
    def table(self, value: object, path: KeyPath) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.wrong_type(path, "a table", value)
        return None

    def read(self, t: dict[str, Any], key: Key, path: KeyPath, default: Any = MISSING) -> Any:
        """A key read as its declaration says (core/schema.py): type, range, choices; its
        declared default unless the caller has another (a job takes [defaults])."""
        d = key.value() if default is MISSING else default
        kind, name = key.type, key.name
        if key.choices:
            return self.choice(t, name, path, d, key.choices)
        if kind in ("string", "text", "path"):
            return self.string(t, name, path, d, nonempty=kind != "text",
                               line=kind == "path", max_length=key.max_length)
        if kind == "integer":
            return self.integer(t, name, path, d, minimum=int(key.minimum or 0),
                                maximum=None if key.maximum is None else int(key.maximum))
        if kind == "boolean":
            return self.boolean(t, name, path, d)
        if kind in ("duration", "duration-or-none"):
            return self.duration(t, name, path, d, allow_none=kind == "duration-or-none",
                                 minimum=key.minimum or 0.0,
                                 maximum=MAX_DURATION if key.maximum is None else key.maximum)
        if kind == "zone":
            return self.timezone(t, name, path, d)
        if kind == "strings":
            return self.str_list(t, name, path)
        raise ValueError(f"{name}: a {kind} key has a reader of its own")

    def known_keys(self, table: dict[str, Any], known: tuple[str, ...], path: KeyPath) -> None:
        for key in table:
            if key not in known:
                self.add(path + (key,), f"unknown key {clip(key)}{did_you_mean(key, known)}")

    def name_ok(self, name: str, kind: str, path: KeyPath) -> bool:
        if len(name) > MAX_NAME:
            self.add(path, f"{kind} name is {len(name)} characters long; at most {MAX_NAME}")
            return False
        if NAME_RE.fullmatch(name):
            return True
        self.add(path, f"invalid {kind} name {clip(name)}; {_NAME_HINT}")
        return False

    def text_ok(self, value: str, path: KeyPath, *, line: bool = False,
                max_length: int | None = None) -> bool:
        """No control character (tab and newline only where `line` is False: a command
        may be a script) and not longer than `max_length` (default MAX_STRING)."""
        limit = MAX_STRING if max_length is None else max_length
        if len(value) > limit:
            self.add(path, f"{len(value)} characters long; at most {limit}")
            return False
        bad = bad_char(value, multiline=not line)
        if bad is not None:
            self.add(path, f"control character {bad} in {clip(value)}")
            return False
        return True

    # -- scalars: each returns `default` when the key is absent or its value is wrong --
    def string(self, t: dict[str, Any], key: str, path: KeyPath, default: Any,
               *, nonempty: bool = True, line: bool = False,
               max_length: int | None = None) -> Any:
        """A string; `line`: one line (a path, a name: no tab or newline either)."""
        value = t.get(key, MISSING)
        if value is MISSING:
            return default
        if not isinstance(value, str):
            self.wrong_type(path + (key,), "a string", value)
            return default
        if not self.text_ok(value, path + (key,), line=line, max_length=max_length):
            return default
        if nonempty and not value.strip():
            self.add(path + (key,), f"{key} must not be empty")
            return default
        return value

    def integer(self, t: dict[str, Any], key: str, path: KeyPath, default: int,
                *, minimum: int = 0, maximum: int | None = None) -> int:
        value = t.get(key, MISSING)
        if value is MISSING:
            return default
        if not is_int(value):
            self.wrong_type(path + (key,), "an integer", value)
            return default
        if value < minimum or (maximum is not None and value > maximum):
            if maximum is not None:
                self.add(path + (key,), f"{key} must be {minimum}..{maximum}, "
                                        f"got {clip(value)}")
            elif minimum == 0:
                self.add(path + (key,), f"{key} must not be negative, got {clip(value)}")
            else:
                self.add(path + (key,), f"{key} must be at least {minimum}, got {clip(value)}")
            return default
        return value

    def boolean(self, t: dict[str, Any], key: str, path: KeyPath, default: bool) -> bool:
        value = t.get(key, MISSING)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.wrong_type(path + (key,), "true or false", value)
            return default
        return value

    def duration(self, t: dict[str, Any], key: str, path: KeyPath, default: Any,
                 *, allow_none: bool = False, minimum: float = 0.0,
                 maximum: float = MAX_DURATION) -> Any:
        """Seconds from "90s"/"5m"/a number; with allow_none, "none" means no limit (None).
        Bounded (366 days unless the key says): a year-long timeout is a typo."""
        value = t.get(key, MISSING)
        if value is MISSING:
            return default
        if allow_none and isinstance(value, str) and value.strip().lower() == "none":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            expected = "a duration like '90s'" + (" or 'none'" if allow_none else "")
            self.wrong_type(path + (key,), expected, value)
            return default
        try:
            seconds = parse_duration(value)
        except DurationError as e:
            self.add(path + (key,), str(e))
            return default
        if not math.isfinite(seconds):
            self.add(path + (key,), f"duration must be finite, got {clip(value)}")
            return default
        if allow_none and seconds == 0:
            self.add(path + (key,), f"{key} must be more than 0; write 'none' for no limit")
            return default
        if not minimum <= seconds <= maximum:
            if seconds < minimum and maximum >= MAX_DURATION:
                self.add(path + (key,), f"{key} must be at least {format_seconds(minimum)}")
            else:
                self.add(path + (key,), f"{key} must be {format_seconds(minimum)}.."
                                        f"{format_seconds(maximum)}, got {clip(value)}")
            return default
        return seconds

    def choice(self, t: dict[str, Any], key: str, path: KeyPath, default: str,
               choices: tuple[str, ...]) -> str:
        value = self.string(t, key, path, MISSING, nonempty=False)
        if value is MISSING:
            return default
        if value not in choices:
            self.add(path + (key,), f"{key} must be one of {', '.join(choices)}, "
                                    f"got {clip(value)}")
            return default
        return value

    def timezone(self, t: dict[str, Any], key: str, path: KeyPath, default: Any) -> Any:
        value = self.string(t, key, path, MISSING)
        if value is MISSING:
            return default
        if not zone_exists(value):
            self.add(path + (key,), f"unknown time zone {clip(value)}; use an IANA name "
                                    "like 'Europe/Berlin' or 'UTC'")
            return BAD_ZONE
        return value

    def env_map(self, t: dict[str, Any], path: KeyPath) -> dict[str, str]:
        """An `env` table: variable names to strings, their references checked now."""
        value = self.str_map(t, "env", path, ENV_NAME_RE, "environment variable name")
        check_references(self, path + ("env",), value, strict=False)
        return value

    def str_map(self, t: dict[str, Any], key: str, path: KeyPath,
                key_re: re.Pattern[str] | None = None, what: str = "key",
                max_length: int | None = None) -> dict[str, str]:
        value = t.get(key, MISSING)
        if value is MISSING:
            return {}
        if not isinstance(value, dict):
            self.wrong_type(path + (key,), "a table", value)
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if key_re is not None and not key_re.fullmatch(k):
                self.add(path + (key, k), f"invalid {what} {clip(k)}")
            elif not isinstance(v, str):
                self.wrong_type(path + (key, k), "a string", v)
            elif self.text_ok(v, path + (key, k), line=True, max_length=max_length):
                out[k] = v
        return out

    def str_list(self, t: dict[str, Any], key: str, path: KeyPath, *, names: str = "") -> tuple[
            str, ...]:
        value = t.get(key, MISSING)
        if value is MISSING:
            return ()
        if not isinstance(value, list):
            self.wrong_type(path + (key,), "an array of strings", value)
            return ()
        out: list[str] = []
        for item in value:
            if not isinstance(item, str):
                self.add(path + (key,), f"expected an array of strings, got a {type_name(item)} "
                                        "in it")
            elif names and not self.name_ok(item, names, path + (key,)):
                pass
            elif not self.text_ok(item, path + (key,), line=True):
                pass
            elif item not in out:
                out.append(item)
        return tuple(out)


BAD_ZONE = "\0bad zone"  # a timezone already reported as wrong; skip it when checking schedules


def did_you_mean(word: str, names: Iterable[str], otherwise: str = "") -> str:
    """" (did you mean 'x'?)" for the name closest to a mistyped one, else `otherwise`."""
    import difflib  # only for a mistake

    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else otherwise


def zone_exists(name: str) -> bool:
    """A zone a schedule can run in: the schedule's own test (`localtime`, `posixrules`
    and `Factory` are files in the zone database, no zones)."""
    from core.jobs.zones import zone_or_none  # only when a zone is named

    return zone_or_none(name) is not None



def section(c: Checker, doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, MISSING)
    if value is MISSING:
        return {}
    return c.table(value, (key,)) or {}


def read_document(text: str, source: str) -> tuple[dict[str, Any] | None, Checker]:
    """The parsed document (None on a TOML syntax error or a refused text, which the
    checker then holds). tomllib sees only a text that `prescan` let through."""
    refused = prescan(text)
    if refused is not None:
        c = Checker(source, "")
        c.issues.append(refusal_issue(refused, source))
        return None, c
    c = Checker(source, text)
    try:
        return tomllib.loads(text), c
    except tomllib.TOMLDecodeError as e:
        c.issues.append(syntax_issue(e, text, source))
    except (RecursionError, ValueError, MemoryError) as e:  # prescan should have said
        c.issues.append(ConfigIssue(source, "", f"cannot read: {type(e).__name__}",
                                    max(1, text.count("\n"))))
    return None, c


def refusal_issue(r: Refusal, source: str) -> ConfigIssue:
    return ConfigIssue(source, r.key, r.message, r.line)


# ---------------------------------------------------------------- TOML syntax errors ---
_POS_RE = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")
_TWICE_RE = re.compile(r"Cannot declare \((.*)\) twice")


def syntax_issue(e: tomllib.TOMLDecodeError, text: str, source: str) -> ConfigIssue:
    raw = str(e)
    m = _POS_RE.search(raw)
    msg = raw[: m.start()] if m else raw
    if m and m.group(1):
        line: int | None = int(m.group(1))
        col: int | None = int(m.group(2))
    else:
        line, col = max(1, text.count("\n") + (0 if text.endswith("\n") else 1)), None
    twice = _TWICE_RE.match(msg)
    if twice:
        try:
            import ast  # only for a duplicate key's message

            parts = tuple(ast.literal_eval("(" + twice.group(1) + ")"))
        except (ValueError, SyntaxError):
            parts = ()
        if parts:
            return ConfigIssue(source, key_path(parts), "table declared twice", line)
    if msg.startswith("Cannot overwrite a value") and line is not None:
        lines = text.split("\n")
        here = lines[line - 1] if line <= len(lines) else ""
        header = LineIndex.header_key(here)
        if header:
            return ConfigIssue(source, key_path(header),
                               "table conflicts with a value defined earlier", line)
        key = LineIndex.statement_key(here)
        if key:
            index = LineIndex(text)
            sec = next((sc for sc in index.sections if (line, key) in sc.keys), None)
            full = (sec.parts if sec else ()) + key
            return ConfigIssue(source, key_path(full), "key defined twice", line)
        return ConfigIssue(source, "", "a key or table is defined twice", line)
    if msg.startswith("Illegal character '\\n'"):
        msg = "unexpected end of line (an unclosed string?)"
    elif msg.startswith("Unterminated string"):
        msg = "unterminated string"
    else:
        msg = msg[:1].lower() + msg[1:]
    where = f" at column {col}" if col is not None else (" at end of file" if not m or not
                                                            m.group(1) else "")
    return ConfigIssue(source, "", f"invalid TOML: {msg}{where}", line)


def check_backoff(c: Checker, t: dict[str, Any], p: KeyPath, backoff: float,
                  backoff_max: float) -> None:
    """retry_backoff above retry_backoff_max (the first wait longer than the longest)."""
    if backoff > backoff_max and ("retry_backoff" in t or "retry_backoff_max" in t):
        c.add(p + ("retry_backoff",), f"retry_backoff ({backoff:g}s) is above "
                                      f"retry_backoff_max ({backoff_max:g}s)")


def check_references(c: Checker, p: KeyPath, value: str | Mapping[str, str] | None, *,
                     strict: bool = True) -> None:
    """The ${NAME} and ${file:PATH} references in a value (or a map's values), checked
    now: filled in at a run or a delivery, a mistake there would fail it instead.
    `strict=False` for free text (env values), where `${...}` may be another program's."""
    from core.secrets import reference_problem

    items = value.items() if isinstance(value, Mapping) else [(None, value)]
    for key, text in items:
        problem = reference_problem(text, strict=strict) if isinstance(text, str) else None
        if problem:
            c.add(p + ((key,) if key is not None else ()), problem)
