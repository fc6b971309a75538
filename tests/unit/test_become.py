"""Become: the command line through sudo (the password nowhere in it), the marker that
says sudo let the command run, and sudo's refusals in its own words."""

from __future__ import annotations

from core.remote.become import Become, BecomeLines, valid_user


def test_the_wrapped_command_never_holds_the_password():
    b = Become("postgres", "hunter2")
    line, mark = b.wrap("psql -c 'select 1'")
    assert "hunter2" not in line and "hunter2" not in repr(b)
    assert line.startswith("sudo -S -p '' -H -u postgres -- sh -c ")
    assert mark in line and mark.startswith("FLEETDECK-BECOME-")
    assert Become("root").wrap("id")[0].startswith("sudo -n -H -u root -- ")
    assert Become("root").wrap("id")[1] != Become("root").wrap("id")[1]  # fresh each time


def test_lines_before_the_marker_are_sudos():
    got: list[tuple[str, str]] = []
    lines = BecomeLines("MARK", lambda s, t: got.append((s, t)))
    lines("stderr", "sudo: unable to resolve host box: Name or service not known")
    lines("stderr", "early error of the command")
    lines("stdout", "MARK")
    lines("stdout", "root")
    assert lines.became
    assert got == [("stderr", "early error of the command"), ("stdout", "root")]


def test_sudos_refusals_in_one_line():
    def reason(*said: str) -> str:
        lines = BecomeLines("MARK", lambda s, t: None)
        for text in said:
            lines("stderr", text)
        return lines.reason()

    assert reason("sudo: a password is required") == \
        "sudo needs a password: give --ask-become-pass (-K)"
    assert reason("Sorry, try again.", "sudo: 1 incorrect password attempt") == \
        "sudo: incorrect password"
    assert reason("sh: 1: sudo: not found") == "sudo is not installed on the host"
    assert reason("sudo: user deploy is not allowed to execute 'x' as root") == \
        "sudo: user deploy is not allowed to execute 'x' as root"
    assert reason() == "sudo ended before the command ran"


def test_user_names():
    assert all(valid_user(u) for u in ("root", "postgres", "_svc", "app-1", "host$"))
    assert not any(valid_user(u) for u in ("", "a b", "-u", "x;y", "1abc"))
