"""`fleetdeck schedule next` and `schedule diff`, run as a person runs them. Every command
gives --from: nothing here depends on today."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.control.server import socket_path
from tests.conftest import FLEETDECK, cli_env


def fd(tmp_path: Path, *args: str, tz: str | None = None) -> subprocess.CompletedProcess[str]:
    env = cli_env(tmp_path)
    if tz is not None:
        env["TZ"] = tz
    return subprocess.run([*FLEETDECK, "--state-dir", str(tmp_path / "state"), *args],
                          capture_output=True, text=True, timeout=60, env=env)


def next_json(tmp_path: Path, *args: str, tz: str | None = None) -> list[dict]:
    proc = fd(tmp_path, "schedule", "next", *args, "--json", tz=tz)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------- next ----
def test_the_required_example(tmp_path):
    proc = fd(tmp_path, "schedule", "next", "0 0 12 ? * 2", "--count", "1", "--from",
              "2026-12-01T00:00", "--tz", "UTC", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        {"expression": "0 0 12 ? * 2", "fires": ["2026-12-07T12:00:00+00:00"]}]


def test_every_form_in_order_and_an_invalid_one_exits_2(tmp_path):
    exprs = ["@daily", "every 90m", "at 2026-12-24 18:00", "61 * * * *",
             "0 30 9 ? * MON-FRI 2026", "*/20 * * * *"]
    proc = fd(tmp_path, "schedule", "next", *exprs, "--count", "3", "--from",
              "2026-12-23T23:00", "--tz", "UTC", "--json")
    assert proc.returncode == 2
    got = json.loads(proc.stdout)
    assert [r["expression"] for r in got] == exprs
    assert got[0]["fires"] == ["2026-12-24T00:00:00+00:00", "2026-12-25T00:00:00+00:00",
                               "2026-12-26T00:00:00+00:00"]
    # every 90 minutes since the epoch
    assert got[1]["fires"] == ["2026-12-24T00:00:00+00:00", "2026-12-24T01:30:00+00:00",
                               "2026-12-24T03:00:00+00:00"]
    assert got[2]["fires"] == ["2026-12-24T18:00:00+00:00"]  # once, then no more
    assert set(got[3]) == {"expression", "error"} and "minute 61" in got[3]["error"]
    assert got[4]["fires"] == ["2026-12-24T09:30:00+00:00", "2026-12-25T09:30:00+00:00",
                               "2026-12-28T09:30:00+00:00"]
    assert got[5]["fires"] == ["2026-12-23T23:20:00+00:00", "2026-12-23T23:40:00+00:00",
                               "2026-12-24T00:00:00+00:00"]
    one_line_error(proc, "'61 * * * *'")
    # text mode: the same one line on stderr, the valid ones printed
    text = fd(tmp_path, "schedule", "next", "61 * * * *", "@daily", "--count", "1",
              "--from", "2026-12-23T23:00", "--tz", "UTC")
    one_line_error(text, "'61 * * * *'", "minute 61 out of range")
    assert "2026-12-24 Thu 00:00 UTC" in text.stdout and "61" not in text.stdout
    empty = fd(tmp_path, "schedule", "next", "", "--from", "2026-12-01T00:00")
    one_line_error(empty, "''", "empty schedule")


def test_text_marks_the_offset_changes_between_fires(tmp_path):
    proc = fd(tmp_path, "schedule", "next", "30 2 * * *", "*/30 * * * *", "--count", "4",
              "--from", "2026-03-29T00:45", "--tz", "Europe/Berlin")
    assert proc.returncode == 0, proc.stderr
    fixed, rhythm = proc.stdout.split("\n\n")
    assert fixed.splitlines() == [
        "30 2 * * *: daily at 02:30 (Europe/Berlin), dst=vixie (fixed time)",
        "  -- 2026-03-29 02:00 CET -> CEST (+1h)",
        "  2026-03-29 Sun 03:00 CEST",
        "  2026-03-30 Mon 02:30 CEST",
        "  2026-03-31 Tue 02:30 CEST",
        "  2026-04-01 Wed 02:30 CEST",
    ]
    assert rhythm.splitlines()[1:] == [
        "  2026-03-29 Sun 01:00 CET",
        "  2026-03-29 Sun 01:30 CET",
        "  -- 2026-03-29 02:00 CET -> CEST (+1h)",
        "  2026-03-29 Sun 03:00 CEST",
        "  2026-03-29 Sun 03:30 CEST",
    ]
    back = fd(tmp_path, "schedule", "next", "30 2 * * *", "--count", "2", "--from",
              "2026-10-25T00:00", "--tz", "Europe/Berlin", "--dst", "all")
    assert back.stdout.splitlines()[1:] == [
        "  2026-10-25 Sun 02:30 CEST",
        "  -- 2026-10-25 03:00 CEST -> CET (-1h)",
        "  2026-10-25 Sun 02:30 CET",
    ]


@pytest.mark.parametrize(("dst", "spring", "fall"), [
    # vixie, fixed time: the gap fires at the change, the repeated hour once
    ("vixie", ["2026-03-29T03:00:00+02:00"], ["2026-10-25T02:30:00+02:00"]),
    ("skip", [], ["2026-10-25T02:30:00+02:00"]),
    ("all", ["2026-03-29T03:00:00+02:00"],
     ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"]),
])
def test_dst_policies_on_the_two_nights(tmp_path, dst, spring, fall):
    def night(start: str) -> list[str]:
        fires = next_json(tmp_path, "30 2 * * *", "--count", "3", "--from", start, "--tz",
                          "Europe/Berlin", "--dst", dst)[0]["fires"]
        day = start[:10]
        return [f for f in fires if f.startswith(day)]

    assert night("2026-03-29T00:00") == spring
    assert night("2026-10-25T00:00") == fall


def test_from_without_offset_is_read_in_the_zone(tmp_path):
    got = next_json(tmp_path, "@hourly", "--count", "1", "--from", "2026-12-01T00:00",
                    "--tz", "Europe/Berlin")
    assert got[0]["fires"] == ["2026-12-01T01:00:00+01:00"]
    # no --tz: the host's zone (here: $TZ)
    got = next_json(tmp_path, "@hourly", "--count", "1", "--from", "2026-12-01T00:00",
                    tz="America/New_York")
    assert got[0]["fires"] == ["2026-12-01T01:00:00-05:00"]
    # an offset wins over the zone; the fires are still shown in the zone
    got = next_json(tmp_path, "@hourly", "--count", "1", "--from", "2026-12-01T00:00+00:00",
                    "--tz", "Asia/Tokyo")
    assert got[0]["fires"] == ["2026-12-01T10:00:00+09:00"]


def test_from_in_a_skipped_hour_is_the_change_as_for_a_jobs_at(tmp_path):
    # 02:30 never happened in Berlin on 2026-03-29: read as the change (03:00 CEST), as
    # `at 2026-03-29 02:30` is, so `*/15` goes on at 03:15, not at 03:45
    got = next_json(tmp_path, "*/15 * * * *", "at 2026-03-29 02:30", "--count", "1",
                    "--from", "2026-03-29T02:30", "--tz", "Europe/Berlin")
    assert got[0]["fires"] == ["2026-03-29T03:15:00+02:00"]
    got = next_json(tmp_path, "at 2026-03-29 02:30", "--count", "1",
                    "--from", "2026-03-29T01:59", "--tz", "Europe/Berlin")
    assert got[0]["fires"] == ["2026-03-29T03:00:00+02:00"]


def test_fires_end_where_every_zone_can_still_write_them(tmp_path):
    got = next_json(tmp_path, "every 12h", "--count", "5", "--from", "9999-12-27T23:00",
                    "--tz", "Pacific/Kiritimati")
    assert got[0]["fires"] == ["9999-12-28T02:00:00+14:00", "9999-12-28T14:00:00+14:00",
                               "9999-12-29T02:00:00+14:00", "9999-12-29T14:00:00+14:00"]


def test_dialect_option(tmp_path):
    # six fields read as Quartz: seconds first, 1 = Sunday
    got = next_json(tmp_path, "0 0 12 ? * 1", "--dialect", "quartz", "--count", "1",
                    "--from", "2026-12-01T00:00", "--tz", "UTC")
    assert got[0]["fires"] == ["2026-12-06T12:00:00+00:00"]
    proc = fd(tmp_path, "schedule", "next", "0 0 12 ? * 1", "--dialect", "cron",
              "--from", "2026-12-01T00:00", "--tz", "UTC")
    one_line_error(proc, "'0 0 12 ? * 1'")


@pytest.mark.parametrize(("args", "words"), [
    (("--count", "0"), ("--count", "'0'")),
    (("--count", "many"), ("--count", "'many'")),
    (("--count", "\u0663"), ("--count", "'\u0663'")),  # an Arabic-Indic 3: int() reads it
    (("--from", "yesterday"), ("--from", "'yesterday'")),
    (("--tz", "Mars/Olympus"), ("--tz", "'Mars/Olympus'")),
    (("--dialect", "unix"), ("--dialect", "'unix'")),
    (("--dst", "never"), ("--dst", "'never'")),
    (("--from", "9999-12-31T23:59"), ("--from", "'9999-12-31T23:59'", "9999-12-29")),
    (("--from", "0001-01-01T00:00", "--tz", "Asia/Tokyo"), ("--from", "1970-01-01")),
    (("--from", "1900-06-01T00:00"), ("--from", "'1900-06-01T00:00'", "1970-01-01")),
])
def test_bad_options_are_one_line_errors(tmp_path, args, words):
    proc = fd(tmp_path, "schedule", "next", "@daily", "--from", "2026-12-01T00:00", *args)
    one_line_error(proc, *words)


def test_schedule_alone_says_what_to_do(tmp_path):
    one_line_error(fd(tmp_path, "schedule"), "schedule next", "schedule diff")


# ---------------------------------------------------------------------------- diff ----
CURRENT = """
[jobs.backup]
command = "true"
schedule = "0 3 * * *"
timezone = "Europe/Berlin"

[jobs.gone]
command = "true"
schedule = "0 */12 * * *"
timezone = "UTC"

[jobs.same]
command = "true"
schedule = "@hourly"

[jobs.report]
command = "true"
schedule = "0 9 * * *"
timezone = "UTC"
"""

NEW = """
[jobs.backup]
command = "true"
schedule = "30 2 * * *"
timezone = "Europe/Berlin"

[jobs.fresh]
command = "true"
schedule = "every 8h"
timezone = "UTC"

[jobs.same]
command = "true"
schedule = "@hourly"

[jobs.report]
command = "echo changed, but not when"
schedule = "0 9 * * *"
timezone = "UTC"
"""


def configs(tmp_path: Path, current: str = CURRENT, new: str = NEW) -> tuple[Path, Path]:
    cur, nxt = tmp_path / "current.toml", tmp_path / "new.toml"
    cur.write_text(current)
    nxt.write_text(new)
    return cur, nxt


def test_diff_json_per_job(tmp_path):
    cur, nxt = configs(tmp_path)
    proc = fd(tmp_path, "--config", str(cur), "schedule", "diff", "--config", str(nxt),
              "--from", "2026-03-28T12:00+01:00", "--window", "48h", "--json", tz="UTC")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["window"] == "48h"
    assert got["current"] == str(cur) and got["new"] == str(nxt)
    assert (got["from"], got["to"]) == ("2026-03-28T11:00:00+00:00",
                                        "2026-03-30T11:00:00+00:00")
    assert got["jobs"] == {
        # 02:30 does not exist on the 29th: as a fixed time (vixie) it fires at the
        # change, 03:00 CEST, the very instant the old schedule fired: no change that day
        "backup": {"change": "changed", "added": ["2026-03-30T02:30:00+02:00"],
                   "removed": ["2026-03-30T03:00:00+02:00"]},
        "fresh": {"change": "added", "removed": [], "added": [
            "2026-03-28T16:00:00+00:00", "2026-03-29T00:00:00+00:00",
            "2026-03-29T08:00:00+00:00", "2026-03-29T16:00:00+00:00",
            "2026-03-30T00:00:00+00:00", "2026-03-30T08:00:00+00:00"]},
        "gone": {"change": "removed", "added": [], "removed": [
            "2026-03-28T12:00:00+00:00", "2026-03-29T00:00:00+00:00",
            "2026-03-29T12:00:00+00:00", "2026-03-30T00:00:00+00:00"]},
    }  # `same` did not change, `report` changed its command only


def test_diff_text_blocks(tmp_path):
    cur, nxt = configs(tmp_path)
    proc = fd(tmp_path, "--config", str(cur), "schedule", "diff", "--config", str(nxt),
              "--from", "2026-03-28T12:00+01:00", "--window", "2d", tz="Europe/Berlin")
    assert proc.returncode == 0, proc.stderr
    blocks = proc.stdout.split("\n\n")
    assert blocks[0].splitlines() == [
        f"current: {cur}", f"new:     {nxt}",
        "window:  2d, 2026-03-28 12:00 CET to 2026-03-30 13:00 CEST"]
    assert blocks[1].splitlines() == [
        "backup: changed (schedule: 0 3 * * * -> 30 2 * * *)",
        "  + 2026-03-30 02:30 CEST",
        "  - 2026-03-30 03:00 CEST",
    ]
    assert blocks[2].splitlines()[0] == "fresh: added (every 8h)"
    assert blocks[3].splitlines() == [
        "gone: removed (0 */12 * * *)",
        "  - 2026-03-28 12:00 UTC",
        "  - 2026-03-29 00:00 UTC",
        "  - 2026-03-29 12:00 UTC",
        "  - 2026-03-30 00:00 UTC",
    ]
    assert blocks[-1].strip() == "3 jobs: 7 fires added, 5 removed"


def test_diff_of_a_config_against_itself_in_time_says_no_change(tmp_path):
    cur, nxt = configs(tmp_path, new=CURRENT.replace('"true"', '"false"'))
    proc = fd(tmp_path, "--config", str(cur), "schedule", "diff", "--config", str(nxt),
              "--from", "2026-03-28T12:00+01:00")
    assert proc.returncode == 0, proc.stderr
    assert "no job's fires change in the window" in proc.stdout


def test_diff_mistakes(tmp_path):
    cur, nxt = configs(tmp_path, new=NEW + '\n[jobs.bad]\ncommand = "x"\nschedule = "61 * * * *"\n')
    base = ("--config", str(cur), "schedule", "diff")
    one_line_error(fd(tmp_path, *base), "is the config in force already", "--config NEW")
    one_line_error(fd(tmp_path, *base, "--config", str(cur)), "is the config in force")
    one_line_error(fd(tmp_path, *base, "--config", str(tmp_path / "nope.toml")),
                   "nope.toml: not found; check the path")
    bad = fd(tmp_path, *base, "--config", str(nxt))
    one_line_error(bad, f"{nxt}:", "jobs.bad.schedule")
    one_line_error(fd(tmp_path, *base, "--config", str(cur), "--window", "soon"), "--window")
    one_line_error(fd(tmp_path, *base, "--config", str(cur), "--window", "400d"), "--window")
    one_line_error(fd(tmp_path, *base, "--config", str(cur), "--from", "now"), "--from")


def start_daemon(cfg: Path, state: Path, env: dict) -> subprocess.Popen:
    out = (cfg.parent / "daemon.out").open("a")
    proc = subprocess.Popen([*FLEETDECK, "--config", str(cfg), "--state-dir", str(state),
                             "daemon", "--quiet"], env=env, stdout=out, stderr=out)
    out.close()
    deadline = time.monotonic() + 60
    while not socket_path(state).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError((cfg.parent / "daemon.out").read_text())
        time.sleep(0.05)
    return proc


def test_diff_is_against_the_daemons_config(tmp_path):
    cur, nxt = configs(tmp_path)
    other = tmp_path / "other.toml"  # what this command would load itself
    other.write_text(NEW)
    proc = start_daemon(cur, tmp_path / "state", cli_env(tmp_path))
    try:
        got = fd(tmp_path, "--config", str(other), "schedule", "diff", "--from",
                 "2026-03-28T12:00+01:00", "--window", "48h", "--json")
        text = fd(tmp_path, "--config", str(other), "schedule", "diff", "--from",
                  "2026-03-28T12:00+01:00", "--window", "48h")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert got.returncode == 0, got.stderr
    diff = json.loads(got.stdout)
    # no NEW given: this command's config (other.toml) against the daemon's (current.toml)
    assert diff["current"] == str(cur) and diff["new"] == str(other)
    assert sorted(diff["jobs"]) == ["backup", "fresh", "gone"]
    assert f"current: {cur} (the daemon's, pid {proc.pid})" in text.stdout
