"""detect_level on the shapes jobs print."""

from __future__ import annotations

import pytest

from core.logs.levels import candidate_regex, detect_level, is_error, strip_ansi

CASES = [
    # plain words
    ("2024-05-01 12:00:00,123 ERROR app: boom", "error"),
    ("2024-05-01 12:00:00 WARN disk 91%", "warning"),
    ("2024-05-01 12:00:00 WARNING disk 91%", "warning"),
    ("2024-05-01 12:00:00 INFO started", "info"),
    ("2024-05-01 12:00:00 DEBUG x=1", "debug"),
    ("TRACE entering f()", "debug"),
    ("FATAL: cannot continue", "error"),
    ("CRITICAL disk full", "error"),
    ("PANIC everything", "error"),
    ("npm ERR! code E404", "error"),
    # brackets and colons, any case
    ("[ERROR] boom", "error"),
    ("[error] boom", "error"),
    ("[Warn] careful", "warning"),
    ("<info> hello", "info"),
    ("ERROR: boom", "error"),
    ("error: pathspec 'x' did not match", "error"),
    ("src/a.c:12:5: error: expected ';'", "error"),
    ("src/a.c:12:5: warning: unused variable", "warning"),
    ("fatal: not a git repository", "error"),
    # syslog priority, klog
    ("<3>kernel: oops", "error"),
    ("<4>kernel: hmm", "warning"),
    ("<6>kernel: fine", "info"),
    ("<7>kernel: chatty", "debug"),
    ("<11>daemon error (11 % 8 = 3)", "error"),
    ("E0102 12:00:00.123456 1 main.go:10] bad", "error"),
    ("W0102 12:00:00.123456 1 main.go:10] meh", "warning"),
    ("I0102 12:00:00.123456 1 main.go:10] ok", "info"),
    # logfmt and JSON
    ('time=2024-05-01T12:00:00Z level=error msg="db down"', "error"),
    ("ts=1 lvl=warn msg=slow", "warning"),
    ('severity="info" msg=x', "info"),
    ('{"time": "x", "level": "error", "msg": "db down"}', "error"),
    ('{"severity":"WARNING","message":"slow"}', "warning"),
    ('{"lvl":"debug"}', "debug"),
    ('{"level":50,"msg":"pino error"}', "error"),
    ('{"level":30,"msg":"pino info"}', "info"),
    ('  {"levelname": "CRITICAL"}', "error"),
    # Python
    ("Traceback (most recent call last):", "error"),
    ("ValueError: invalid literal for int()", "error"),
    ("requests.exceptions.ConnectionError: refused", "error"),
    ("Exception: something", "error"),
    # ANSI colour does not hide the level
    ("\x1b[31mERROR\x1b[0m coloured", "error"),
    # the first level word wins
    ("INFO retrying after ERROR", "info"),
    # no level
    ("", None),
    ("compiling foo.c", None),
    ("0 errors, 2 warnings", None),
    ("an error occurred in the stacktrace", None),
    ("Information is power", None),
    ("interrupted by user", None),
    ("[fleetdeck] run failed: ERROR exit 1", None),
    ('  File "x.py", line 3, in <module>', None),
]


@pytest.mark.parametrize(("line", "level"), CASES)
def test_detect_level(line: str, level: str | None):
    assert detect_level(line) == level


def test_is_error():
    assert is_error("ERROR boom")
    assert not is_error("WARN x")
    assert not is_error("[fleetdeck] ERROR")


def test_strip_ansi():
    assert strip_ansi("\x1b[1;31mred\x1b[0m plain \x1b]0;title\x07") == "red plain "
    assert strip_ansi("no escapes") == "no escapes"


@pytest.mark.parametrize("level", ["error", "warning", "info", "debug"])
def test_candidate_regex_finds_every_line_of_its_level(level: str):
    regex = candidate_regex([level])
    for line, expected in CASES:
        if expected == level:
            assert regex.search(b"\n" + line.encode().lower()), line


def test_long_lines_only_their_head_is_read():
    assert detect_level("x" * 1000 + " ERROR") is None
    assert detect_level("ERROR " + "x" * 100_000) == "error"
