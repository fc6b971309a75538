"""Where asyncssh 2.24.1's ssh_config reader (asyncssh/config.py) parts from OpenSSH, each
shown on a small config against `ssh -G` itself, with core.remote.sshconfig agreeing with
ssh. These are why fleetdeck resolves hosts itself; each test's docstring is one line of
the upstream report. They run on asyncssh 2.24.1 only: a later asyncssh may have fixed
some, and then its case should go (and the report with it)."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import asyncssh
import pytest
from asyncssh.config import SSHClientConfig

from core.remote.sshconfig import SSHConfigError, resolve
from tests.sshg import require_ssh, ssh_g

ME = pwd.getpwuid(os.getuid()).pw_name  # who ssh takes us for
pytestmark = pytest.mark.skipif(asyncssh.__version__ != "2.24.1",
                                reason="the differences recorded are asyncssh 2.24.1's")


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config"
    path.write_text(text)
    return path


def asyncssh_reads(path: Path, host: str) -> SSHClientConfig:
    """asyncssh's reading of one file for host, as asyncssh.connect loads it."""
    return SSHClientConfig.load(None, [path], False, False, False, ME, (),
                                host, ())


def ssh_says(path: Path, host: str, key: str, env: dict[str, str] | None = None) -> list[str]:
    rc, lines, err = ssh_g(require_ssh(), path, host, env=env)
    assert rc == 0, err
    return lines.get(key, [])


def ssh_refuses(path: Path, host: str) -> str:
    rc, _, err = ssh_g(require_ssh(), path, host)
    assert rc != 0
    return err


def test_include_glob_results_are_not_sorted(tmp_path: Path) -> None:
    """Include: matches are read in directory order (Path.glob), not sorted as glob(3)."""
    for name in ("b.conf", "a.conf"):  # created b first
        (tmp_path / "conf.d").mkdir(exist_ok=True)
        (tmp_path / "conf.d" / name).write_text(f"User from-{name[0]}\n")
    if os.listdir(tmp_path / "conf.d") == sorted(os.listdir(tmp_path / "conf.d")):
        pytest.skip("this file system lists the directory sorted: nothing to show")
    path = _config(tmp_path, f"Include {tmp_path}/conf.d/*.conf\n")
    assert ssh_says(path, "h", "user") == ["from-a"] == [resolve("h", config_files=[path]).user]
    assert asyncssh_reads(path, "h").get("User") == "from-b"


def test_match_exec_gets_no_percent_tokens(tmp_path: Path) -> None:
    """Match exec: %h, %n, %p, %r, … are passed to the shell unexpanded."""
    (tmp_path / "flags").mkdir()
    (tmp_path / "flags" / "web1").write_text("")
    path = _config(tmp_path, f'Match exec "test -f {tmp_path}/flags/%h"\n  User flagged\n')
    assert ssh_says(path, "web1", "user") == ["flagged"]
    assert resolve("web1", config_files=[path]).user == "flagged"
    assert asyncssh_reads(path, "web1").get("User") is None


def test_match_exec_with_an_equals_sign_in_its_command_is_refused(tmp_path: Path) -> None:
    """Match exec "test %h = web1": the '=' inside the quoted command splits it."""
    path = _config(tmp_path, 'Match exec "test %h = web1"\n  User execd\n')
    assert ssh_says(path, "web1", "user") == ["execd"]
    assert resolve("web1", config_files=[path]).user == "execd"
    with pytest.raises(ValueError, match="Invalid match condition"):
        asyncssh_reads(path, "web1")


def test_match_exec_accepts_single_quotes_ssh_refuses(tmp_path: Path) -> None:
    """Match lines are split with shlex: single quotes group, where ssh's Match does not."""
    path = _config(tmp_path, "Match exec 'test -n x'\n  User quoted\n")
    assert "Unsupported Match attribute" in ssh_refuses(path, "h")
    with pytest.raises(SSHConfigError):
        resolve("h", config_files=[path])
    assert asyncssh_reads(path, "h").get("User") == "quoted"


def test_match_exec_ignores_SHELL(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Match exec runs /bin/sh (shell=True); ssh runs `$SHELL -c command`."""
    shell = tmp_path / "shell"
    shell.write_text(f"#!/bin/sh\ntouch {tmp_path}/used\nexec /bin/sh \"$@\"\n")
    shell.chmod(0o755)
    monkeypatch.setenv("SHELL", str(shell))
    path = _config(tmp_path, "Match exec true\n  User execd\n")
    assert ssh_says(path, "h", "user", env=dict(os.environ)) == ["execd"]
    assert (tmp_path / "used").exists()
    (tmp_path / "used").unlink()
    assert asyncssh_reads(path, "h").get("User") == "execd"
    assert not (tmp_path / "used").exists()


def test_hostname_is_not_lowercased(tmp_path: Path) -> None:
    """HostName Web1.Example.COM stays mixed case; ssh connects to web1.example.com."""
    path = _config(tmp_path, "HostName Web1.Example.COM\n")
    assert ssh_says(path, "h", "hostname") == ["web1.example.com"]
    assert resolve("h", config_files=[path]).hostname == "web1.example.com"
    assert asyncssh_reads(path, "h").get("Hostname") == "Web1.Example.COM"


def test_match_host_and_originalhost_are_case_sensitive(tmp_path: Path) -> None:
    """Match host/originalhost compare case-sensitively; ssh lowercases both sides."""
    path = _config(tmp_path, "Match originalhost web1\n  User m1\nMatch host WEB1\n  Port 2201\n")
    assert ssh_says(path, "WEB1", "user") == ["m1"] and ssh_says(path, "WEB1", "port") == ["2201"]
    ours = resolve("WEB1", config_files=[path])
    assert (ours.user, ours.port) == ("m1", 2201)
    theirs = asyncssh_reads(path, "WEB1")
    assert (theirs.get("User"), theirs.get("Port")) == (None, 2201)


def test_host_splits_patterns_at_commas(tmp_path: Path) -> None:
    """Host a,b matches a; in ssh a Host pattern has no comma lists (Match has)."""
    path = _config(tmp_path, "Host a,b\n  User listed\n")
    assert ssh_says(path, "a", "user") == [ME]
    assert resolve("a", config_files=[path]).user == ME
    assert asyncssh_reads(path, "a").get("User") == "listed"


def test_a_trailing_comment_is_an_error(tmp_path: Path) -> None:
    """User bob # deploy: '# deploy' is taken as extra arguments (shlex has no comments)."""
    path = _config(tmp_path, "User bob # deploy\n")
    assert ssh_says(path, "h", "user") == ["bob"] == [resolve("h", config_files=[path]).user]
    with pytest.raises(ValueError, match="Extra data at end"):
        asyncssh_reads(path, "h")


def test_unknown_keywords_are_ignored(tmp_path: Path) -> None:
    """A misspelt keyword (Usr bob) is skipped silently; ssh refuses the file."""
    path = _config(tmp_path, "Usr bob\n")
    assert "Bad configuration option: usr" in ssh_refuses(path, "h")
    with pytest.raises(SSHConfigError, match="Bad configuration option: usr"):
        resolve("h", config_files=[path])
    assert asyncssh_reads(path, "h").get("User") is None


def test_none_unsets_any_string_option(tmp_path: Path) -> None:
    """User none (and any string option) becomes None; ssh takes "none" literally there."""
    path = _config(tmp_path, "User none\n")
    assert ssh_says(path, "h", "user") == ["none"] == [resolve("h", config_files=[path]).user]
    assert asyncssh_reads(path, "h").get("User") is None


def test_times_are_plain_integers(tmp_path: Path) -> None:
    """ConnectTimeout 1m and ConnectTimeout none are refused; ssh reads 60 and no timeout."""
    for text, g, ours in (("ConnectTimeout 1m\n", "60", 60.0),
                          ("ConnectTimeout none\nConnectTimeout 5\n", "5", 5.0)):
        path = _config(tmp_path, text)
        assert ssh_says(path, "h", "connecttimeout") == [g]
        assert resolve("h", config_files=[path]).connect_timeout == ours
        with pytest.raises(ValueError, match="integer value"):
            asyncssh_reads(path, "h")


def test_port_is_a_plain_integer(tmp_path: Path) -> None:
    """Port ssh (a service name) is refused and Port 0 accepted; ssh does the opposite."""
    named, zero = _config(tmp_path, "Port ssh\n"), tmp_path / "zero"
    zero.write_text("Port 0\n")
    assert ssh_says(named, "h", "port") == ["22"]
    assert resolve("h", config_files=[named]).port == 22
    with pytest.raises(ValueError):
        asyncssh_reads(named, "h")
    assert "Bad port" in ssh_refuses(zero, "h")
    assert asyncssh_reads(zero, "h").get("Port") == 0


def test_identity_files_are_not_deduplicated(tmp_path: Path) -> None:
    """IdentityFile given twice is kept twice; ssh keeps it once."""
    path = _config(tmp_path, "IdentityFile ~/.ssh/k\nIdentityFile ~/.ssh/k\n")
    assert ssh_says(path, "h", "identityfile") == ["~/.ssh/k"]
    assert resolve("h", config_files=[path]).identity_files == ("~/.ssh/k",)
    assert asyncssh_reads(path, "h").get("IdentityFile") == ["~/.ssh/k", "~/.ssh/k"]


def test_identity_file_tokens_see_the_hostname_unlowercased(tmp_path: Path) -> None:
    """IdentityFile ~/.ssh/%h after HostName WEB1.Example: …/WEB1.Example; ssh …/web1.example."""
    path = _config(tmp_path, "HostName WEB1.Example\nIdentityFile ~/.ssh/%h\n")
    home = pwd.getpwuid(os.getuid()).pw_dir
    assert resolve("h", config_files=[path]).identity_paths() == (f"{home}/.ssh/web1.example",)
    assert asyncssh_reads(path, "h").get("IdentityFile") == ["~/.ssh/WEB1.Example"]


def test_user_known_hosts_file_gets_no_expansion(tmp_path: Path) -> None:
    """UserKnownHostsFile ~/.ssh/kh_%h is left as written; ssh expands ~ and %h."""
    path = _config(tmp_path, "UserKnownHostsFile ~/.ssh/kh_%h\n")
    home = pwd.getpwuid(os.getuid()).pw_dir
    assert ssh_says(path, "web1", "userknownhostsfile") == [f"{home}/.ssh/kh_web1"]
    assert resolve("web1", config_files=[path]).user_known_hosts_files == \
        (f"{home}/.ssh/kh_web1",)
    assert asyncssh_reads(path, "web1").get("UserKnownHostsFile") == ["~/.ssh/kh_%h"]


def test_host_key_alias_is_not_lowercased(tmp_path: Path) -> None:
    """HostKeyAlias MyAlias stays mixed case; ssh looks up known_hosts under myalias."""
    path = _config(tmp_path, "HostKeyAlias MyAlias\n")
    assert ssh_says(path, "h", "hostkeyalias") == ["myalias"]
    assert resolve("h", config_files=[path]).host_key_alias == "myalias"
    assert asyncssh_reads(path, "h").get("HostKeyAlias") == "MyAlias"


def test_proxy_jump_after_proxy_command_is_kept(tmp_path: Path) -> None:
    """ProxyCommand then ProxyJump: both are kept; in ssh the first of the two wins."""
    path = _config(tmp_path, "ProxyCommand nc %h %p\nProxyJump jump\n")
    assert ssh_says(path, "h", "proxyjump") == []
    assert ssh_says(path, "h", "proxycommand") == ["nc %h %p"]
    assert resolve("h", config_files=[path]).proxy_jump is None
    assert asyncssh_reads(path, "h").get("ProxyJump") == "jump"


def test_a_numeric_hostname_is_not_canonicalised(tmp_path: Path) -> None:
    """HostName 127.1 stays 127.1; ssh connects to (and checks keys of) 127.0.0.1."""
    path = _config(tmp_path, "HostName 127.1\n")
    assert ssh_says(path, "h", "hostname") == ["127.0.0.1"]
    assert resolve("h", config_files=[path]).hostname == "127.0.0.1"
    assert asyncssh_reads(path, "h").get("Hostname") == "127.1"


def test_an_include_loop_overflows_the_stack(tmp_path: Path) -> None:
    """Include of itself recurses until RecursionError; ssh stops at 16 levels, one line."""
    path = _config(tmp_path, f"Include {tmp_path}/config\n")
    assert "Too many recursive configuration includes" in ssh_refuses(path, "h")
    with pytest.raises(SSHConfigError, match="Too many recursive configuration includes"):
        resolve("h", config_files=[path])
    with pytest.raises(RecursionError):
        asyncssh_reads(path, "h")


def test_included_files_writable_by_others_are_read(tmp_path: Path) -> None:
    """An Include'd world-writable file is read; ssh refuses it (Bad owner or permissions)."""
    loose = tmp_path / "loose.conf"
    loose.write_text("User loose\n")
    loose.chmod(0o666)
    path = _config(tmp_path, f"Include {loose}\n")
    assert "Bad owner or permissions" in ssh_refuses(path, "h")
    assert asyncssh_reads(path, "h").get("User") == "loose"


def test_percent_d_is_HOME_not_the_passwd_home(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """%d (and ~) come from $HOME; ssh takes the passwd entry's home."""
    path = _config(tmp_path, "IdentityFile %d/k\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    home = pwd.getpwuid(os.getuid()).pw_dir
    assert resolve("h", config_files=[path]).identity_paths() == (f"{home}/k",)
    assert asyncssh_reads(path, "h").get("IdentityFile") == [f"{tmp_path}/k"]


def test_the_local_user_is_USER_not_the_passwd_entry(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Match localuser and %u read $LOGNAME/$USER; ssh asks getpwuid()."""
    path = _config(tmp_path, f"Match localuser {ME}\n  User matched\n")
    monkeypatch.setenv("LOGNAME", "somebody-else")
    monkeypatch.setenv("USER", "somebody-else")
    assert ssh_says(path, "h", "user", env=dict(os.environ)) == ["matched"]
    assert resolve("h", config_files=[path]).user == "matched"
    options = asyncssh.SSHClientConnectionOptions(host="h", config=[path], known_hosts=None)
    assert options.username == "somebody-else"


def test_the_system_file_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """By default only ~/.ssh/config is read, not /etc/ssh/ssh_config after it."""
    system = Path("/etc/ssh/ssh_config")
    if not system.exists() or "SendEnv" not in system.read_text():
        pytest.skip("no SendEnv in /etc/ssh/ssh_config to show it by")
    monkeypatch.setenv("HOME", str(tmp_path))  # an empty ~/.ssh for asyncssh
    done = subprocess.run([require_ssh(), "-G", "h"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    assert "sendenv LANG" in done.stdout
    options = asyncssh.SSHClientConnectionOptions(host="h", known_hosts=None)
    assert options.config.get("SendEnv") is None
