"""The one rule of the layout: `core` knows nothing of the screen."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.helpers import ROOT

FORBIDDEN = ("textual", "tui")


def test_core_sources_never_import_textual_or_tui():
    offenders = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert offenders == []


def test_importing_all_of_core_loads_no_textual():
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "core").rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_headless_cli_does_not_load_textual():
    code = "import sys, tui.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_the_cli_parses_before_loading_an_event_loop():
    """asyncio (with ssl and socket, ~50 modules) is for commands that run a loop:
    `--help`, `check-config`, `schedule next`, `hosts` and `fanouts` start without it."""
    code = ("import sys\n"
            "from tui.cli.main import build_parser\n"
            "build_parser().parse_args(['check-config'])\n"
            "print(sorted(n for n in ('asyncio', 'ssl', 'socket') if n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
