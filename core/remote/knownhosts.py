"""The host-key policy, with OpenSSH's verdicts: keys are checked against the user's and
the system's known_hosts, fleetdeck's own file in the state directory and a per-host
file; trusting writes to fleetdeck's own file only.

OpenSSH's rules, which asyncssh's own matcher does not follow (so fleetdeck matches
entries itself and hands asyncssh only what it checks inside a certificate):

* the name looked up is the host name lowercased (an address as is), ``[host]:port``
  when the port is not 22, or the HostKeyAlias; when nothing is on record for
  ``[host]:port``, a match under the bare name still counts (and only a match); a key
  recorded for the address does not vouch for the name (CheckHostIP is off by
  default since OpenSSH 8.5);
* patterns are ``*``/``?`` wildcards compared in lower case, a matching ``!pattern``
  cancels the line, ``|1|salt|hash`` lines are HMAC-SHA1 of the looked-up name;
* any key recorded for the host that is not the one presented, of whatever type, is
  a changed key; ``@revoked`` wins over everything; ``@cert-authority`` vouches for
  host certificates it signed, never for plain keys.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import ipaddress
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import asyncssh
from asyncssh.public_key import get_default_certificate_algs, get_default_public_key_algs

log = logging.getLogger("fleetdeck.ssh")

KNOWN_HOSTS_FILE = "known_hosts"  # fleetdeck's own, in the state directory
CA, REVOKED = "cert-authority", "revoked"
CERT_SUFFIX = "-cert-v01@openssh.com"
# ssh's default HostKeyAlgorithms, in its order (`ssh -G` prints them), as far as
# asyncssh has them; asyncssh's own default puts RSA first, so a server with several
# host keys would show another key than it shows ssh
_SUPPORTED = {a.decode() for a in (*get_default_certificate_algs(),
                                   *get_default_public_key_algs())}
OPENSSH_HOST_KEY_ALGS = tuple(a for a in (
    "ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "rsa-sha2-512",
    "rsa-sha2-256") if a in _SUPPORTED)
# verdicts, as OpenSSH's HostStatus: HOST_OK, HOST_NEW, HOST_CHANGED, HOST_REVOKED
OK, UNKNOWN, CHANGED, REVOKED_KEY = "ok", "unknown", "changed", "revoked"


def fingerprint(key: asyncssh.SSHKey) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


@dataclass(frozen=True)
class Entry:
    """One usable known_hosts line."""

    marker: str | None  # None, "cert-authority" or "revoked"
    names: str  # the host field: patterns, or one |1|salt|hash
    key: asyncssh.SSHKey
    where: str  # path:line, for messages


# ------------------------------------------------------------------------ matching ---
def ssh_host_name(host: str) -> str:
    """The host name as ssh uses it: lowercased, unless it is an address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.lower()
    return host


def lookup_name(host: str, port: int | None, alias: str | None = None) -> str:
    """The name OpenSSH looks a host up by in known_hosts."""
    if alias:
        return alias.lower()
    host = ssh_host_name(host)
    return host if port in (None, 0, 22) else f"[{host}]:{port}"


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in pattern), re.DOTALL)


def pattern_list(name: str, patterns: str) -> int:
    """OpenSSH's match_pattern_list (lower case): 1 matched, 0 not, -1 negated match."""
    positive = 0
    for pat in patterns.split(","):
        negated = pat.startswith("!")
        if negated:
            pat = pat[1:]
        if _pattern(pat.lower()).fullmatch(name):
            if negated:
                return -1
            positive = 1
    return positive


def names_match(name: str, names: str) -> bool:
    if names.startswith("|"):
        parts = names.split("|")
        if len(parts) != 4 or parts[1] != "1":
            return False
        try:
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
        except ValueError:
            return False
        return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(),
                                   digest)
    return pattern_list(name.lower(), names) == 1


def parse(text: str, path: str) -> list[Entry]:
    """Usable lines; a line OpenSSH would skip (bad marker, unreadable key) is skipped
    with a debug note, as ssh does."""
    out: list[Entry] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        marker = None
        if fields[0].startswith("@"):
            marker = fields.pop(0)[1:]
            if marker not in (CA, REVOKED):
                log.debug("%s:%d: unknown marker @%s skipped", path, n, marker)
                continue
        if len(fields) < 3:
            continue
        try:
            key = asyncssh.import_public_key(f"{fields[1]} {fields[2]}")
        except (asyncssh.KeyImportError, ValueError):
            log.debug("%s:%d: unreadable key skipped", path, n)
            continue
        out.append(Entry(marker, fields[0], key, f"{path}:{n}"))
    return out


def same_key(a: asyncssh.SSHKey, b: asyncssh.SSHKey) -> bool:
    return a.public_data == b.public_data


# ----------------------------------------------------------------------- the files ---
class _Indexed:
    """A file's entries with its plain names indexed: a line of literal names (no
    wildcard, no negation, not hashed) is found by a dict look-up, so a known_hosts of
    a thousand hosts costs a fan-out to them a thousand look-ups, not a million pattern
    matches. Hashed and pattern lines are matched one by one, as ssh does."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.plain: dict[str, list[int]] = {}
        self.hashed: list[tuple[int, bytes, bytes]] = []  # line, salt, digest (decoded once)
        self.patterns: list[int] = []
        self._found: dict[str, list[Entry]] = {}  # a name looked up before (file unchanged)
        for i, e in enumerate(entries):
            if e.names.startswith("|"):
                parts = e.names.split("|")
                try:
                    if len(parts) == 4 and parts[1] == "1":
                        self.hashed.append((i, base64.b64decode(parts[2]),
                                            base64.b64decode(parts[3])))
                except ValueError:
                    pass  # ssh skips it too
            elif any(c in e.names for c in "*?!"):
                self.patterns.append(i)
            else:
                for n in dict.fromkeys(e.names.lower().split(",")):
                    self.plain.setdefault(n, []).append(i)

    def lookup(self, name: str) -> list[Entry]:
        found = self._found.get(name)
        if found is None:
            raw = name.encode()
            hits = [*self.plain.get(name.lower(), ()),
                    *(i for i, salt, digest in self.hashed
                      if hmac.compare_digest(hmac.digest(salt, raw, "sha1"), digest)),
                    *(i for i in self.patterns if names_match(name, self.entries[i].names))]
            found = self._found[name] = [self.entries[i] for i in sorted(hits)]
            if len(self._found) > 100_000:  # bounded, whatever a fleet's size
                self._found.clear()
        return found


_NOTHING = _Indexed([])


class KnownHosts:
    """Host-key verification against known_hosts files; trusting writes to our own."""

    def __init__(self, own_file: Path | None, system_files: list[Path] | None = None) -> None:
        self.own_file = Path(own_file) if own_file else None
        if system_files is None:  # ssh's UserKnownHostsFile and GlobalKnownHostsFile
            system_files = [Path(p).expanduser() for p in (
                "~/.ssh/known_hosts", "~/.ssh/known_hosts2", "/etc/ssh/ssh_known_hosts",
                "/etc/ssh/ssh_known_hosts2")]
        self.system_files = system_files
        self._cache: dict[str, tuple[tuple[int, int], _Indexed]] = {}

    def looking_in(self, files: Sequence[str] | None) -> KnownHosts:
        """This policy reading `files` instead of the user's and the system's files, as
        ssh does for a host whose ssh_config names its own (UserKnownHostsFile,
        GlobalKnownHostsFile, "none"); None keeps the defaults. Our own file, the
        per-host file and the cache stay shared."""
        if files is None:
            return self
        view = copy.copy(self)
        view.system_files = [Path(f) for f in files]  # as ssh -G has them: ~ expanded in
        return view  # UserKnownHostsFile only

    def file_entries(self, path: Path) -> list[Entry]:
        """A file's entries, read again when it changes (a person may edit it while
        the daemon runs)."""
        return self._indexed(path).entries

    def _indexed(self, path: Path) -> _Indexed:
        key = str(path)
        try:
            st = path.stat()
        except OSError:
            return _NOTHING
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            text = path.read_text(errors="replace")
        except OSError as e:
            log.warning("cannot read known_hosts %s: %s", path, e.strerror or e)
            return _NOTHING
        indexed = _Indexed(parse(text, key))
        self._cache[key] = (stamp, indexed)
        return indexed

    def entries(self, name: str, extra: str | None = None) -> list[Entry]:
        """Every entry for a looked-up name, from every file, in file order."""
        files = [*self.system_files, *([self.own_file] if self.own_file else [])]
        if extra:
            files.append(Path(extra).expanduser())
        return [e for path in files for e in self._indexed(path).lookup(name)]

    def check(self, host: str, port: int | None, key: asyncssh.SSHKey,
              extra: str | None = None, alias: str | None = None, *,
              bare_first: bool = False) -> str:
        """OpenSSH's verdict on a plain host key: ok, unknown, changed or revoked.

        `bare_first`: the server showed a certificate that no authority vouched for
        under ``[host]:port``; ssh then looks at the bare name's plain keys before
        the ``[host]:port`` ones (its nested second look runs first), so a match
        there wins even over a changed key under the port."""
        if bare_first and self._second_look(host, port, key, extra, alias, cert=False):
            return OK
        return self._judge(host, port, key, extra, alias, cert=False)

    def check_ca(self, host: str, port: int | None, ca_key: asyncssh.SSHKey,
                 extra: str | None = None, alias: str | None = None) -> tuple[str, str]:
        """The verdict on the authority that signed a host certificate (ok, unknown or
        revoked), and the verdict under ``[host]:port`` alone."""
        first = self._verdict(lookup_name(host, port, alias), ca_key, extra, True)
        if first == UNKNOWN and self._second_look(host, port, ca_key, extra, alias,
                                                  cert=True):
            return OK, first
        return first, first

    def _judge(self, host: str, port: int | None, key: asyncssh.SSHKey, extra: str | None,
               alias: str | None, *, cert: bool) -> str:
        verdict = self._verdict(lookup_name(host, port, alias), key, extra, cert)
        if verdict == UNKNOWN:
            bare = self._bare_verdict(host, port, key, extra, alias, cert=cert)
            if bare in (OK, REVOKED_KEY):  # as ssh: a bare-name @revoked line refuses
                return bare
        return verdict

    def _second_look(self, host: str, port: int | None, key: asyncssh.SSHKey,
                     extra: str | None, alias: str | None, *, cert: bool) -> bool:
        """ssh's second look, without the port, found the key."""
        return self._bare_verdict(host, port, key, extra, alias, cert=cert) == OK

    def _bare_verdict(self, host: str, port: int | None, key: asyncssh.SSHKey,
                      extra: str | None, alias: str | None, *, cert: bool) -> str | None:
        """ssh's second look, without the port (None: there is none). A match or an
        @revoked line there counts; another key under the bare name does not (the host
        stays unknown, not changed)."""
        if alias or port in (None, 0, 22):
            return None
        return self._verdict(lookup_name(host, None), key, extra, cert)

    def _verdict(self, name: str, key: asyncssh.SSHKey, extra: str | None,
                 cert: bool) -> str:
        found = self.entries(name, extra)
        if any(e.marker == REVOKED and same_key(e.key, key) for e in found):
            return REVOKED_KEY
        if cert:
            return OK if any(e.marker == CA and same_key(e.key, key) for e in found) \
                else UNKNOWN
        plain = [e for e in found if e.marker is None]
        if any(same_key(e.key, key) for e in plain):
            return OK
        return CHANGED if plain else UNKNOWN

    def revoked(self, host: str, port: int | None, extra: str | None = None,
                alias: str | None = None) -> list[asyncssh.SSHKey]:
        """Revoked keys for a host: asyncssh checks a certificate's key and its CA."""
        return [e.key for e in self.entries(lookup_name(host, port, alias), extra)
                if e.marker == REVOKED]

    def algorithms(self, host: str, port: int | None, extra: str | None = None,
                   alias: str | None = None, *, certificates: bool = True) -> list[str]:
        """Host-key algorithms to offer, ordered as ssh orders them: every certificate
        type first when an authority is on record for the host; the whole default
        list (certificates first) when a key of the most preferred type is; else the
        types of the keys on record first. Every type stays offered, so a server
        whose key is of another type shows it, and is refused as changed (not
        unreachable). `certificates=False`: plain keys only (the second handshake
        after a certificate no authority vouched for)."""
        found = self.entries(lookup_name(host, port, alias), extra)
        algs = list(OPENSSH_HOST_KEY_ALGS)
        if not certificates:
            algs = [a for a in algs if CERT_SUFFIX not in a]
        known = {a.decode() for e in found if e.marker is None for a in e.key.sig_algorithms}
        has_ca = any(e.marker == CA for e in found)

        def preferred(alg: str) -> bool:
            if CERT_SUFFIX in alg and has_ca:
                return True
            return alg.replace(CERT_SUFFIX, "") in known

        if not algs or (not has_ca and preferred(algs[0])):
            return algs
        return [a for a in algs if preferred(a)] + [a for a in algs if not preferred(a)]

    def trust(self, host: str, port: int | None, key: asyncssh.SSHKey,
              alias: str | None = None) -> None:
        """Append the key to fleetdeck's own known_hosts (0600)."""
        public = key.export_public_key("openssh").decode().split()
        self._append(f"{lookup_name(host, port, alias)} {public[0]} {public[1]}\n")

    def trust_ca(self, patterns: str, key: asyncssh.SSHKey, comment: str = "") -> None:
        """Trust an authority for host certificates of hosts matching `patterns`."""
        public = key.export_public_key("openssh").decode().split()
        tail = f" {comment}" if comment else ""
        self._append(f"@{CA} {patterns} {public[0]} {public[1]}{tail}\n")

    def _append(self, line: str) -> None:
        if self.own_file is None:
            raise RuntimeError("no known_hosts file of fleetdeck's own to write to")
        self.own_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.own_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._cache.pop(str(self.own_file), None)
