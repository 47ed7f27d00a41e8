"""Reading slurm.conf the way a libslurm client does (src/common/read_config.c, parse_config.c).

Only what a client needs is kept: controllers, ports, node addresses, auth,
timeouts, TreeWidth and SlurmUser.  Keys are case-insensitive; unknown keys
are ignored; a line that is not ``key=value`` pairs is an error naming file and line.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import defaults
from ..errors import ConfigError
from ..wire.constants import C_INT_MIN, C_LONG_MAX, C_LONG_MIN
from ..hostlist import HostlistError, expand

MAX_INCLUDE_DEPTH = 16
#: files read for one slurm.conf, Includes counted: eight Includes six deep would be 262,144 reads
MAX_INCLUDE_FILES = 1024
#: bytes read for one slurm.conf, Includes counted (a cluster of 100,000 nodes needs a few MiB)
MAX_CONF_BYTES = 64 << 20
#: characters of a bad line or value an error message quotes
MAX_QUOTED = 80
#: the largest value a uint16 key takes (s_p_get_uint16)
U16_MAX = 65535
#: read_config.c: TreeWidth above this is refused
TREE_WIDTH_MAX = 65533
_PAIR = re.compile(r'\s*([A-Za-z0-9_.]+)\s*[-+*/]?=\s*("(?:[^"]*)"|\S*)')
_HOST = re.compile(r"^([^()\s]+)(?:\(([^()\s]+)\))?$")


@dataclass(frozen=True)
class Controller:
    """One SlurmctldHost: the name shown to users and the address to connect to."""

    name: str
    addr: str


@dataclass(frozen=True)
class NodeAddress:
    addr: str
    port: int | None = None


@dataclass(frozen=True)
class SlurmConfig:
    """The client-relevant part of slurm.conf."""

    path: str | None = None
    cluster_name: str | None = None
    controllers: tuple[Controller, ...] = ()
    slurmctld_port: int = defaults.SLURMCTLD_PORT
    slurmctld_port_count: int = defaults.SLURMCTLD_PORT_COUNT
    slurmd_port: int = defaults.SLURMD_PORT
    nodes: dict = field(default_factory=dict)  # NodeName -> NodeAddress
    auth_type: str = defaults.AUTH_TYPE
    #: (file, line) of the AuthType line; None when the default holds
    auth_type_at: tuple | None = field(default=None, repr=False, compare=False)
    auth_info: str | None = None
    message_timeout: int = defaults.MESSAGE_TIMEOUT
    tcp_timeout: int = defaults.TCP_TIMEOUT
    slurmctld_timeout: int = defaults.SLURMCTLD_TIMEOUT
    tree_width: int = defaults.TREE_WIDTH
    slurm_user: str = defaults.SLURM_USER

    @property
    def munge_socket(self) -> str | None:
        """AuthInfo's socket (``socket=PATH``, or the old bare-path form); slurm_auth_opts_to_socket."""
        info = self.auth_info
        if not info:
            return None
        if "socket=" in info:
            return info.split("socket=", 1)[1].split(",", 1)[0]
        return None if "=" in info else info

    @property
    def auth_ttl(self) -> int | None:
        """AuthInfo's ``ttl=`` (slurm_get_auth_ttl); None for munged's default."""
        if not self.auth_info or "ttl=" not in self.auth_info:
            return None
        digits = re.match(r"-?\d*", self.auth_info.split("ttl=", 1)[1]).group()
        return max(_c_atoi(digits), 0) or None

    @property
    def slurm_uid(self) -> int | None:
        try:
            return pwd.getpwnam(self.slurm_user).pw_uid
        except KeyError:
            return int(self.slurm_user) if self.slurm_user.isdigit() else None


def _c_atoi(digits: str) -> int:
    """What glibc's atoi makes of ``digits`` (slurm_get_auth_ttl reads AuthInfo's ttl so): strtol,
    clamped to a C long, then cut to a C int (99999999999 is 1215752191; past a long, -1)."""
    value = min(max(int(digits) if digits.strip("-") else 0, C_LONG_MIN), C_LONG_MAX)
    return (value - C_INT_MIN) % 2 ** 32 + C_INT_MIN


def find_slurm_conf(path=None) -> Path:
    """``path``, else $SLURM_CONF, else /etc/slurm/slurm.conf."""
    for candidate in (path, os.environ.get("SLURM_CONF"), *defaults.SLURM_CONF_PATHS):
        if candidate:
            return Path(candidate)
    raise ConfigError("no slurm.conf given")


def read_slurm_conf(path=None) -> SlurmConfig:
    """Parse slurm.conf (and its Include files) into a :class:`SlurmConfig`."""
    conf_path = find_slurm_conf(path)
    scalars: dict[str, tuple[str, str, int]] = {}
    hosts: list[tuple[str, str, int]] = []
    nodes: dict[str, NodeAddress] = {}
    node_lines = []  # read once; node lines are resolved after every scalar is known
    for pairs, where, line in _walk(conf_path, 0):
        if "nodename" in pairs:
            node_lines.append((pairs, where, line))
        for key, value in pairs.items():
            if key == "slurmctldhost":
                hosts.append((value, where, line))
            elif key != "nodename":
                scalars[key] = (value, where, line)
    for pairs, where, line in node_lines:
        nodes.update(_nodes(pairs, where, line, scalars))
    return _build(conf_path, scalars, hosts, nodes)


def _value(scalars, key):
    return scalars.get(key, (defaults.BY_KEY.get(key), None, None))


def _given_at(scalars, key) -> tuple | None:
    """(file, line) where ``key`` was given, or None (its default holds)."""
    _, where, line = _value(scalars, key)
    return (where, line) if where is not None else None


def _shown(value) -> str:
    """repr() capped at MAX_QUOTED characters: an error never quotes a 50 MB line back."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else f"{text[:MAX_QUOTED - 3]}... ({len(value)} characters)"


#: the keys this reader reads as slurm.conf(5) spells them (the reader keys them lower case):
#: an error names a key as its user wrote it in the documentation's spelling
KEY_NAMES = {name.lower(): name for name in (
    "SlurmctldPort", "SlurmdPort", "MessageTimeout", "TCPTimeout", "SlurmctldTimeout", "TreeWidth",
    "AuthType", "AuthInfo", "SlurmUser", "ClusterName", "SlurmctldHost", "ControlMachine", "ControlAddr",
    "BackupController", "BackupAddr")}


def _int(scalars, key, low: int = 0, high: int = U16_MAX) -> int:
    """A decimal whole number within [low, high] (ASCII digits only: '²'.isdigit() is True)."""
    value, where, line = _value(scalars, key)
    name = KEY_NAMES.get(key, key)
    if value is None or not (value.isascii() and value.isdigit()):
        raise ConfigError(f"{name} must be a whole number, not {_shown(value)}", path=where, line=line)
    number = int(value)
    if not low <= number <= high:
        raise ConfigError(f"{name} must be from {low} to {high}, not {number}", path=where, line=line)
    return number


def _build(conf_path, scalars, hosts, nodes) -> SlurmConfig:
    port, count = _port_range(*_value(scalars, "slurmctldport"))
    return SlurmConfig(
        path=str(conf_path), cluster_name=_value(scalars, "clustername")[0],
        controllers=_controllers(hosts, scalars), slurmctld_port=port, slurmctld_port_count=count,
        slurmd_port=_int(scalars, "slurmdport", 1), nodes=nodes,
        auth_type=_value(scalars, "authtype")[0], auth_type_at=_given_at(scalars, "authtype"),
        auth_info=_value(scalars, "authinfo")[0],
        # a timeout of 0 would fail every call at once: refused rather than passed on
        message_timeout=_int(scalars, "messagetimeout", 1), tcp_timeout=_int(scalars, "tcptimeout", 1),
        slurmctld_timeout=_int(scalars, "slurmctldtimeout"),
        tree_width=_int(scalars, "treewidth", 0, TREE_WIDTH_MAX) or defaults.TREE_WIDTH, slurm_user=_value(scalars, "slurmuser")[0],
    )


def _port_range(value: str, where, line) -> tuple[int, int]:
    match = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", value or "")
    if not match:
        raise ConfigError(f"SlurmctldPort {_shown(value)} is not a port or a port range", path=where, line=line)
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 0 < low <= high <= 65535:
        raise ConfigError(f"SlurmctldPort {_shown(value)} is out of range", path=where, line=line)
    return low, high - low + 1


def _controllers(hosts, scalars) -> tuple[Controller, ...]:
    if hosts:
        return tuple(_parse_host(v, w, n) for v, w, n in hosts)
    legacy = []
    for name_key, addr_key in (("controlmachine", "controladdr"), ("backupcontroller", "backupaddr")):
        name = scalars.get(name_key)
        if name:
            addr = scalars.get(addr_key, (name[0],))[0]
            legacy.append(Controller(name[0], addr))
        elif addr_key in scalars:
            _, where, line = scalars[addr_key]
            raise ConfigError(f"{KEY_NAMES[addr_key]} given without {KEY_NAMES[name_key]}", path=where, line=line)
    return tuple(legacy)


def _parse_host(value: str, where, line) -> Controller:
    match = _HOST.match(value)
    if not match:
        raise ConfigError(f"bad SlurmctldHost value {_shown(value)}", path=where, line=line)
    name, addr = match.groups()
    return Controller(name, addr or name)


def _nodes(pairs: dict, where, line, scalars) -> dict[str, NodeAddress]:
    names_expr = pairs.get("nodename")
    if not names_expr or names_expr.lower() == "default":
        return {}
    try:
        names = expand(names_expr)
        addrs = expand(pairs.get("nodeaddr") or pairs.get("nodehostname") or names_expr)
        ports = expand(f"[{pairs['port']}]") if "port" in pairs else []
    except HostlistError as exc:
        raise ConfigError(_capped(str(exc)), path=where, line=line) from None
    if len(addrs) < len(names) or len(ports) not in (0, 1, len(names)):
        raise ConfigError(f"NodeAddr/Port counts do not match NodeName {_shown(names_expr)}", path=where, line=line)
    if any(not (p.isascii() and p.isdigit() and 0 < int(p) <= U16_MAX) for p in ports):
        raise ConfigError(f"Port of NodeName {_shown(names_expr)} must be from 1 to {U16_MAX}", path=where, line=line)
    port_of = (lambda i: int(ports[i])) if len(ports) > 1 else (lambda i: int(ports[0]) if ports else None)
    return {name: NodeAddress(addrs[i], port_of(i)) for i, name in enumerate(names)}


# ---------------------------------------------------------------------------
# lexing
# ---------------------------------------------------------------------------
def _capped(text: str) -> str:
    return text if len(text) <= 4 * MAX_QUOTED else text[:4 * MAX_QUOTED - 3] + "..."


class _Budget:
    """What one read_slurm_conf may still read: files and bytes, Includes counted."""

    def __init__(self):
        self.files, self.bytes = MAX_INCLUDE_FILES, MAX_CONF_BYTES

    def take(self, path: Path, origin: tuple[str, int] | None = None) -> bytes:
        """``path``'s bytes; ``origin``, the (file, line) of the Include that named it, is said
        when it cannot be read."""
        self.files -= 1
        if self.files < 0:
            raise ConfigError(f"more than {MAX_INCLUDE_FILES} files read through Include", path=str(path))
        try:
            with open(path, "rb") as f:
                data = f.read(self.bytes + 1)
        except OSError as exc:
            told = f" (Include at {origin[0]}:{origin[1]})" if origin else ""
            raise ConfigError(f"cannot read: {exc.strerror}{told}", path=str(path)) from None
        self.bytes -= len(data)
        if self.bytes < 0:
            raise ConfigError(f"more than {MAX_CONF_BYTES} bytes read through Include", path=str(path))
        return data


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 text (ASCII is what Slurm expects); other bytes are a ConfigError naming the line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"byte 0x{data[exc.start]:02x} is not text (UTF-8)", path=str(path), line=line) from None


def _logical_lines(path: Path, budget: _Budget, origin: tuple[str, int] | None = None):
    """(line number, text) with comments removed and backslash continuations joined."""
    raw = _decode(budget.take(path, origin), path).splitlines()
    buf, start = "", None
    for number, text in enumerate(raw, 1):
        text = re.sub(r"(?<!\\)#.*", "", text).replace("\\#", "#")
        if start is None:
            start = number
        if text.endswith("\\"):
            buf += text[:-1]
            continue
        yield start, buf + text
        buf, start = "", None
    if buf:
        yield start, buf


def _line_pairs(text: str, where: str, number: int) -> dict[str, str]:
    pairs, pos = {}, 0
    text = text.rstrip()
    while pos < len(text):
        match = _PAIR.match(text, pos)
        if not match or match.end() == pos:
            raise ConfigError(f"cannot parse {_shown(text[pos:].strip())} (expected key=value)",
                              path=where, line=number)
        pairs[match.group(1).lower()] = match.group(2).strip('"')
        pos = match.end()
        if pos < len(text) and not text[pos].isspace():
            raise ConfigError(f"cannot parse {_shown(text[pos:].strip())}", path=where, line=number)
    return pairs


def _walk(path: Path, depth: int, budget: _Budget | None = None, origin: tuple[str, int] | None = None):
    """Yield (pairs, file, line) for every logical line, following Include within the budget
    (``origin``: the file and line of the Include that named ``path``)."""
    budget = budget or _Budget()
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfigError("Include nested too deeply", path=origin[0] if origin else str(path),
                          line=origin[1] if origin else None)
    for number, text in _logical_lines(path, budget, origin):
        stripped = text.strip()
        if not stripped:
            continue
        head = stripped.split(None, 1)
        if head[0].lower() == "include" and len(head) == 2 and "=" not in head[0]:
            target = Path(head[1].strip())
            yield from _walk(target if target.is_absolute() else path.parent / target, depth + 1, budget,
                             (str(path), number))
            continue
        yield _line_pairs(stripped, str(path), number), str(path), number
