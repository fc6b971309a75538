"""core.remote.sshconfig without ssh at hand: its errors (one line, naming file:line), the
default files (a home and a system file of the test's own), Include's rules, Match exec,
and the small grammar underneath. What ssh -G itself says is held in
test_ssh_config_differential.py."""

from __future__ import annotations

import dataclasses
import os
import pwd
from pathlib import Path

import pytest

from core.remote import sshconfig_read
from core.remote.sshconfig import SSHConfigError, SSHSettings, resolve
from core.remote.sshconfig_keywords import DEFAULT_HOST_KEY_ALGORITHMS, assemble_host_key_algorithms
from core.remote.sshconfig_words import (
    argv_split,
    convtime,
    match_pattern_list,
    percent_expand,
    strdelim,
    tilde_expand,
)


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def error_of(tmp_path: Path, text: str, host: str = "h", **kw: object) -> str:
    config = write(tmp_path / "config", text)
    with pytest.raises(SSHConfigError) as caught:
        resolve(host, config_files=[config], **kw)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# ------------------------------------------------------------------------ errors ---
def test_a_bad_keyword_names_file_and_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "Host *\n  User bob\n  Usr alice\n")
    assert message == f"{tmp_path / 'config'}:3: Bad configuration option: usr"


def test_a_bad_keyword_counts_even_in_a_block_that_does_not_apply(tmp_path: Path) -> None:
    assert ":2: Bad configuration option: bogus" in error_of(tmp_path, "Host x\n Bogus 1\n")


@pytest.mark.parametrize("line, problem", [
    ("User", 'no argument after keyword "user"'),
    ("User #bob", "Missing argument."),
    ("Port 0", "Bad port '0'."),
    ("ConnectTimeout soon", "invalid time value."),
    ("IdentitiesOnly sometimes", 'unsupported option "sometimes".'),
    ("IdentityFile a b", "keyword identityfile extra arguments at end of line"),
    ('User "bob', "invalid quotes"),
    ("Match host", "Missing Match criteria for host"),
    ("Match all host x", "'all' cannot be combined with other Match attributes"),
    ("Match localnetwork 10.0.0.0/8", "Unsupported Match attribute localnetwork"),
    ("ProxyJump a,,b", 'Invalid ProxyJump "a,,b"'),
    ("HostKeyAlgorithms ssh-bogus", "Bad key types 'ssh-bogus'."),
    ('Match exec "echo %z"', "unknown key %z"),
    ("UserKnownHostsFile a none", 'keyword userknownhostsfile "none" argument must appear'),
])
def test_each_kind_of_bad_line_is_one_line_naming_it(tmp_path: Path, line: str,
                                                     problem: str) -> None:
    message = error_of(tmp_path, f"# fleet\n{line}\n")
    assert message.startswith(f"{tmp_path / 'config'}:2: ")
    assert problem in message


def test_an_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "User a\n\nPort none\n")
    message = error_of(tmp_path, f"Include {inc}\n")
    assert message == f"{inc}:3: Bad port 'none'."


def test_an_include_loop_stops_at_the_depth_limit(tmp_path: Path) -> None:
    config = tmp_path / "config"
    message = error_of(tmp_path, f"Host *\n  Include {config}\n")
    assert message == f"{config}:2: Too many recursive configuration includes (more than 16 deep)"


def test_sixteen_nested_includes_are_read_and_seventeen_are_too_many(tmp_path: Path) -> None:
    def chain(levels: int) -> Path:
        folder = tmp_path / f"chain{levels}"
        for i in range(1, levels + 1):
            write(folder / f"f{i}", f"Include {folder}/f{i + 1}\n")
        write(folder / f"f{levels + 1}", "User deepest\n")
        return write(folder / "main", f"Include {folder}/f1\n")

    assert resolve("h", config_files=[chain(15)]).user == "deepest"  # f16 at depth 16
    with pytest.raises(SSHConfigError, match="Too many recursive configuration includes"):
        resolve("h", config_files=[chain(16)])


def test_an_include_that_cannot_be_opened_is_an_error_but_a_missing_one_is_not(
        tmp_path: Path) -> None:
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    message = error_of(tmp_path, f"Include {tmp_path}/dangling {tmp_path}/loop1\n")
    assert message == (f"{tmp_path / 'config'}:1: Can't open user config file "
                       f"{tmp_path}/loop1: Too many levels of symbolic links")


def test_an_unreadable_include_is_an_error(tmp_path: Path) -> None:
    locked = write(tmp_path / "locked.conf", "User x\n", 0o000)
    if os.getuid() == 0:  # root reads a mode-000 file, as ssh run by root does
        main = write(tmp_path / "config", f"Include {locked}\n")
        assert resolve("h", config_files=[main]).user == "x"
    else:
        assert "Permission denied" in error_of(tmp_path, f"Include {locked}\n")


def test_a_given_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SSHConfigError) as caught:
        resolve("h", config_files=[tmp_path / "nope"])
    assert str(caught.value) == (f"Can't open user config file {tmp_path / 'nope'}: "
                                 "No such file or directory")


def test_an_include_writable_by_others_is_refused(tmp_path: Path) -> None:
    open_file = write(tmp_path / "open.conf", "User x\n", 0o646)
    assert error_of(tmp_path, f"Include {open_file}\n") == \
        f"Bad owner or permissions on {open_file}"


def test_bad_arguments_are_refused_as_ssh_refuses_them(tmp_path: Path) -> None:
    config = write(tmp_path / "config", "")
    for host, kw in [("a;b", {}), ("a,b", {}), ("-oProxyCommand=x", {}), ("", {}),
                     ("h", {"user": "-x"}), ("h", {"user": "a;b"}), ("h", {"port": 0}),
                     ("@h", {})]:
        with pytest.raises(SSHConfigError):
            resolve(host, config_files=[config], **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------- the default files ---
def test_no_files_given_reads_the_users_then_the_systems(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home / ".ssh" / "config", "Host web\n  User from-user\n", 0o600)
    system = write(tmp_path / "ssh_config", "Host *\n  User from-system\n  Port 2202\n")
    got = resolve("web", home=home, system_config=system, env={"HOME": str(home)})
    assert (got.user, got.port) == ("from-user", 2202)
    assert got.user_known_hosts_files == (f"{home}/.ssh/known_hosts",
                                          f"{home}/.ssh/known_hosts2")


def test_the_users_file_must_not_be_writable_by_others(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = write(home / ".ssh" / "config", "User x\n", 0o666)
    with pytest.raises(SSHConfigError, match=f"Bad owner or permissions on {config}"):
        resolve("h", home=home, system_config=tmp_path / "none", env={})


def test_relative_includes_resolve_under_HOME_dot_ssh_for_the_user(tmp_path: Path) -> None:
    """glob(3)'s `~` (Include) is $HOME; the passwd home (`home`) is for file names."""
    env_home, passwd_home = tmp_path / "env-home", tmp_path / "passwd-home"
    write(env_home / ".ssh" / "extra" / "b.conf", "User from-b\n")
    write(env_home / ".ssh" / "extra" / "a.conf", "User from-a\n")
    write(passwd_home / ".ssh" / "extra" / "a.conf", "User wrong-home\n")
    config = write(tmp_path / "config", "Include extra/*.conf\nUserKnownHostsFile ~/kh\n")
    got = resolve("h", config_files=[config], home=passwd_home,
                  env={"HOME": str(env_home)})
    assert got.user == "from-a"  # sorted: a before b
    assert got.user_known_hosts_files == (f"{passwd_home}/kh",)


def test_relative_includes_of_the_system_file_resolve_under_etc_ssh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sshconfig_read, "SYSTEM_DIR", str(tmp_path / "etc-ssh"))
    write(tmp_path / "etc-ssh" / "conf.d" / "x.conf", "User from-etc\n")
    write(tmp_path / "home" / ".ssh" / "conf.d" / "x.conf", "User from-home\n")
    system = write(tmp_path / "ssh_config", "Include conf.d/*.conf\n")
    got = resolve("h", home=tmp_path / "home", system_config=system,
                  env={"HOME": str(tmp_path / "home")})
    assert got.user == "from-etc"


def test_the_system_file_may_not_include_from_home(tmp_path: Path) -> None:
    system = write(tmp_path / "ssh_config", "Include ~/x.conf\n")
    with pytest.raises(SSHConfigError, match=r"ssh_config:1: bad include path ~/x.conf\."):
        resolve("h", home=tmp_path / "home", system_config=system, env={})


def test_include_under_a_block_that_does_not_apply_is_read_but_not_applied(
        tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "User inc\nHost *\n  Port 2201\n")
    config = f"Host other\n  Include {inc}\nHost *\n  User after\n"
    got = resolve("h", config_files=[write(tmp_path / "config", config)])
    assert (got.user, got.port) == ("after", 22)


# ------------------------------------------------------------------- Match exec ---
def test_match_exec_runs_in_SHELL_with_the_environment_given(tmp_path: Path) -> None:
    shell = write(tmp_path / "shell", f"#!/bin/sh\necho \"$@\" >> {tmp_path}/ran\n"
                  "exec /bin/sh \"$@\"\n", 0o755)
    config = write(tmp_path / "config", 'Match exec "test $MARK = yes"\n  User marked\n')
    env = {"SHELL": str(shell), "MARK": "yes", "PATH": os.environ["PATH"]}
    assert resolve("h", config_files=[config], env=env).user == "marked"
    assert (tmp_path / "ran").read_text() == "-c test $MARK = yes\n"


def test_match_exec_is_not_run_once_an_earlier_criterion_failed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    config = write(tmp_path / "config", f'Match host other exec "touch {marker}"\n  User x\n')
    assert resolve("h", config_files=[config]).user == pwd.getpwuid(os.getuid()).pw_name
    assert not marker.exists()


def test_match_exec_killed_or_too_slow_is_an_error_naming_the_line(tmp_path: Path) -> None:
    assert ":2: match exec 'kill -9 $$' error" in error_of(
        tmp_path, 'Host *\nMatch exec "kill -9 $$"\n')
    assert ":1: match exec 'sleep 30' did not finish" in error_of(
        tmp_path, 'Match exec "sleep 30"\n', exec_timeout=0.2)


# ------------------------------------------------------------------- the result ---
def test_settings_are_frozen_and_expand_identity_files_as_ssh_loads_them(
        tmp_path: Path) -> None:
    config = write(tmp_path / "config", "IdentityFile ~/.ssh/id_%h_%r\nIdentityFile none\n"
                   "IdentityFile ${KEYS}/k_%p\nUser deploy\n")
    got = resolve("Web1", config_files=[config], home="/home/u", env={"KEYS": "/keys"})
    assert got.identity_files == ("~/.ssh/id_%h_%r", "none", "${KEYS}/k_%p")
    assert got.identity_paths() == ("/home/u/.ssh/id_web1_deploy", "/keys/k_22")
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.user = "x"  # type: ignore[misc]
    assert isinstance(hash(got), int) and isinstance(got, SSHSettings)
    unset = resolve("h", config_files=[write(tmp_path / "c2", "IdentityFile ${NOPE}/k\n")],
                    env={})
    with pytest.raises(SSHConfigError, match=r"\$\{NOPE\} has no value"):
        unset.identity_paths()


def test_defaults_are_what_ssh_G_prints_with_an_empty_config(tmp_path: Path) -> None:
    got = resolve("Host.Example", config_files=[write(tmp_path / "config", "")],
                  home="/home/u", local_user="u")
    assert (got.hostname, got.port, got.user) == ("host.example", 22, "u")
    assert got.identity_files[0] == "~/.ssh/id_rsa" and len(got.identity_files) == 7
    assert got.global_known_hosts_files == ("/etc/ssh/ssh_known_hosts",
                                            "/etc/ssh/ssh_known_hosts2")
    assert (got.connect_timeout, got.proxy_jump, got.host_key_algorithms) == (None, None, None)
    assert (got.strict_host_key_checking, got.server_alive_interval,
            got.server_alive_count_max) == ("ask", 0, 3)


# --------------------------------------------------------------- the grammar -------
def test_words_split_as_ssh_splits_them() -> None:
    assert argv_split(r'a "b c" \"d \\e f\ g # h') == ["a", "b c", '"d', "\\e", "f g"]
    assert argv_split("'x y'z #c") == ["x yz"]
    with pytest.raises(ValueError):
        argv_split("'open")
    assert strdelim("User=bob") == ("User", "bob")
    assert strdelim("User = = bob") == ("User", "= bob")
    assert strdelim('exec "a b" c') == ("exec", '"a b" c')
    assert strdelim('"a b" c') == ("a b", "c")
    assert strdelim('"open') == (None, None)


def test_patterns_match_as_ssh_matches_them() -> None:
    assert match_pattern_list("web1", "web*,!web9", False) == 1
    assert match_pattern_list("web9", "web*,!web9", False) == -1
    assert match_pattern_list("web1", "!web9", False) == 0  # negation alone never matches
    assert match_pattern_list("root", "ROOT", False) == 0
    assert match_pattern_list("root", "ROOT", True) == 1


def test_times_tokens_and_tildes() -> None:
    assert [convtime(t) for t in ("90", "1m30s", "1W", "2h", "", "5x", "-1")] == \
        [90, 90, 604800, 7200, -1, -1, -1]
    assert percent_expand("%h:%%:%p", {"h": "x", "p": "22"}) == "x:%:22"
    with pytest.raises(ValueError, match="unknown key %q"):
        percent_expand("%q", {"h": "x"})
    assert percent_expand("${A}/%h", {"h": "x"}, {"A": "a"}) == "a/x"
    assert tilde_expand("~", "/home/u") == "/home/u/"
    assert tilde_expand("~//x", "/home/u") == "/home/u/x"
    assert tilde_expand("/x/~", "/home/u") == "/x/~"


def test_host_key_algorithms_assemble_as_ssh_G_prints_them() -> None:
    assert assemble_host_key_algorithms("+ssh-rsa") == DEFAULT_HOST_KEY_ALGORITHMS + ",ssh-rsa"
    assert assemble_host_key_algorithms("ssh-ed25519*") == \
        "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com"
    assert "ssh-ed25519," not in assemble_host_key_algorithms("-ssh-ed25519") + ","
    with pytest.raises(ValueError):
        assemble_host_key_algorithms("RSA")
