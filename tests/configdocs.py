"""Hypothesis strategies for hostile config documents (tests/unit/test_config_fuzz.py).

A document is TOML text built from the schema's own sections and keys (core/fleetconfig.py
SECTIONS), so most of it reaches the section readers, with values chosen to hurt: huge
and non-finite numbers, arrays and inline tables nested past any limit, NUL and other
control characters, digits of other scripts, long strings and names, dotted keys of many
parts, and the wrong type for every key. The text is written here, not by a TOML
library, so it can be deeper or longer than any writer would make it.
"""

from __future__ import annotations

from hypothesis import strategies as st

from core.fleetconfig import SECTIONS

_SECTIONS = {s.name: s for s in SECTIONS}
_BARE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def toml_string(s: str) -> str:
    """A TOML basic string holding s exactly (control characters as \\u escapes)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_key(s: str) -> str:
    return s if s and all(c in _BARE for c in s) else toml_string(s)


# --------------------------------------------------------------------- values ---
_HOSTILE_TEXT = st.sampled_from([
    "", " ", "none", "every ５s", "every ٣s", "٣ * * * *", "*/99999999999999999999 * * * *",
    "50-10 * * * *", "0 0 30 2 *", "@reboot", "at 9999-12-31 23:59", "at 0001-01-01 00:00",
    "99999999999999999999d", "1e309", "nan", "inf", "-1s", "１ｍ", "5x", "1h30m", "30s",
    "echo \x00hi", "/tmp\x00x", "\x1b[31mred", "a\nb", "\t", "local", "@web", "web[1-999999999]",
    "web[01-20]", "!x", "role=cache", "(" * 300 + ")" * 300, "Europe/Berlin", "Nowhere/Else",
    "> 10 in 60s", "> 500% in 5m", "status >= 500", "http://x", "webhook", "command",
    "metrics", "http", "tcp", "process", "skip", "queue", "cron", "quartz", "failed",
])
_TEXT = st.one_of(
    _HOSTILE_TEXT,
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=5).map(
        lambda d: f"every {d}s"),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "0", "*", "é", "\x00"]),
              st.integers(0, 70_000)),
)
_NUMBER = st.one_of(
    st.integers(-10**30, 10**30).map(str),
    st.integers(0, 150).map(lambda n: "1" + "0" * n),  # past 100 digits: refused
    st.sampled_from(["0", "-1", "1", "100", "101", "65536", "1e23", "1e29", "1e400",
                     "nan", "inf", "-inf", "0x7FFFFFFFFFFFFFFF", "1_000_000"]),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: "nan" if f != f else ("inf" if f == float("inf") else
                                        "-inf" if f == float("-inf") else repr(f))),
)
_SCALAR = st.one_of(
    _TEXT.map(toml_string), _NUMBER, st.sampled_from(["true", "false"]),
    st.sampled_from(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00",
                     "9999-12-31T23:59:59", "0001-01-01T00:00:00+14:00"]),
)


_DEEP = st.builds(
    lambda n, array: "[" * n + "1" + "]" * n if array else "{a = " * n + "1" + "}" * n,
    st.one_of(st.integers(1, 40), st.just(1000)), st.booleans())


def _value(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(st.text(_BARE, min_size=1, max_size=8), children, max_size=3).map(
            lambda d: "{" + ", ".join(f"{toml_key(k)} = {v}" for k, v in d.items()) + "}"),
    )


VALUE = st.one_of(_SCALAR, _DEEP, st.recursive(_SCALAR, _value, max_leaves=8))

# --------------------------------------------------------------------- keys ---
_NAME = st.one_of(
    st.sampled_from(["a", "web01", "backup", "local", "x.y", "-x", "a b", "５", "\x00"]),
    st.text(max_size=12),
    st.integers(190, 5000).map(lambda n: "n" * n),
)


def _dotted(parts: int) -> str:
    return ".".join(["p"] * parts)


@st.composite
def statement(draw: st.DrawFn, keys: tuple[str, ...]) -> str:
    """One `key = value` line: a schema key mostly, now and then an unknown or dotted one."""
    key = draw(st.one_of(
        st.sampled_from(keys).map(toml_key) if keys else st.just("x"),
        st.sampled_from(keys).map(lambda k: k + "x") if keys else st.just("y"),
        st.integers(2, 40).map(_dotted),
        st.text(max_size=10).map(toml_key),
    ))
    return f"{key} = {draw(VALUE)}"


@st.composite
def table(draw: st.DrawFn) -> str:
    """A section: its header (with a name for [jobs.NAME] and the like) and statements."""
    name = draw(st.sampled_from(sorted(_SECTIONS)))
    section = _SECTIONS[name]
    header = name
    if section.named:
        header += "." + toml_key(draw(_NAME))
    keys = section.names()
    lines = [f"[{header}]"]
    if name == "jobs" and draw(st.booleans()):
        lines.append('command = "true"')
    lines += draw(st.lists(statement(keys), max_size=6))
    return "\n".join(lines)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A whole config file's text."""
    top = draw(st.lists(statement(("theme",)), max_size=2))
    tables = draw(st.lists(table(), min_size=1, max_size=5))
    extra = draw(st.sampled_from(["", "", "", "[" + _dotted(20000) + "]",
                                  "x = " + "[" * 1000 + "]" * 1000,
                                  "deep = " + "{a = " * 1000 + "1" + "}" * 1000]))
    return "\n".join([*top, *tables, extra]) + "\n"
