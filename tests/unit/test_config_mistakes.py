"""Mistakes a config passed before and that broke later (a console crash at start, a
daemon spinning on Redis, a maintenance window covering nothing, a pipe that hung the
CLI): each is now one line naming file:line and key, through load_config and the CLI."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from core.cluster.config import url_problem
from tests.helpers import FLEETDECK, cli_env, issues_of

SOURCE = '[sources.app]\npath = "/var/log/app.log"\n'
CHECK = '[checks.disk]\nkind = "metrics"\n'
WINDOW = '[maintenance.m]\nstart = "2030-01-01T00:00:00Z"\nend = "2030-01-02T00:00:00Z"\n'
CLUSTER = '[cluster]\nredis = "redis://127.0.0.1:6379/0"\n'


CASES = [
    (SOURCE + 'colour = "notacolour"\n',
     "3: sources.app.colour: not a colour: 'notacolour' (a name such as cyan or bright_red, "
     "#rrggbb, color(N), or a style such as 'red on blue')"),
    (CHECK + 'interval = "1ms"\n',
     "3: checks.disk.interval: interval must be at least 100ms (samples that often would "
     "fill a core and flap the check)"),
    (CHECK + 'interval = "0s"\n',
     "3: checks.disk.interval: interval must be at least 100ms (samples that often would "
     "fill a core and flap the check)"),
    ('[checks.c]\nkind = "command"\ncommand = "true"\nrestart_limit = [3, "0s"]\n',
     "4: checks.c.restart_limit: restart_limit's window must be more than 0, e.g. "
     '[3, "10m"]'),
    ('[alerts]\nretry_backoff = "10m"\nretry_backoff_max = "5s"\n',
     "2: alerts.retry_backoff: retry_backoff (600s) is above retry_backoff_max (5s)"),
    ('[alerts]\nretry_backoff = "0s"\n',
     "2: alerts.retry_backoff: retry_backoff must be at least 0.1s"),
    ('[alerts]\ngive_up_after = "0s"\n',
     "2: alerts.give_up_after: give_up_after must be at least 1s"),
    ('[notifiers.n]\nkind = "command"\ncommand = "cat"\ntimeout = "0s"\n',
     "4: notifiers.n.timeout: timeout must be at least 0.1s"),
    (CHECK + WINDOW + 'checks = ["dsk"]\n',
     "6: maintenance.m.checks: no check, rule, job or log source named 'dsk' "
     "(did you mean 'disk'?)"),
    (CLUSTER + 'heartbeat = "0s"\n',
     "3: cluster.heartbeat: heartbeat must be at least 0.1s"),
    (CLUSTER + 'lease = "0s"\n', "3: cluster.lease: lease must be at least 0.3s"),
    ('[jobs.a]\ncommand = "env"\nenv = { B = "${file:}" }\n',
     "3: jobs.a.env.B: ${file:}: no path (write ${file:/path/to/secret})"),
    ('[jobs.a]\ncommand = "env"\nenv = { C = "x-${file:relative/token}" }\n',
     "3: jobs.a.env.C: ${file:relative/token}: the path must be absolute (or start with ~)"),
    ('[notifiers.n]\nkind = "webhook"\nurl = "${"\n',
     "3: notifiers.n.url: ${: no closing '}' (write ${NAME} or ${file:/path})"),
    ('[hosts.h]\naddress = "h"\npassphrase = "${file:key.pass}"\n',
     "3: hosts.h.passphrase: ${file:key.pass}: the path must be absolute (or start with ~)"),
    ('[workflows.w]\n[[workflows.w.steps]]\nname = "s"\ncommand = "true"\n'
     'env = { T = "${file: }" }\n',
     "5: workflows.w.steps[0].env.T: ${file:}: no path (write ${file:/path/to/secret})"),
    ('[hosts.a]\naddress = "a b"\n',
     "2: hosts.a.address: 'a b': hostname contains invalid characters (as ssh says)"),
    ('[hosts.a]\naddress = "-oProxyCommand=touch /tmp/x"\n',
     "2: hosts.a.address: '-oProxyCommand=touch /tmp/x': hostname contains invalid "
     "characters (as ssh says)"),
    ('[hosts.a]\naddress = "web1:2222"\n',
     "2: hosts.a.address: 'web1:2222': put the port in 'port', not in the address"),
    ('[hosts.a]\naddress = "ssh://web1"\n',
     "2: hosts.a.address: 'ssh://web1': a host name or an IP address, not a URL"),
    ('[jobs.a]\ncommand = "pwd"\ncwd = "relative/dir"\n',
     "3: jobs.a.cwd: 'relative/dir': write an absolute path (or one from ~)"),
    ('[workflows.w]\n[[workflows.w.steps]]\nname = "s"\ncommand = "pwd"\ncwd = "srv"\n'
     'targets = "local"\n',
     "5: workflows.w.steps[0].cwd: 'srv': write an absolute path (or one from ~)"),
    ('[workflows.w]\n[[workflows.w.steps]]\nname = "s"\ncommand = "true"\n'
     'approve = { by = ["root"], timeout = "0s" }\n',
     "5: workflows.w.steps[0].approve.timeout: timeout must be at least 1s"),
    ('[notifiers.n]\nkind = "webhook"\nurl = "https://"\n',
     "3: notifiers.n.url: 'https://': no host, or a space in it"),
    ('[notifiers.n]\nkind = "command"\ncommand = "cat"\nurl = "http://x"\n',
     "4: notifiers.n.url: url is for webhook notifiers; a command notifier does not use it"),
    ('[notifiers.n]\nkind = "command"\ncommand = "cat"\nevents = []\n',
     "4: notifiers.n.events: a notifier told of nothing; leave 'events' out for all of "
     "them, or set enabled = false"),
    ('[checks.t]\nkind = "tcp"\nport = 80\nurl = "http://x"\n',
     "4: checks.t.url: url is for http checks; a tcp check does not use it"),
    ('[checks.h]\nkind = "http"\nurl = "http://{adress}:8080/"\n',
     "3: checks.h.url: unknown placeholder {adress} in the url ({host} is the target's "
     "name, {address} its address)"),
    ('[checks.h]\nkind = "http"\nurl = "http://{address}/health?token=${HOOK_TOKEN}"\n',
     "3: checks.h.url: a check's url fills in {host} and {address} only, not ${...} "
     "references (those are for a job's env and a notifier)"),
    ('[sources.s]\npath = "relative/*.log"\n',
     "2: sources.s.path: 'relative/*.log': write an absolute path (or one from ~)"),
    (SOURCE + '[rules.r]\nsources = ["app"]\nfield = "status >= 500"\nthreshold = "> 1 in '
     '1m"\n',
     "5: rules.r.field: source 'app' has no field 'status' (its 'fields' regex must name "
     "it: (?P<status>...))"),
    ('[jobs.a]\ncommand = "true"\nschedule = "every 1m"\njitter = "2h"\n',
     "4: jobs.a.jitter: jitter (7200s) must not be longer than the interval (60s): runs "
     "would pile up"),
    ('[jobs.a]\npush = { src = 1, dest = "/x" }\n',
     "2: jobs.a.push: src: expected a path (a string), got integer"),
    ('[jobs.a]\npush = { dest = "/x" }\n',
     '2: jobs.a.push: missing src (e.g. { src = "/srv/app.conf", dest = "/etc/app/" })'),
    ('[maintenance.m]\ntargets = "local"\nschedule = "@daily"\nduration = "400d"\n',
     "4: maintenance.m.duration: duration must be 0s..366d, got '400d'"),  # said once
    ('[maintenance.m]\ntargets = "local"\nschedule = "@daily"\nduration = "0s"\n',
     "4: maintenance.m.duration: duration must be more than 0, e.g. '2h'"),
    ('[cluster]\nredis = "redis://:hunter2secret@/x"\n',
     "2: cluster.redis: no host in 'redis://:***@/x'"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[e[1][:60] for e in CASES])
def test_a_mistake_is_one_line_naming_where(tmp_path: Path, text: str, expected: str) -> None:
    assert issues_of(tmp_path, text) == [expected]


@pytest.mark.parametrize("text", [
    SOURCE + 'colour = "bright_red"\n', SOURCE + 'colour = "#ff8800"\n',
    SOURCE + 'colour = "red on blue"\n',
    CHECK + 'interval = "100ms"\n', CHECK + WINDOW + 'checks = ["disk"]\n',
    '[keys]\n"jobs.run" = "x"\n"runs.open" = "x"\n',  # two screens: no clash
    '[keys]\n"app.help" = "f1"\n"help.close_alt" = "f1"\n',  # a toggle, as ? is
    '[jobs.a]\ncommand = "true"\nschedule = "every 1m"\njitter = "1m"\n',
    '[notifiers.n]\nkind = "command"\ncommand = "cat"\nevents = []\nenabled = false\n',
    '[hosts.h1]\naddress = "h1"\n[jobs.a]\ncommand = "pwd"\ntargets = "h1"\ncwd = "app"\n',
    '[checks.p]\nkind = "http"\nurl = \'http://{address}:9090/api/v1/query?query=up{job="node"}\'\n',
    '[checks.h]\nkind = "http"\nurl = "http://{address}:8080/{host}"\nlatency = ["1s", "2s"]\n',
    '[notifiers.d]\nkind = "webhook"\nurl = "https://hooks.example.com/x?y=1"\n'
    '[notifiers.e]\nkind = "webhook"\nurl = "${HOOK}/path"\n',
    '[sources.s]\npath = "~/logs/*.log"\nfields = "(?P<status>\\\\d+)"\n'
    '[rules.r]\nsources = ["s"]\nfield = "status >= 500"\nthreshold = "> 1 in 1m"\n',
    '[hosts.a]\naddress = "::1"\n[hosts.b]\naddress = "fe80::1%eth0"\n'
    '[hosts.c]\naddress = "db-1.example.com"\n',
    '[jobs.a]\ncommand = "env"\nenv = { A = "${HOME}", B = "${file:~/.token}", C = "$x" }\n',
    '[alerts]\nretry_backoff = "100ms"\nretry_backoff_max = "400ms"\n',
    '[cluster]\nredis = "unix:///run/redis/redis.sock"\n',
    '[cluster]\nredis = "unix:///run/redis/redis.sock?db=2"\n',
])
def test_what_is_right_stays_accepted(tmp_path: Path, text: str) -> None:
    assert issues_of(tmp_path, text) == []


def test_redis_urls_as_redis_py_reads_them() -> None:
    assert url_problem("unix:///run/redis.sock?db=x") == "the database must be a number, " \
                                                         "got 'x'"
    assert url_problem("unix://relative.sock").startswith("no socket path in ")
    assert "hunter2" not in url_problem("http://:hunter2@x/0")


def fd(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEETDECK, *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(tmp_path))


def warnings_of(tmp_path: Path, text: str, n: int) -> tuple[Path, list[str]]:
    """check-config on a valid config with `n` warnings: the file, and the warnings."""
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(text)
    out = fd(tmp_path, "check-config", str(cfg))
    assert (out.returncode, out.stdout) == (0, f"{cfg}: ok ({n} warning{'s' * (n > 1)})\n")
    return cfg, out.stderr.splitlines()


def test_a_named_pipe_is_read_when_written_and_refused_when_nothing_writes(tmp_path):
    """`check-config <(generate)`: a pipe with a writer is read; one nothing writes to is
    one line after a short wait, not a hang."""
    pipe = tmp_path / "fleet.toml"
    os.mkfifo(pipe)
    silent = fd(tmp_path, "check-config", str(pipe))
    assert silent.returncode == 2
    assert silent.stderr.splitlines()[0] == (
        f"{pipe}: a named pipe nothing writes to (waited 5s); name the file itself")

    def write() -> None:
        with open(pipe, "w") as f:
            f.write('[jobs.a]\ncommand = "true"\n')

    writer = threading.Thread(target=write)
    writer.start()
    try:
        fed = fd(tmp_path, "check-config", str(pipe))
    finally:
        writer.join(timeout=60)
    assert (fed.returncode, fed.stdout) == (0, f"{pipe}: ok\n"), fed.stderr


def test_check_config_warns_of_a_theme_not_installed(tmp_path):
    cfg, said = warnings_of(tmp_path, 'theme = "nope"\n', 1)
    assert said == [f"warning: {cfg}:1: theme: no theme named 'nope'; the console "
                          f"uses its default (themes here: dark, light, high-contrast, "
                          f"ansi)"]


def test_check_config_warns_of_a_dollar_brace_left_as_written(tmp_path):
    """In free text (an env value) `${app.dir}` may be another program's: a warning, not
    an error (a URL or a password has no such use: there it is an error)."""
    cfg, said = warnings_of(tmp_path, '[jobs.a]\ncommand = "env"\n'
                            'env = { A = "${", D = "${USER:-me}", J = "${app.log.dir}" }\n', 3)
    where = f"warning: {cfg}:3: jobs.a.env."
    assert said == [
        where + "A: ${: no closing '}' (write ${NAME} or ${file:/path})",
        where + "D: ${USER:-me}: not a reference; fleetdeck fills in ${NAME} (an "
                "environment variable) and ${file:PATH} only",
        where + "J: ${app.log.dir}: not a reference; fleetdeck fills in ${NAME} (an "
                "environment variable) and ${file:PATH} only"]


def test_check_config_warns_of_references_it_cannot_fill_here(tmp_path):
    """An unset variable or a missing secret file is a warning (the daemon's environment
    and files may differ), with its line; set ones say nothing."""
    cfg, said = warnings_of(tmp_path, '[jobs.a]\ncommand = "env"\n'
                            'env = { H = "${HOME}", U = "${FLEETDECK_TEST_UNSET}", '
                            'F = "${file:/nonexistent/secret}" }\n', 2)
    assert said == [
        f"warning: {cfg}:3: jobs.a.env.U: ${{FLEETDECK_TEST_UNSET}}: not set in this "
        f"environment (the daemon's must have it)",
        f"warning: {cfg}:3: jobs.a.env.F: ${{file:/nonexistent/secret}}: no such file or "
        f"directory"]


def test_check_config_warns_of_a_secret_file_that_is_no_text(tmp_path):
    nul = tmp_path / "nul"
    nul.write_bytes(b"abc\0def")
    nul.chmod(0o600)
    cfg, said = warnings_of(tmp_path, f'[jobs.a]\ncommand = "env"\n'
                            f'env = {{ N = "${{file:{nul}}}" }}\n', 1)
    assert said == [f"warning: {cfg}:3: jobs.a.env.N: ${{file:{nul}}}: holds a NUL byte"]


def test_a_local_jobs_working_folder_missing_here_is_a_warning(tmp_path):
    cfg, said = warnings_of(tmp_path, '[jobs.a]\ncommand = "pwd"\ncwd = "/nonexistent/dir"\n'
                            '[jobs.b]\ncommand = "pwd"\ncwd = "~"\n', 1)
    assert said == [f"warning: {cfg}:3: jobs.a.cwd: /nonexistent/dir: no such folder here; "
                    f"its runs would not start"]


async def test_a_working_folder_from_home_is_the_home(start_engine, tmp_path, monkeypatch):
    from tests.helpers import job, make_config

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "work").mkdir()
    engine, _ = await start_engine(make_config(job("where", "pwd", cwd="~/work")),
                                   scheduling=False)
    [run] = await engine.run_job("where")
    done = await engine.wait_run(run["id"])
    assert done["state"] == "succeeded", done["reason"]
    assert engine.run_log_path(run["id"]).read_text().strip().endswith(str(tmp_path / "work"))


def test_check_config_warns_of_approvers_this_machine_does_not_have(tmp_path):
    cfg, said = warnings_of(tmp_path, '[workflows.w]\n[[workflows.w.steps]]\nname = "s"\n'
                            'command = "true"\napprove = { by = ["@nosuchgroup_xyz", "root", '
                            '"nosuchuser_xyz"] }\n', 2)
    where = f"warning: {cfg}:5: workflows.w.steps[0].approve.by: "
    assert said == [
        where + "no group 'nosuchgroup_xyz' on this machine (approvers are its users)",
        where + "no user 'nosuchuser_xyz' on this machine (approvers are its users)"]


def test_check_config_warns_of_a_password_written_in_the_redis_url(tmp_path):
    cfg, said = warnings_of(tmp_path, '[cluster]\nredis = "redis://:hunter2@127.0.0.1/0"\n', 1)
    assert said == [f"warning: {cfg}:2: cluster.redis: the URL holds its password as written; "
                    f"write ${{NAME}} or ${{file:PATH}} for it (the config is not a secret "
                    f"store)"]
    assert "hunter2" not in "".join(said)
