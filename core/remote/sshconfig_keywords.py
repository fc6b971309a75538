"""Every keyword OpenSSH 9.2's client knows (Debian's build: GSSAPI key exchange and its
two keep-alive aliases), and how each one's value is checked. fleetdeck keeps a few of the
values (core/remote/sshconfig_read.py); the rest are still checked as ssh checks them, so a
config ssh refuses is refused here too. Also the host key algorithm lists of this ssh and
how `ssh -G` assembles HostKeyAlgorithms (`+`, `-`, `^`, patterns)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.remote.sshconfig_words import (
    INT_MAX,
    a2port,
    convtime,
    match_pattern_list,
    percent_expand,
    strtonum,
)

# keyword (lowercase) -> kind; the kinds are checked in check_value below or, for the
# ones fleetdeck keeps and the block directives, by the reader
KEYWORDS: dict[str, str] = {
    "protocol": "ignore",
    **dict.fromkeys(("cipher", "fallbacktorsh", "globalknownhostsfile2", "rhostsauthentication",
                     "userknownhostsfile2", "useroaming", "usersh", "useprivilegedport"),
                    "deprecated"),
    **dict.fromkeys(("afstokenpassing", "kerberosauthentication", "kerberostgtpassing",
                     "rsaauthentication", "rhostsrsaauthentication", "compressionlevel"),
                    "unsupported"),
    **dict.fromkeys(("gssapiauthentication", "gssapidelegatecredentials", "gssapikeyexchange",
                     "gssapitrustdns", "gssapirenewalforcesrekey", "forwardx11",
                     "forwardx11trusted", "exitonforwardfailure", "gatewayports",
                     "passwordauthentication", "kbdinteractiveauthentication",
                     "challengeresponseauthentication", "skeyauthentication",
                     "tisauthentication", "hostbasedauthentication",
                     "checkhostip", "tcpkeepalive", "keepalive",
                     "nohostauthenticationforlocalhost", "clearallforwardings",
                     "enablesshkeysign", "hashknownhosts", "permitlocalcommand",
                     "visualhostkey", "stdinnull", "forkafterauthentication",
                     "streamlocalbindunlink",
                     "enableescapecommandline"), "flag"),
    **dict.fromkeys(("gssapiclientidentity", "gssapiserveridentity", "pkcs11provider",
                     "smartcarddevice", "xauthlocation", "kbdinteractivedevices",
                     "preferredauthentications", "bindaddress", "bindinterface",
                     "securitykeyprovider", "controlpath", "revokedhostkeys"), "string"),
    **dict.fromkeys(("forwardx11timeout",), "time"),
    **dict.fromkeys(("numberofpasswordprompts", "requiredrsasize"), "int"),
    **dict.fromkeys(("proxycommand", "knownhostscommand", "localcommand", "remotecommand"),
                    "command"),
    **dict.fromkeys(("localforward", "remoteforward", "dynamicforward"), "forward"),
    **dict.fromkeys(("hostbasedacceptedalgorithms", "hostbasedkeytypes",
                     "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes",
                     "casignaturealgorithms"), "keytypes"),
    "pubkeyauthentication": "multi:pubkey", "dsaauthentication": "multi:pubkey",
    "verifyhostkeydns": "multi:yesnoask", "updatehostkeys": "multi:yesnoask",
    "compression": "multi:compression", "controlmaster": "multi:controlmaster",
    "tunnel": "multi:tunnel", "requesttty": "multi:requesttty",
    "sessiontype": "multi:sessiontype",
    "forwardagent": "forwardagent", "identityagent": "identityagent",
    "ciphers": "ciphers", "macs": "macs", "kexalgorithms": "kex",
    "gssapikexalgorithms": "gsskex", "loglevel": "loglevel", "syslogfacility": "logfacility",
    "logverbose": "logverbose", "permitremoteopen": "permitremoteopen",
    "escapechar": "escapechar", "sendenv": "sendenv", "setenv": "setenv",
    "controlpersist": "controlpersist", "tunneldevice": "tunneldevice", "ipqos": "ipqos",
    "streamlocalbindmask": "bindmask",
    "fingerprinthash": "fingerprinthash", "rekeylimit": "rekeylimit",
    "addkeystoagent": "addkeystoagent", "certificatefile": "path",
    # what fleetdeck keeps, and the block directives: the reader's own
    "host": "host", "match": "match", "include": "include", "hostname": "hostname",
    "user": "user", "port": "port", "identityfile": "identityfile",
    "identityfile2": "identityfile", "identitiesonly": "identitiesonly",
    "proxyjump": "proxyjump", "userknownhostsfile": "userknownhostsfile",
    "globalknownhostsfile": "globalknownhostsfile", "connecttimeout": "connecttimeout",
    "hostkeyalias": "hostkeyalias", "stricthostkeychecking": "stricthostkeychecking",
    "serveraliveinterval": "serveraliveinterval", "protocolkeepalives": "serveraliveinterval",
    "setuptimeout": "serveraliveinterval", "serveralivecountmax": "serveralivecountmax",
    "hostkeyalgorithms": "hostkeyalgorithms", "addressfamily": "addressfamily",
    "canonicalizehostname": "canonicalizehostname", "canonicaldomains": "canonicaldomains",
    "canonicalizemaxdots": "canonicalizemaxdots", "batchmode": "batchmode",
    "proxyusefdpass": "proxyusefdpass",
    "canonicalizepermittedcnames": "permittedcnames",
    "canonicalizefallbacklocal": "canonicalizefallbacklocal",
    "connectionattempts": "connectionattempts", "ignoreunknown": "ignoreunknown",
}

_FLAG = {"true": 1, "false": 0, "yes": 1, "no": 0}
MULTISTATE: dict[str, dict[str, object]] = {
    "flag": _FLAG,
    "yesnoask": {**_FLAG, "ask": 2},
    "strict": {"true": "true", "false": "false", "yes": "true", "no": "false", "ask": "ask",
               "off": "false", "accept-new": "accept-new"},
    "addressfamily": {"inet": "inet", "inet6": "inet6", "any": "any"},
    "controlmaster": {**_FLAG, "auto": 2, "ask": 3, "autoask": 4},
    "tunnel": {"ethernet": 1, "point-to-point": 2, **_FLAG},
    "requesttty": {**_FLAG, "force": 2, "auto": 3},
    "sessiontype": {"none": 0, "subsystem": 1, "default": 2},
    "canonicalize": {**_FLAG, "always": 2},
    "pubkey": {**_FLAG, "unbound": 2, "host-bound": 3},
    "compression": {"yes": 1, "no": 0},
    "yesnoaskconfirm": {**_FLAG, "ask": 2, "confirm": 3},
}

CIPHERS = frozenset(
    "3des-cbc aes128-cbc aes192-cbc aes256-cbc aes128-ctr aes192-ctr aes256-ctr "
    "aes128-gcm@openssh.com aes256-gcm@openssh.com chacha20-poly1305@openssh.com".split())
MACS = frozenset(
    "hmac-sha1 hmac-sha1-96 hmac-sha2-256 hmac-sha2-512 hmac-md5 hmac-md5-96 "
    "umac-64@openssh.com umac-128@openssh.com hmac-sha1-etm@openssh.com "
    "hmac-sha1-96-etm@openssh.com hmac-sha2-256-etm@openssh.com hmac-sha2-512-etm@openssh.com "
    "hmac-md5-etm@openssh.com hmac-md5-96-etm@openssh.com umac-64-etm@openssh.com "
    "umac-128-etm@openssh.com".split())
GSS_KEX = frozenset(
    "gss-gex-sha1- gss-group1-sha1- gss-group14-sha1- gss-group14-sha256- gss-group16-sha512- "
    "gss-nistp256-sha256- gss-curve25519-sha256-".split())
KEX = frozenset(
    "diffie-hellman-group1-sha1 diffie-hellman-group14-sha1 diffie-hellman-group14-sha256 "
    "diffie-hellman-group16-sha512 diffie-hellman-group18-sha512 "
    "diffie-hellman-group-exchange-sha1 diffie-hellman-group-exchange-sha256 "
    "ecdh-sha2-nistp256 ecdh-sha2-nistp384 ecdh-sha2-nistp521 curve25519-sha256 "
    "curve25519-sha256@libssh.org sntrup761x25519-sha512 "
    "sntrup761x25519-sha512@openssh.com".split()) | GSS_KEX

# the key algorithms of this ssh in its own order (`ssh -Q HostKeyAlgorithms`), and the
# default HostKeyAlgorithms (what `ssh -G` prints when none is set)
ALL_KEY_ALGORITHMS = (
    "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,"
    "sk-ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256,"
    "ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,"
    "ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521,"
    "ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,"
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com,"
    "ssh-dss,ssh-dss-cert-v01@openssh.com,ssh-rsa,ssh-rsa-cert-v01@openssh.com,rsa-sha2-256,"
    "rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com")
DEFAULT_HOST_KEY_ALGORITHMS = (
    "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,"
    "sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,"
    "ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,"
    "sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256")
_KEY_NAMES = ALL_KEY_ALGORITHMS.split(",")
_KEY_SHORTNAMES = frozenset(("ed25519", "ed25519-sk", "ecdsa", "ecdsa-sk", "dsa", "rsa"))
_IPQOS = frozenset(
    "none af11 af12 af13 af21 af22 af23 af31 af32 af33 af41 af42 af43 cs0 cs1 cs2 cs3 cs4 "
    "cs5 cs6 cs7 ef le lowdelay throughput reliability".split())
_LOG_LEVELS = frozenset("quiet fatal error info verbose debug debug1 debug2 debug3".split())
_FACILITIES = frozenset(
    "daemon user auth authpriv local0 local1 local2 local3 local4 local5 local6 local7".split())
_DIGESTS = frozenset(("md5", "sha1", "sha256", "sha384", "sha512"))
_SCALED = re.compile(r"[0-9]+(\.[0-9]+)?[BKMGTPEbkmgtpe]?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _names(value: str) -> list[str]:
    """The names of a comma list up to its first empty one (strsep loops in ssh)."""
    out = []
    for name in value.split(","):
        if not name:
            break
        out.append(name)
    return out


def key_types_valid(value: str) -> bool:
    """sshkey_names_valid2 with wildcards: each name a key algorithm, a plain key's short
    name (RSA, ED25519, …), or a pattern some algorithm matches either way."""
    if not value:
        return False
    for name in _names(value):
        if name in _KEY_NAMES or name.lower() in _KEY_SHORTNAMES:
            continue
        if not any(match_pattern_list(k, name, False) != 0 for k in _KEY_NAMES):
            return False
    return True


def _list_valid(value: str, known: frozenset[str]) -> bool:
    return bool(value) and all(n in known for n in _names(value))


def _names_cat(a: str, b: str) -> str:
    """kex.c kex_names_cat: a, then each name of b not already in it."""
    if not a:
        return b
    if not b:
        return a
    out = a.split(",")
    for name in _names(b):
        if name not in out:
            out.append(name)
    return ",".join(out)


def _filter(proposal: str, pattern: str, deny: bool) -> str:
    return ",".join(n for n in proposal.split(",")
                    if (match_pattern_list(n, pattern, False) == 1) != deny)


def assemble_host_key_algorithms(value: str | None) -> str:
    """kex.c kex_assemble_names as `ssh -G` applies it to HostKeyAlgorithms: `+` appends to
    the default, `-` removes from it, `^` puts first, patterns expand over this ssh's
    algorithms. Raises ValueError where ssh dies ("expand HostKeyAlgorithms")."""
    if not value:
        return DEFAULT_HOST_KEY_ALGORITHMS
    if value[0] == "-":
        return _filter(DEFAULT_HOST_KEY_ALGORITHMS, value[1:], True)
    if value[0] == "+":
        value = _names_cat(DEFAULT_HOST_KEY_ALGORITHMS, value[1:])
    elif value[0] == "^":
        value = _names_cat(value[1:], DEFAULT_HOST_KEY_ALGORITHMS)
    out = ""
    for pattern in value.split(","):
        if pattern.startswith("!"):
            raise ValueError("expand HostKeyAlgorithms: invalid argument (a '!' pattern)")
        out = _names_cat(out, _filter(ALL_KEY_ALGORITHMS, pattern, False))
    if not out:
        raise ValueError("expand HostKeyAlgorithms: invalid argument (no algorithm left)")
    return out


def _one(args: list[str], what: str = "Missing argument.") -> str:
    if not args or args[0] == "":
        raise ValueError(what)
    return args.pop(0)


def multistate(args: list[str], table: str) -> object:
    """One of a multistate table's words (any letter case), as readconf.c."""
    if not args or args[0] == "":
        raise ValueError("missing argument.")
    arg = args.pop(0)
    values = MULTISTATE[table]
    if arg.lower() not in values:
        raise ValueError(f'unsupported option "{arg}".')
    return values[arg.lower()]


def parse_time(args: list[str]) -> int:
    """A time for ConnectTimeout and friends: seconds, "none" (-1) or 1m30s forms."""
    arg = _one(args, "missing time value.")
    if arg == "none":
        return -1
    value = convtime(arg)
    if value == -1:
        raise ValueError("invalid time value.")
    return value


def parse_int(args: list[str]) -> int:
    """A non-negative int as readconf.c's atoi_err."""
    if not args or args[0] == "":
        raise ValueError("integer value missing.")
    arg = args.pop(0)
    value = strtonum(arg, 0, INT_MAX)
    if value is None:
        raise ValueError("integer value invalid.")
    return value


def parse_array(args: list[str], keyword: str) -> list[str]:
    """A list keyword (UserKnownHostsFile, …): all the words; "none" only alone."""
    out: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "":
            raise ValueError(f"keyword {keyword} empty argument")
        if arg.lower() == "none" and (out or args):
            raise ValueError(f'keyword {keyword} "none" argument must appear alone.')
        out.append(arg)
    return out


def parse_port(args: list[str]) -> int:
    """Port: a number 1-65535 or a service name."""
    arg = _one(args)
    value = a2port(arg)
    if value <= 0:
        raise ValueError(f"Bad port '{arg}'.")
    return value


def check_value(kind: str, keyword: str, args: list[str], env: Mapping[str, str]) -> None:
    """Check (and consume) the words of a keyword fleetdeck does not keep, raising
    ValueError with ssh's complaint (env: IdentityAgent's ${VAR} must be set, as in ssh)."""
    if kind in ("ignore", "deprecated", "unsupported"):
        args.clear()
    elif kind == "flag":
        multistate(args, "flag")
    elif kind.startswith("multi:"):
        multistate(args, kind[6:])
    elif kind in ("string", "path"):
        _one(args)
    elif kind == "time":
        parse_time(args)
    elif kind == "int":
        parse_int(args)
    elif kind == "command":
        args.clear()
    elif kind == "keytypes":
        arg = _one(args)
        if arg[0] != "-" and not key_types_valid(arg[1:] if arg[0] in "+^" else arg):
            raise ValueError(f"Bad key types '{arg}'.")
    elif kind in ("ciphers", "macs", "kex", "gsskex"):
        _check_algorithms(kind, args)
    elif kind in ("identityagent", "forwardagent"):
        _check_agent(kind, args, env)
    else:
        _check_other(kind, keyword, args)


def _check_algorithms(kind: str, args: list[str]) -> None:
    arg = _one(args)
    if kind == "gsskex":
        if not _list_valid(arg, GSS_KEX):
            raise ValueError(f"Bad GSSAPI KexAlgorithms '{arg}'.")
        return
    known, what = {"ciphers": (CIPHERS, "Bad SSH2 cipher spec"),
                   "macs": (MACS, "Bad SSH2 MAC spec"),
                   "kex": (KEX, "Bad SSH2 KexAlgorithms")}[kind]
    if arg[0] != "-" and not _list_valid(arg[1:] if arg[0] in "+^" else arg, known):
        raise ValueError(f"{what} '{arg}'.")


def _check_other(kind: str, keyword: str, args: list[str]) -> None:
    if kind == "loglevel":
        arg = args.pop(0) if args else None
        if arg is None or arg.lower() not in _LOG_LEVELS:
            raise ValueError(f"unsupported log level '{arg or '<NONE>'}'")
    elif kind == "logfacility":
        arg = args.pop(0) if args else None
        if arg is None or arg.lower() not in _FACILITIES:
            raise ValueError(f"unsupported log facility '{arg or '<NONE>'}'")
    elif kind == "logverbose":
        parse_array(args, keyword)
    elif kind == "forward":
        _one(args)
        if keyword == "localforward" and (not args or args[0] == ""):
            raise ValueError("Missing target argument.")
        if keyword != "dynamicforward" and args:
            args.pop(0)
    elif kind == "permitremoteopen":
        if not parse_array(args, keyword):
            raise ValueError(f"missing {keyword} specification")
    elif kind == "escapechar":
        arg = _one(args)
        if not (arg == "none" or len(arg) == 1 or (
                len(arg) == 2 and arg[0] == "^" and 64 <= ord(arg[1]) < 128)):
            raise ValueError("Bad escape character.")
    elif kind == "sendenv":
        while args:
            arg = args.pop(0)
            if arg == "" or "=" in arg:
                raise ValueError("Invalid environment name.")
    elif kind == "setenv":
        while args:
            if "=" not in args.pop(0):
                raise ValueError("Invalid SetEnv.")
    elif kind == "controlpersist":
        arg = _one(args, "Missing ControlPersist argument.")
        if arg not in ("yes", "no", "true", "false") and convtime(arg) < 0:
            raise ValueError("Bad ControlPersist argument.")
    elif kind == "tunneldevice":
        arg = _one(args)
        if not all(p == "any" or strtonum(p, 0, INT_MAX) is not None
                   for p in arg.split(":", 1)):
            raise ValueError("Bad tun device.")
    elif kind == "ipqos":
        for _ in range(2 if len(args) > 1 else 1):
            arg = args.pop(0) if args else ""
            if arg.lower() not in _IPQOS and not _byte_number(arg):
                raise ValueError(f"Bad IPQoS value: {arg}")
    else:
        _check_rest(kind, args)


def _check_rest(kind: str, args: list[str]) -> None:
    if kind == "bindmask":
        arg = _one(args, "Missing StreamLocalBindMask argument.")
        m = re.match(r"[0-7]+", arg)
        if m is None or int(m.group(), 8) > 0o777:
            raise ValueError("Bad mask.")
    elif kind == "fingerprinthash":
        arg = _one(args)
        if arg.lower() not in _DIGESTS:
            raise ValueError(f'Invalid hash algorithm "{arg}".')
    elif kind == "rekeylimit":
        arg = _one(args)
        if arg != "default" and _SCALED.fullmatch(arg) is None:
            raise ValueError(f"Bad number '{arg}'")
        if args:
            if args[0] == "none":
                args.pop(0)
            else:
                parse_time(args)
    elif kind == "addkeystoagent":
        _check_add_keys(args)
    else:
        raise AssertionError(f"no check for keyword kind {kind}")


def _check_add_keys(args: list[str]) -> None:
    arg = args.pop(0) if args else None
    arg2 = args.pop(0) if args else None
    value = MULTISTATE["yesnoaskconfirm"].get((arg or "").lower(), -1)
    if value == 3 and arg2 is not None:
        if convtime(arg2) == -1:
            raise ValueError("invalid time value.")
    elif value == -1 and arg2 is None:
        if arg is None or convtime(arg) == -1:
            raise ValueError("unsupported option")
    elif value == -1 or arg2 is not None:
        raise ValueError("unsupported option")


def _check_agent(kind: str, args: list[str], env: Mapping[str, str]) -> None:
    arg = _one(args)
    if kind == "forwardagent" and arg.lower() in _FLAG:
        return
    try:
        percent_expand(arg, None, env)
    except ValueError:
        raise ValueError(f"Invalid environment expansion {arg}.") from None
    if arg.startswith("$") and not arg.startswith("${") and not _ENV_NAME.fullmatch(arg[1:]):
        raise ValueError(f"Invalid environment name {arg}.")


def parse_permitted_cnames(keyword: str, args: list[str]) -> list[tuple[str, str]]:
    """CanonicalizePermittedCNAMEs: source:target pattern lists (lowercased), `*`, or
    `none` alone (kept as ("none", ""), as ssh keeps it)."""
    rules: list[tuple[str, str]] = []
    while args:
        arg = args.pop(0)
        if arg.lower() == "none":
            if rules or args:
                raise ValueError(f'keyword {keyword} "none" argument must appear alone.')
            rules.append((arg, ""))
        elif arg == "*":
            rules.append(("*", "*"))
        else:
            source, colon, target = arg.lower().partition(":")
            if not colon or not target:
                raise ValueError(f'Invalid permitted CNAME "{arg.lower()}"')
            rules.append((source, target))
    return rules


_C_NUMBER = re.compile(r"[ \t\n\v\f\r]*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _byte_number(arg: str) -> bool:
    """strtol(arg, base 0) reads all of arg and gives 0-255."""
    m = _C_NUMBER.fullmatch(arg)
    if m is None:
        return False
    digits = m.group(1)
    base = 16 if digits[:2] in ("0x", "0X") else 8 if digits.startswith("0") else 10
    value = int(digits, base)
    return 0 <= (-value if "-" in arg else value) <= 255

