"""The host-key policy: keys checked against the user's and the system's known_hosts,
fleetdeck's own file in the state directory and a per-host file; trusting writes to
fleetdeck's own file only."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import asyncssh

log = logging.getLogger("fleetdeck.ssh")

KNOWN_HOSTS_FILE = "known_hosts"  # fleetdeck's own, in the state directory


# ----------------------------------------------------------------------- known hosts ---
def fingerprint(key: asyncssh.SSHKey) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


class KnownHosts:
    """Host-key verification against known_hosts files; trusting writes to our own."""

    def __init__(self, own_file: Path | None, system_files: list[Path] | None = None) -> None:
        self.own_file = Path(own_file) if own_file else None
        if system_files is None:
            system_files = [Path("~/.ssh/known_hosts").expanduser(),
                            Path("/etc/ssh/ssh_known_hosts")]
        self.system_files = system_files
        self._cache: dict[str, asyncssh.SSHKnownHosts] = {}

    def _load(self, extra: str | None) -> list[asyncssh.SSHKnownHosts]:
        files = [*self.system_files, *([self.own_file] if self.own_file else [])]
        if extra:
            files.append(Path(extra).expanduser())
        out = []
        for path in files:
            key = str(path)
            if key not in self._cache:
                try:
                    text = path.read_text()
                except (FileNotFoundError, NotADirectoryError):
                    text = ""
                except OSError as e:
                    log.warning("cannot read known_hosts %s: %s", path, e.strerror or e)
                    text = ""
                try:
                    self._cache[key] = asyncssh.import_known_hosts(text)
                except (ValueError, asyncssh.Error) as e:
                    log.warning("known_hosts %s does not parse: %s", path, e)
                    self._cache[key] = asyncssh.import_known_hosts("")
            out.append(self._cache[key])
        return out

    def _match(self, host: str, addr: str, port: int | None,
               extra: str | None) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        trusted: list[asyncssh.SSHKey] = []
        revoked: list[asyncssh.SSHKey] = []
        p = None if port in (None, 22) else port
        for kh in self._load(extra):
            res = kh.match(host, addr, p)
            trusted.extend(res[0])
            revoked.extend(res[2])
        return trusted, revoked

    def check(self, host: str, addr: str, port: int | None, key: asyncssh.SSHKey,
              extra: str | None = None) -> str:
        """"ok", "unknown" or "changed" (a revoked key is "changed")."""
        trusted, revoked = self._match(host, addr, port, extra)
        data = key.public_data
        if any(k.public_data == data for k in revoked):
            return "changed"
        if any(k.public_data == data for k in trusted):
            return "ok"
        return "changed" if trusted else "unknown"

    def algorithms(self, host: str, port: int | None, extra: str | None = None) -> list[str]:
        """Host-key algorithms of the keys known for a host, to ask the server for those."""
        trusted, _ = self._match(host, "", port, extra)
        algs: list[str] = []
        for key in trusted:
            for alg in key.sig_algorithms:
                name = alg.decode()
                if name not in algs:
                    algs.append(name)
        return algs

    def trust(self, host: str, port: int | None, key: asyncssh.SSHKey) -> None:
        """Append the key to fleetdeck's own known_hosts (0600)."""
        if self.own_file is None:
            raise RuntimeError("no known_hosts file of fleetdeck's own to write to")
        name = host if port in (None, 22) else f"[{host}]:{port}"
        line = f"{name} {key.export_public_key('openssh').decode().split()[0]} " \
               f"{key.export_public_key('openssh').decode().split()[1]}\n"
        self.own_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.own_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._cache.pop(str(self.own_file), None)

