"""Block-level counting agrees with line-by-line: level counts (core/logs/_tally.c) with
detect_level, rule matches with the rule's regex searched in each line alone."""

from __future__ import annotations

import random

import pytest

from core.logs.levels import detect_level
from core.logs.rules import RuleSpec, RuleState, parse_threshold
from core.logs.tally import count_levels

SHAPES = [
    "2026-11-22T12:00:00Z INFO  request served path=/api/v1/items status=200 ms=12",
    "2026-11-22T12:00:00Z DEBUG cache hit key=user:1234",
    '{"ts":"2026-11-22T12:00:01Z","level":"warn","msg":"slow query","ms":812}',
    "Nov 22 12:00:02 web01 app[812]: ERROR: upstream timed out (110: Connection timed out)",
    'level=info msg="job done" duration=1.2s',
    "2026-11-22 12:00:00,123 INFO x level=error", "2026-11-22T12:00:00Z INFOS x",
    "Nov 22 12:00:02 ERR app[1]: INFO: hi", "Nov 22 12:00:02 web-error app: WARN hi",
    "Dec  1 01:02:03 h p[9]: [DEBUG] x", '{"level":"nope","msg":"ERROR here"}',
    '{"level": 50}', '{"level": 8, "x": "WARN"}', '{"msg":"a", "Severity" : "Error"}',
    "LEVEL=WARN x", "lvl=zzz ERROR", 'severity="notice" a', "", "[fleetdeck] started",
    "<3>kernel oops", "E0102 12:00:00 x", "I1122 12:00:00.1 ok", "plain text line",
    "Traceback (most recent call last):", "ValueError: bad", "x ERROR y",
    "\x1b[31mERROR\x1b[0m boom", "2026-11-22T12:00:00+01:00 [WARNING] disk",
    "[2026-11-22 12:00:00] CRITICAL hot", '  {"level":"error"}', "ts=1 level=error msg=x",
    "2026-11-22T12:00:00Z INFO a\tlevel=debug", "2026-11-22T12:00:00Z ERROR\tLvl=info",
    '{"a":"\\"level\\":\\"x\\"","level":"info"}', "Nov 22 12:00:02 h p: ERRORx",
    "2026-11-22T12:00:00.5Z FATAL", "2026-11-22T12:00:00Z INFO a loglevel=error",
    "Nov 22 12:00:02 h p: INFO é level=warn",
]
NOISE = ["level=", "ERROR", "warn", " ", '"', "err", "Info", "é", "\t", "lvl=", "{", "["]


def mutate(rng: random.Random, line: str) -> str:
    chars = list(line)
    for _ in range(rng.randint(0, 3)):
        if not chars:
            break
        i = rng.randrange(len(chars))
        op = rng.random()
        if op < 0.3:
            chars[i] = rng.choice('aeE =:"{[]<>0 \tIWF')
        elif op < 0.6:
            chars.insert(i, rng.choice(NOISE))
        else:
            del chars[i]
    return "".join(chars)


def blocks(seed: int, count: int = 1500) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        lines = [mutate(rng, rng.choice(SHAPES)) if rng.random() < 0.5 else rng.choice(SHAPES)
                 for _ in range(rng.randint(1, 40))]
        out.append([line.replace("\n", " ") for line in lines])
    return out


def as_block(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def by_line(lines: list[str]) -> dict[str, int]:
    want: dict[str, int] = {}
    for line in lines:
        level = detect_level(line)
        if level:
            want[level] = want.get(level, 0) + 1
    return want


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_block_level_counts_are_detect_levels(seed: int) -> None:
    fast_shapes = 0
    for lines in blocks(seed):
        got: dict[str, int] = {}
        count_levels(as_block(lines), got)
        assert got == by_line(lines), lines
        fast_shapes += sum(1 for line in lines if line in SHAPES[:5])
    assert fast_shapes > 1000  # the common shapes were there, not only the odd ones


def test_a_big_block_of_common_shapes() -> None:
    lines = [f"{SHAPES[i % 5]} seq={i}" for i in range(20_000)]
    got: dict[str, int] = {}
    count_levels(as_block(lines), got)
    assert got == {"info": 8000, "debug": 4000, "warning": 4000, "error": 4000}


# pieces of the shapes detect_level knows, and of its edge cases
PIECES = [
    "ERROR", "error", "Error", "err", "ERR!", "warn", "WARN", "Warning", "info", "INFO",
    "notice", "debug", "TRACE", "verbose", "fatal", "CRITICAL", "panic", "emerg", "alert",
    "severe", "failure", "fine", "errors", "informational", "Traceback", "traceback",
    "exception", "Exception", "ValueError", "pkg.mod.SomeException", "1x.Error", "a..Error",
    "_private.Error", "level", "lvl", "Severity", "loglevel", "levelname", "log.level",
    "LEVEL", "=", ":", '"', "'", "{", "}", "[", "]", "(", ")", "<", ">", "|", ".", ",", "_",
    " ", " ", " ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x00", "0", "3", "7", "8",
    "30", "40", "50", "60", "000000000000000050", "9" * 40, "<3>", "<191>", "<1234>",
    "E0102 12:00:00", "I1122 12:00", "W0000 00:00", "F1 12:00:00", "[fleetdeck] ",
    "2026-11-22T12:00:00Z", "Nov 22 12:00:02 web01 app[812]:", "x", "abc", "1",
]


def random_line(rng: random.Random) -> str:
    line = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 14)))
    if rng.random() < 0.05:  # a level word across the end of the head detect_level reads
        line = "x" * rng.randint(240, 256) + line
    if rng.random() < 0.05:  # a JSON field far beyond the head
        line = "{" + '"a":1,' * 60 + line
    return line


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_random_lines_get_detect_levels_level(seed: int) -> None:
    rng = random.Random(seed)
    lines = [random_line(rng) for _ in range(30_000)]
    got: dict[str, int] = {}
    assert count_levels(as_block(lines), got) == len(lines)
    assert got == by_line(lines)
    assert all(got.get(level, 0) > 300 for level in ("error", "warning", "info", "debug"))
    for line in lines[:3000]:  # and line by line, to name the line that differs
        one: dict[str, int] = {}
        count_levels(as_block([line]), one)
        assert one == by_line([line]), repr(line)


def test_lines_beyond_ascii_go_to_detect_level() -> None:
    data = ("é ERROR x\n\x1b[33mWARN\x1b[0m y\n\u00a0level=info\nok\n".encode()
            + b"INFO \xff\xfe\n"  # a non-breaking space is white space; bad UTF-8
            + ("€" + "x" * 250 + " INFO\n").encode())  # the head is 256 characters
    got: dict[str, int] = {}
    count_levels(data, got)
    assert got == {"error": 1, "warning": 1, "info": 3}


def test_the_c_tally_knows_detect_levels_words() -> None:
    from core.logs import _tally
    from core.logs.levels import _CANDIDATE, _WORDS

    assert _tally.words() == _WORDS
    assert "(?:err|fatal|crit|panic|emerg|alert|severe|warn|info|notice|debug|trace|verbose" \
        "|exception)" in _CANDIDATE.pattern


@pytest.mark.parametrize("pattern", [
    r"timed out|refused", r'"ms":\s*[5-9]\d\d', r"^level=", r"x$", r"\s+ERROR",
    r"[^a-z]+warn", r"(?P<n>\d+) ms", r"e*", r"(?s)ERROR.*level", r"(?<=\s)ERROR",
    r"INFO(?!S)", r"\Alevel", r"ERROR|WARN", r"timed out|level=|refused", r"ms\s|zz",
    r"(a)b\1|warn", r"[|]x|ERROR",
])
def test_block_rule_matches_are_per_line_matches(pattern: str) -> None:
    import re

    rule = RuleState(RuleSpec("r", ("s",), parse_threshold("> 1 in 60s"), match=pattern))
    line_rx = re.compile(pattern)
    for lines in blocks(7, 300):
        text = "\n" + "\n".join(lines)
        assert rule.count_lines(text) == sum(1 for line in lines if line_rx.search(line)), \
            lines


def test_a_flood_keeps_memory_bounded_and_says_what_it_skipped() -> None:
    from core.logs.monitor import PUBLISH, RING, LogMonitor
    from core.logs.sources import SourceSpec

    sources = {"app": SourceSpec("app", path="/nonexistent")}
    mon = LogMonitor(sources, {})
    mon.configure(sources, {})
    lines = [f"{SHAPES[i % 5]} seq={i}" for i in range(50_000)]
    for start in range(0, len(lines), 7_000):  # blocks as a follower hands them over
        data = "".join(f"{line}\n" for line in lines[start:start + 7_000]).encode()
        mon.ingest_block("app", data, at=100.0)
    st = mon.sources["app"]
    assert st.total == 50_000 and st.counts == by_line(lines)
    assert RING <= st.ring_lines < RING + 7_000  # whole blocks, about RING lines
    recent = mon.recent("app", 500)
    assert [text for _t, _l, text in recent] == lines[-500:]
    assert recent[-1][1] == detect_level(lines[-1])
    shown, skipped = st.take_pending()
    assert [text for _t, _l, text in shown] == lines[-PUBLISH:]
    assert skipped == 50_000 - PUBLISH
    assert st.take_pending() == ([], 0)


def test_top_level_branches() -> None:
    from core.logs.rules import top_level_branches

    assert top_level_branches(r"a|b(c|d)|[|]e|\||[]|]") == ["a", "b(c|d)", "[|]e", r"\|",
                                                             "[]|]"]
    assert top_level_branches("timed out") == ["timed out"]
    split = RuleState(RuleSpec("r", ("s",), parse_threshold("> 1 in 60s"),
                               match="timed out|refused"))
    assert [cross for _rx, cross in split.branch_regexes] == [False, False]
    crossing = RuleState(RuleSpec("r", ("s",), parse_threshold("> 1 in 60s"),
                                  match=r"ms\s|zz[^a]|ab(?s:.)"))
    assert [cross for _rx, cross in crossing.branch_regexes] == [True, True, True]
    for unsplit in (r"(?i)timed out|refused", r"(x)y|\1z", "a|b"):
        rule = RuleState(RuleSpec("r", ("s",), parse_threshold("> 1 in 60s"), match=unsplit))
        assert rule.branch_regexes == [], unsplit


def test_a_huge_json_level_number_is_an_error_not_a_crash() -> None:
    lines = ['{"level": ' + "9" * 5000 + "}", '{"level": ' + "0" * 5000 + "30}"]
    assert [detect_level(line) for line in lines] == ["error", "info"]
    got: dict[str, int] = {}
    count_levels(as_block(lines), got)
    assert got == {"error": 1, "info": 1}
