"""The local runner against real processes: streaming, exit codes, timeouts, groups."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import termios

import psutil

from core.jobs.groups import group_alive, process_create_time, terminate_group
from core.jobs.process import LocalProcess
from tests.helpers import until_async


def collect() -> tuple[list[tuple[str, str]], object]:
    lines: list[tuple[str, str]] = []
    return lines, lambda stream, line: lines.append((stream, line))


async def run(command: str, **kw) -> tuple[object, list[tuple[str, str]], LocalProcess]:
    lines, sink = collect()
    proc = LocalProcess(command, on_line=sink, **kw)
    assert await proc.start() is None
    outcome = await asyncio.wait_for(proc.wait(), 30)
    return outcome, lines, proc


async def test_streams_stdout_and_stderr_line_by_line():
    outcome, lines, _ = await run("echo one; echo two >&2; printf 'no newline'")
    assert outcome.exit_code == 0 and not outcome.timed_out
    assert ("stdout", "one") in lines
    assert ("stderr", "two") in lines
    assert ("stdout", "no newline") in lines


async def test_exit_code_and_env_and_cwd(tmp_path):
    outcome, lines, _ = await run("echo $GREETING; pwd; exit 7", env={"GREETING": "hi"},
                                  cwd=str(tmp_path))
    assert outcome.exit_code == 7
    assert [line for _, line in lines] == ["hi", str(tmp_path)]


async def test_lines_arrive_while_running():
    seen = asyncio.Event()
    lines: list[str] = []

    def sink(stream: str, line: str) -> None:
        lines.append(line)
        seen.set()

    proc = LocalProcess("echo first; sleep 5; echo second", on_line=sink)
    await proc.start()
    waiter = asyncio.ensure_future(proc.wait())
    await asyncio.wait_for(seen.wait(), 10)
    assert lines == ["first"] and not waiter.done()
    proc.cancel()
    outcome = await asyncio.wait_for(waiter, 20)
    assert outcome.cancelled


async def test_timeout_terminates_the_whole_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    # the shell starts a grandchild that would outlive a plain kill of the shell
    outcome, _, proc = await run(f"sleep 300 & echo $! > {pidfile}; wait", timeout=0.5,
                                 kill_grace=2)
    assert outcome.timed_out and outcome.exit_code is None
    child = int(pidfile.read_text())

    def gone() -> bool:
        try:
            return not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
        except psutil.NoSuchProcess:
            return True

    await until_async(gone, "the grandchild to go after the timeout")
    assert not group_alive(proc.info.pgid, proc.info.started)


async def test_sigterm_ignored_gets_sigkill_after_grace():
    outcome, lines, _ = await run("trap '' TERM; echo ready; sleep 300", timeout=0.5,
                                  kill_grace=0.5)
    assert outcome.timed_out
    assert outcome.signal == signal.SIGKILL


async def test_huge_line_and_binary_output_do_not_break_streaming():
    outcome, lines, _ = await run(
        "head -c 300000 /dev/zero | tr '\\0' x; echo; printf '\\377\\376 bad utf8\\n'"
    )
    assert outcome.exit_code == 0
    assert len(lines[0][1]) == 300000
    assert lines[1][1].endswith("bad utf8")


async def test_missing_cwd_is_a_clear_error(tmp_path):
    lines, sink = collect()
    proc = LocalProcess("true", cwd=str(tmp_path / "nope"), on_line=sink)
    error = await proc.start()
    assert error is not None and "nope" in error and "\n" not in error


async def test_background_child_holding_the_pipe_does_not_hang_the_run(tmp_path):
    # the leader exits at once; its child keeps stdout open for a long time
    outcome, lines, proc = await run("(sleep 60; echo late) & echo early")
    assert outcome.exit_code == 0
    assert ("stdout", "early") in lines
    await terminate_group(proc.info.pgid, 1)


async def test_group_alive_tells_pid_reuse_apart():
    proc = await asyncio.create_subprocess_exec("sleep", "30", start_new_session=True)
    started = process_create_time(proc.pid)
    assert group_alive(proc.pid, started)
    assert not group_alive(proc.pid, started - 1000)  # another process's birth time
    await terminate_group(proc.pid, 1)
    await proc.wait()
    assert not group_alive(proc.pid, started)


def test_plain_commands_run_directly_and_shell_syntax_through_the_shell(tmp_path):
    from core.jobs.process import argv_for

    path = os.environ["PATH"]
    assert argv_for("/bin/true", path)[0] == "/bin/true"
    assert argv_for("ls -l /tmp", path)[1:] == ("-l", "/tmp")
    for cmd in ("exit 3", "echo $HOME", "true && false", "FOO=1 env", "ls *", "cd /tmp",
                "echo 'a b'", "nonexistent-binary-xyz --flag"):
        assert argv_for(cmd, path)[:2] == ("/bin/sh", "-c"), cmd


async def test_direct_and_shell_paths_give_the_same_result(tmp_path):
    direct, lines_d, _ = await run(f"ls {tmp_path}")
    (tmp_path / "f").touch()
    shell, lines_s, _ = await run(f"ls {tmp_path} ; true")
    assert direct.exit_code == shell.exit_code == 0
    assert lines_s == [("stdout", "f")] and lines_d == []
    missing, _, _ = await run("ls /nonexistent-dir-xyz")
    assert missing.exit_code == 2


# A run's process, reporting what it can reach: its group and session, and the terminal.
_WHERE = ('pg=$(ps -o pgid= -p $$ | tr -d " "); sid=$(ps -o sid= -p $$ | tr -d " "); '
          'if (exec 3</dev/tty) 2>/dev/null; then t=yes; else t=no; fi; '
          'echo "$$ $pg $sid $t"')


_IN_A_TERMINAL = r'''
import asyncio, os, sys
from core.jobs.process import LocalProcess
lines = []
async def main():
    p = LocalProcess(sys.argv[1], on_line=lambda s, l: lines.append(l))
    assert await p.start() is None
    await p.wait()
    print("RESULT", p.info.pid, os.getsid(0), lines[0], flush=True)
asyncio.run(main())
'''


def test_without_a_terminal_a_run_leads_its_own_process_group(tmp_path):
    """A daemon has no controlling terminal: each run leads its own process group (what
    the timeout and cancel signal), in the daemon's session, with no terminal to open."""
    import subprocess
    import sys

    script = tmp_path / "no_terminal.py"
    script.write_text(_IN_A_TERMINAL)
    done = subprocess.run([sys.executable, str(script), _WHERE], capture_output=True,
                          start_new_session=True, cwd=os.getcwd(), timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    run_pid, our_sid, pid, pgid, sid, tty = done.stdout.partition(b"RESULT")[2].split()[:6]
    assert run_pid == pid == pgid  # leads its group
    assert sid == our_sid and tty == b"no"


def test_under_a_terminal_a_run_has_its_own_session_and_no_terminal(tmp_path):
    """The console has the terminal: a run gets a session of its own, so it cannot open
    the terminal (a prompt of ssh or sudo would land on the console's screen)."""
    import pty
    import subprocess
    import sys

    script = tmp_path / "in_terminal.py"
    script.write_text(_IN_A_TERMINAL)
    parent, child = pty.openpty()
    proc = subprocess.Popen(  # a session of its own whose controlling terminal is the pty
        [sys.executable, str(script), _WHERE], stdin=child, stdout=child, stderr=child,
        start_new_session=True, cwd=os.getcwd(),
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(child)
    out = b""
    try:
        while b"\n" not in out.partition(b"RESULT")[2]:
            try:
                chunk = os.read(parent, 4096)
            except OSError:  # EIO: the child is gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        proc.wait(60)
        os.close(parent)
    assert b"RESULT" in out, out.decode(errors="replace")
    run_pid, our_sid, pid, pgid, sid, tty = out.partition(b"RESULT")[2].split()[:6]
    assert run_pid == pid == pgid == sid  # leads its group and its own session
    assert our_sid != sid and tty == b"no"
