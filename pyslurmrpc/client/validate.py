"""Checks on the arguments of ``Client(...)`` and the calls: bad input is an InvalidArgumentError
naming the argument, never a ValueError/UnicodeError/TypeError from deep inside socket or codec code.

Each function returns the value (normalised where said) or raises; none has side effects.
"""

from __future__ import annotations

import math
import os
from numbers import Real

from ..auth.premint import PREMINT_MAX_DEPTH
from ..errors import InvalidArgumentError

#: TCP port numbers a daemon can listen on (0 means "any" and cannot be connected to)
PORT_MIN, PORT_MAX = 1, 65535
#: RFC 1035 2.3.4: one label of a host name, and the whole name in text form
HOST_LABEL_MAX = 63
HOST_NAME_MAX = 253
#: sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included
UNIX_PATH_MAX = 107
#: the longest timeout: MessageTimeout is a uint16 of seconds in slurm.conf (s_p_get_uint16)
TIMEOUT_MAX = 65535
#: TreeWidth bounds of slurm.conf (read_config.c: 1..65533)
TREE_WIDTH_MIN, TREE_WIDTH_MAX = 1, 65533


def _shown(value) -> str:
    """repr() capped, so that an error never quotes megabytes back."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def timeout(value, name: str = "timeout") -> float:
    """A number of seconds above 0 and at most TIMEOUT_MAX (int or float, not bool) as a float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidArgumentError(f"{name} must be a number of seconds, not {_shown(value)}")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= TIMEOUT_MAX:
        raise InvalidArgumentError(
            f"{name} must be a number of seconds above 0 and at most {TIMEOUT_MAX}, not {_shown(value)}")
    return seconds


def port(value, name: str = "port") -> int:
    """A TCP port 1-65535 given as an int (a str such as "6817" or None is refused, not guessed)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int from {PORT_MIN} to {PORT_MAX}, not {_shown(value)}")
    if not PORT_MIN <= value <= PORT_MAX:
        raise InvalidArgumentError(f"{name} must be from {PORT_MIN} to {PORT_MAX}, not {value}")
    return value


def host(value, name: str = "host") -> str:
    """A host name or address the resolver can take: no NUL or blank, labels <= 63, name <= 253.

    The IDNA codec socket uses raises UnicodeError on a long label; this says so first.
    """
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{name} must be a non-empty host name, not {_shown(value)}")
    if "\0" in value or any(c.isspace() for c in value):
        raise InvalidArgumentError(f"{name} must not hold NUL or blanks: {_shown(value)}")
    if ":" in value:  # an IPv6 address: no labels to check
        return value
    if len(value.rstrip(".")) > HOST_NAME_MAX:
        raise InvalidArgumentError(f"{name} is longer than {HOST_NAME_MAX} characters: {_shown(value)}")
    for label in value.rstrip(".").split("."):
        if not label or len(label) > HOST_LABEL_MAX:
            raise InvalidArgumentError(
                f"{name} has an empty label or one over {HOST_LABEL_MAX} characters: {_shown(value)}")
    try:
        value.encode("idna")
    except UnicodeError as exc:
        raise InvalidArgumentError(f"{name} is not a valid host name ({exc}): {_shown(value)}") from None
    return value


def socket_path(value, name: str = "munge_socket"):
    """None, or a str/PathLike path without NUL that fits sockaddr_un (returned as str)."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgumentError(f"{name} must be a path, not {_shown(value)}")
    path = os.fspath(value)
    if not isinstance(path, str) or "\0" in path:
        raise InvalidArgumentError(f"{name} must be a text path without NUL, not {_shown(value)}")
    if not path or len(os.fsencode(path)) > UNIX_PATH_MAX:
        raise InvalidArgumentError(f"{name} must be 1 to {UNIX_PATH_MAX} bytes long, not {_shown(value)}")
    return path


def text(value, name: str):
    """None, or a str the wire can carry: no NUL, and encodable as UTF-8 (no lone surrogate)."""
    if value is None:
        return None
    if not isinstance(value, str) or "\0" in value:
        raise InvalidArgumentError(f"{name} must be a string without NUL characters or None, not {_shown(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{name} is not valid text (lone surrogate): {_shown(value)}") from None
    return value


def nodelist(value, name: str = "nodelist") -> str:
    """A non-empty hostlist expression such as ``"n[1-4],m2"`` (a str, not a number or list)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{name} must be a hostlist string such as 'n[1-4]', not {_shown(value)}")
    if "\0" in value:
        raise InvalidArgumentError(f"{name} must not hold NUL: {_shown(value)}")
    return value


def tree_width(value, name: str = "tree_width") -> int:
    """An int 1-65533, as slurm.conf's TreeWidth (0 or less would never split the node list)."""
    if isinstance(value, bool) or not isinstance(value, int) or not TREE_WIDTH_MIN <= value <= TREE_WIDTH_MAX:
        raise InvalidArgumentError(
            f"{name} must be an int from {TREE_WIDTH_MIN} to {TREE_WIDTH_MAX}, not {_shown(value)}")
    return value


def premint(value, name: str = "premint") -> int:
    """Credentials to mint ahead per payload: an int 0 (none) to PREMINT_MAX_DEPTH."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= PREMINT_MAX_DEPTH:
        raise InvalidArgumentError(f"{name} must be an int from 0 to {PREMINT_MAX_DEPTH}, not {_shown(value)}")
    return value


def controller_address(value: str, default_port: int) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[V6ADDR]:PORT`` (the CLI's --controller) as (host, port)."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"controller must be HOST[:PORT], not {_shown(value)}")
    if value.startswith("["):
        addr, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidArgumentError(f"controller must be [ADDRESS]:PORT, not {_shown(value)}")
        return host(addr, "controller host"), _port_text(rest[1:], default_port)
    if value.count(":") > 1:  # a bare IPv6 address
        return host(value, "controller host"), default_port
    name, _, port_text = value.partition(":")
    return host(name, "controller host"), _port_text(port_text, default_port)


def _port_text(text_: str, default_port: int) -> int:
    if text_ == "":
        return default_port
    if not text_.isascii() or not text_.isdigit():
        raise InvalidArgumentError(f"controller port must be a number from {PORT_MIN} to {PORT_MAX}, "
                                   f"not {_shown(text_)}")
    return port(int(text_), "controller port")
