"""The README's `schedule next` examples are real output: each is run and compared."""

from __future__ import annotations

import shlex
import subprocess

from tests.conftest import FLEETDECK, ROOT, cli_env


def blocks() -> list[str]:
    """The README's fenced blocks, opening and closing fences told apart."""
    out, current = [], None
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                out.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return out


def examples() -> list[tuple[list[str], str]]:
    """(arguments, expected output) of each `$ fleetdeck schedule next` in the README."""
    out: list[tuple[list[str], list[str]]] = []
    for block in blocks():
        current = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = None
                if line.startswith("$ fleetdeck schedule next "):
                    current = []
                    out.append((shlex.split(line[len("$ fleetdeck "):]), current))
            elif current is not None:
                current.append(line)
    return [(args, "\n".join(lines).strip("\n")) for args, lines in out]


def test_the_readme_shows_what_schedule_next_prints(tmp_path):
    found = examples()
    assert len(found) >= 7  # the --json one and two nights for each of three policies
    for args, expected in found:
        proc = subprocess.run([*FLEETDECK, *args], capture_output=True, text=True,
                              timeout=60, env=cli_env(tmp_path))
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stdout.strip("\n") == expected, args
