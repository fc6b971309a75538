"""fleetdeck's own log: private from its first byte, through every rotation."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from core.enginelog import LOGGER, setup_logging


def test_the_log_and_every_rotation_stay_private(tmp_path: Path) -> None:
    log = tmp_path / "fleetdeck.log"
    log.write_bytes(b"x" * (5 * 1024 * 1024 + 1))  # over the size: the first line rotates
    log.chmod(0o644)  # as an older fleetdeck or a person left it
    logger = logging.getLogger(LOGGER)
    kept = (list(logger.handlers), logger.level, logger.propagate)  # other tests' logging
    old = os.umask(0o022)
    try:
        setup_logging(tmp_path)
        logger.warning("rotated")
    finally:
        os.umask(old)
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()
        for h in kept[0]:
            logger.addHandler(h)
        logger.setLevel(kept[1])
        logger.propagate = kept[2]
    files = sorted(tmp_path.glob("fleetdeck.log*"))
    assert [f.name for f in files] == ["fleetdeck.log", "fleetdeck.log.1"]
    assert "rotated" in log.read_text()
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
