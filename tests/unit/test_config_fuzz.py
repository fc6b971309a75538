"""Hostile config documents never make a traceback: every one is read (or refused) with
one-line issues naming the file, the line and the key.

`make test` runs a short, deterministic pass (200 documents, derandomized); `make fuzz`
runs the long one (FLEETDECK_FUZZ=long: 10,000 documents, a new seed each time).
The documents are made in tests/configdocs.py from the schema's own keys.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from core.config import ConfigIssue
from core.fleetconfig import check_config, load_config
from core.jobs.preview import config_warnings
from tests.configdocs import documents

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile("config-short", max_examples=200, derandomize=True, deadline=None,
                          database=None, suppress_health_check=_QUIET)
settings.register_profile("config-long", max_examples=10_000, deadline=None, database=None,
                          suppress_health_check=_QUIET)
PROFILE = settings.get_profile("config-long" if os.environ.get("FLEETDECK_FUZZ") == "long"
                               else "config-short")


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every document (a module fixture: Hypothesis runs many in one test)."""
    return tmp_path_factory.mktemp("fuzz")


def assert_issue_well_formed(issue: ConfigIssue, source: str, lines: int) -> None:
    text = str(issue)
    assert issue.file == source, text
    assert "\n" not in text and "\r" not in text and text.isprintable(), repr(text)
    assert len(text) <= 700, text
    assert issue.line is not None and 1 <= issue.line <= lines + 1, text
    # a TOML syntax error may not be in any key; every other issue names one
    assert issue.key or issue.message.startswith("invalid TOML"), text


@PROFILE
@given(documents())
def test_a_hostile_document_is_read_or_refused_in_one_line_issues(fuzz_dir: Path,
                                                                   text: str) -> None:
    path = fuzz_dir / "config.toml"
    path.write_text(text, encoding="utf-8")
    start = time.monotonic()
    issues = check_config(path)
    assert time.monotonic() - start < 10, "a document took over 10 s to check"
    lines = text.count("\n") + 1
    for issue in issues:
        assert_issue_well_formed(issue, str(path), lines)
    if not issues:  # what check-config goes on to do with a valid file
        config = load_config(path)
        config_warnings(config.jobs, time.time())
