"""known_hosts look-ups through the per-file index find what a line-by-line match
finds, in file order: plain names, hashed names, patterns and negations alike."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import asyncssh

from core.remote.knownhosts import KnownHosts, names_match, parse


def _hashed(name: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_the_index_finds_what_matching_every_line_finds(tmp_path):
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    lines = [f"web01,Web02 {key}", f"{_hashed('[10.0.0.5]:2222')} {key}",
             f"*.eu,!db.eu {key}", f"@revoked web01 {key}", f"{_hashed('web01')} {key}",
             f"[10.0.0.5]:2222 {key}", f"db?? {key}"]
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    kh = KnownHosts(None, [path])
    entries = parse(path.read_text(), str(path))
    for name in ("web01", "web02", "WEB02", "[10.0.0.5]:2222", "app.eu", "db.eu", "db12",
                 "nowhere"):
        expected = [e.where for e in entries if names_match(name, e.names)]
        assert [e.where for e in kh.entries(name)] == expected, name
        assert [e.where for e in kh.entries(name)] == expected  # again, from the memo
    assert [e.where.rsplit(":", 1)[1] for e in kh.entries("web01")] == ["1", "4", "5"]
    path.write_text(f"web01 {key}\n")  # a changed file is read again
    os.utime(path, (1, 1))
    assert [e.where.rsplit(":", 1)[1] for e in kh.entries("web01")] == ["1"]
