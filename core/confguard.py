"""Hostile config input held off before and around parsing.

tomllib recurses once per nested array or inline table (1,000 levels is a RecursionError),
is quadratic in the parts of a dotted key (50,000 parts took a minute), and turns a
5,000-digit integer into a bare ValueError. `prescan` reads the text once, linearly and
without recursion, and refuses all of that (and an oversized file, and too many keys)
before tomllib sees it, each as one line naming the line and the key. The helpers below
keep values out of messages (`clip`) and control characters out of commands, paths and
names (`bad_char`), for the section readers and the schedule parser alike.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_FILE_BYTES = 4 * 1024 * 1024  # a config of a few thousand jobs is well under 1 MB
MAX_DEPTH = 32  # arrays and inline tables inside one another
MAX_KEY_PARTS = 16  # a.b.c...: parts of one dotted key or table header (jobs.x.env.Y is 4)
MAX_KEYS = 100_000  # key = value lines and table headers in one file
MAX_NUMBER_CHARS = 100  # digits of one number (int() of 5,000 digits raises)
MAX_NAME = 200  # a job, host, check ... name
MAX_STRING = 64 * 1024  # a command or any other string value
MAX_PATH = 4096  # PATH_MAX
MAX_DURATION = 366 * 86400.0  # any duration in a config: a longer one is a typo
MAX_ISSUES = 200  # issues collected from one file: a fuzzed file can hold millions
CLIP = 60  # characters of a value quoted in a message


def clip(value: object, limit: int = CLIP) -> str:
    """A value quoted for a message: repr() of its first `limit` characters, then '…'."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def regex_problem(value: str) -> tuple[re.Pattern[str] | None, str]:
    """A pattern compiled, or why it cannot be, the same words on any stack depth: a
    nesting too deep is Python's RecursionError, whose text varies with where the limit
    was met."""
    try:
        return re.compile(value), ""
    except RecursionError:
        return None, "maximum recursion depth exceeded"
    except (re.error, OverflowError) as e:
        return None, str(e)


def one_line(text: str, limit: int = 400) -> str:
    """A message made safe to print as one line: control characters escaped, length cut."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit] + "…"


def char_name(ch: str) -> str:
    """'５' (U+FF15 FULLWIDTH DIGIT FIVE): a character named so it can be found."""
    shown = repr(ch)[1:-1] if not ch.isprintable() else ch
    name = unicodedata.name(ch, "")
    return f"'{shown}' (U+{ord(ch):04X}{' ' + name if name else ''})"


def non_ascii(text: str) -> str | None:
    """The first non-ASCII character of text, named; None when it is all ASCII."""
    if text.isascii():
        return None
    return char_name(next(ch for ch in text if not ch.isascii()))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_WS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def bad_char(text: str, *, multiline: bool = False) -> str | None:
    """The first control character in text, named (NUL can't reach exec, ESC would drive
    the terminal); multiline text (a command, a description) may hold tab and newlines."""
    m = (_CONTROL_EXCEPT_WS if multiline else _CONTROL).search(text)
    return None if m is None else char_name(m.group())


def format_seconds(seconds: float) -> str:
    """A bound in a message: 366d, 1h, 90s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# ------------------------------------------------------------------------ prescan ---
@dataclass(frozen=True)
class Refusal:
    """Why a text is not handed to tomllib: the line, the key as written, and what."""

    line: int
    key: str
    message: str


_TOKEN = re.compile(r"\"\"\"|'''|[\"'#\[\]{}=,.\n]")
_IN_ARRAY = re.compile(r"\"\"\"|'''|[\"'#\[\]{}]")  # between values: , . = \n don't matter
_LONG_NUMBER = re.compile(r"[0-9][0-9_]{" + str(MAX_NUMBER_CHARS) + ",}")


def prescan(text: str) -> Refusal | None:
    """The first cap the text breaks, or None: nesting depth, dotted-key parts, keys,
    number length. One pass over the tokens outside strings and comments."""
    n = len(text)
    stack: list[str] = []  # '[' an array, '{' an inline table
    in_key, header = True, False
    key_start, dots, keys = 0, 0, 0
    last_key = statement = ""  # the last key read; the last one at the top level
    pos = 0
    while pos < n:
        m = (_IN_ARRAY if stack and stack[-1] == "[" else _TOKEN).search(text, pos)
        end = m.start() if m else n
        if not in_key and not header and end - pos > MAX_NUMBER_CHARS:
            big = _LONG_NUMBER.search(text, pos, end)
            if big:
                return _refuse(text, big.start(), last_key, "a number of more than "
                               f"{MAX_NUMBER_CHARS} digits")
        if m is None:
            break
        tok = m.group()
        pos = m.end()
        if tok in ('"', "'", '"""', "'''"):
            pos = _string_end(text, pos, tok)
        elif tok == "#":
            nl = text.find("\n", pos)
            pos = n if nl < 0 else nl
        elif tok == "\n":
            if not stack:
                in_key, header, dots, key_start = True, False, 0, pos
        elif tok == ".":
            if in_key or header:
                dots += 1
                if dots >= MAX_KEY_PARTS:
                    return _refuse(text, m.start(), text[key_start:m.start()],
                                   f"a dotted key of more than {MAX_KEY_PARTS} parts")
        elif tok == "=":
            if in_key:
                last_key = text[key_start:m.start()].strip()
                if not stack:
                    statement = last_key
                keys += 1
                if keys > MAX_KEYS:
                    return _refuse(text, m.start(), last_key, f"more than {MAX_KEYS} keys")
                in_key, dots = False, 0
        elif tok == "[":
            if header or (in_key and not stack):
                if not header:
                    header, key_start, dots = True, pos, 0
                    keys += 1
                    if keys > MAX_KEYS:
                        return _refuse(text, m.start(), "", f"more than {MAX_KEYS} keys")
                else:
                    key_start = pos
            else:
                stack.append("[")
                if len(stack) > MAX_DEPTH:
                    return _refuse(text, m.start(), statement, "arrays and inline tables "
                                   f"nested more than {MAX_DEPTH} deep")
        elif tok == "{":
            stack.append("{")
            if len(stack) > MAX_DEPTH:
                return _refuse(text, m.start(), statement, "arrays and inline tables "
                               f"nested more than {MAX_DEPTH} deep")
            in_key, key_start, dots = True, pos, 0
        elif tok in "]}":
            if header and not stack:
                last_key = text[key_start:m.start()].strip()
            elif stack:
                stack.pop()
                in_key = False
        elif tok == ",":
            if stack and stack[-1] == "{":
                in_key, key_start, dots = True, pos, 0
    return None


def _string_end(text: str, pos: int, quote: str) -> int:
    """Where a string opened just before `pos` ends (an unterminated one: at the end of
    its line, or of the text; tomllib reports it)."""
    n = len(text)
    if quote in ('"""', "'''"):
        while True:
            end = text.find(quote, pos)
            if end < 0:
                return n
            if quote == '"""' and _escaped(text, end):
                pos = end + 1
                continue
            end += 3
            for _ in range(2):  # up to two quotes more end the string's own text
                if end < n and text[end] == quote[0]:
                    end += 1
            return end
    m = (_BASIC if quote == '"' else _LITERAL).match(text, pos)
    end = m.end() if m else pos
    return end + 1 if end < n and text[end] == quote else end


_BASIC = re.compile(r'[^"\\\n]*(?:\\.[^"\\\n]*)*')
_LITERAL = re.compile(r"[^'\n]*")


def _escaped(text: str, pos: int) -> bool:
    """An odd number of backslashes just before pos."""
    k = pos
    while k > 0 and text[k - 1] == "\\":
        k -= 1
    return (pos - k) % 2 == 1


def _refuse(text: str, pos: int, key: str, what: str) -> Refusal:
    line = text.count("\n", 0, pos) + 1
    return Refusal(line, key if len(key) <= CLIP else key[:CLIP] + "…", what)
