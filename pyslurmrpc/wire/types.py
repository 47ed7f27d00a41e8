"""Plain typed objects for decoded messages (never raw construct Containers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from .bodies import Body
from .constants import AUTH_PLUGIN_NAMES, CRED_PREFIX, AuthPluginId


@dataclass(frozen=True)
class Forward:
    """The header's forwarding part: which nodes a slurmd must pass the message on to."""

    cnt: int = 0
    nodelist: Optional[str] = None
    timeout: int = 0
    tree_width: int = 0
    net_cred: Optional[str] = field(default=None, repr=False)  # 23.11+ with SLURM_PACK_ADDRS
    tree_depth: Optional[int] = None  # 24.11+


# slurm_protocol_defs.h ret_data_info_t (packed by slurm_protocol_pack.c _pack_ret_list)
@dataclass(frozen=True)
class RetDataInfo:
    """One entry of the header's ret_list: a node's answer gathered by forwarding.

    ``body`` is the body dataclass of ``msg_type`` (:class:`~.bodies.ReturnCodeMsg`
    for RESPONSE_SLURM_RC, :class:`~.bodies.ForwardFailedMsg` for
    RESPONSE_FORWARD_FAILED).
    """

    node_name: Optional[str]
    err: int
    msg_type: int
    body: Optional[Body] = None


#: the name of :class:`RetDataInfo` before bodies were typed
RetEntry = RetDataInfo


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
    ret_list: tuple[RetDataInfo, ...] = ()
    orig_addr: Address = field(default_factory=Address)


class Auth:
    """Base of the auth envelopes (the part between header and body), one class per plugin.

    ``plugin`` is the plugin name ("auth/munge", "auth/none") and ``plugin_id``
    its numeric id (101, 100); both are fixed by the class.
    ``plugin_version`` is the uint32 the pre-19.05 framing carries after the
    plugin-type string (0 when packed by 19.05+ libslurm, the packing release's
    SLURM_VERSION_NUMBER when packed by 17.11/18.08 plugins).
    """

    plugin: ClassVar[str]
    plugin_id: ClassVar[int]
    __slots__ = ()


# auth_munge.c slurm_auth_credential_t (packed by slurm_auth_pack: one packstr)
@dataclass(frozen=True, kw_only=True)
class MungeAuthCred(Auth):
    """auth/munge envelope: ``credential`` is the MUNGE credential text (never in a repr)."""

    plugin: ClassVar[str] = AUTH_PLUGIN_NAMES[AuthPluginId.AUTH_PLUGIN_MUNGE]
    plugin_id: ClassVar[int] = int(AuthPluginId.AUTH_PLUGIN_MUNGE)
    credential: Optional[str] = field(repr=False)
    plugin_version: int = 0


# auth_none.c slurm_auth_credential_t (packed by slurm_auth_pack: uid, gid, 19.05+ hostname)
@dataclass(frozen=True, kw_only=True)
class NoneAuthCred(Auth):
    """auth/none envelope: the uid and gid the sender claims, and (from 19.05) its host name."""

    plugin: ClassVar[str] = AUTH_PLUGIN_NAMES[AuthPluginId.AUTH_PLUGIN_NONE]
    plugin_id: ClassVar[int] = int(AuthPluginId.AUTH_PLUGIN_NONE)
    uid: int
    gid: int
    hostname: Optional[str] = None
    plugin_version: int = 0


#: plugin id -> envelope class
AUTH_CLASSES: dict[int, type] = {cls.plugin_id: cls for cls in (MungeAuthCred, NoneAuthCred)}


@dataclass(frozen=True)
class Message:
    """A decoded (or to-be-encoded) Slurm message.

    ``body`` is the dataclass :data:`~.bodies.BODY_TABLE` lists for the
    message type (:class:`~.bodies.CheckpointMsg`, :class:`~.bodies.ReturnCodeMsg`, ...).
    ``auth`` is a :class:`MungeAuthCred` or :class:`NoneAuthCred`, or None
    for a 23.02+ frame whose flags carry SLURM_NO_AUTH_CRED
    (newer daemons send replies without a credential).
    """

    header: Header
    auth: Optional[Auth]
    body: Body

    @property
    def msg_type(self) -> int:
        return self.header.msg_type

    @property
    def version(self) -> int:
        return self.header.version


#: what a log line or a quoted line shows where text that may be a credential was
WITHHELD_TEXT = "<withheld: a credential?>"
_CRED_PREFIX_BYTES = CRED_PREFIX.encode("ascii")


def holds_credential_text(value: str | bytes) -> bool:
    """Whether a string field (text, or its raw bytes) holds text that begins as a MUNGE
    credential does (a long base64 run alone may be a path's digest)."""
    return (CRED_PREFIX if isinstance(value, str) else _CRED_PREFIX_BYTES) in value


def fields_text(body: Body) -> str:
    """``name=value`` of each field of ``body`` for a log line; a string holding a MUNGE
    credential's text (an image_dir or an error message that carries one) is withheld."""
    return " ".join(f"{k}={WITHHELD_TEXT if isinstance(v, str) and holds_credential_text(v) else repr(v)}"
                    for k, v in vars(body).items())


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
    parts.append(fields_text(message.body))
    if message.auth is not None:
        uid = getattr(message.auth, "uid", None)  # only auth/none states one
        who = f" uid={uid}" if uid is not None else ""
        parts.append(f"auth={message.auth.plugin}{who} (credential redacted)")
    return " ".join(p for p in parts if p)
