"""The `:` prompt's completion, checks and history, without a terminal."""

from __future__ import annotations

import stat

from tui.completion import History, check, complete, suggestion

VOCAB = {"job": ["backup-db", "heartbeat", "health-sweep"], "name": ["dark", "light"],
         "pattern": ["@web", "web01", "web02"], "alert": ["3"], "run": ["7"]}


def test_commands_and_their_arguments_complete() -> None:
    assert set(complete("ru", VOCAB).candidates) == {"run", "runs"}
    assert complete("run", VOCAB).candidates == ("run", "runs")  # typed out: run first
    assert complete("runs", VOCAB).candidates == ("runs",)
    c = complete("run hea", VOCAB)
    assert c.candidates == ("heartbeat", "health-sweep") and c.start == 4
    assert complete("theme l", VOCAB).candidates == ("light",)
    assert complete("fanout @w", VOCAB).candidates == ("@web",)
    assert complete("fanout @web -- up", VOCAB).candidates == ()  # the command is free text
    assert suggestion("run heart", VOCAB) == "run heartbeat"
    assert suggestion("run ", VOCAB) is None


def test_a_line_that_cannot_run_says_why() -> None:
    assert check("run heartbeat", VOCAB) is None
    assert check("run nope", VOCAB) == "no job named 'nope'"
    assert "unknown command :foo" in (check("foo", VOCAB) or "")
    assert check("run", VOCAB) == "usage: :run JOB"
    assert (check("theme nope", VOCAB) or "").startswith("no theme 'nope'")
    assert check("log x", VOCAB) == "not a run id: 'x' (e.g. 42)"
    assert check("ack x", VOCAB) == "not an alert id: 'x' (e.g. 12)"
    # ids read as the CLI reads them: int() would take these as #10, #3 and #5
    for bad in ("1_0", "٣", "##5", "+5", "0"):
        assert check(f"log {bad}", VOCAB) == f"not a run id: {bad!r} (e.g. 42)"
        assert check(f"ack {bad}", VOCAB) == f"not an alert id: {bad!r} (e.g. 12)"
    assert check("log #12", VOCAB) is None and check("ack 3", VOCAB) is None
    assert check("rn heartbeat", VOCAB) == "unknown command :rn (did you mean 'run'?)"


def test_history_is_kept_private_and_recalled_by_prefix(tmp_path) -> None:
    path = tmp_path / "console_history"
    h = History(path)
    for line in ("run heartbeat", "jobs", "run backup-db", "jobs"):
        h.add(line)
    assert h.lines == ["run heartbeat", "run backup-db", "jobs"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = History(path)
    assert again.lines == h.lines
    at = again.older(len(again.lines), "run")
    assert at is not None and again.lines[at] == "run backup-db"
    at = again.older(at, "run")
    assert at is not None and again.lines[at] == "run heartbeat"
    assert again.older(at, "run") is None


def test_the_text_after_dashes_is_one_word_and_numbers_take_units() -> None:
    vocab = {"command": ["uptime -p", "uptime", "df -h"], "duration": ["15m", "1h"],
             "target": ["cpu"], "pattern": ["@web"]}
    c = complete("fanout @web --  upt", vocab)
    assert (c.word, c.candidates, c.more) == ("upt", ("uptime -p", "uptime"), False)
    assert complete("fanout a--b -- d", vocab).candidates == ("df -h",)  # `--` as a word
    assert complete("fanout @web --", vocab).candidates == ()  # no space yet: not after it
    assert complete("fanout @web -- df -h", vocab).candidates == ()  # typed in full
    assert complete("silence cpu 45", vocab).candidates == ("45m", "45h", "45d", "45s")
    assert complete("silence cpu 1", vocab).candidates == ("1m", "1h", "1d", "1s", "15m")
