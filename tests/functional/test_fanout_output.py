"""A fan-out's output modes as a person uses them, against real sshd: `--stream` (each
line with its host, as it comes) beside `--gather`, and `--out-dir` (each host's stdout
and stderr in files of their own)."""

from __future__ import annotations

import stat

import pytest

from tests.fleet import Fleet, run_fd, start_fleet, without_login_noise


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Fleet:
    f = start_fleet(tmp_path_factory.mktemp("fleet"), 3, dead=1)
    yield f
    f.stop()


CMD = 'echo "out of ${SSH_CONNECTION##* }"; echo same; echo oops >&2'


def test_stream_and_gather_and_out_dir(tmp_path, fleet):
    where = tmp_path / "outputs" / "today"  # made when missing
    out = run_fd(tmp_path, fleet, "fanout", "@web,dead1", "--stream", "--gather",
                 "--out-dir", str(where), "--", CMD)
    assert out.returncode == 3, out.stderr
    for i in range(3):
        port = fleet.port_of(i)
        assert f"web{i + 1:02d}: out of {port}\n" in out.stdout  # streamed, with its host
        assert f"web{i + 1:02d}: oops" in out.stderr
        so = where / f"web{i + 1:02d}.stdout"
        assert so.read_text() == f"out of {port}\nsame\n"
        assert without_login_noise((where / f"web{i + 1:02d}.stderr").read_text()) == "oops\n"
        assert stat.S_IMODE(so.stat().st_mode) == 0o600  # output may hold secrets
    assert not (where / "dead1.stdout").exists()  # it never ran
    assert "web01 (1)\n" in out.stdout  # gathered after the stream, one group per host
    assert "dead1 (1) unreachable" in out.stdout
    assert out.stdout.rstrip().endswith("fan-out #1)")


def test_out_dir_mistakes_are_one_line(tmp_path, fleet):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for where, said in ((afile, f"{afile}: not a folder; choose another --out-dir"),
                        (afile / "below", f"{afile / 'below'}: {afile} is not a folder; "
                                          "choose another path (--out-dir)")):
        out = run_fd(tmp_path, fleet, "fanout", "@web", "--out-dir", str(where), "--", "true")
        assert (out.returncode, out.stderr) == (2, f"fleetdeck: {said}\n"), out.stdout
    both = run_fd(tmp_path, fleet, "fanout", "@web", "--stream", "--json", "--", "true")
    assert both.returncode == 2 and "--stream and --json" in both.stderr
