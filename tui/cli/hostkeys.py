"""`trust-ca`: trust an SSH certificate authority for hosts' certificates, after saying
plainly what that means; `trust-ca --list` shows the authorities and revocations on
record in every known_hosts file fleetdeck reads."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from tui.cli.common import CLIError, os_error_line

_PATTERNS = re.compile(r"[^\s#]+")
MAX_KEY_BYTES = 64 * 1024  # an RSA 16384 public key is under 3 KB

EXPLAIN = """\
Trusting a certificate authority (CA) means: a host whose name matches {patterns}
and presents an SSH host certificate signed by this key is accepted without a
known_hosts line of its own (ssh's @cert-authority). Whoever holds the CA's private
key can vouch for every host matching those patterns. Each certificate is still
checked: the name fleetdeck connects to must be one of its principals, and today
within its validity. To withdraw the trust later, delete the line from
{file}
or add `@revoked * <the CA's key>` to a known_hosts file."""


def add_parsers(sub: Any) -> None:
    t = sub.add_parser(
        "trust-ca", help="trust an SSH certificate authority for hosts' certificates",
        description="Trust the CA whose public key is in CA_KEY for host certificates of "
                    "hosts matching --hosts (written to fleetdeck's own known_hosts as "
                    "an @cert-authority line). --list shows what is trusted and revoked.")
    t.add_argument("ca_key", nargs="?", metavar="CA_KEY",
                   help="the CA's public key file, e.g. /etc/ssh/host_ca.pub")
    t.add_argument("--hosts", metavar="PATTERNS",
                   help="host names the CA may vouch for, ssh style: '*.prod.example.com',"
                        " '10.1.*,!10.1.9.*' (no default: required with CA_KEY)")
    t.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    t.add_argument("--list", action="store_true",
                   help="show trusted and revoked CAs and keys in every known_hosts file")
    t.set_defaults(func=cmd_trust_ca)


def read_public_key(path: Path) -> Any:
    """A CA's public key from a file, or a one-line error naming the file and why."""
    import asyncssh

    from core.paths import PIPE_WAIT, SilentPipe, read_capped

    try:
        data = read_capped(path, MAX_KEY_BYTES)
    except SilentPipe:
        raise CLIError(f"{path}: a named pipe nothing writes to (waited {PIPE_WAIT:g}s); "
                       "name the key file itself") from None
    except OSError as e:
        raise CLIError(os_error_line(e, path)) from None
    if len(data) > MAX_KEY_BYTES:
        raise CLIError(f"{path}: larger than {MAX_KEY_BYTES // 1024} KB; an SSH public key "
                       "is one line")
    text = data.decode(errors="replace")
    if "PRIVATE KEY" in text:
        raise CLIError(f"{path}: is a private key; give the CA's public key (the .pub "
                       "file)")
    try:
        key = asyncssh.import_public_key(text.strip())
    except (asyncssh.KeyImportError, ValueError):
        raise CLIError(f"{path}: not an SSH public key (expected one line like "
                       "'ssh-ed25519 AAAA... comment')") from None
    return key


def cmd_trust_ca(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.remote.knownhosts import KNOWN_HOSTS_FILE, KnownHosts, fingerprint

    kh = KnownHosts(state_dir / KNOWN_HOSTS_FILE)
    if args.list:
        return _list(kh, config)
    if not args.ca_key or not args.hosts:
        raise CLIError("trust-ca needs the CA's public key file and --hosts PATTERNS "
                       "(e.g. trust-ca host_ca.pub --hosts '*.prod.example.com')")
    parts = args.hosts.split(",")
    if not _PATTERNS.fullmatch(args.hosts) or any(p in ("", "!") for p in parts):
        raise CLIError(f"--hosts {args.hosts!r}: patterns are comma-separated names "
                       "with * and ?, without spaces or '#'")
    if all(p.startswith("!") for p in parts):  # ssh's !pattern only takes away
        raise CLIError(f"--hosts {args.hosts!r}: only negated patterns match no host; "
                       "name the hosts first, e.g. '*.prod.example.com,!db*'")
    key = read_public_key(Path(args.ca_key))
    own = kh.own_file
    print(EXPLAIN.format(patterns="every host" if args.hosts == "*" else args.hosts,
                         file=own))
    print(f"\nCA key: {fingerprint(key)}"
          + (f" ({key.get_comment()})" if key.get_comment() else ""))
    if not args.yes:
        if not sys.stdin.isatty():
            raise CLIError("not trusted: add --yes to trust it without a prompt")
        answer = input("Trust this CA? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("not trusted")
            return 1
    try:
        kh.trust_ca(args.hosts, key, comment=key.get_comment() or "")
    except OSError as e:
        raise CLIError(os_error_line(e, own)) from None
    print(f"trusted: @cert-authority {args.hosts} {fingerprint(key)} in {own}")
    return 0


def _list(kh: Any, config: Any) -> int:
    from core.remote.knownhosts import CA, REVOKED, fingerprint

    files = _files_read(kh, config)
    shown = 0
    for path in files:
        for entry in kh.file_entries(path):
            if entry.marker in (CA, REVOKED):
                print(f"@{entry.marker:<15} {entry.names:<30} {fingerprint(entry.key)}  "
                      f"{entry.where}")
                shown += 1
    if not shown:
        print("no @cert-authority or @revoked line in "
              + ", ".join(str(p) for p in files))
    return 0


def _files_read(kh: Any, config: Any) -> list[Path]:
    """Every known_hosts file a connection reads: the defaults (for a host ssh_config
    names none for), the files ssh_config names for each inventory host
    (UserKnownHostsFile, GlobalKnownHostsFile), each host's own `known_hosts`, then
    fleetdeck's own file."""
    from core.remote.ssh import target_for
    from core.remote.sshconfig import SSHConfigError, resolve

    files: dict[Path, None] = dict.fromkeys(kh.system_files)  # what a new host reads
    for host in config.hosts.values():
        if host.is_local:
            continue
        target = target_for(host, config.hosts)
        try:  # a host ssh cannot read settings for is said by a fan-out to it
            named = resolve(target.host, user=target.user, port=target.port,
                            exec_timeout=5.0).known_hosts_files()
        except SSHConfigError:
            named = None
        files.update(dict.fromkeys(kh.looking_in(named).system_files))
        if target.known_hosts:
            files[Path(target.known_hosts).expanduser()] = None
    if kh.own_file:
        files[kh.own_file] = None
    return list(files)
