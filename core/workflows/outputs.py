"""Step outputs: a step writes `KEY=VALUE` lines to the file `$FLEETDECK_OUTPUT` names;
the steps after it get them as environment variables. Bounded and checked: a value is
one line, a key an environment variable's name."""

from __future__ import annotations

import os
from pathlib import Path

from core.config import ENV_NAME_RE

MAX_FILE = 64 * 1024
MAX_KEYS = 100
MAX_VALUE = 4096
RESERVED = "FLEETDECK_"


def run_folder(state_dir: Path, run_id: int, *, make: bool = False) -> Path:
    """A workflow run's folder: its steps' outputs (`STEP.out`) and its journal; `make`:
    made (private), once per workflow run."""
    folder = Path(state_dir) / "workflows" / str(run_id)
    if make:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def read_outputs(path: Path | str) -> tuple[dict[str, str], list[str]]:
    """The outputs a step wrote, and a line for each one ignored."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return {}, []
    except OSError as e:
        return {}, [f"outputs not read: {e.strerror}"]
    with open(fd, "rb") as f:
        data = f.read(MAX_FILE + 1)
    problems = []
    if len(data) > MAX_FILE:
        problems.append(f"outputs cut at {MAX_FILE} bytes")
        data = data[:MAX_FILE]
    out: dict[str, str] = {}
    for n, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        key, sep, value = raw.partition("=")
        key = key.strip()
        if not sep or not ENV_NAME_RE.fullmatch(key):
            problems.append(f"output line {n} ignored: not KEY=VALUE")
        elif key.startswith(RESERVED):
            problems.append(f"output line {n} ignored: {key} is fleetdeck's own")
        elif len(value) > MAX_VALUE:
            problems.append(f"output {key} ignored: longer than {MAX_VALUE} characters")
        elif len(out) >= MAX_KEYS and key not in out:
            problems.append(f"output {key} ignored: more than {MAX_KEYS} outputs")
        else:
            out[key] = value
    return out, problems
