"""core.remote.sshconfig against OpenSSH itself: each config below is written to a tmp
dir, and for each host `ssh -G -F config [-l user] [-p port] host` is asked; every field of
SSHSettings must equal ssh's line for it, and identity_paths() must equal the identity
files `ssh -v` loads. Configs ssh refuses must be refused too, naming the same line.

Relative Include paths: ssh resolves them as ~/.ssh/..., and the `~` of Include (glob(3)
with GLOB_TILDE) is $HOME, not the passwd entry (the `~` of IdentityFile and
UserKnownHostsFile is the passwd home). So the relative case runs ssh and the resolver
with HOME set to a tmp dir; the passwd home is left alone and nothing under it is read."""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.remote.sshconfig import SSHConfigError, resolve
from tests.sshg import mismatches, require_ssh, ssh_g, ssh_identity_paths

Run = str | tuple[str, str | None, int | None]


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str]  # path under the case dir -> text, created in this order
    runs: tuple[Run, ...]
    home: bool = False  # HOME=<case dir>/home for ssh and the resolver
    modes: dict[str, int] = field(default_factory=dict)


CASES = [
    Case("patterns", {"config": """\
# web tier
Host web? !web9
    HostName %h.prod.example.com
    User deploy
Host db-* *.db
    hostname=%h.internal
    PORT = 5432
Host *.example.com bastion
    User ops
    StrictHostKeyChecking accept-new
Host a,b
    Port 1111
Host *
    ServerAliveInterval 30
    ServerAliveCountMax=5
    ConnectTimeout 1m30s
"""}, ("web1", "web9", "WEB1", "web10", "db-main", "x.db", "bastion", "www.example.com",
       "a", "b", "other")),
    Case("keyword-case-and-syntax", {"config": """\
HOST Mixed*
  hOsTnAmE Real.Example.ORG
  USER=Admin
  port=2022
  IdentityFile = "~/.ssh/key with space"
  UserKnownHostsFile "~/.ssh/known hosts" ~/.ssh/kh2   # trailing comment
  HostKeyAlias "Alias.Example.ORG"
host other
\tStrictHostKeyChecking=no
\tUser "deploy user"
\tConnectTimeout=0
Host quoted
  HostName "quoted.example.com"
  User 'single'
  IdentityFile ~/.ssh/a\\ b
  IdentitiesOnly YES
"""}, ("MixedCase", "mixedcase", "other", "OTHER", "quoted", "nomatch")),
    Case("include-globs-sorted", {
        "config": "Include {tmp}/conf.d/*.conf\nHost *\n  User fallback\n",
        # created out of order: glob(3) sorts, so 10 comes before 20 before 30
        "conf.d/30-late.conf": "Host app*\n  User late\n  IdentityFile ~/.ssh/late\n",
        "conf.d/10-early.conf": "Host app*\n  User early\n  IdentityFile ~/.ssh/early\n"
                                "Host db\n  Port 3306\n",
        "conf.d/20-mid.conf": "IdentityFile ~/.ssh/mid_%h\nHost app2\n  Port 2002\n",
        "conf.d/notes.txt": "User notes\n",
        "conf.d/.99-hidden.conf": "User hidden\n",
    }, ("app1", "app2", "db", "zzz")),
    Case("include-inside-host", {
        "config": """\
Host app*
  Include {tmp}/inc/app.conf
  Port 8022
Host db*
  Include {tmp}/inc/db-*.conf {tmp}/inc/missing-*.conf
Host *
  IdentityFile ~/.ssh/common
""",
        "inc/app.conf": """\
User appuser
Host app1
  HostName app-one.example.com
Match host app-one.example.com
  IdentitiesOnly yes
  Include {tmp}/inc/deep.conf
""",
        "inc/deep.conf": "IdentityFile ~/.ssh/deep_%h\nHost *\n  ConnectTimeout 9\n",
        "inc/db-b.conf": "Host db2\n  Port 5433\n",
        "inc/db-a.conf": "User dba\n",
    }, ("app1", "app2", "db1", "db2", "other")),
    Case("match-exec", {
        "config": """\
Match exec "test %h = web1"
  User execuser
Match exec "test -f {tmp}/flags/%n"
  Port 2200
Match !exec "test %n = WEB2" host web*
  IdentityFile ~/.ssh/not_web2
Match host web* exec "test %p = 2200 && test '%r' = execuser"
  HostKeyAlias exec-alias
Match exec "grep -qx '%h' {tmp}/hosts.list"
  ConnectTimeout 7
Match exec "test %%h = %%h" exec "test '%d' = '{home}' && test %u = {localuser}"
  ServerAliveInterval 17
Match exec false exec "touch {tmp}/never-run"
  User never
""",
        "flags/web3": "", "flags/WEB1": "", "hosts.list": "web2\nother\n",
    }, ("web1", "WEB1", "web2", "WEB2", "web3", "other", ("web1", "alice", None),
        ("web3", None, 2201))),
    Case("match-criteria", {"config": """\
Host jump
  HostName 10.0.0.1
Match originalhost jump user admin
  Port 2201
Match host 10.0.0.* !localuser nobody
  IdentityFile ~/.ssh/internal
Match user deploy,ops !originalhost jump
  IdentitiesOnly yes
Match localuser root,{localuser}
  ServerAliveCountMax 9
Match host !foo
  User never_negation_only
Match originalhost WEB*
  HostKeyAlias upper-orig
Match Host=other
  ConnectTimeout 3
Match all
  StrictHostKeyChecking yes
"""}, ("jump", ("jump", "admin", None), ("web1", "deploy", None), "WEB1", "Web1", "other")),
    Case("match-final-canonical", {"config": """\
Host short
  HostName Long.Example.COM
Match final host long.example.com
  User finaluser
Match canonical
  Port 2022
Match !final
  IdentityFile ~/.ssh/first_pass_only
Host long.example.com
  ServerAliveInterval 11
Match final
  IdentityFile ~/.ssh/final_%h
"""}, ("short", "long.example.com", "LONG.example.com", "other")),
    Case("identity-files", {"config": """\
IdentityFile ~/.ssh/id_%h_%r
IdentityFile ~/.ssh/id_%h_%r
Host web*
  IdentityFile %d/.ssh/%u@%l
  IdentityFile ${HOME}/.ssh/env_key
  IdentityFile ~/.ssh/ID_UPPER
  IdentitiesOnly yes
Host none-host
  IdentityFile none
Host *
  IdentityFile ~/.ssh/id_%h_%r
  IdentityFile /etc/ssh/%C.key
  IdentityFile ~/.ssh/id_%n_%p_%k_%i_%L
"""}, ("web1", "WEB1", "none-host", "other", ("web1", "bob", 2222))),
    Case("proxy-jump", {"config": """\
Host b1
  ProxyJump bastion
Host b2
  ProxyJump ops@jump1.example.com:2222,jump2
Host b3
  ProxyJump none
  ProxyJump ignored-after-none
Host b4
  ProxyCommand nc %h %p
  ProxyJump ignored-after-command
Host b5
  ProxyJump ssh://Admin@Jump.Example.com:2200
Host b6
  ProxyJump [::1]:2200 # trailing comment
Host b7
  ProxyJump 10.1.2.3
Host b8
  ProxyJump=user@h1,user@h2:23,h3
Host b9
  ProxyCommand none
Host *
  ProxyJump default-jump
"""}, ("b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "other")),
    Case("known-hosts", {"config": """\
Host kh1
  UserKnownHostsFile ~/.ssh/kh_%h %d/kh_%n_%p ${HOME}/kh_env /abs/%k/%r/%u/%L/%l/%i/%C/%%
  GlobalKnownHostsFile ~/global_%h /etc/ssh/gkh
Host kh2
  UserKnownHostsFile none
  GlobalKnownHostsFile none
Host kh3
  HostKeyAlias Key.Alias
  UserKnownHostsFile ~/.ssh/known_%k
Host *
  UserKnownHostsFile ~/.ssh/fallback
"""}, ("kh1", "KH1", "kh2", "kh3", "other", ("kh1", "u2", 2222))),
    Case("hostname-alias-strict", {"config": """\
Host app
  HostName %h.Example.Net
  HostKeyAlias %h-ALIAS
  StrictHostKeyChecking off
Host ip4
  HostName 127.1
Host ip6
  HostName FE80::1
Host ip6b
  HostName FE80:0:0::1
Host octal
  HostName 010.0.0.1
Host pct
  HostName %%h-literal
Host s-*
  StrictHostKeyChecking ask
Host s-yes
  StrictHostKeyChecking yes
Host *
  StrictHostKeyChecking accept-new
"""}, ("app", "APP", "ip4", "ip6", "ip6b", "octal", "pct", "s-yes", "s-no", "127.0.0.1",
       "::1", "0x7f.1")),
    Case("timeouts", {"config": """\
Host t1
  ConnectTimeout none
  ConnectTimeout 15
  ServerAliveInterval 5m
Host t2
  ConnectTimeout 0
  ServerAliveInterval none
  ServerAliveInterval 1h2m3s
Host t3
  ConnectTimeout 1W
  ServerAliveCountMax 0
Host *
  ConnectTimeout 30
  ServerAliveInterval 10
"""}, ("t1", "t2", "t3", "other")),
    Case("host-key-algorithms", {"config": """\
Host k1
  HostKeyAlgorithms +ssh-rsa
Host k2
  HostKeyAlgorithms -*cert*,ssh-dss
Host k3
  HostKeyAlgorithms ^ssh-rsa,ecdsa-sha2-*
Host k4
  HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,,bogus
Host k5
  HostKeyAlgorithms ssh-ed25519*,RSA
Host k6
  HostKeyAlgorithms -*
Host *
  HostKeyAlgorithms ssh-ed25519
"""}, ("k1", "k2", "k3", "k4", "k5", "k6", "other")),
    Case("include-relative-to-home", {
        "config": "Include rel.d/*.conf\nInclude single.conf\nHost *\n  IdentityFile "
                  "~/.ssh/after\n",
        "home/.ssh/rel.d/b.conf": "Host x\n  User from-b\n",
        "home/.ssh/rel.d/a.conf": "Host x\n  User from-a\nHost y\n  Port 2345\n",
        "home/.ssh/single.conf": "User from-single\n",
    }, ("x", "y", "z"), home=True),
    Case("ignore-unknown-and-legacy", {"config": """\
IgnoreUnknown UseKeychain,AddKeys*
UseKeychain yes
AddKeysToAgentX yes
Protocol 2
Cipher blowfish
RSAAuthentication no
ProtocolKeepAlives 12
Host *
  User   spaced
  Port 2222 # comment
  SendEnv LANG LC_*
  LocalForward 8080 localhost:80
  ForwardAgent yes
  Compression yes
  ProxyUseFdpass yes
  ProxyCommand - # stdio
"""}, ("h", "H")),
    Case("destinations", {"config": """\
Match user bob
  Port 2100
Host web*
  User config-user
"""}, ("bob@web1", ("bob@web1", "alice", None), "ssh://carol@web2:2022", "web3",
       ("web3", None, 2299))),
    Case("canonicalize", {"config": """\
CanonicalizeHostname yes
CanonicalDomains nonexistent.invalid
Host *.nonexistent.invalid
  User canon
Match canonical
  ServerAliveCountMax 4
Host localhost
  Port 2233
"""}, ("web1", "LocalHost", "a.b.c", "localhost.")),
    Case("include-mode-checks", {
        "config": "Include {tmp}/group-writable.conf {tmp}/dir.conf\n",
        "group-writable.conf": "User gw\n",
        "dir.conf/x": "User inside-dir\n",
    }, ("h",), modes={"group-writable.conf": 0o664}),
]


def _write(case: Case, root: Path) -> tuple[Path, dict[str, str], str]:
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    for rel, text in case.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = pwd.getpwuid(os.getuid())  # ssh's own idea of us, not $USER/$HOME
        text = text.replace("{tmp}", str(root)).replace("{localuser}", entry.pw_name)
        path.write_text(text.replace("{home}", entry.pw_dir))
        path.chmod(case.modes.get(rel, 0o644))
    env = dict(os.environ)
    if case.home:
        env["HOME"] = str(home)
    return root / "config", env, (root / "config").read_text()


def _run(run: Run) -> tuple[str, str | None, int | None]:
    return (run, None, None) if isinstance(run, str) else run


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_settings_equal_ssh_G(case: Case, tmp_path: Path) -> None:
    ssh = require_ssh()
    config, env, text = _write(case, tmp_path)
    problems = []
    for run in case.runs:
        host, user, port = _run(run)
        rc, lines, err = ssh_g(ssh, config, host, user=user, port=port, env=env)
        assert rc == 0, f"{case.name} {run}: ssh -G failed: {err}"
        settings = resolve(host, user=user, port=port, config_files=[config], env=env)
        if diff := mismatches(settings, lines):
            problems.append((run, diff))
        if "canonical" not in text.lower():  # ssh -v goes through a proxy: no canonicalising
            loaded = ssh_identity_paths(ssh, config, host, user=user, port=port, env=env)
            if list(settings.identity_paths()) != loaded:
                problems.append((run, {"identity_paths": (settings.identity_paths(), loaded)}))
    assert problems == []


@pytest.mark.parametrize("host", ["web1", "Other.Example.COM"])
def test_the_default_files_agree_with_ssh_G(host: str) -> None:
    """No -F: ~/.ssh/config (the passwd home's) then /etc/ssh/ssh_config, whatever they
    hold on this machine."""
    ssh = require_ssh()
    rc, lines, err = ssh_g(ssh, None, host)
    assert rc == 0, err
    assert mismatches(resolve(host), lines) == {}


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 15
    assert sum(len(c.runs) for c in CASES) >= 75


def test_match_exec_gets_the_tokens_ssh_gives(tmp_path: Path) -> None:
    """Every % token of Match exec, as ssh expands it: the command writes them out, once
    under ssh -G and once under the resolver, and the two files must be the same."""
    ssh = require_ssh()
    out = tmp_path / "tokens"
    config = tmp_path / "config"
    config.write_text(
        "Host Alias\n  HostName Target.Example\n  User u1\n  Port 2022\n"
        "  HostKeyAlias KeyAlias\n"
        f"Match exec \"printf '%%s|' %C %L %d %h %k %l %n %p %r %u %i %% > {out}\"\n"
        "  User never\n")
    found = {}
    for who in ("ssh", "resolver"):
        out.unlink(missing_ok=True)
        if who == "ssh":
            assert ssh_g(ssh, config, "Alias")[0] == 0
        else:
            resolve("Alias", config_files=[config])
        found[who] = out.read_text()
    assert found["ssh"] == found["resolver"]
    assert "|Target.Example|KeyAlias|" in found["ssh"]  # %h, %k: not lowercased yet


BAD = {
    "unknown keyword": ("Foo bar\n", "h"),
    "unknown keyword in an inactive block": ("Host nomatch\n  Bogus yes\n", "h"),
    "no argument": ("User\n", "h"),
    "argument only a comment": ("User #nobody\n", "h"),
    "port zero": ("Port 0\n", "h"),
    "port too big": ("Port 99999\n", "h"),
    "bad time": ("ConnectTimeout 5x\n", "h"),
    "bad flag": ("IdentitiesOnly maybe\n", "h"),
    "bad strict": ("StrictHostKeyChecking sometimes\n", "h"),
    "extra arguments": ("IdentityFile a b\n", "h"),
    "unclosed quote": ('User "bob\n', "h"),
    "empty host pattern": ('Host ""\n', "h"),
    "unsupported match attribute": ("Match foo bar\n", "h"),
    "match criterion without argument": ("Match host\n", "h"),
    "match all combined": ("Match all host x\n", "h"),
    "match exec in single quotes": ("Match exec 'test -f x'\n", "h"),
    "match exec unknown token": ('Match exec "echo %z"\n', "h"),
    "bad key types": ("HostKeyAlgorithms bogus\n", "h"),
    "key types with nothing left": ("HostKeyAlgorithms RSA\n", "h"),
    "bad proxyjump": ("ProxyJump a,,b\n", "h"),
    "jumphost loop": ("Host loop\n  ProxyJump loop\n", "loop"),
    "connection attempts zero": ("ConnectionAttempts 0\n", "h"),
    "proxy command - with fd passing": ("ProxyCommand -\nProxyUseFdpass yes\n", "h"),
    "none not alone": ("UserKnownHostsFile a none\n", "h"),
    "unknown token in known hosts": ("UserKnownHostsFile ~/%z\n", "h"),
    "unknown token in hostname": ("HostName %p.example\n", "h"),
    "bad canonical domain": ("CanonicalDomains bad..domain\n", "h"),
    "bad cipher": ("Ciphers aes*\n", "h"),
    "include loop": ("Include {config}\n", "h"),
    "world-writable include": ("Include {tmp}/ww.conf\n", "h"),
    "invalid host argument": ("User x\n", "a;b"),
    "comma in host argument": ("User x\n", "a,b"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_what_ssh_refuses_is_refused(name: str, tmp_path: Path) -> None:
    ssh = require_ssh()
    text, host = BAD[name]
    config = tmp_path / "config"
    config.write_text(text.replace("{config}", str(config)).replace("{tmp}", str(tmp_path)))
    ww = tmp_path / "ww.conf"
    ww.write_text("User ww\n")
    ww.chmod(0o666)
    rc, _, err = ssh_g(ssh, config, host)
    assert rc != 0, f"ssh -G accepted it: {text!r}"
    with pytest.raises(SSHConfigError) as caught:
        resolve(host, config_files=[config])
    message = str(caught.value)
    assert "\n" not in message
    named = [int(m.group(1)) for line in err.splitlines()
             if (m := re.search(re.escape(str(config)) + r":? line (\d+):", line))]
    if named:  # ssh names the line: so must we (the first, where ssh goes on to list all)
        assert f"{config}:{min(named)}:" in message
