"""Key paths to source lines: tomllib keeps no positions, so issues find their line here.

A best-effort scan of the text, line by line (multi-line strings skipped), of table
headers and `key = value` statements; `LineIndex.find` maps a key path to the line that
defines it, or to the nearest table that holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KeyPath = tuple[str, ...]

_KEY_PART_RE = re.compile(r"""\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*""")


_ESCAPE_RE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b", '"': '"',
            "\\": "\\"}


def unescape(s: str) -> str:
    """A basic string's text as tomllib reads it: "\\u001F" is the key chr(31)."""
    if "\\" not in s:
        return s

    def one(m: re.Match[str]) -> str:
        code = m.group(1) or m.group(2)
        if code:
            n = int(code, 16)
            return chr(n) if n <= 0x10FFFF else m.group()
        return _ESCAPES.get(m.group(3), m.group())

    return _ESCAPE_RE.sub(one, s)


@dataclass
class _Section:
    line: int | None  # header line; None for the root
    parts: KeyPath
    keys: list[tuple[int, KeyPath]] = field(default_factory=list)


class LineIndex:
    """A best-effort map from key paths to source lines (tomllib keeps no positions)."""

    def __init__(self, text: str) -> None:
        self.sections: list[_Section] = [_Section(None, ())]
        in_string: str | None = None
        for n, line in enumerate(text.split("\n"), start=1):  # TOML ends lines in \n only
            if in_string:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = self.header_key(line)
            if header is not None:
                self.sections.append(_Section(n, header))
            else:
                key = self.statement_key(line)
                if key:
                    self.sections[-1].keys.append((n, key))
            for delim in ('"""', "'''"):
                if line.count(delim) % 2 == 1:
                    in_string = delim
                    break

    @staticmethod
    def parse_key(s: str) -> tuple[KeyPath, str]:
        """A dotted key at the start of s, and what follows it."""
        parts: list[str] = []
        pos = 0
        while True:
            m = _KEY_PART_RE.match(s, pos)
            if not m or m.end() == pos:
                return (), s
            bare, basic, literal = m.groups()
            parts.append(bare if bare is not None else unescape(basic) if basic is not None
                         else literal)
            pos = m.end()
            if pos < len(s) and s[pos] == ".":
                pos += 1
                continue
            return tuple(parts), s[pos:]

    @classmethod
    def header_key(cls, line: str) -> KeyPath | None:
        s = line.strip()
        if not s.startswith("["):
            return None
        inner = s[2:] if s.startswith("[[") else s[1:]
        parts, rest = cls.parse_key(inner)
        if not parts or not rest.lstrip().startswith("]"):
            return None
        return parts

    @classmethod
    def statement_key(cls, line: str) -> KeyPath:
        s = line.strip()
        if not s or s[0] in "#[":
            return ()
        parts, rest = cls.parse_key(s)
        return parts if parts and rest.lstrip().startswith("=") else ()

    def find(self, path: KeyPath) -> int | None:
        for i, part in enumerate(path):  # "[n]": the n-th [[table]] of that name
            if len(part) > 2 and part[0] == "[" and part[-1] == "]" and part[1:-1].isdigit():
                return self._find_item(path[:i], int(part[1:-1]), path[i + 1:])
        for sec in self.sections:
            if sec.line is not None and sec.parts == path:
                return sec.line
        below = [  # a table declared only through its sub-tables
            s.line for s in self.sections
            if s.line is not None and len(s.parts) > len(path) and s.parts[: len(path)] == path
        ]
        for i in range(len(path) - 1, -1, -1):
            prefix, rest = path[:i], path[i:]
            matching = [s for s in self.sections if s.parts == prefix]
            best: tuple[int, int] | None = None  # (matched length, line)
            for sec in matching:
                for n, key in sec.keys:
                    k = min(len(key), len(rest))
                    if key[:k] == rest[:k] and (best is None or k > best[0]):
                        best = (k, n)
            if best is not None:
                return best[1]
            if below:
                return below[0]
            for sec in matching:
                if sec.line is not None:
                    return sec.line
        return None

    def _find_item(self, prefix: KeyPath, n: int, rest: KeyPath) -> int | None:
        items = [s for s in self.sections if s.line is not None and s.parts == prefix]
        if n >= len(items):  # written inline (steps = [{...}]): the array's line
            return self.find(prefix)
        sec = items[n]
        for line, key in sec.keys:
            if rest and key[:1] == rest[:1]:
                return line
        return sec.line
