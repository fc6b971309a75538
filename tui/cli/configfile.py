"""`check-config` and `init`: a config file checked, or the built-in default written out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from core.fleetconfig import check_config
from core.paths import default_config_path
from tui.cli.common import EXIT_USAGE, CLIError
from tui.keymap import BINDING_IDS


def add_parsers(sub: Any) -> None:
    cc = sub.add_parser("check-config", help="validate a config file; exit 2 on any error")
    cc.add_argument("path", nargs="?", type=Path)
    cc.set_defaults(func=cmd_check_config, needs_config=False)

    ini = sub.add_parser("init", help="write the built-in default config as a file to edit")
    ini.add_argument("path", nargs="?", type=Path)
    ini.add_argument("--force", action="store_true", help="overwrite an existing file")
    ini.set_defaults(func=cmd_init, needs_config=False)

    cs = sub.add_parser("config-schema", help="print the config file's JSON Schema (for TOML "
                                              "editors: taplo, Even Better TOML)")
    cs.set_defaults(func=cmd_config_schema, needs_config=False)


def cmd_config_schema(args: argparse.Namespace) -> int:
    import json

    from core.fleetconfig import config_schema
    from tui.keymap import BINDING_IDS

    print(json.dumps(config_schema(BINDING_IDS), indent=2))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.path or args.config or default_config_path()
    if not Path(path).exists():
        raise CLIError(f"{path}: file not found")
    issues = check_config(Path(path), key_ids=BINDING_IDS)
    for issue in issues:
        print(str(issue), file=sys.stderr)
    if issues:
        n = len(issues)
        print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: ok")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from core.default_config import DEFAULT_CONFIG_TOML

    path: Path = args.path or args.config or default_config_path()
    if path.exists() and not args.force:
        raise CLIError(f"{path} already exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(DEFAULT_CONFIG_TOML)
    print(f"wrote {path}; edit it, then: fleetdeck check-config {path}")
    return 0
