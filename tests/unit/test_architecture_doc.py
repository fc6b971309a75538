"""docs/architecture.md is the map of the code: it names every package and module of
core/ and tui/ that exists, and nothing that doesn't."""

from __future__ import annotations

import re

from tests.helpers import ROOT

DOC = ROOT / "docs" / "architecture.md"


def named_paths() -> set[str]:
    return set(re.findall(r"`((?:core|tui)/[\w/]+(?:\.py|\.c|/))`", DOC.read_text())) | set(
        re.findall(r"^### ((?:core|tui)/[\w/]*)", DOC.read_text(), re.M))


def test_every_named_path_exists() -> None:
    missing = sorted(p for p in named_paths() if not (ROOT / p).exists())
    assert missing == []


def test_every_package_and_module_is_named() -> None:
    named = named_paths()
    text = DOC.read_text()
    modules = sorted(str(p.relative_to(ROOT)) for top in ("core", "tui")
                     for p in (ROOT / top).rglob("*.py") if p.name != "__init__.py")
    packages = sorted(f"{p.parent.relative_to(ROOT)}/" for top in ("core", "tui")
                      for p in (ROOT / top).rglob("__init__.py"))
    assert [m for m in modules if m not in named] == []
    assert [p for p in packages if p not in text] == []
