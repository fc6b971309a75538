"""`push` and `pull`: files to and from many hosts over SFTP, as fan-outs.

    fleetdeck push PATTERN SRC DEST [--mode 0644] [--owner U:G] [--backup] [options]
    fleetdeck pull PATTERN SRC DESTDIR [options]

A push writes each file to a temporary name beside DEST and renames it into place, and
sends nothing where the SHA-256 already matches: each host says `changed` or
`unchanged`. A pull lands in DESTDIR/HOST/ (one folder per host). Both take the
fan-out's options (--forks, --serial, --max-fail, …), end in the same classes and exit
status, are kept in `fleetdeck fanouts` and rerun with `fleetdeck fanout --rerun ID`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tui.cli.common import CLIError, folder_to_write, on_engine, text_arg
from tui.cli.fanout import add_run_options, fan_out, hosts_for, run_params


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "push", help="copy a file or folder to many hosts: push PATTERN SRC DEST",
        description="Copy SRC (a file or folder here) to DEST on every host a pattern "
                    "names, as Ansible's copy does: into DEST when it ends with / or is a "
                    "folder there; a folder SRC ending with / copies its contents.")
    p.add_argument("pattern", help="target pattern, e.g. 'web[01-20]'")
    p.add_argument("src", type=text_arg, help="the file or folder here")
    p.add_argument("dest", type=text_arg, help="the absolute path on the hosts")
    p.add_argument("--mode", metavar="M", type=text_arg,
                   help="file mode on the hosts, e.g. 0644 (default: the replaced file's, "
                        "else the source's)")
    p.add_argument("--owner", metavar="U:G", type=text_arg, help="owner on the hosts (chown: USER, "
                   "USER:GROUP or :GROUP)")
    p.add_argument("--backup", action="store_true",
                   help="keep a replaced file as DEST.YYYY-MM-DD@HH:MM:SS~ on the host")
    add_run_options(p, "transfer")
    p.set_defaults(func=cmd_push, gather=False, stream=False)

    q = sub.add_parser(
        "pull", help="fetch a file or folder from many hosts: pull PATTERN SRC DESTDIR",
        description="Fetch SRC from every host a pattern names into DESTDIR/HOST/ here.")
    q.add_argument("pattern", help="target pattern, e.g. 'web[01-20]'")
    q.add_argument("src", type=text_arg, help="the absolute path on the hosts")
    q.add_argument("dest_dir", metavar="DESTDIR", type=text_arg,
                   help="the folder here (one subfolder per host; created when missing)")
    add_run_options(q, "transfer")
    q.set_defaults(func=cmd_pull, gather=False, stream=False)


def _here(path: str) -> str:
    return str(Path(path).expanduser().absolute())


def cmd_push(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    from core.remote.transfer import check_push

    common = run_params(args)
    names = hosts_for(args.pattern, config)
    src = _here(args.src) + ("/" if args.src.endswith("/") else "")
    # what can be said before any engine starts (which reads and hashes the files once)
    problem = check_push({"src": src, "dest": args.dest, "mode": args.mode,
                          "owner": args.owner})
    if problem is not None:
        raise CLIError(f"push: {problem}")
    try:
        Path(src).stat()
    except OSError as e:
        raise CLIError(f"push: {args.src}: {e.strerror or e}") from None
    params = {"pattern": args.pattern, "src": src, "dest": args.dest, "hosts": names,
              "mode": args.mode, "owner": args.owner, "backup": args.backup, **common}
    return on_engine(config, state_dir, args.log_format,
                     fan_out(args, params, None, "fanout_push"), services=())


def cmd_pull(args: argparse.Namespace, config: Any, state_dir: Path) -> int:
    if not args.src.startswith("/"):
        raise CLIError(f"pull: {args.src!r} must be an absolute path on the hosts")
    common = run_params(args)
    names = hosts_for(args.pattern, config)
    params = {"pattern": args.pattern, "src": args.src,
              "dest_dir": folder_to_write(args.dest_dir, "DESTDIR"),
              "hosts": names, **common}
    return on_engine(config, state_dir, args.log_format,
                     fan_out(args, params, None, "fanout_pull"), services=())
