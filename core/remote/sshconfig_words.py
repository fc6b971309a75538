"""The small grammar of ssh_config, read the way OpenSSH's client does (readconf.c, misc.c,
match.c of OpenSSH 9.2): how a line splits into words, how patterns match, how `%` tokens
and `${VAR}` expand, how times and ports read. Each function mirrors one rule of ssh, odd
corners included, because the point is to agree with `ssh -G` (tests hold it to that)."""

from __future__ import annotations

import pwd
import re
import socket
from collections.abc import Mapping
from functools import lru_cache

WHITESPACE = " \t\r\n"
BAD_HOST_CHARS = set("'`\"$\\;&<>|(){},")  # ssh refuses these (Debian 9.2p1 the comma too)
INT_MAX = 2**31 - 1
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class SSHConfigError(ValueError):
    """An ssh_config that ssh itself would refuse: one line, naming file:line when one is
    to blame."""


def ascii_lower(text: str) -> str:
    """ssh lowercases with tolower() byte by byte: ASCII letters only."""
    return text.translate(_LOWER)


def strdelim(s: str | None, split_equals: bool = True) -> tuple[str | None, str | None]:
    """(word, rest) as misc.c strdelim: splits at whitespace, a double quote or one '=';
    a double-quoted stretch joins words; an unclosed quote gives (None, None)."""
    if s is None:
        return None, None
    stops = WHITESPACE + '"' + ("=" if split_equals else "")
    at = next((i for i, c in enumerate(s) if c in stops), -1)
    if at < 0:
        return s, None
    if s[at] == '"':
        s = s[:at] + s[at + 1:]
        close = s.find('"', at)
        if close < 0:
            return None, None
        return s[:close], s[close + 1:].lstrip(WHITESPACE)
    word, rest = s[:at], s[at + 1:].lstrip(WHITESPACE)
    if split_equals and s[at] != "=" and rest.startswith("="):
        rest = rest[1:].lstrip(WHITESPACE)
    return word, rest


def argv_split(s: str) -> list[str]:
    """The arguments of a line as misc.c argv_split: space/tab separate, single or double
    quotes group, backslash escapes a quote, a backslash or (unquoted) a space, and '#' at
    the start of a word ends the line. Raises ValueError on an unclosed quote."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        if s[i] in " \t":
            i += 1
            continue
        if s[i] == "#":
            break
        quote = ""
        word: list[str] = []
        while i < n:
            c = s[i]
            if c == "\\":
                nxt = s[i + 1] if i + 1 < n else ""
                if nxt in ("'", '"', "\\") or (not quote and nxt == " "):
                    i += 1
                    word.append(nxt)
                else:
                    word.append(c)
            elif not quote and c in " \t":
                break
            elif not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                word.append(c)
            i += 1
        if i >= n and quote:
            raise ValueError("invalid quotes")
        out.append("".join(word))
    return out


@lru_cache(maxsize=1024)
def _pattern(pattern: bytes) -> re.Pattern[bytes]:
    parts = [b".*" if c == b"*" else b"." if c == b"?" else re.escape(c)
             for c in (pattern[i:i + 1] for i in range(len(pattern)))]
    return re.compile(b"".join(parts), re.DOTALL)


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def match_pattern(text: str, pattern: str) -> bool:
    """match.c match_pattern: '*' and '?' over bytes, nothing else special, case kept."""
    return _pattern(_bytes(pattern)).fullmatch(_bytes(text)) is not None


def match_pattern_list(text: str, patterns: str, dolower: bool) -> int:
    """match.c match_pattern_list: 1 for a positive match, -1 when a negated ('!') entry
    matches, 0 for none; with dolower the patterns (not the text) are lowercased. A
    sub-pattern of 1023 bytes or more ends the list with no match, as in ssh."""
    raw = _bytes(patterns)
    got = 0
    i = 0
    while i < len(raw):
        negated = raw[i:i + 1] == b"!"
        if negated:
            i += 1
        end = raw.find(b",", i)
        end = len(raw) if end < 0 else end
        sub = raw[i:end]
        if len(sub) >= 1023:
            return 0
        if dolower:
            sub = sub.lower()
        i = end + 1 if end < len(raw) else end
        if _pattern(sub).fullmatch(_bytes(text)) is not None:
            if negated:
                return -1
            got = 1
    return got


def match_hostname(host: str, patterns: str) -> int:
    """match.c match_hostname: the host lowercased, the patterns lowercased."""
    return match_pattern_list(ascii_lower(host), patterns, True)


def percent_expand(text: str, tokens: Mapping[str, str] | None,
                   env: Mapping[str, str] | None = None) -> str:
    """misc.c percent_expand (with env too, percent_dollar_expand; tokens None, only
    dollar_expand): `%x` from tokens, `%%` a percent, `${NAME}` from env. Raises
    ValueError naming what ssh rejects."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if env is not None and text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                raise ValueError(f"environment variable '{text[i + 2:]}' missing closing '}}'")
            name = text[i + 2:end]
            if not name:
                raise ValueError("zero-length environment variable")
            if name not in env:
                raise ValueError(f"env var ${{{name}}} has no value")
            out.append(env[name])
            i = end + 1
            continue
        if c != "%" or tokens is None:
            out.append(c)
        elif i + 1 >= n:
            raise ValueError("invalid format: '%' at the end")
        else:
            i += 1
            key = text[i]
            if key == "%":
                out.append("%")
            elif key in tokens:
                out.append(tokens[key])
            else:
                raise ValueError(f"unknown key %{key}")
        i += 1
    return "".join(out)


def tilde_expand(path: str, home: str, home_of: Mapping[str, str] | None = None) -> str:
    """misc.c tilde_expand_filename: `~` and `~/x` are the user's passwd home (not $HOME),
    `~name/x` that user's; the home gets one '/' after it. Raises ValueError for an
    unknown user."""
    if not path.startswith("~"):
        return path
    rest = path[1:]
    if rest == "" or rest.startswith("/"):
        base, tail = home, rest.lstrip("/")
    else:
        name, _, tail = rest.partition("/")
        tail = tail.lstrip("/")
        if home_of is not None and name in home_of:
            base = home_of[name]
        else:
            try:
                base = pwd.getpwnam(name).pw_dir
            except KeyError:
                raise ValueError(f"No such user {name}") from None
    slash = "" if base.endswith("/") and base else "/"
    return f"{base}{slash}{tail}"


_LONG = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _strtol(s: str, at: int) -> tuple[int, int] | None:
    """C strtol in base 10 from position at: (value, end) or None when no digits."""
    m = _LONG.match(s, at)
    if m is None:
        return None
    value = int(m.group(2))
    return (-value if m.group(1) == "-" else value), m.end()


def strtonum(s: str, low: int, high: int) -> int | None:
    """OpenBSD strtonum: the whole string one base-10 number within [low, high]."""
    got = _strtol(s, 0)
    if got is None or got[1] != len(s) or not low <= got[0] <= high:
        return None
    return got[0]


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def convtime(s: str) -> int:
    """misc.c convtime: "90", "1m30s", "2h" to seconds; -1 when ssh would refuse it."""
    if not s:
        return -1
    total, at = 0, 0
    while at < len(s):
        got = _strtol(s, at)
        if got is None or got[0] < 0:
            return -1
        secs, at = got
        unit = s[at:at + 1].lower()
        if unit not in _UNITS:
            return -1
        at += len(unit)
        mult = _UNITS[unit]
        if secs > INT_MAX // mult:
            return -1
        secs *= mult
        if total > INT_MAX - secs:
            return -1
        total += secs
    return total


def a2port(s: str) -> int:
    """misc.c a2port: 0-65535, or a TCP service name; -1 otherwise."""
    port = strtonum(s, 0, 65535)
    if port is not None:
        return port
    try:
        return socket.getservbyname(s, "tcp")
    except OSError:
        return -1


def default_port() -> int:
    """ssh's default port: the "ssh" TCP service, else 22."""
    try:
        return socket.getservbyname("ssh", "tcp")
    except OSError:
        return 22


def _hpdelim(s: str) -> tuple[str | None, str | None, str]:
    """misc.c hpdelim2: (host, rest, delimiter) splitting host[:/]rest, [v6] bracketed."""
    if s.startswith("["):
        close = s.find("]")
        if close < 0:
            return None, None, ""
        at = close + 1
    else:
        at = next((i for i, c in enumerate(s) if c in ":/"), len(s))
    if at >= len(s):
        return s, None, ""
    if s[at] not in ":/":
        return None, None, ""
    return s[:at], s[at + 1:], s[at]


def _cleanhost(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") and host else host


def parse_user_host_port(s: str) -> tuple[str | None, str, int] | None:
    """misc.c parse_user_host_port: [user@]host[:port] -> (user, host, port or -1)."""
    user = None
    at = s.rfind("@")
    if at >= 0:
        if at == 0:
            return None
        user, s = s[:at], s[at + 1:]
    host, rest, delim = _hpdelim(s)
    if host is None or host == "" or delim == "/":
        return None
    port = -1
    if rest:
        port = a2port(rest)
        if port <= 0:
            return None
    return user, _cleanhost(host), port


def _urldecode(s: str) -> str | None:
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "+":
            out.append(" ")
        elif c == "%":
            pair = s[i + 1:i + 3]
            if len(pair) != 2 or any(ch not in "0123456789abcdefABCDEF" for ch in pair):
                return None
            out.append(chr(int(pair, 16)))
            i += 2
        else:
            out.append(c)
        i += 1
    return "".join(out)


def valid_domain(name: str) -> str | None:
    """misc.c valid_domain: None when fine, else why not."""
    if not name:
        return "empty domain name"
    if not (name[0].isascii() and name[0].isalnum()):
        return f'domain name "{name}" starts with invalid character'
    last = ""
    for c in ascii_lower(name):
        if last == "." and c == ".":
            return f'domain name "{name}" contains consecutive separators'
        if c not in ".-_" and not (c.isascii() and c.isalnum()):
            return f'domain name "{name}" contains invalid characters'
        last = c
    return None


def parse_ssh_uri(uri: str) -> tuple[str | None, str, int] | None | bool:
    """readconf.c parse_ssh_uri: True when uri is not ssh://, None when it is but is bad
    (or has a path), else (user, host, port or -1)."""
    if not uri.startswith("ssh://"):
        return True
    rest = uri[len("ssh://"):]
    user = None
    at = rest.find("@")
    if at >= 0:
        info = rest[:at].split(";", 1)[0]
        if not info:
            return None
        user = _urldecode(info)
        if user is None:
            return None
        rest = rest[at + 1:]
    host, tail, delim = _hpdelim(rest)
    if host is None or host == "":
        return None
    host = _cleanhost(host)
    if valid_domain(host) is not None:
        return None
    port = -1
    if tail:
        if delim == ":":
            portpart, slash, after = tail.partition("/")
            port = a2port(portpart)
            if port <= 0:
                return None
            tail = after if slash else ""
        if tail:
            return None  # a path: not allowed for ssh://
    return user, host, port


def host_name_problem(host: str) -> str | None:
    """Why ssh would refuse `host` as the host to connect to (ssh.c's check), or None."""
    if host.startswith("-") or any(ch in BAD_HOST_CHARS or ch in " \t\n\v\f\r"
                                   or ord(ch) < 32 or ord(ch) == 127 for ch in host):
        return "hostname contains invalid characters"
    return None
