"""Reading ssh_config files the way OpenSSH 9.2's readconf.c does: one line at a time, the
first value obtained for an option kept, Host and Match blocks switching lines on and off,
Include pulling files in where it stands (sorted glob results, relative to ~/.ssh or
/etc/ssh, at most 16 deep), Match exec run through the shell. The Options it fills are
turned into settings by core/remote/sshconfig.py."""

from __future__ import annotations

import errno
import glob
import grp
import os
import pwd
import re

from core.remote.sshconfig_keywords import (
    KEYWORDS,
    check_value,
    key_types_valid,
    multistate,
    parse_array,
    parse_int,
    parse_permitted_cnames,
    parse_port,
    parse_time,
)
from core.remote.sshconfig_match import Local, Options, host_matches, match_condition
from core.remote.sshconfig_words import (
    WHITESPACE,
    SSHConfigError,
    argv_split,
    ascii_lower,
    match_pattern_list,
    parse_ssh_uri,
    parse_user_host_port,
    strdelim,
    valid_domain,
)

MAX_DEPTH = 16  # READCONF_MAX_DEPTH
MAX_IDENTITY_FILES = 100
MAX_HOSTS_FILES = 32
MAX_CANON_DOMAINS = 32
USER_DIR = "~/.ssh"
SYSTEM_DIR = "/etc/ssh"


# option kinds whose value is one scalar kept first-come: kind -> (attribute, unset, parser)
_SCALARS = {
    "hostname": ("hostname", None, "string"),
    "user": ("user", None, "string"),
    "hostkeyalias": ("host_key_alias", None, "string"),
    "ignoreunknown": ("ignored_unknown", None, "string"),
    "port": ("port", -1, "port"),
    "identitiesonly": ("identities_only", -1, "multi:flag"),
    "stricthostkeychecking": ("strict_host_key_checking", None, "multi:strict"),
    "addressfamily": ("address_family", None, "multi:addressfamily"),
    "canonicalizehostname": ("canonicalize_hostname", -1, "multi:canonicalize"),
    "canonicalizefallbacklocal": ("canonicalize_fallback_local", -1, "multi:flag"),
    "connecttimeout": ("connect_timeout", -1, "time"),
    "serveraliveinterval": ("server_alive_interval", -1, "time"),
    "serveralivecountmax": ("server_alive_count_max", -1, "int"),
    "canonicalizemaxdots": ("canonicalize_max_dots", -1, "int"),
    "connectionattempts": ("connection_attempts", -1, "int"),
    "batchmode": ("batch_mode", -1, "multi:flag"),
    "proxyusefdpass": ("proxy_use_fdpass", -1, "multi:flag"),
}


def _scalar(parser: str, args: list[str]) -> object:
    if parser == "string":
        if not args or args[0] == "":
            raise ValueError("Missing argument.")
        return args.pop(0)
    if parser == "port":
        return parse_port(args)
    if parser == "time":
        return parse_time(args)
    if parser == "int":
        return parse_int(args)
    return multistate(args, parser[6:])


def secure_permissions(st: os.stat_result, uid: int) -> bool:
    """Debian's rule for a config file ssh reads with checks: owned by root or the user,
    not world-writable, group-writable only when that group holds the owner alone."""
    if st.st_uid not in (0, uid) or st.st_mode & 0o002:
        return False
    if not st.st_mode & 0o020:
        return True
    try:
        group = grp.getgrgid(st.st_gid)
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        return False
    members = {p.pw_name for p in pwd.getpwall() if p.pw_gid == st.st_gid} | set(group.gr_mem)
    return members == {owner}


def glob_tilde(pattern: str, local: Local) -> list[str]:
    """glob(3) with GLOB_TILDE as ssh calls it for Include: `~` is $HOME (glibc's glob,
    unlike the rest of ssh, reads the environment), `~user` that user's home; matches
    sorted bytewise, as glob(3) in the C locale."""
    if pattern.startswith("~"):
        name, slash, rest = pattern[1:].partition("/")
        home = None
        if name == "":
            home = local.env.get("HOME") or local.home
        else:
            try:
                home = pwd.getpwnam(name).pw_dir
            except KeyError:
                home = None
        if home is not None:
            pattern = home + (slash + rest if slash else "")
    return sorted(glob.glob(pattern), key=os.fsencode)


class Reader:
    """One pass over the config files for one host, filling Options. `host` is what
    Host lines match (the argument on the first pass, the final host name on the
    second), `original` what Match originalhost and %n see."""

    def __init__(self, options: Options, local: Local, host: str, original: str,
                 final_pass: bool) -> None:
        self.options = options
        self.local = local
        self.host = host
        self.original = original
        self.final_pass = final_pass
        self.want_final_pass = False
        self.active = True

    # ---------------------------------------------------------------------- files ---
    def read_file(self, path: str, *, user_conf: bool, check_perm: bool,
                  never_match: bool = False, depth: int = 0, where: str = "") -> None:
        """Read one file at `depth`; OSError from opening it is the caller's to judge
        (ssh ignores a missing file in some places and not in others)."""
        if depth > MAX_DEPTH:
            raise SSHConfigError(f"{where}: Too many recursive configuration includes"
                                 f" (more than {MAX_DEPTH} deep)")
        fd = os.open(path, os.O_RDONLY)
        try:
            if check_perm and not secure_permissions(os.fstat(fd), os.getuid()):
                raise SSHConfigError(f"Bad owner or permissions on {path}")
            data = _read_all(fd)
        finally:
            os.close(fd)
        for number, raw in enumerate(data.split(b"\n"), 1):
            line = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            try:
                self.line(line, path, number, user_conf, never_match, depth)
            except ValueError as exc:
                if isinstance(exc, SSHConfigError):
                    raise
                raise SSHConfigError(f"{path}:{number}: {exc}") from None

    def line(self, line: str, path: str, number: int, user_conf: bool, never_match: bool,
             depth: int) -> None:
        """One line, as process_config_line_depth: ValueError says what is wrong."""
        if not line:
            return
        line = line[0] + line[1:].rstrip(WHITESPACE + "\f")
        keyword, rest = strdelim(line)
        if keyword == "":
            keyword, rest = strdelim(rest)
        if not keyword or keyword[0] in "\n#":
            return
        keyword = ascii_lower(keyword)
        rest = rest.lstrip(WHITESPACE) if rest is not None else ""
        if not rest:
            raise ValueError(f'no argument after keyword "{keyword}"')
        kind = KEYWORDS.get(keyword)
        ignored = self.options.ignored_unknown
        if kind is None and ignored is not None and \
                match_pattern_list(keyword, ignored, True) == 1:
            kind = "ignore"
        if kind is None:
            raise ValueError(f"Bad configuration option: {keyword}")
        try:
            args = argv_split(rest)
        except ValueError:
            raise ValueError("invalid quotes") from None
        where = f"{path}:{number}"
        if kind == "host":
            self._host(args, never_match)
        elif kind == "match":
            self._match(rest, args, never_match, where)
        elif kind == "include":
            self._include(args, user_conf, never_match, depth, where)
        else:
            self._option(kind, keyword, rest, args, user_conf, where)
        if args:
            raise ValueError(f"keyword {keyword} extra arguments at end of line")

    # -------------------------------------------------------------------- options ---
    def _option(self, kind: str, keyword: str, rest: str, args: list[str], user_conf: bool,
                where: str) -> None:
        o = self.options
        if kind in _SCALARS:
            attr, unset, parser = _SCALARS[kind]
            value = _scalar(parser, args)
            if self.active and getattr(o, attr) == unset:
                setattr(o, attr, value)
                o.origin[attr] = where
        elif kind == "identityfile":
            if not args or args[0] == "":
                raise ValueError("Missing argument.")
            path = args.pop(0)
            if self.active:
                if len(o.identity_files) >= MAX_IDENTITY_FILES:
                    raise ValueError(f"Too many identity files specified "
                                     f"(max {MAX_IDENTITY_FILES}).")
                if (path, user_conf) not in o.identity_files:
                    o.identity_files.append((path, user_conf))
        elif kind in ("userknownhostsfile", "globalknownhostsfile"):
            attr = "user_hostfiles" if kind == "userknownhostsfile" else "system_hostfiles"
            values = parse_array(args, keyword)
            if self.active and not getattr(o, attr) and values:
                if len(values) > MAX_HOSTS_FILES:
                    raise ValueError(f"too many {keyword} entries.")
                setattr(o, attr, values)
                o.origin[attr] = where
        elif kind == "hostkeyalgorithms":
            if not args or args[0] == "":
                raise ValueError("Missing argument.")
            arg = args.pop(0)
            if arg[0] != "-" and not key_types_valid(arg[1:] if arg[0] in "+^" else arg):
                raise ValueError(f"Bad key types '{arg}'.")
            if self.active and o.host_key_algorithms is None:
                o.host_key_algorithms = arg
                o.origin["host_key_algorithms"] = where
        elif kind == "canonicaldomains":
            self._canonical_domains(keyword, args)
        elif kind == "permittedcnames":
            rules = parse_permitted_cnames(keyword, args)
            if self.active and not o.permitted_cnames:
                o.permitted_cnames = rules
        elif kind == "proxyjump":
            self._proxy_jump(rest.lstrip(WHITESPACE + "="), where)
            args.clear()
        elif keyword == "proxycommand":
            if self.active and o.proxy_command is None:
                o.proxy_command = rest.lstrip(WHITESPACE + "=")
            args.clear()
        else:
            check_value(kind, keyword, args, self.local.env)

    def _canonical_domains(self, keyword: str, args: list[str]) -> None:
        o = self.options
        had = bool(o.canonical_domains)
        count = 0
        while args:
            arg = args.pop(0)
            if arg == "":
                raise ValueError(f"keyword {keyword} empty argument")
            if arg.lower() == "none" and (count or args):
                raise ValueError(f'keyword {keyword} "none" argument must appear alone.')
            count += 1
            problem = valid_domain(arg)
            if problem is not None:
                raise ValueError(problem)
            if not self.active or had:
                continue
            if len(o.canonical_domains) >= MAX_CANON_DOMAINS:
                raise ValueError("too many hostname suffixes.")
            o.canonical_domains.append(arg)

    def _proxy_jump(self, spec: str, where: str) -> None:
        """readconf.c parse_jump as Debian's 9.2p1-2+deb12u10 has it (backported from
        10.3, and checked against it): a lone "none" holds the place of a jump host;
        otherwise the value ends at the first '#' or white space, every hop is checked and
        the last kept, the others as "extra" hops, when the line is in force and neither
        ProxyCommand nor ProxyJump came first."""
        o = self.options
        if spec.lower() == "none":
            if self.active and o.jump_host is None:
                o.jump_host, o.jump_port = "none", 0
            return
        stripped = re.split(r"[# \t\n\v\f\r]", spec, maxsplit=1)[0]
        hops, kept = stripped, None
        while True:
            hops, comma, hop = hops.rpartition(",")
            parsed = parse_ssh_uri(hop)
            if parsed is True:
                parsed = parse_user_host_port(hop)
            if parsed is None or parsed is True:
                raise ValueError(f'Invalid ProxyJump "{spec}"')
            kept = kept or parsed
            if not comma:
                break
        if self.active and o.proxy_command is None and o.jump_host is None:
            o.jump_user, o.jump_host, o.jump_port = kept
            o.proxy_command = "none"
            o.origin["proxy_jump"] = where
            if "," in stripped:
                o.jump_extra = stripped[:stripped.rfind(",")]

    # ---------------------------------------------------------------------- blocks ---
    def _host(self, args: list[str], never_match: bool) -> None:
        if args and args[0] == "":
            raise ValueError("keyword host empty argument")
        self.active = not never_match and host_matches(self.host, args)
        args.clear()

    def _match(self, rest: str, args: list[str], never_match: bool, where: str) -> None:
        result, left, final = match_condition(self.options, self.local, rest, self.original,
                                              self.final_pass, where)
        self.want_final_pass |= final
        self.active = False if never_match else result
        if not left:
            args.clear()

    def _include(self, args: list[str], user_conf: bool, never_match: bool, depth: int,
                 where: str) -> None:
        """Include: each pattern's files in glob order, read in place; a file's Host and
        Match lines do not outlive it, and under an inactive block nothing in it
        applies (its Match exec still runs, as in ssh)."""
        while args:
            arg = args.pop(0)
            if arg == "":
                raise ValueError("keyword include empty argument")
            if arg[0] == "~" and not user_conf:
                raise ValueError(f"bad include path {arg}.")
            if arg[0] not in "/~":
                arg = f"{USER_DIR if user_conf else SYSTEM_DIR}/{arg}"
            outer = self.active
            for path in glob_tilde(arg, self.local):
                try:
                    self.read_file(path, user_conf=user_conf, check_perm=True,
                                   never_match=never_match or not outer, depth=depth + 1,
                                   where=where)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        raise SSHConfigError(f"{where}: Can't open user config file {path}: "
                                             f"{os.strerror(exc.errno or 0)}") from None
                self.active = outer


def _read_all(fd: int) -> bytes:
    """All of a file; a directory reads as empty (ssh's getline fails on it quietly)."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except IsADirectoryError:
        return b""
    return b"".join(chunks)
