"""Checks on the arguments of ``Client(...)`` and the calls: bad input is an InvalidArgumentError
naming the argument, never a ValueError/UnicodeError/TypeError from deep inside socket or codec code.

Each function returns the value (normalised where said) or raises; none has side effects.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
from collections.abc import Mapping
from numbers import Real

from ..auth.premint import PREMINT_MAX_DEPTH
from ..errors import InvalidArgumentError
from ..wire.constants import C_INT_MAX

#: TCP port numbers a daemon can listen on (0 means "any" and cannot be connected to)
PORT_MIN, PORT_MAX = 1, 65535
#: RFC 1035 2.3.4: one label of a host name, and the whole name in text form
HOST_LABEL_MAX = 63
HOST_NAME_MAX = 253
#: what a host name's labels are made of, once IDNA-encoded (RFC 1123, and '_', which resolvers take)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
#: sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included
UNIX_PATH_MAX = 107
#: the longest timeout: MessageTimeout is a uint16 of seconds in slurm.conf (s_p_get_uint16)
TIMEOUT_MAX = 65535
#: TreeWidth bounds of slurm.conf (read_config.c: 1..65533)
TREE_WIDTH_MIN, TREE_WIDTH_MAX = 1, 65533
#: the longest credential lifetime asked of munged: munge_ctx_set takes MUNGE_OPT_TTL as a C int
AUTH_TTL_MAX = C_INT_MAX


def shown(value) -> str:
    """repr() capped, so that an error never quotes megabytes back."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def did_you_mean(names, known) -> str:
    """"; did you mean 'X'?" for the first of ``names`` close to one of ``known`` (else "")."""
    for name in names:
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            return f"; did you mean {close[0]!r}?"
    return ""


def timeout(value, name: str = "timeout") -> float:
    """A number of seconds above 0 and at most TIMEOUT_MAX (int or float, not bool) as a float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidArgumentError(f"{name} must be a number of seconds, not {shown(value)}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= TIMEOUT_MAX:
        raise InvalidArgumentError(
            f"{name} must be a number of seconds above 0 and at most {TIMEOUT_MAX}, not {shown(value)}")
    return seconds


def port(value, name: str = "port") -> int:
    """A TCP port 1-65535 given as an int (a str such as "6817" or None is refused, not guessed)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int from {PORT_MIN} to {PORT_MAX}, not {shown(value)}")
    if not PORT_MIN <= value <= PORT_MAX:
        raise InvalidArgumentError(f"{name} must be from {PORT_MIN} to {PORT_MAX}, not {value}")
    return value


def host(value, name: str = "host") -> str:
    """A host name or address the resolver can take: no NUL or blank, labels <= 63, name <= 253.

    The IDNA codec socket uses raises UnicodeError on a long label; this says so first.
    """
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{name} must be a non-empty host name, not {shown(value)}")
    if "\0" in value or any(c.isspace() for c in value):
        raise InvalidArgumentError(f"{name} must not hold NUL or blanks: {shown(value)}")
    if ":" in value:  # only an IPv6 address holds colons: "host:port" is two arguments here
        if value.count(":") == 1:
            raise InvalidArgumentError(f"{name} must not hold a port (it has its own argument): {shown(value)}")
        if not _ipv6(value):
            raise InvalidArgumentError(f"{name} is neither a host name nor an IPv6 address: {shown(value)}")
        return value
    if len(value.rstrip(".")) > HOST_NAME_MAX:
        raise InvalidArgumentError(f"{name} is longer than {HOST_NAME_MAX} characters: {shown(value)}")
    for label in value.rstrip(".").split("."):
        if not label or len(label) > HOST_LABEL_MAX:
            raise InvalidArgumentError(
                f"{name} has an empty label or one over {HOST_LABEL_MAX} characters: {shown(value)}")
    try:
        labels = value.rstrip(".").encode("idna").decode("ascii").split(".")
    except UnicodeError as exc:
        raise InvalidArgumentError(f"{name} is not a valid host name ({exc}): {shown(value)}") from None
    _check_labels(labels, value, name)
    return value


def _check_labels(labels: list[str], value: str, name: str) -> None:
    """Letters, digits, '-' and '_', no label starting with '-': a comma list ("h1,h2") or a
    word meant as an option ("-h") was taken as a name and failed only at the lookup."""
    odd = sorted({c for label in labels for c in label} - _HOST_CHARS)
    if odd:
        why = ("one host only: backup controllers are given apart (backups=, slurm.conf's SlurmctldHost)"
               if "," in odd else "only letters, digits, '-', '_' and '.'")
        raise InvalidArgumentError(f"{name} is not a host name ({why}; not {', '.join(map(repr, odd))}): "
                                   f"{shown(value)}")
    if any(label.startswith("-") for label in labels):
        raise InvalidArgumentError(f"{name} is not a host name (a label begins with '-'): {shown(value)}")


def socket_path(value, name: str = "munge_socket"):
    """None, or a str/PathLike path without NUL that fits sockaddr_un (returned as str)."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgumentError(f"{name} must be a path, not {shown(value)}")
    path = os.fspath(value)
    if not isinstance(path, str) or "\0" in path:
        raise InvalidArgumentError(f"{name} must be a text path without NUL, not {shown(value)}")
    if not path or len(os.fsencode(path)) > UNIX_PATH_MAX:
        raise InvalidArgumentError(f"{name} must be 1 to {UNIX_PATH_MAX} bytes long, not {shown(value)}")
    return path


def text(value, name: str):
    """None, or a str the wire can carry: no NUL, and encodable as UTF-8 (no lone surrogate)."""
    if value is None:
        return None
    if not isinstance(value, str) or "\0" in value:
        raise InvalidArgumentError(f"{name} must be a string without NUL characters or None, not {shown(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{name} is not valid text (lone surrogate): {shown(value)}") from None
    return value


#: the node list's argument name, which InvalidArgumentError.argument carries for it
NODELIST = "nodelist"


def nodelist(value, name: str = NODELIST) -> str:
    """A non-empty hostlist expression such as ``"n[1-4],m2"`` (a str, not a number or list)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{name} must be a hostlist string such as 'n[1-4]', not {shown(value)}",
                                   argument=name)
    if "\0" in value:
        raise InvalidArgumentError(f"{name} must not hold NUL: {shown(value)}", argument=name)
    return value


def tree_width(value, name: str = "tree_width") -> int:
    """An int 1-65533, as slurm.conf's TreeWidth (0 or less would never split the node list)."""
    if isinstance(value, bool) or not isinstance(value, int) or not TREE_WIDTH_MIN <= value <= TREE_WIDTH_MAX:
        raise InvalidArgumentError(
            f"{name} must be an int from {TREE_WIDTH_MIN} to {TREE_WIDTH_MAX}, not {shown(value)}")
    return value


def premint(value, name: str = "premint") -> int:
    """Credentials to mint ahead per payload: an int 0 (none) to PREMINT_MAX_DEPTH."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= PREMINT_MAX_DEPTH:
        raise InvalidArgumentError(f"{name} must be an int from 0 to {PREMINT_MAX_DEPTH}, not {shown(value)}")
    return value


def controller_index(value, count: int, name: str = "controller") -> int:
    """An index into ``count`` controllers (0: the primary); a negative one is refused, not
    counted from the end (libslurm's slurm_open_controller_conn_spec fails on it)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
        which = "0 (the primary)" if count == 1 else f"from 0 (the primary) to {count - 1}"
        raise InvalidArgumentError(f"{name} must be an index {which}, not {shown(value)}")
    return value


def address_text(host_: str, port_: int) -> str:
    """``HOST:PORT``, an IPv6 address in brackets (``[::1]:6817``), as controller_address reads it."""
    return f"[{host_}]:{port_}" if ":" in host_ else f"{host_}:{port_}"


def controller_address(value: str, default_port: int | None, name: str = "controller",
                       lowest_port: int = PORT_MIN) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT`` or ``[V6ADDR]:PORT`` (the CLI's --controller) as (host, port);
    without a port, ``default_port``.  ``lowest_port`` 0 takes port 0 too (a daemon's "any")."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be HOST[:PORT], not {shown(value)}")
    if value.startswith("["):
        addr, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidArgumentError(f"{name} must be [ADDRESS]:PORT, not {shown(value)}")
        return host(addr, f"{name} host"), _port_text(rest[1:] if rest else None, default_port, name, lowest_port)
    if value.count(":") > 1:  # a bare IPv6 address
        if not _ipv6(value):
            raise InvalidArgumentError(f"{name} must be HOST, HOST:PORT or [IPV6]:PORT, not {shown(value)}")
        return host(value, f"{name} host"), default_port
    host_name, colon, port_text = value.partition(":")
    return host(host_name, f"{name} host"), _port_text(port_text if colon else None, default_port, name,
                                                       lowest_port)


def _ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _port_text(text_: str | None, default_port: int | None, name: str, lowest: int) -> int | None:
    """The port after HOST: (None: there was no colon, the default port)."""
    if text_ is None:
        return default_port
    if (not text_.isascii() or not text_.isdigit() or len(text_) > len(str(PORT_MAX))
            or not lowest <= int(text_) <= PORT_MAX):
        raise InvalidArgumentError(f"{name} port must be a number from {lowest} to {PORT_MAX}, "
                                   f"not {shown(text_)}")
    return int(text_)


def auth(value):
    """"munge", "none" or an authenticator: an object with ``create_flow`` (or ``create``) and
    ``verify_flow`` (or ``verify``), as pyslurmrpc.auth.slurm_auth.create_flow / verify_flow take."""
    if isinstance(value, str):
        if value not in ("munge", "none"):
            raise InvalidArgumentError(f"auth must be 'munge', 'none' or an authenticator, not {shown(value)}")
        return value
    if not all(callable(getattr(value, m, None)) or callable(getattr(value, f"{m}_flow", None))
               for m in ("create", "verify")):
        # only the type is named: a key or a credential passed by mistake is never echoed
        raise InvalidArgumentError(
            "auth must be 'munge', 'none' or an authenticator (an object with create_flow or create, and "
            f"verify_flow or verify, such as pyslurmrpc.auth.NoneAuth()), not a {type(value).__name__}")
    return value


def auth_ttl(value, name: str = "auth_ttl"):
    """None (munged's default lifetime) or whole seconds 0 (the same) to AUTH_TTL_MAX."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= AUTH_TTL_MAX:
        raise InvalidArgumentError(f"{name} must be None or whole seconds from 0 to {AUTH_TTL_MAX}, "
                                   f"not {shown(value)}")
    return value


def backups(value, default_port: int) -> tuple[tuple[str, int], ...]:
    """Backup controllers: an iterable of ``"HOST"``, ``"HOST:PORT"`` or ``(host, port)`` items
    (None: none) as (host, port) pairs; a bare string is refused, not split into letters."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not _iterable(value):
        raise InvalidArgumentError(f"backups must be a list of hosts or (host, port) pairs, not {shown(value)} "
                                   "(one backup: backups=['HOST'])")
    return tuple(_address(item, default_port, "backups", "backups items") for item in value)


def nodes(value) -> dict:
    """``{name: where}`` (or ``(name, where)`` pairs; None: none) as name -> (addr, port or None);
    ``where`` is "ADDR", "ADDR:PORT", "[V6ADDR]:PORT" or (addr, port or None)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):    # (name, where) pairs; a str would pair up its letters
        pairs = list(value) if _iterable(value) and not isinstance(value, (str, bytes)) else None
        if pairs is None or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
            raise InvalidArgumentError(f"nodes must be a dict {{name: (addr, port)}}, not {shown(value)}")
        value = dict(pairs)
    checked = {}
    for name, where in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"nodes keys must be node names, not {shown(name)}")
        label = f"nodes[{name!r}]"
        checked[name] = _address(where, None, label, label)
    return checked


def _address(item, default_port: int | None, name: str, shape: str) -> tuple[str, int | None]:
    """A backup's or a node's address: "HOST", "HOST:PORT", "[V6ADDR]:PORT" or (host, port), as
    (host, port); a port not given is ``default_port`` (a pair's None port too, when that is None).
    ``shape`` names the item when it has none of these forms."""
    if isinstance(item, str):
        return controller_address(item, default_port, name)
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise InvalidArgumentError(f"{shape} must be 'HOST', 'HOST:PORT' or (host, port), not {shown(item)}")
    addr, item_port = item
    return host(addr, name), (None if item_port is None and default_port is None
                              else port(item_port, f"{name} port"))


def _iterable(value) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def conf_path(value):
    """None (the default slurm.conf), or a str/PathLike naming a file: not empty, no NUL."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgumentError(f"path must be the path of slurm.conf (str or PathLike) or None, "
                                   f"not {shown(value)}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path or "\0" in path:
        raise InvalidArgumentError(f"path must name slurm.conf (not empty, no NUL), not {shown(value)}")
    return path
