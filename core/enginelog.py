"""fleetdeck's own log: what the engine did and why.

Goes to `fleetdeck.log` in the state directory (rotated) and, for the daemon, to stderr.
`json` format writes one object a line (time, level, message, job, run_id) for shippers.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path
from typing import Any

LOGGER = "fleetdeck"
_FIELDS = ("job", "run_id", "host")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "logger": record.name,
        }
        for key in _FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                obj[key] = value
        if record.exc_info:
            obj["exception"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s%(context)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"{k}={getattr(record, k)}" for k in _FIELDS if getattr(record, k, None)]
        record.context = (" [" + " ".join(parts) + "]") if parts else ""
        return super().format(record)


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """The log, 0600 from its first byte, and so is every file a rotation starts (the
    handler's own open takes the umask's mode)."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
        os.fchmod(fd, 0o600)  # one an older fleetdeck (or a person) left readable
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)  # noqa: SIM115


def setup_logging(
    state_dir: Path | None, *, fmt: str = "text", to_stderr: bool = False, level: int = logging.INFO
) -> None:
    """Route the `fleetdeck` logger; safe to call again (handlers are replaced)."""
    logger = logging.getLogger(LOGGER)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logger.setLevel(level)
    logger.propagate = False
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    if state_dir is not None:
        path = state_dir / "fleetdeck.log"
        fh = _PrivateRotatingFile(path, maxBytes=5 * 1024 * 1024, backupCount=3)
        fh.setFormatter(formatter)
        logger.addHandler(fh)
    if to_stderr:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(formatter)
        logger.addHandler(sh)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
