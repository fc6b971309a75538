"""core.config: TOML files -> typed Config, and one-line issues naming file, line and key."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from core.config import ConfigError, ConfigIssue
from core.default_config import DEFAULT_CONFIG_TOML
from core.fleetconfig import Config, builtin_config, check_config, load_config, parse_config_text
from core.jobs.config import Defaults, EngineSettings, Job, RetryPolicy
from core.paths import default_config_path, default_state_dir
from core.remote.config import Host


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def lines_of(path: Path) -> list[str]:
    return [str(i) for i in check_config(path)]


# ----------------------------------------------------------------------- valid files ---
FULL = """
theme = "light"

[engine]
max_concurrent_runs = 4
history_retention = 1000
log_retention_bytes = 1048576

[defaults]
timeout = "30m"
kill_grace = "5s"
retries = 1
retry_backoff = "20s"
retry_backoff_max = "5m"
overlap = "queue"
misfire = "skip"
misfire_grace = "2m"
timezone = "Europe/Berlin"

[hosts.web01]
address = "10.0.0.5"
port = 2222
user = "deploy"
tags = { role = "web", dc = "eu" }
groups = ["web", "eu"]

[hosts.db1]

[jobs.backup]
command = "/usr/local/bin/backup --all"
targets = "web01, @eu, local"
schedule = "0 3 * * *"
timezone = "America/New_York"
jitter = "30s"
timeout = "none"
kill_grace = "1m"
retries = 2
retry_backoff = "30s"
retry_backoff_max = "10m"
overlap = "replace"
misfire = "run_all"
misfire_grace = "5m"
env = { TARGET = "s3://bucket", LEVEL = "9" }
cwd = "/srv"
tags = ["nightly", "storage"]
enabled = false
description = "Nightly backup"

[jobs.adhoc]
command = "uptime"

[keys]
run_job = "r"
quit = "ctrl+q"
"""


def test_full_config_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(path)
    assert config.path == path
    assert config.theme == "light"
    assert config.engine == EngineSettings(max_concurrent_runs=4, history_retention=1000,
                                           log_retention_bytes=1048576)
    assert config.defaults == Defaults(timeout=1800.0, kill_grace=5.0, retries=1,
                                       retry_backoff=20.0, retry_backoff_max=300.0,
                                       overlap="queue", misfire="skip", misfire_grace=120.0,
                                       timezone="Europe/Berlin")
    assert list(config.hosts) == ["local", "web01", "db1"]
    assert config.hosts["local"] == Host("local")
    assert config.hosts["web01"] == Host("web01", address="10.0.0.5", port=2222, user="deploy",
                                         tags={"role": "web", "dc": "eu"},
                                         groups=("web", "eu"))
    assert config.hosts["db1"] == Host("db1", address="db1")  # address defaults to the name
    assert config.jobs["backup"] == Job(
        name="backup", command="/usr/local/bin/backup --all", targets="web01, @eu, local",
        schedule="0 3 * * *", timezone="America/New_York", jitter=30.0, timeout=None,
        kill_grace=60.0, retry=RetryPolicy(retries=2, backoff=30.0, backoff_max=600.0),
        overlap="replace", misfire="run_all", misfire_grace=300.0,
        env={"TARGET": "s3://bucket", "LEVEL": "9"}, cwd="/srv", tags=("nightly", "storage"),
        enabled=False, description="Nightly backup",
    )
    # everything not given comes from [defaults], the time zone included
    assert config.jobs["adhoc"] == Job(
        name="adhoc", command="uptime", targets="local", schedule=None,
        timezone="Europe/Berlin", timeout=1800.0, kill_grace=5.0,
        retry=RetryPolicy(retries=1, backoff=20.0, backoff_max=300.0), overlap="queue",
        misfire="skip", misfire_grace=120.0,
    )
    assert config.keys == {"run_job": "r", "quit": "ctrl+q"}
    assert check_config(path) == []


def test_minimal_job_uses_builtin_defaults() -> None:
    config = parse_config_text('[jobs.x]\ncommand = "true"\n')
    assert config.path is None
    assert config.jobs["x"] == Job(name="x", command="true", timeout=3600.0)
    assert config.defaults == Defaults()
    assert config.engine == EngineSettings()
    assert config.hosts == {"local": Host("local")}
    assert config.theme is None and config.keys == {}


def test_jobs_keep_file_order() -> None:
    names = ["zeta", "alpha", "m.id", "b-2", "a_1"]
    text = "".join(f'[jobs."{n}"]\ncommand = "true"\n' for n in names)
    assert list(parse_config_text(text).jobs) == names


def test_durations_accept_numbers_and_timeout_none() -> None:
    config = parse_config_text(
        '[defaults]\ntimeout = "NONE"\n[jobs.x]\ncommand = "true"\njitter = 1.5\n'
        'misfire_grace = 90\n[jobs.y]\ncommand = "true"\ntimeout = "1h30m"\n')
    assert config.defaults.timeout is None
    assert config.jobs["x"].timeout is None
    assert config.jobs["x"].jitter == 1.5
    assert config.jobs["x"].misfire_grace == 90.0
    assert config.jobs["y"].timeout == 5400.0


# ------------------------------------------------------------------ built-in default ---
def test_builtin_config_has_example_jobs_on_local() -> None:
    config = builtin_config()
    assert config.path is None
    assert list(config.hosts) == ["local"]
    assert list(config.jobs) == ["heartbeat", "disk-report", "flaky-check"]
    for job in config.jobs.values():
        assert job.targets == "local"
        assert job.schedule
        assert job.enabled
    assert config.jobs["flaky-check"].retry.retries == 1
    assert config.engine.max_concurrent_runs >= 1


def test_default_toml_file_equals_builtin_config(tmp_path: Path) -> None:
    path = write(tmp_path, DEFAULT_CONFIG_TOML)
    loaded = load_config(path)
    assert loaded.path == path
    assert dataclasses.replace(loaded, path=None) == builtin_config()


def test_default_toml_is_commented_and_readable() -> None:
    lines = DEFAULT_CONFIG_TOML.splitlines()
    assert 60 <= len(lines) <= 250  # a file a person reads through, not a manual
    comments = "\n".join(line for line in lines if line.lstrip().startswith("#"))
    for option in ("[hosts.", "timezone", "overlap", "misfire", "env", "cwd", "tags",
                   "retries", "[keys]", "theme", "jitter", "0 3 * * *", "[notifiers."):
        assert option in comments, option


# ----------------------------------------------------------------------------- paths ---
def test_default_paths_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    assert default_config_path() == tmp_path / "cfg" / "fleetdeck" / "config.toml"
    assert default_state_dir() == tmp_path / "st" / "fleetdeck"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_config_path() == tmp_path / "home" / ".config" / "fleetdeck" / "config.toml"
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "fleetdeck"


def test_no_path_and_no_default_file_gives_builtin(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_config() == builtin_config()
    assert check_config(None) == []


def test_no_path_reads_the_default_file(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "fleetdeck").mkdir()
    path = write(tmp_path / "fleetdeck", '[jobs.only]\ncommand = "true"\n')
    config = load_config()
    assert config.path == path
    assert list(config.jobs) == ["only"]


def test_missing_explicit_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.issues == [ConfigIssue(str(path), "", "file not found")]
    assert str(exc.value) == f"{path}: file not found"
    assert lines_of(path) == [f"{path}: file not found"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[jobs.x]\ncommand = "caf\xe9"\n')
    assert lines_of(path) == [f"{path}:2: not valid UTF-8 text"]


# ---------------------------------------------------------------------------- errors ---
# (file text, expected issue without the "<file>:" prefix) -- exactly one issue each
ERRORS = [
    # TOML syntax
    ('[jobs.x]\ncommand = "true\n', '2: invalid TOML: unexpected end of line '
                                    '(an unclosed string?) at column 16'),
    ('theme = \n', "1: invalid TOML: invalid value at column 9"),
    ('[jobs.x]\ncommand = "a"\n\n[jobs.x]\ncommand = "b"\n', "4: jobs.x: table declared twice"),
    ('[jobs.x]\ncommand = "a"\ncommand = "b"\n', "3: jobs.x.command: key defined twice"),
    # unknown keys, with and without a suggestion
    ('[jobs.x]\ncomand = "true"\ncommand = "true"\n',
     "2: jobs.x.comand: unknown key 'comand' (did you mean 'command'?)"),
    ('[job.x]\ncommand = "true"\n', "1: job: unknown key 'job' (did you mean 'jobs'?)"),
    ('[engine]\nmax_runs = 3\n', "2: engine.max_runs: unknown key 'max_runs'"),
    ('[hosts.h]\nprot = 22\n', "2: hosts.h.prot: unknown key 'prot' (did you mean 'port'?)"),
    # wrong types
    ("theme = 3\n", "1: theme: expected a string, got integer"),
    ('[jobs.x]\ncommand = ["ls"]\n', "2: jobs.x.command: expected a string, got array"),
    ('[hosts.h]\nport = "22"\n', "2: hosts.h.port: expected an integer, got string"),
    ('[jobs.x]\ncommand = "true"\nenabled = "yes"\n',
     "3: jobs.x.enabled: expected true or false, got string"),
    ('[jobs.x]\ncommand = "true"\nretries = 1.5\n',
     "3: jobs.x.retries: expected an integer, got float"),
    ('[jobs.x]\ncommand = "true"\nretries = true\n',
     "3: jobs.x.retries: expected an integer, got boolean"),
    ('jobs = 3\n', "1: jobs: expected a table, got integer"),
    ('[jobs]\nx = "true"\n', "2: jobs.x: expected a table, got string"),
    ('[jobs.x]\ncommand = "true"\nenv = { A = 1 }\n',
     "3: jobs.x.env.A: expected a string, got integer"),
    ('[jobs.x]\ncommand = "true"\ntags = "nightly"\n',
     "3: jobs.x.tags: expected an array of strings, got string"),
    ('[hosts.h]\ngroups = ["web", 2]\n',
     "2: hosts.h.groups: expected an array of strings, got a integer in it"),
    ('[keys]\nquit = 1\n', "2: keys.quit: expected a string, got integer"),
    ('[jobs.x]\ncommand = "true"\njitter = [1]\n',
     "3: jobs.x.jitter: expected a duration like '90s', got array"),
    # durations
    ('[defaults]\ntimeout = "5x"\n',
     "2: defaults.timeout: bad duration '5x'; write e.g. '90s', '5m', '1h30m' "
     "(units: ms s m h d w)"),
    ('[jobs.x]\ncommand = "true"\nkill_grace = -3\n',
     "3: jobs.x.kill_grace: duration must not be negative, got -3"),
    ('[jobs.x]\ncommand = "true"\ntimeout = "0"\n',
     "3: jobs.x.timeout: timeout must be more than 0; write 'none' for no limit"),
    ('[jobs.x]\ncommand = "true"\njitter = "none"\n',
     "3: jobs.x.jitter: bad duration 'none'; write e.g. '90s', '5m', '1h30m' "
     "(units: ms s m h d w)"),
    # time zones
    ('[defaults]\ntimezone = "Mars/Olympus"\n',
     "2: defaults.timezone: unknown time zone 'Mars/Olympus'; use an IANA name like "
     "'Europe/Berlin' or 'UTC'"),
    ('[jobs.x]\ncommand = "true"\ntimezone = "Europe/Berlni"\n',
     "3: jobs.x.timezone: unknown time zone 'Europe/Berlni'; use an IANA name like "
     "'Europe/Berlin' or 'UTC'"),
    # enums
    ('[jobs.x]\ncommand = "true"\noverlap = "sometimes"\n',
     "3: jobs.x.overlap: overlap must be one of skip, queue, allow, replace, got 'sometimes'"),
    ('[defaults]\nmisfire = "always"\n',
     "2: defaults.misfire: misfire must be one of skip, run_once, run_all, got 'always'"),
    # numbers out of range
    ('[jobs.x]\ncommand = "true"\nretries = -1\n',
     "3: jobs.x.retries: retries must be 0..100, got -1"),
    ('[engine]\nmax_concurrent_runs = 0\n',
     "2: engine.max_concurrent_runs: max_concurrent_runs must be 1..10000, got 0"),
    ('[hosts.h]\nport = 70000\n', "2: hosts.h.port: port must be 1..65535, got 70000"),
    # empty and missing values
    ('[jobs.x]\ncommand = "   "\n', "2: jobs.x.command: command must not be empty"),
    ('[jobs.x]\ndescription = "no command"\n', "1: jobs.x: missing required key 'command'"),
    ('[jobs.x]\ncommand = "true"\ntargets = " , "\n',
     "3: jobs.x.targets: targets must name at least one host"),
    ('[hosts.h]\nuser = ""\n', "2: hosts.h.user: user must not be empty"),
    ('[keys]\nquit = " "\n', "2: keys.quit: key binding must not be empty"),
    # names
    ('[jobs."nightly backup"]\ncommand = "true"\n',
     "1: jobs.\"nightly backup\": invalid job name 'nightly backup'; use letters, digits, "
     "'_', '.' and '-', starting with a letter or digit"),
    ('[hosts."-web"]\n',
     "1: hosts.-web: invalid host name '-web'; use letters, digits, "
     "'_', '.' and '-', starting with a letter or digit"),
    ('[hosts.h]\ngroups = ["a b"]\n',
     "2: hosts.h.groups: invalid group name 'a b'; use letters, digits, "
     "'_', '.' and '-', starting with a letter or digit"),
    ('[jobs.x]\ncommand = "true"\nenv = { "A=B" = "1" }\n',
     "3: jobs.x.env.\"A=B\": invalid environment variable name 'A=B'"),
    ('[hosts.local]\naddress = "127.0.0.1"\n',
     "1: hosts.local: local is built in; it needs no [hosts.local] table"),
    # dangling references
    ('[hosts.web01]\n[jobs.x]\ncommand = "true"\ntargets = "web01,web99"\n',
     "4: jobs.x.targets: unknown host 'web99'"),
    ('[hosts.web01]\ngroups = ["web"]\n[jobs.x]\ncommand = "true"\ntargets = "@web, @db"\n',
     "5: jobs.x.targets: unknown group '@db'"),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS, ids=[e[1][:60] for e in ERRORS])
def test_each_error_is_one_line_naming_file_line_and_key(tmp_path: Path, text: str,
                                                         expected: str) -> None:
    path = write(tmp_path, text)
    assert lines_of(path) == [f"{path}:{expected}"]
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value) == f"{path}:{expected}"
    assert "\n" not in str(exc.value)


def test_syntax_error_at_end_of_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[jobs.x]\ncommand = "true"\ntags = ["a",\n')
    assert lines_of(path) == [f"{path}:3: invalid TOML: invalid value at end of file"]


def test_parse_config_text_names_its_source() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config_text('[jobs.x]\ncommand = ""\n', "reload")
    assert str(exc.value) == "reload:2: jobs.x.command: command must not be empty"


def test_all_errors_in_one_file_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, """
        theme = 3
        [engine]
        max_concurrent_runs = -2

        [hosts.web01]
        port = 0
        groups = ["web"]

        [jobs.backup]
        comand = "backup"
        targets = "web01,web99,@web,@db"
        overlap = "sometimes"
        timeout = "soon"

        [jobs.ok]
        command = "true"
        """)
    assert lines_of(path) == [
        f"{path}:1: theme: expected a string, got integer",
        f"{path}:3: engine.max_concurrent_runs: max_concurrent_runs must be 1..10000, got -2",
        f"{path}:6: hosts.web01.port: port must be 1..65535, got 0",
        f"{path}:9: jobs.backup: missing required key 'command'",
        f"{path}:10: jobs.backup.comand: unknown key 'comand' (did you mean 'command'?)",
        f"{path}:11: jobs.backup.targets: unknown host 'web99'",
        f"{path}:11: jobs.backup.targets: unknown group '@db'",
        f"{path}:12: jobs.backup.overlap: overlap must be one of skip, queue, allow, replace, "
        "got 'sometimes'",
        f"{path}:13: jobs.backup.timeout: bad duration 'soon'; write e.g. '90s', '5m', '1h30m' "
        "(units: ms s m h d w)",
    ]
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert len(exc.value.issues) == 9
    assert len(str(exc.value).splitlines()) == 9


def test_lines_found_for_inline_and_dotted_forms(tmp_path: Path) -> None:
    path = write(tmp_path, """
        # a comment with [jobs.fake] in it
        [jobs]
        a = { command = "true", overlap = "never" }
        b.command = "true"
        b.retries = -1

        [jobs.c.env]
        X = 1
        """)
    assert lines_of(path) == [
        f"{path}:3: jobs.a.overlap: overlap must be one of skip, queue, allow, replace, "
        "got 'never'",
        f"{path}:5: jobs.b.retries: retries must be 0..100, got -1",
        f"{path}:7: jobs.c: missing required key 'command'",
        f"{path}:8: jobs.c.env.X: expected a string, got integer",
    ]


def test_line_scan_skips_multiline_strings(tmp_path: Path) -> None:
    path = write(tmp_path, '''
        [jobs.x]
        command = """
        overlap = "fake"
        [jobs.y]
        """
        overlap = "bogus"
        ''')
    assert lines_of(path) == [
        f"{path}:6: jobs.x.overlap: overlap must be one of skip, queue, allow, replace, "
        "got 'bogus'",
    ]


# -------------------------------------------------------------------------- schedules ---
def schedule_error(text: str, timezone: str | None = None) -> str:
    from core.jobs.schedule import ScheduleError, parse_schedule

    with pytest.raises(ScheduleError) as exc:
        parse_schedule(text, timezone)
    return str(exc.value)


@pytest.mark.parametrize("schedule", ["0 3 * * *", "*/5 * * * *", "every 30s", "@hourly"])
def test_good_schedules_load(schedule: str) -> None:
    config = parse_config_text(f'[jobs.x]\ncommand = "true"\nschedule = "{schedule}"\n'
                               'timezone = "Europe/Berlin"\n')
    assert config.jobs["x"].schedule == schedule
    assert config.jobs["x"].timezone == "Europe/Berlin"


@pytest.mark.parametrize("schedule", ["61 * * * *", "every", "0 3 * *", "bogus"])
def test_bad_schedule_uses_the_schedule_error_message(tmp_path: Path, schedule: str) -> None:
    message = schedule_error(schedule, "UTC")
    path = write(tmp_path, f'[defaults]\ntimezone = "UTC"\n\n[jobs.x]\ncommand = "true"\n'
                           f'schedule = "{schedule}"\n')
    assert lines_of(path) == [f"{path}:6: jobs.x.schedule: {message}"]
    assert "\n" not in message


def test_bad_time_zone_is_reported_once_and_the_cron_still_checked(tmp_path: Path) -> None:
    path = write(tmp_path, '[jobs.x]\ncommand = "true"\nschedule = "0 3 * * *"\n'
                           'timezone = "Nowhere/City"\n'
                           '[jobs.y]\ncommand = "true"\nschedule = "99 * * * *"\n'
                           'timezone = "Nowhere/City"\n')
    bad_zone = ("unknown time zone 'Nowhere/City'; use an IANA name like 'Europe/Berlin' "
                "or 'UTC'")
    assert lines_of(path) == [
        f"{path}:4: jobs.x.timezone: {bad_zone}",
        f"{path}:7: jobs.y.schedule: {schedule_error('99 * * * *')}",
        f"{path}:8: jobs.y.timezone: {bad_zone}",
    ]


def test_builtin_schedules_parse() -> None:
    from core.jobs.schedule import parse_schedule

    for job in builtin_config().jobs.values():
        assert job.schedule is not None
        parse_schedule(job.schedule, job.timezone)


def test_config_is_a_plain_value() -> None:
    config = parse_config_text('[jobs.x]\ncommand = "true"\n')
    assert isinstance(config, Config)
    assert config == parse_config_text('[jobs.x]\ncommand = "true"\n')


def test_ssh_secrets_are_references_and_a_value_is_never_quoted(tmp_path: Path) -> None:
    ok = write(tmp_path, """
        [hosts.web1]
        password = "${WEB_PW}"
        passphrase = "${file:/home/ops/.config/fleetdeck/web.phrase}"
        """)
    assert lines_of(ok) == []
    host = load_config(ok).hosts["web1"]
    assert (host.password, host.passphrase) == (
        "${WEB_PW}", "${file:/home/ops/.config/fleetdeck/web.phrase}")
    bad = write(tmp_path, """
        [hosts.web1]
        password = "hunter2-literal"
        passphrase = "pre ${WEB_PW} post"
        """, "bad.toml")
    problems = lines_of(bad)
    assert len(problems) == 2
    assert all("not a secret store" in p and "hunter2" not in p for p in problems)
    assert "hosts.web1.password" in problems[0] and ":2:" in problems[0]


def test_a_byte_order_mark_is_not_part_of_the_config(tmp_path: Path):
    """Some Windows editors write one; it was 'invalid TOML ... at column 1'."""
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'[jobs.a]\ncommand = "true"\n')
    assert list(load_config(path).jobs) == ["a"]


@pytest.mark.parametrize(("keys", "line"), [
    ('serial = ""', ":3: jobs.d.serial: an empty batch size; write sizes like 1,5,25%"),
    ("max_fail = 1", ":3: jobs.d.max_fail: needs serial too (it acts between batches)"),
    ('serial = [[1]]', ":3: jobs.d.serial: '[1]' is not a number of hosts or a percentage"),
    ('serial = 2\nmax_fail = ""', ":4: jobs.d.max_fail: '' is not a number of hosts"),
])
def test_a_rolling_job_says_which_key_is_wrong(tmp_path: Path, keys: str, line: str) -> None:
    path = write(tmp_path, '[jobs.d]\ncommand = "true"\n' + keys + '\ntargets = "@web"\n'
                 '[hosts.w]\naddress = "10.0.0.1"\ngroups = ["web"]\n')
    got = lines_of(path)
    assert len(got) == 1 and got[0].startswith(f"{path}{line}"), got


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory"])
def test_a_zone_database_file_that_is_no_zone_is_named_at_its_key(tmp_path: Path,
                                                                   zone: str) -> None:
    path = write(tmp_path, f'[jobs.a]\ncommand = "true"\nschedule = "0 3 * * *"\n'
                 f'timezone = "{zone}"\n')
    assert lines_of(path) == [f"{path}:4: jobs.a.timezone: unknown time zone '{zone}'; use "
                              "an IANA name like 'Europe/Berlin' or 'UTC'"]
