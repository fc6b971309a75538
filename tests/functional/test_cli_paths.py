"""Every path the `fleetdeck` command takes, made hostile: missing, unreadable, a folder
where a file belongs, a file where a folder belongs, and a place that cannot be written.
Each ends in exit 2 and one line `fleetdeck: <path>: <what went wrong>; <what to do>`,
with no traceback and nothing written.

Root reads through chmod 000, and the suite may run as root: "unreadable" is then a
symbolic link to itself (ELOOP, which stops root too), and "read-only" is a folder under
/sys, where not even root may create anything. As another user they are chmod 000 and a
folder of mode 0500.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import FLEETDECK, cli_env

ROOT = os.geteuid() == 0
CONFIG = '[jobs.hello]\ncommand = "echo hi"\n'


def fd(tmp_path: Path, *args: str, env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEETDECK, *args], capture_output=True, text=True, timeout=60,
                          env=env or cli_env(tmp_path))


def tree(top: Path) -> dict[str, tuple[int, int]]:
    """Every path under `top` with its size and mtime: what a command may not change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def one_line(proc: subprocess.CompletedProcess[str], path: str, *words: str) -> None:
    """Exit 2, one line on stderr naming `path`, saying what to do (after the `;`)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"fleetdeck: {path}: "), lines[0]
    what, _, do = lines[0].partition("; ")
    assert do.strip(), f"no advice in {lines[0]!r}"
    for word in words:
        assert word in lines[0], lines[0]


def make(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A hostile path for `case`, and the path the error line must name."""
    (tmp_path / "file").write_text("x")
    if case == "missing":
        p = tmp_path / "missing.toml"
        return p, str(p)
    if case == "folder":
        p = tmp_path / "folder"
        p.mkdir()
        return p, str(p)
    if case == "under-a-file":
        p = tmp_path / "file" / "x.toml"
        return p, str(p)
    if case == "unreadable":
        p = tmp_path / "unreadable.toml"
        if ROOT:  # chmod 000 stops no root read; a link to itself stops everyone
            p.symlink_to(p.name)
        else:
            p.write_text(CONFIG)
            p.chmod(0)
        return p, str(p)
    if case == "read-only":
        if ROOT:  # sysfs lets no one, root included, create an entry
            p = Path("/sys") / f"fleetdeck-test-{os.getpid()}" / "x"
            return p, str(p.parent)
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        return ro / "x", str(ro / "x")
    raise AssertionError(case)


# --------------------------------------------------------------------- --config ---
# every command that loads the config (check-config and init read it only as a default)
CONFIG_COMMANDS = {
    "console": ["console"], "jobs": ["jobs"], "runs": ["runs"], "logs": ["logs", "1"],
    "run": ["run", "hello"], "cancel": ["cancel", "1"], "pause": ["pause", "hello"],
    "resume": ["resume", "hello"], "alerts": ["alerts"], "ack": ["ack", "1"],
    "silence": ["silence", "local", "1h"], "daemon": ["daemon", "--quiet"],
    "health": ["health"], "hosts": ["hosts"], "fanouts": ["fanouts"],
    "fanout": ["fanout", "local", "--", "true"], "schedule-diff": ["schedule", "diff"],
}
CONFIG_CASES = ("missing", "folder", "under-a-file", "unreadable")
# every command misses its config; every case for a reader, and the unreadable one for a
# writer and the daemon. They share one code path (load_config before any command), so
# the full square would cost seconds and test nothing more
CONFIG_MATRIX = [(c, k) for c in CONFIG_COMMANDS for k in CONFIG_CASES
                 if k == "missing" or c == "jobs"
                 or (c in ("run", "daemon") and k == "unreadable")]


@pytest.mark.parametrize(("command", "case"), CONFIG_MATRIX)
def test_config_path(tmp_path, command, case):
    path, named = make(tmp_path, case)
    before = tree(tmp_path)
    proc = fd(tmp_path, "--config", str(path), "--state-dir", str(tmp_path / "state"),
              *CONFIG_COMMANDS[command])
    one_line(proc, named, "(--config)")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("case", ["unreadable"])  # missing: test_schedule_cli
def test_schedule_diff_new_config(tmp_path, case):
    (tmp_path / "cur.toml").write_text(CONFIG)
    path, named = make(tmp_path, case)
    before = tree(tmp_path)
    proc = fd(tmp_path, "--config", str(tmp_path / "cur.toml"), "--state-dir",
              str(tmp_path / "state"), "schedule", "diff", "--config", str(path))
    one_line(proc, named)
    assert tree(tmp_path) == before


# ------------------------------------------------------------------ check-config ---
@pytest.mark.parametrize("case", ["missing", "folder", "under-a-file", "unreadable", "eio"])
def test_check_config_path(tmp_path, case):
    if case == "eio":  # a file that opens and then fails to read, as a bad disk does
        path, named = Path("/proc/self/mem"), "/proc/self/mem"
    else:
        path, named = make(tmp_path, case)
    proc = fd(tmp_path, "check-config", str(path))
    one_line(proc, named)


# -------------------------------------------------------------------------- init ---
@pytest.mark.parametrize(("case", "says"), [
    ("folder", "is a folder, not a file; name the file to write"),
    ("under-a-file", "already exists, and is not a folder"),
    ("read-only", "choose"),
])
def test_init_path(tmp_path, case, says):
    path, named = make(tmp_path, case)
    before = tree(tmp_path)
    proc = fd(tmp_path, "init", "--force", str(path))
    # the folder case is init's own check, worded before any write is tried
    one_line(proc, named if case != "under-a-file" else str(tmp_path / "file"), says)
    assert tree(tmp_path) == before
    assert case == "folder" or not path.exists()


# ------------------------------------------------------------------ --state-dir ---
# commands that make the state folder when it is missing, and those that only read it
STATE_WRITERS = {
    "console": ["console"], "run": ["run", "hello"], "cancel": ["cancel", "1"],
    "pause": ["pause", "hello"], "ack": ["ack", "1"], "silence": ["silence", "local", "1h"],
    "daemon": ["daemon", "--quiet"],
}
STATE_READERS = {"jobs": ["jobs"], "runs": ["runs"], "logs": ["logs", "1"],
                 "alerts": ["alerts"], "audit": ["audit"]}
# every case for one command of each place that makes the folder (on_engine, the console,
# the daemon); the others share on_engine's line. A reader meets ENOTDIR in both of the
# file cases, so it gets one.
# A reader of a folder that is not there reads nothing (test_missing_state_dir_...):
# "read-only" is a writer's case.
STATE_MATRIX = [*((c, k) for c in STATE_WRITERS for k in ("a-file", "under-a-file", "read-only")
                  if c in ("run", "console", "daemon") or k == "a-file"),
                *((c, "a-file") for c in STATE_READERS)]


def state_path(tmp_path: Path, case: str) -> tuple[Path, str]:
    if case == "a-file":  # a file where the state folder belongs
        (tmp_path / "file").write_text("x")
        return tmp_path / "file", str(tmp_path / "file")
    return make(tmp_path, case)


@pytest.mark.parametrize(("command", "case"), STATE_MATRIX)
def test_state_dir(tmp_path, command, case):
    (tmp_path / "config.toml").write_text(CONFIG)
    state, _ = state_path(tmp_path, case)
    env = {**cli_env(tmp_path), "FLEETDECK_FORCE_CONSOLE": "1"}  # fails before Textual
    before = tree(tmp_path)
    proc = fd(tmp_path, "--config", str(tmp_path / "config.toml"), "--state-dir",
              str(state), *{**STATE_WRITERS, **STATE_READERS}[command], env=env)
    # a reader names the file it tried (state/runs), a writer the folder it made
    assert proc.stderr.startswith(("fleetdeck: /", )), proc.stderr
    named = proc.stderr.split(": ", 2)[1]
    assert named == str(state) or named.startswith(f"{state}/") \
        or str(state).startswith(f"{named}/"), proc.stderr
    one_line(proc, named, "(--state-dir)")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", ["jobs", "runs", "alerts", "audit", "fanouts"])
def test_missing_state_dir_reads_as_empty_and_is_not_made(tmp_path, command):
    """No state yet is not an error for a reader, and reading makes none."""
    (tmp_path / "config.toml").write_text(CONFIG)
    proc = fd(tmp_path, "--config", str(tmp_path / "config.toml"), "--state-dir",
              str(tmp_path / "state"), command)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "state").exists()


# ------------------------------------------- files fleetdeck keeps in the state ---
@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> Path:
    """A state directory holding run #1 and its audit row, made once for the module."""
    top = tmp_path_factory.mktemp("state")
    (top / "config.toml").write_text(CONFIG)
    proc = fd(top, "--config", str(top / "config.toml"), "--state-dir", str(top / "state"),
              "run", "hello")
    assert proc.returncode == 0, proc.stderr
    return top


def _spoil(path: Path, how: str) -> None:
    path.unlink()
    if how == "folder":
        path.mkdir()
    else:  # unreadable, root included
        path.symlink_to(path.name)


@pytest.mark.parametrize("how", ["folder", "unreadable"])
@pytest.mark.parametrize(("command", "inner"), [
    (["logs", "1"], "logs/000000/1.log"),
    (["audit"], "audit.jsonl"),
])
def test_a_state_file_that_cannot_be_read(one_run, tmp_path, command, inner, how):
    import shutil

    shutil.copytree(one_run / "state", tmp_path / "state", symlinks=True)
    target = tmp_path / "state" / inner
    _spoil(target, how)
    proc = fd(tmp_path, "--config", str(one_run / "config.toml"), "--state-dir",
              str(tmp_path / "state"), *command)
    one_line(proc, str(target), "move it aside, or choose another --state-dir")


# -------------------------------------------------------------------------- demo ---
@pytest.mark.parametrize("case", ["under-a-file", "read-only"])
def test_demo_dir(tmp_path, case):
    path, named = make(tmp_path, case)
    before = tree(tmp_path)
    proc = fd(tmp_path, "demo", "--dir", str(path), "--fleet-only")
    one_line(proc, named, "(--dir)")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("option", ["--state-dir", "--config"])
def test_an_empty_path_is_refused_not_read_as_here(tmp_path, option):
    """`--state-dir ""` was the current folder: the engine's files were written into it
    and it was made private (0700)."""
    (tmp_path / "config.toml").write_text(CONFIG)
    here = tmp_path / "here"
    here.mkdir(mode=0o755)
    args = {"--state-dir": ["--config", str(tmp_path / "config.toml"), "--state-dir", ""],
            "--config": ["--config", "", "--state-dir", str(tmp_path / "state")]}[option]
    proc = subprocess.run([*FLEETDECK, *args, "pause", "hello"], capture_output=True,
                          text=True, timeout=60, env=cli_env(tmp_path), cwd=here)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == f"fleetdeck: error: argument {option}: empty path"
    assert list(here.iterdir()) == [] and here.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("link", ["dangling", "loop"])
def test_a_broken_link_at_the_default_config_is_an_error_not_the_builtin(tmp_path, link):
    """A config meant to be there and not readable must not fall back to the built-in
    jobs (a daemon would schedule heartbeat, disk-report and flaky-check)."""
    default = tmp_path / "xdg-config" / "fleetdeck" / "config.toml"
    default.parent.mkdir(parents=True)
    default.symlink_to(tmp_path / "gone.toml" if link == "dangling" else default)
    proc = fd(tmp_path, "--state-dir", str(tmp_path / "state"), "jobs")
    one_line(proc, str(default))
    assert "heartbeat" not in proc.stdout
    if link == "dangling":  # where it points, not "not found" (the link is there)
        assert f"a link to {tmp_path / 'gone.toml'}, which does not exist" in proc.stderr
