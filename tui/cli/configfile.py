"""`check-config` and `init`: a config file checked, or the built-in default written out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from core.paths import default_config_path
from tui.cli.common import EXIT_USAGE, CLIError, os_error_line, path_arg
from tui.keymap import BINDING_IDS


def add_parsers(sub: Any) -> None:
    cc = sub.add_parser("check-config", help="validate a config file; exit 2 on any error")
    cc.add_argument("path", nargs="?", type=path_arg,
                    help="the file to check (default: fleetdeck's --config, else the "
                         "default file)")
    cc.add_argument("--connect", action="store_true",
                    help="also reach what the config names over the network: the "
                         "cluster's Redis (its URL and password)")
    cc.set_defaults(func=cmd_check_config, needs_config=False)

    ini = sub.add_parser("init", help="write the built-in default config as a file to edit")
    ini.add_argument("path", nargs="?", type=path_arg,
                     help="where to write it (default: fleetdeck's --config, else the "
                          "default file)")
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
    from core.config import ConfigError
    from core.fleetconfig import parse_config_text, read_config_text

    try:  # read once: a pipe (`check-config <(generate)`) has no second reading
        text = read_config_text(Path(path))
        config = parse_config_text(text, str(path), path=Path(path), key_ids=BINDING_IDS)
        issues = []
    except ConfigError as e:
        if e.os_error is not None:  # unreadable, not wrong: main words it as one line
            raise
        issues = e.issues
    for issue in issues:
        print(str(issue), file=sys.stderr)
    if issues:
        n = len(issues)
        print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
        return EXIT_USAGE
    reached = ""
    if getattr(args, "connect", False):
        if config.cluster is None:
            reached = "; --connect: no [cluster], nothing to reach"
        else:
            problem = _reach_redis(config.cluster)
            if problem:
                from core.config import LineIndex

                line = LineIndex(text).find(("cluster", "redis"))
                print(f"{path}:{line}: cluster.redis: {problem}" if line else
                      f"{path}: cluster.redis: {problem}", file=sys.stderr)
                return EXIT_USAGE
            reached = "; its Redis answers"
    warnings = _warnings(Path(path), config, text)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    n = len(warnings)
    print(f"{path}: ok" + (f" ({n} warning{'s' if n != 1 else ''})" if n else "") + reached)
    return 0


def _reach_redis(cfg: object) -> str:
    """'' when the cluster's Redis answers with this config's URL and password."""
    import asyncio

    from core.cluster.redisstore import describe_error, redis_errors
    from core.secrets import SecretError, resolve

    try:
        url = resolve(cfg.redis, [])  # type: ignore[attr-defined]
    except SecretError as e:
        return str(e)

    async def ping() -> str:
        from redis.asyncio import from_url

        client = from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            await client.ping()
            return ""
        except redis_errors() as e:
            return describe_error(e, url)
        finally:
            await client.aclose()

    return asyncio.run(ping())


def _warnings(path: Path, config: Any, text: str) -> list[str]:
    """What is valid but surely not meant: a schedule that never fires in the next five
    years (a Quartz year gone by, `at` in the past, the fifth Monday of a February); a
    theme not installed here (it may be where the console runs)."""
    import time

    from core.config import ConfigIssue, LineIndex, key_path
    from core.jobs.preview import config_warnings
    from core.workflows.config import unknown_approver

    lines = LineIndex(text)
    out: list[str] = []

    def warn(where: tuple[str, ...], why: str) -> None:
        out.append(str(ConfigIssue(str(path), key_path(where), why, lines.find(where))))

    for name, why in config_warnings(config.jobs, time.time()):
        warn(("jobs", name, "schedule"), why)
    for name, job in config.jobs.items():
        if job.cwd and job.targets == "local" and not os.path.isdir(os.path.expanduser(job.cwd)):
            warn(("jobs", name, "cwd"), f"{job.cwd}: no such folder here; its runs would not "
                                        f"start")
        for i, step in enumerate(job.workflow.steps if job.workflow else ()):
            for who in step.approve.by if step.approve else ():
                if why := unknown_approver(who):
                    warn(("workflows", name, "steps", f"[{i}]", "approve", "by"), why)
    if config.cluster is not None and _literal_password(config.cluster.redis):
        warn(("cluster", "redis"), "the URL holds its password as written; write ${NAME} or "
                                   "${file:PATH} for it (the config is not a secret store)")
    for where, value in _references(config):
        for why in _unfilled(value):
            warn(where, why)
    if config.theme is not None:
        from tui.theming import load_themes

        names = load_themes().themes
        if config.theme not in names:
            warn(("theme",), f"no theme named {config.theme!r}; the console uses its default "
                             f"(themes here: {', '.join(names)})")
    return out


def _literal_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return False
    return bool(password) and "${" not in password


def _references(config: Any) -> list[tuple[tuple[str, ...], str]]:
    """Every value that may hold ${NAME} or ${file:PATH}, with where it is."""
    out = [(("jobs", name, "env", k), v) for name, j in config.jobs.items()
           for k, v in j.env.items()]
    for name, n in config.alerting.notifiers.items():
        out += [(("notifiers", name, "url"), n.url)]
        out += [(("notifiers", name, "headers", k), v) for k, v in n.headers.items()]
    for name, h in config.hosts.items():
        out += [(("hosts", name, key), getattr(h, key)) for key in ("password", "passphrase")
                if getattr(h, key, None)]
    return out


def _unfilled(text: str) -> list[str]:
    """References that could not be filled in here and now (the daemon's environment and
    files may differ: a warning, not an error)."""
    from core.secrets import REF_RE, SecretError, read_secret_file, reference_doubt

    out = [doubt] if (doubt := reference_doubt(text)) else []
    for m in REF_RE.finditer(text):
        path, name = m.group(1), m.group(2)
        if name is not None and name not in os.environ:
            out.append(f"${{{name}}}: not set in this environment (the daemon's must have it)")
        elif path is not None:
            try:
                read_secret_file(path)
            except SecretError as e:
                why = str(e).split(": ", 1)[-1]
                out.append(f"${{file:{path}}}: {why[:1].lower() + why[1:]}")
    return out


def cmd_init(args: argparse.Namespace) -> int:
    from core.default_config import DEFAULT_CONFIG_TOML

    path: Path = args.path or args.config or default_config_path()
    if path.is_dir():
        raise CLIError(f"{path}: is a folder, not a file; name the file to write, e.g. "
                       f"{path / 'config.toml'}")
    if path.exists() and not args.force:
        raise CLIError(f"{path} already exists; use --force to overwrite it")
    if path.exists() and not path.is_file():  # a pipe or a device would block or eat it
        raise CLIError(f"{path}: not a regular file; name the file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(DEFAULT_CONFIG_TOML)
    except OSError as e:  # a file where a folder should be, /proc, read-only, full disk
        raise CLIError(os_error_line(e, path)) from None
    print(f"wrote {path}; edit it, then: fleetdeck check-config {path}")
    return 0
