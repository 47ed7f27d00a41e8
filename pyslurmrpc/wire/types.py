"""Plain typed objects for decoded messages (never raw construct Containers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from munch import Munch


@dataclass(frozen=True)
class Forward:
    """The header's forwarding part: which nodes a slurmd must pass the message on to."""

    cnt: int = 0
    nodelist: Optional[str] = None
    timeout: int = 0
    tree_width: int = 0
    net_cred: Optional[str] = field(default=None, repr=False)  # 23.11+ with SLURM_PACK_ADDRS
    tree_depth: Optional[int] = None  # 24.11+


@dataclass(frozen=True)
class RetEntry:
    """One entry of the header's ret_list: a node's answer gathered by forwarding."""

    node_name: Optional[str]
    err: int
    msg_type: int
    body: Any = None  # a Munch for RESPONSE_SLURM_RC ({"return_code": n}), else None


@dataclass(frozen=True)
class Address:
    """``orig_addr``: where a forwarded message came from (all zero / family 0 when not forwarded).

    ``family`` is None in the pre-20.11 layout, which has no family field (an
    IPv4 address and a port only).  ``addr`` is the raw packed value: an int for
    IPv4, 16 bytes for IPv6, None when the family carries no address.  ``port``
    is the raw packed port.  :attr:`host` renders the address as text.
    """

    family: Optional[int] = None
    addr: Any = 0
    port: int = 0

    @property
    def host(self) -> Optional[str]:
        import ipaddress

        if isinstance(self.addr, (bytes, bytearray)):
            return str(ipaddress.IPv6Address(bytes(self.addr)))
        if self.addr is None:
            return None
        return str(ipaddress.IPv4Address(self.addr))


@dataclass(frozen=True)
class Header:
    version: int
    msg_type: int
    flags: int = 0
    msg_index: int = 0
    body_length: int = 0
    forward: Forward = field(default_factory=Forward)
    ret_list: tuple[RetEntry, ...] = ()
    orig_addr: Address = field(default_factory=Address)


@dataclass(frozen=True)
class Auth:
    """The auth envelope between header and body.

    ``plugin`` is the plugin name ("auth/munge", "auth/none", ...);
    ``plugin_id`` its numeric id (101 for munge, 100 for none).
    For auth/munge ``credential`` is the MUNGE credential text.  For auth/none
    the credential is ``uid``/``gid`` (and, from 19.05, ``hostname``).
    ``plugin_version`` is the uint32 the pre-19.05 framing carries after the
    plugin-type string (0 when packed by 19.05+ libslurm, the packing release's
    SLURM_VERSION_NUMBER when packed by 17.11/18.08 plugins).
    """

    plugin: str
    plugin_id: int
    credential: Optional[str] = field(default=None, repr=False)
    uid: Optional[int] = None
    gid: Optional[int] = None
    hostname: Optional[str] = None
    plugin_version: int = 0


@dataclass(frozen=True)
class Message:
    """A decoded (or to-be-encoded) Slurm message.

    ``body`` is a :class:`munch.Munch` with the body's fields as attributes.
    ``auth`` is None for a 23.02+ frame whose flags carry SLURM_NO_AUTH_CRED
    (newer daemons send replies without a credential).
    """

    header: Header
    auth: Optional[Auth]
    body: Munch

    @property
    def msg_type(self) -> int:
        return self.header.msg_type

    @property
    def version(self) -> int:
        return self.header.version


def describe(message: Message) -> str:
    """One line for logs: type, version, routing, body fields; the credential is never shown."""
    from .constants import MsgType
    from .versions import VERSIONS

    try:
        kind = MsgType(message.msg_type).name
    except ValueError:
        kind = str(message.msg_type)
    spec = VERSIONS.get(message.version)
    parts = [kind, f"v{spec.name if spec else hex(message.version)}"]
    if message.header.forward.cnt:
        parts.append(f"forward={message.header.forward.nodelist}")
    if message.header.ret_list:
        parts.append("ret_list=" + ",".join(f"{r.node_name}:{r.err}" for r in message.header.ret_list))
    parts.append(" ".join(f"{k}={v!r}" for k, v in message.body.items()))
    if message.auth is not None:
        who = f" uid={message.auth.uid}" if message.auth.uid is not None else ""
        parts.append(f"auth={message.auth.plugin}{who} (credential redacted)")
    return " ".join(p for p in parts if p)
