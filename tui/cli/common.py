"""What every command of the CLI shares: the one-line error, exit codes, the console to
print on, the read-only view of the state, and OS errors in words. Nothing here imports a
command module."""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
from pathlib import Path
from typing import Any

from core.api import Actor
from core.paths import default_state_dir

EXIT_USAGE = 2
EXIT_TIMED_OUT = 124  # as timeout(1)
EXIT_CANCELLED = 130
EXIT_NOT_RUN = 3  # skipped or interrupted: the command did not finish

ACTOR = Actor.local("cli")  # a person at this terminal


class CLIError(Exception):
    """A one-line error for a person; exits 2."""


UNCUT = 1 << 16  # the width of a pipe with no COLUMNS: no line is cut or folded


def console() -> Any:  # rich is light enough, but keep start-up lean for `--help`
    """Where commands print: as wide as the terminal (or COLUMNS, when set); piped with
    no COLUMNS, unlimited, so lines reach `grep` whole (as `kubectl get`, `ps` do)."""
    from rich.console import Console

    return Console(highlight=False, width=output_width())


def output_width() -> int | None:
    """None lets rich measure the terminal (COLUMNS first); a pipe gets UNCUT."""
    if os.environ.get("COLUMNS", "").strip().isdigit() or sys.stdout.isatty():
        return None
    return UNCUT


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# what a run printed that a terminal would obey: escape sequences (OSC 52 writes the
# clipboard, OSC 0 the title, CSI ?1049h switches screens), C1 and other control bytes
_UNSAFE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
                     r"|[@-Z\\-_])|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _colour_only(m: re.Match[str]) -> str:
    s = m.group()
    return s if s.startswith("\x1b[") and s.endswith("m") else ""  # SGR: colours stay


def for_terminal(text: str, stream: Any) -> str:
    """A run's output as a terminal may show it: on a terminal, colours kept and every
    other escape sequence and control character dropped (the console does the same);
    into a pipe or a file, as it was."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return text
    return _UNSAFE.sub(_colour_only, text)


def err(message: str) -> None:
    """One line on stderr: a control character quoted in it (a newline or an ESC in a
    path or a pattern a person gave) is shown escaped, never obeyed by the terminal."""
    line = _CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
    print(f"fleetdeck: {line}", file=sys.stderr)


# errno -> (what went wrong, what to do): a person reads this, not Python's own text
_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOENT: ("not found", "check the path, or choose another"),
    errno.EACCES: ("permission denied", "check its permissions, or choose another path"),
    errno.EPERM: ("operation not permitted", "check its permissions, or choose another path"),
    errno.EISDIR: ("is a folder, not a file", "name a file"),
    errno.ENOTDIR: ("is not a folder", "choose another path"),
    errno.EEXIST: ("already exists, and is not a folder", "choose another path"),
    errno.EROFS: ("read-only file system", "choose a writable place"),
    errno.ENOSPC: ("no space left on the device", "free some space, or choose another place"),
    errno.EDQUOT: ("disk quota exceeded", "free some space, or choose another place"),
    errno.ELOOP: ("too many symbolic links (a loop?)", "fix the links, or choose another path"),
    errno.ENAMETOOLONG: ("name too long", "choose a shorter path"),
    errno.EIO: ("input/output error", "check the device, or choose another path"),
}


def os_error_line(e: OSError, path: Path | str | None = None, option: str | None = None,
                  inside: bool = False) -> str:
    """One line for an OSError: `<path>: <what went wrong>; <what to do>`. `path` stands in
    when the error names none (a read's EIO); `option` is the flag that gave the path, and
    `inside` says the path is one fleetdeck keeps under it (a person did not name it)."""
    where = e.filename if e.filename is not None else path
    what, do = _OS_ERRORS.get(e.errno or 0, ((e.strerror or str(e)).lower(),
                                            "check the path, or choose another"))
    if e.errno == errno.ENOENT and where is not None and os.path.islink(where):
        what = f"a link to {os.readlink(where)}, which does not exist"
        do = "fix the link, or choose another path"
    if e.errno == errno.ENOTDIR and where is not None:  # name the file in the way
        blocker = _file_in_the_way(Path(os.fsdecode(where)))
        if blocker is not None:
            what = f"{blocker} {what}"
    if option and inside and e.errno in (errno.ENOSPC, errno.EDQUOT):
        do = f"free some space, or choose another {option}"  # the file is not at fault
    elif option and inside:
        do = f"move it aside, or choose another {option}"
    elif option:
        do = f"{do} ({option})"
    return f"{os.fsdecode(where)}: {what}; {do}" if where is not None else f"{what}; {do}"


def folder_to_write(text: str, option: str) -> str:
    """A folder here a command writes into (--out-dir, pull's DESTDIR): absolute (a
    daemon may do the writing), made when missing, one line when it cannot be one."""
    path = Path(text).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file of that name
        raise CLIError(f"{path}: not a folder; choose another {option}") from None
    except OSError as e:
        raise CLIError(os_error_line(e, path, option)) from None
    return str(path)


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest ancestor of `path` that exists and is not a folder."""
    for parent in path.parents:
        try:
            if parent.exists() and not parent.is_dir():
                return parent
        except OSError:
            return None
    return None


def option_of(args: argparse.Namespace, filename: str | bytes | None) -> tuple[str | None, bool]:
    """Which option gave the path an OSError names (the state directory, the config, the
    demo folder), and whether the path is inside what it names rather than on the way."""
    if filename is None:
        return None, False
    path = Path(os.fsdecode(filename))
    given = [("--state-dir", state_dir_of(args)), ("--config", getattr(args, "config", None)),
             ("--dir", getattr(args, "dir", None) if args.command == "demo" else None)]
    for option, root in given:
        if root is None:
            continue
        root = Path(root)
        if root in path.parents:
            blocker = _file_in_the_way(path)
            return option, blocker is None or root in blocker.parents
        if path == root or path in root.parents:
            return option, False
    return None, False


def state_dir_of(args: argparse.Namespace) -> Path:
    return args.state_dir or default_state_dir()


def engine_errors() -> tuple[type[Exception], ...]:
    """What an engine says no with, in words for the user (a daemon's come as
    EngineError; this process's own alert book raises AlertError: `remediate 99`)."""
    from core.alerts.book import AlertError
    from core.jobs.active import EngineError
    from core.store import StateLocked

    return (EngineError, StateLocked, AlertError)


def view(config: Any, state_dir: Path) -> Any:
    """An engine over the state, read-only: listings work while a daemon runs."""
    from core.jobs.engine import Engine

    engine = Engine(config, state_dir)
    engine.open_view()
    return engine


def path_arg(text: str) -> Path:
    """A path option's value: an empty one is a mistake, not "here" (Path("") is the
    current folder: `--state-dir ""` would take it over)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path")
    return Path(text)


def text_arg(text: str) -> str:
    """A value that says something: an empty one (an unset "$VAR" in a script) is a
    mistake, never "the default" nor "here"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty value")
    return text


def numbered(what: str, example: int) -> Any:
    """The argparse type of an id as people write it (12 or #12): ASCII digits only
    (int() also reads '٣', '1_0' and ' 3\n'), and at least 1."""

    def parse(text: str) -> int:
        from tui.commands import id_number

        number = id_number(text)
        if number is None:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r} (e.g. {example})")
        return number

    parse.__name__ = what.split()[-1].replace("-", "_") + "_id"  # argparse names it
    return parse


run_id = numbered("a run id", 42)


def on_engine(config: Any, state_dir: Path, log_format: str, work: Any, *,
              services: tuple[str, ...] = ("alerts",)) -> int:
    """Run `work(engine)` on the engine this state directory has: the daemon's when one
    runs (the one decision, core.control.connect), else this process's own with
    `services` (alerts by default: a failed run opens its alert; a fan-out opens none)."""
    import asyncio  # commands that only read or print start without it

    from core.enginelog import setup_logging

    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    setup_logging(state_dir, fmt=log_format)

    async def main() -> int:
        from core.control.connect import open_engine

        engine = await open_engine(config, state_dir, services=services)
        try:
            result = await work(engine)
        finally:
            await engine.stop()
        if getattr(engine, "write_error", None):  # this process's own engine, at its stop
            raise CLIError(f"{engine.write_error}; its last changes are lost")
        return result

    try:
        return asyncio.run(main())
    except engine_errors() as e:
        raise CLIError(str(e)) from None
