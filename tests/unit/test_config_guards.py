"""Hostile config files, one case each: refused in one line naming file:line: key, quickly,
and never with a traceback (check-config's own exit status 2 through the real CLI)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from core.alerts.book import AlertError
from core.api import Actor
from core.confguard import MAX_FILE_BYTES, clip, prescan
from core.config import ConfigError
from core.durations import DurationError, parse_duration
from core.fleetconfig import check_config
from tests.helpers import FLEETDECK, cli_env, issues_of

JOB = '[jobs.a]\ncommand = "true"\n'


CASES = [
    ("x = " + "[" * 1000 + "]" * 1000 + "\n",
     "1: x: arrays and inline tables nested more than 32 deep"),
    ("x = " + "{a = " * 1000 + "1" + "}" * 1000 + "\n",
     "1: x: arrays and inline tables nested more than 32 deep"),
    ("\n[" + ".".join(["a"] * 50_000) + "]\n",
     "2: a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a: a dotted key of more than 16 parts"),
    ("x = 1" + "0" * 5000 + "\n", "1: x: a number of more than 100 digits"),
    (JOB + 'schedule = "*/99999999999999999999 * * * *"\n',
     "3: jobs.a.schedule: bad cron expression '*/99999999999999999999 * * * *': bad minute "
     "field '*/99999999999999999999': step 99999999999999999999 is too large (at most 59)"),
    (JOB + 'schedule = "50-10 * * * *"\n',
     "3: jobs.a.schedule: bad cron expression '50-10 * * * *': minute range 50-10 wraps "
     "around; write 50-59,0-10"),
    (JOB + 'timeout = "99999999999999999999d"\n',
     "3: jobs.a.timeout: timeout must be 0s..366d, got '99999999999999999999d'"),
    (JOB + "kill_grace = 1e300\n", "3: jobs.a.kill_grace: kill_grace must be 0s..366d, "
                                   "got 1e+300"),
    (JOB + "retries = 1e23\n", "3: jobs.a.retries: expected an integer, got float"),
    (JOB + "retries = 101\n", "3: jobs.a.retries: retries must be 0..100, got 101"),
    ("[engine]\nmax_concurrent_runs = 1e29\n",
     "2: engine.max_concurrent_runs: expected an integer, got float"),
    ("[engine]\nmax_concurrent_runs = 100000\n",
     "2: engine.max_concurrent_runs: max_concurrent_runs must be 1..10000, got 100000"),
    ("[jobs." + "a" * 5000 + ']\ncommand = "true"\n',
     '1: jobs."' + "a" * 60 + '"…: job name is 5000 characters long; at most 200'),
    (JOB + 'retry_backoff = "1h"\nretry_backoff_max = "1m"\n',
     "3: jobs.a.retry_backoff: retry_backoff (3600s) is above retry_backoff_max (60s)"),
    (JOB + 'schedule = "every ５s"\n',
     "3: jobs.a.schedule: bad schedule 'every ５s': '５' (U+FF15 FULLWIDTH DIGIT FIVE) is "
     "not ASCII; write digits 0-9 and names in English"),
    (JOB + 'schedule = "٣ * * * *"\n',
     "3: jobs.a.schedule: bad schedule '٣ * * * *': '٣' (U+0663 ARABIC-INDIC DIGIT THREE) "
     "is not ASCII; write digits 0-9 and names in English"),
    (JOB + 'timeout = "５s"\n',
     "3: jobs.a.timeout: bad duration '５s': '５' (U+FF15 FULLWIDTH DIGIT FIVE) is not "
     "ASCII; write digits 0-9 and units ms s m h d w"),
    ('[jobs.a]\ncommand = "echo \\u0000hi"\n',
     "2: jobs.a.command: control character '\\x00' (U+0000) in 'echo \\x00hi'"),
    (JOB + 'cwd = "/tmp\\u0000x"\n',
     "3: jobs.a.cwd: control character '\\x00' (U+0000) in '/tmp\\x00x'"),
    (JOB + 'cwd = "/srv\\nx"\n', "3: jobs.a.cwd: control character '\\n' (U+000A) in "
                                "'/srv\\nx'"),
    (JOB + 'env = { A = "x\\u0000" }\n',
     "3: jobs.a.env.A: control character '\\x00' (U+0000) in 'x\\x00'"),
    ('[hosts.h]\nidentity_file = "/k\\u001b[2J"\n',
     "2: hosts.h.identity_file: control character '\\x1b' (U+001B) in '/k\\x1b[2J'"),
    ('[jobs.a]\ncommand = "' + "x" * 70_000 + '"\n',
     "2: jobs.a.command: 70000 characters long; at most 65536"),
    (JOB + 'schedule = "' + "x" * 100_000 + '"\n',
     "3: jobs.a.schedule: 100000 characters long; at most 65536"),
    (JOB + 'schedule = "' + "x" * 2000 + '"\n',
     "3: jobs.a.schedule: schedule '" + "x" * 60 + "'… is 2000 characters long; at most "
     "1000"),
    ('[checks.c]\nkind = "metrics"\ncpu = [80, inf]\n',
     "3: checks.c.cpu: cpu[1] must be 0..100, got inf"),
    ('[checks.c]\nkind = "process"\npattern = "' + "(" * 2000 + ")" * 2000 + '"\n',
     "3: checks.c.pattern: bad regex '" + "(" * 60 + "'…: maximum recursion depth exceeded"),
    ('\n[checks."\x85"]\n',  # NEL: a line break to str.splitlines, not to TOML
     "2: checks.\"\\u0085\": invalid check name '\\x85'; use letters, digits, '_', '.' "
     "and '-', starting with a letter or digit"),
    ('"\\u001F" = 1\n', "1: \"\\u001f\": unknown key '\\x1f'"),
    ('[alerts]\nresolved_retention = 10000000\n',
     "2: alerts.resolved_retention: resolved_retention must be 1..1000000, got 10000000"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[e[1][:50] for e in CASES])
def test_a_hostile_value_is_one_short_line(tmp_path: Path, text: str, expected: str) -> None:
    start = time.monotonic()
    assert issues_of(tmp_path, text) == [expected]
    assert time.monotonic() - start < 5


def test_a_file_over_the_cap_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("x = 1\n" * (MAX_FILE_BYTES // 6 + 10))
    [issue] = check_config(path)
    assert "larger than 4194304 bytes" in issue.message and issue.line is not None


def test_issues_stop_at_the_cap(tmp_path: Path) -> None:
    text = "".join(f"k{i} = 1\n" for i in range(5000))
    lines = issues_of(tmp_path, text)
    assert len(lines) == 201
    assert "more than 200 errors" in lines[-1]


@pytest.mark.parametrize("text", [
    'x = "[[[[{{{{"  # ]]]] {{{{\ny = [ # [[[[\n 1, "]]",\n]\nz = """\n[[[[\n"""\nw = 1.5\n',
    "a.b.c = 1\n[t.u]\nv = [[1, 2], {p.q = 3}]\n",
    "s = 'it''s'\n",
])
def test_prescan_passes_ordinary_toml(text: str) -> None:
    assert prescan(text) is None


def test_clip_quotes_a_short_slice() -> None:
    assert clip("abc") == "'abc'"
    assert clip("x" * 100) == "'" + "x" * 60 + "'…"


def test_durations_refuse_other_digits_and_infinity() -> None:
    with pytest.raises(DurationError, match="U\\+FF15"):
        parse_duration("５s")
    for bad in ("inf", "nan", float("inf"), 10**400):
        with pytest.raises(DurationError):
            parse_duration(bad)


def test_a_silence_is_at_most_366_days(tmp_path: Path) -> None:
    from core.alerts.book import AlertBook

    book = AlertBook(tmp_path / "state", None, lambda: 1_000_000.0)
    try:
        with pytest.raises(AlertError, match="at most 366d"):
            book.silence("web01", "99999999999w", "ops")
        rec, _ = book.silence("web01", "2h", "ops")
        assert rec["target"] == "web01"
    finally:
        book.close()


# ------------------------------------------------------------ the real CLI ---
@pytest.mark.parametrize(("text", "expected"), [CASES[0], CASES[1], CASES[17], CASES[18]],
                         ids=["deep-arrays", "deep-tables", "nul-command", "nul-cwd"])
def test_check_config_cli_says_one_line_and_exits_2(tmp_path: Path, text: str,
                                                     expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([*FLEETDECK, "check-config", str(path)], capture_output=True,
                          text=True, timeout=60, env=cli_env(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [f"{path}:{expected}", f"{path}: 1 error"]
    assert done.stdout == ""


def test_load_config_raises_config_error_not_recursion(tmp_path: Path) -> None:
    from core.fleetconfig import load_config

    path = tmp_path / "c.toml"
    path.write_text(CASES[0][0])
    with pytest.raises(ConfigError, match="nested more than 32 deep"):
        load_config(path)


async def test_a_reload_to_a_deep_file_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    from core.jobs.active import EngineError
    from core.reload import Reloader

    class Engine:
        notices: list[str] = []

        def _notice(self, level: str, msg: str) -> None:
            self.notices.append(msg)

        def audit(self, *args: object) -> None:
            pass

    path = tmp_path / "c.toml"
    path.write_text(CASES[0][0])
    engine = Engine()
    with pytest.raises(EngineError) as e:
        await Reloader(engine, path)(Actor.local("test"))
    assert e.value.details == [f"{path}:1: x: arrays and inline tables nested more than 32 "
                               "deep"]
    assert str(e.value).startswith("config reload rejected (1 error)")
    assert "\n" not in engine.notices[0] and e.value.details[0] in engine.notices[0]
