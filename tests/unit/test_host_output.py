"""One host's output: memory bounded at MEMORY_CAP (the rest read back from the log),
out-dir files per stream, and a host that never ran leaves no out-dir files."""

from __future__ import annotations

from core.remote.output import MEMORY_CAP, HostOutput, out_paths


def test_memory_is_bounded_and_the_log_has_it_all(tmp_path):
    out = HostOutput(tmp_path / "web01.log", tmp_path, "web01")
    assert out.open() is None
    out.ran = True
    line = "x" * 1023
    n = 2 * MEMORY_CAP // 1024
    for _ in range(n):
        out.add("stdout", line)
    out.add("stderr", "bad")
    out.close()
    assert out.truncated and out.lines == n + 1
    assert out._kept <= MEMORY_CAP + 1024  # noqa: SLF001 - the bound is the point
    assert out.text() == (line + "\n") * n + "bad\n"
    so, se = out_paths(tmp_path, "web01")
    assert so.stat().st_size == 1024 * n and se.read_text() == "bad\n"


def test_a_host_that_never_ran_leaves_no_files(tmp_path):
    so, se = out_paths(tmp_path, "db/1")
    so.write_text("an earlier run's\n")
    out = HostOutput(None, tmp_path, "db/1")
    assert out.open() is None
    out.close()
    assert so.name == "db_1.stdout" and not so.exists() and not se.exists()


def test_an_out_dir_that_cannot_be_written_is_the_reason(tmp_path):
    out = HostOutput(None, tmp_path / "missing", "web01")
    reason = out.open()
    assert reason is not None and reason.startswith(f"cannot write {tmp_path}/missing/web01")
    assert "No such file or directory" in reason
