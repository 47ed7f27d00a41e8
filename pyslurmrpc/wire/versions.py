"""Every Slurm release pyslurmrpc knows, 17.11 to 26.05, as one table.

A protocol version is ``(n << 8)`` with n counting up one per release
(src/common/slurm_protocol_common.h).  One :class:`Release` row per version
holds every fact that differs between releases - header layout, address form,
auth framing, MUNGE payload, forward part, checkpoint RPCs, how a refused
version or credential is answered, the oldest version accepted.  Every other
module asks this table (or the helpers below) instead of comparing numbers of
its own.  protocol_specs/versions.md cites the source of each column.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from construct import Construct, If, Struct, Switch, Tell, this

from ._fastpath import FastCodec, compile_schema
from .bodies import CHECKPOINT_BODIES, COMMON_BODIES
from .constants import SLURM_NO_AUTH_CRED, AuthPluginId
from .header import (
    _plain, auth_by_id_t, auth_by_type_t, forward_t, forward_t_2311, forward_t_2411, header_t,
    munge_cred_t,
    none_cred_1711_t, none_cred_1905_t, slurm_addr_t, sockaddr_in_t,
)
from .primitives import Unknown, u32

#: the release counter moves the protocol version in steps of this
#: (MAKE_SLURM_VER in slurm_protocol_common.h, 25.11+)
RELEASE_STEP = 0x100


class Header(str, enum.Enum):
    """Which branch of pack_header / unpack_header a header version takes."""

    MSG_INDEX = "msg_index"          # 17.11 - 21.08 headers: flags, msg_index, msg_type, ...
    NO_MSG_INDEX = "no_msg_index"    # 22.05 - 23.02: msg_index gone
    NET_CRED = "net_cred"            # 23.11 - 24.05: forward part may carry net_cred
    TREE_DEPTH = "tree_depth"        # 24.11 - 26.05: forward part ends with tree_depth


class Addr(str, enum.Enum):
    """How orig_addr is packed."""

    SOCKADDR_IN = "sockaddr_in"      # slurm_pack_slurm_addr: uint32 addr, uint16 port
    FAMILY = "family"                # slurm_pack_addr: uint16 family, then per family


class AuthFraming(str, enum.Enum):
    """How the auth envelope names its plugin."""

    BY_TYPE = "by_type"              # plugin_type string + uint32 word (17.11, 18.08)
    BY_ID = "by_id"                  # uint32 plugin id (19.05+)


class Payload(str, enum.Enum):
    """What a sender of this version puts in the MUNGE credential's payload."""

    NONE = "none"                    # nothing (up to 20.02)
    MSG_TYPE = "msg_type"            # [0x01, msg_type in host order] (20.11, 21.08)
    K12 = "k12"                      # [hash plugin id, K12(body, be16 msg_type)] (22.05+)


class Refusal(str, enum.Enum):
    """What a controller of this release does with a request it will not take."""

    CLOSE = "close"                  # closes the connection without a byte
    RC_HINT = "rc_hint"              # RESPONSE_SLURM_RC, own version, SLURM_NO_AUTH_CRED
    RC_SAME_VERSION = "rc_same_version"  # as RC_HINT but in the request's version


@dataclass(frozen=True)
class Release:
    """One row of the table: one release and the header version it speaks."""

    code: int
    name: str
    min_code: int                    # SLURM_MIN_PROTOCOL_VERSION: oldest header accepted
    header: Header
    addr: Addr
    auth: AuthFraming
    payload: Payload
    checkpoint: bool                 # REQUEST_CHECKPOINT & co. exist
    no_auth_flag: bool               # SLURM_NO_AUTH_CRED known (header may skip the envelope)
    reply_without_cred: bool         # its replies in its own version carry no credential
    version_refusal: Refusal         # a header version outside [min_code, code]
    auth_refusal: Refusal            # a credential that does not verify
    #: the uint32 after the plugin name in a BY_TYPE envelope this release sends:
    #: auth_munge.c plugin_version = SLURM_VERSION_NUMBER of its last micro release
    #: (recorded: 17.11.13 0x110b0d, 18.08.9 0x120809); 19.05 / 20.02 write 0 there
    auth_word: int = 0

    @property
    def forward_has_net_cred(self) -> bool:
        return self.header in (Header.NET_CRED, Header.TREE_DEPTH)

    @property
    def forward_has_tree_depth(self) -> bool:
        return self.header is Header.TREE_DEPTH

    def accepts(self, code: int) -> bool:
        """unpack_header / check_header_version: current down to MIN, nothing newer."""
        return self.min_code <= code <= self.code


_H, _A, _F, _P, _R = Header, Addr, AuthFraming, Payload, Refusal
_CL, _HINT, _SAME = _R.CLOSE, _R.RC_HINT, _R.RC_SAME_VERSION

#: code, name, MIN, header, addr, auth, payload, checkpoint, no_auth_flag,
#: reply_without_cred, version refusal, auth refusal[, auth word] (protocol_specs/versions.md)
RELEASES: tuple[Release, ...] = tuple(Release(*row) for row in (
    (0x2000, "17.11", 0x1E00, _H.MSG_INDEX, _A.SOCKADDR_IN, _F.BY_TYPE, _P.NONE, True, False, False, _CL, _CL,
     0x110B0D),
    (0x2100, "18.08", 0x1F00, _H.MSG_INDEX, _A.SOCKADDR_IN, _F.BY_TYPE, _P.NONE, True, False, False, _CL, _CL,
     0x120809),
    (0x2200, "19.05", 0x2000, _H.MSG_INDEX, _A.SOCKADDR_IN, _F.BY_ID, _P.NONE, True, False, False, _CL, _CL),
    (0x2300, "20.02", 0x2100, _H.MSG_INDEX, _A.SOCKADDR_IN, _F.BY_ID, _P.NONE, False, False, False, _CL, _CL),
    (0x2400, "20.11", 0x2200, _H.MSG_INDEX, _A.FAMILY, _F.BY_ID, _P.MSG_TYPE, False, False, False, _CL, _CL),
    (0x2500, "21.08", 0x2300, _H.MSG_INDEX, _A.FAMILY, _F.BY_ID, _P.MSG_TYPE, False, False, False, _CL, _CL),
    (0x2600, "22.05", 0x2400, _H.NO_MSG_INDEX, _A.FAMILY, _F.BY_ID, _P.K12, False, False, False, _CL, _CL),
    (0x2700, "23.02", 0x2500, _H.NO_MSG_INDEX, _A.FAMILY, _F.BY_ID, _P.K12, False, True, True, _CL, _CL),
    (0x2800, "23.11", 0x2600, _H.NET_CRED, _A.FAMILY, _F.BY_ID, _P.K12, False, True, True, _CL, _CL),
    (0x2900, "24.05", 0x2700, _H.NET_CRED, _A.FAMILY, _F.BY_ID, _P.K12, False, True, True, _CL, _CL),
    (0x2A00, "24.11", 0x2700, _H.TREE_DEPTH, _A.FAMILY, _F.BY_ID, _P.K12, False, True, True, _HINT, _SAME),
    (0x2B00, "25.05", 0x2800, _H.TREE_DEPTH, _A.FAMILY, _F.BY_ID, _P.K12, False, True, True, _HINT, _SAME),
    (0x2C00, "25.11", 0x2900, _H.TREE_DEPTH, _A.FAMILY, _F.BY_ID, _P.K12, False, True, True, _HINT, _SAME),
    (0x2D00, "26.05", 0x2A00, _H.TREE_DEPTH, _A.FAMILY, _F.BY_ID, _P.K12, False, True, True, _CL, _SAME),
))
RELEASE_BY_CODE: dict[int, Release] = {r.code: r for r in RELEASES}
OLDEST = RELEASES[0].code
NEWEST = RELEASES[-1].code


def release_name(code: int) -> str:
    """"19.05" for a known code; for any other what it is and the code: "newer than 26.05,
    protocol 0x2e00", "no release, protocol 0x2a01" (between two releases)."""
    row = RELEASE_BY_CODE.get(code)
    return row.name if row is not None else f"{_what(code)}, protocol 0x{code:04x}"


def version_text(code: int) -> str:
    """"0x2200 (19.05)", "0x2e00 (newer than 26.05)": a code and what it is, the code said once."""
    row = RELEASE_BY_CODE.get(code)
    return f"0x{code:04x} ({row.name if row is not None else _what(code)})"


def _what(code: int) -> str:
    """What a code outside the table is: "no release" between two releases, else where it lies
    ("newer than 26.05", "older than 17.11")."""
    if OLDEST < code < NEWEST:
        return "no release"
    if code > NEWEST:
        return f"newer than {RELEASE_BY_CODE[NEWEST].name}"
    return f"older than {RELEASE_BY_CODE[OLDEST].name}"


def release_of(code: int) -> Release | None:
    return RELEASE_BY_CODE.get(code)


def oldest_peer(code: int) -> int | None:
    """The oldest protocol a controller of ``code`` takes from its daemons (its
    SLURM_MIN_PROTOCOL_VERSION); for a code past the table at least the newest release's (the
    minimum only rises); None for one the table cannot bound."""
    row = RELEASE_BY_CODE.get(code)
    if row is not None:
        return row.min_code
    return RELEASE_BY_CODE[NEWEST].min_code if code > NEWEST else None


def peers_may_checkpoint(code: int) -> bool:
    """Whether a daemon that a controller of protocol ``code`` (or newer) still takes may have
    checkpoint RPCs: its SLURM_MIN_PROTOCOL_VERSION is 19.05 or older (20.11 and before).  A
    slurmd older than that cannot register with it, so from 21.08 on no node of its cluster can
    checkpoint."""
    oldest = oldest_peer(code)
    return oldest is None or has_checkpoint(code) or has_checkpoint(oldest)


def has_checkpoint(code: int) -> bool:
    """Checkpoint RPCs exist in 17.11 - 19.05 (removed in 20.02); unknown codes: no."""
    row = RELEASE_BY_CODE.get(code)
    return bool(row and row.checkpoint)


def payload_kind(code: int) -> Payload:
    """What libslurm of ``code`` puts in a MUNGE payload; unknown codes raise KeyError."""
    return RELEASE_BY_CODE[code].payload


def has_family_addr(code: int) -> bool:
    return RELEASE_BY_CODE[code].addr is Addr.FAMILY


def plugin_named_by_id(code: int) -> bool:
    """19.05+ envelopes carry a plugin id; 17.11 / 18.08 a plugin type string."""
    return RELEASE_BY_CODE[code].auth is AuthFraming.BY_ID


# ----------------------------------------------------------------------------
# construct schemas per header version, derived from the rows
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """How one family of releases packs header and auth envelope."""

    msg_index: bool
    forward: Construct
    addr: Construct
    auth: str  # "by_type" (17.11/18.08) or "by_id" (19.05+)
    creds: dict
    bodies: dict
    no_auth_flag: bool = False  # 23.02+: SLURM_NO_AUTH_CRED in flags drops the envelope


_BY_TYPE_CREDS = {"auth/munge": munge_cred_t, "auth/none": none_cred_1711_t}
# auth/none keeps the 19.05 credential (uid, gid, hostname) through 26.05
_BY_ID_CREDS = {AuthPluginId.AUTH_PLUGIN_MUNGE: munge_cred_t,
                AuthPluginId.AUTH_PLUGIN_NONE: none_cred_1905_t}
_FORWARD = {Header.MSG_INDEX: forward_t, Header.NO_MSG_INDEX: forward_t,
            Header.NET_CRED: forward_t_2311, Header.TREE_DEPTH: forward_t_2411}
_ADDR = {Addr.SOCKADDR_IN: sockaddr_in_t, Addr.FAMILY: slurm_addr_t}
_CREDS = {AuthFraming.BY_TYPE: _BY_TYPE_CREDS, AuthFraming.BY_ID: _BY_ID_CREDS}


def _layout(row: Release) -> Layout:
    return Layout(row.header is Header.MSG_INDEX, _FORWARD[row.header], _ADDR[row.addr],
                  row.auth.value, _CREDS[row.auth],
                  CHECKPOINT_BODIES if row.checkpoint else COMMON_BODIES, row.no_auth_flag)


@dataclass(frozen=True)
class VersionSpec:
    """Everything the codec needs for one header version."""

    code: int
    name: str
    layout: Layout
    header: Construct = field(repr=False)
    auth: Construct = field(repr=False)
    frame: Construct = field(repr=False)
    compiled: FastCodec = field(repr=False)  # generated from frame (wire/_fastpath.py)
    head: Construct = field(repr=False)  # header + auth, for encoding
    compiled_head: FastCodec = field(repr=False)
    compiled_bodies: dict = field(repr=False)
    release: Release = field(repr=False, default=None)

    @property
    def has_checkpoint(self) -> bool:
        """Checkpoint RPCs exist up to 19.05 (removed in 20.02)."""
        return self.release.checkpoint

    @property
    def family_addr(self) -> bool:
        """orig_addr starts with an address family (20.11 and later headers)."""
        return self.release.addr is Addr.FAMILY

    @property
    def msg_type_offset(self) -> int:
        """Offset of header.msg_type in a frame (length prefix included)."""
        return 10 if self.layout.msg_index else 8


def _body_switch(bodies: dict) -> Construct:
    return Switch(this.header.msg_type, _plain(bodies),
                  default=Unknown("message type", lambda c: c["header"]["msg_type"]))


def _make_spec(row: Release, layout: Layout) -> VersionSpec:
    header = header_t(layout.bodies, msg_index=layout.msg_index,
                      forward=layout.forward, addr=layout.addr)
    auth = (auth_by_type_t if layout.auth == "by_type" else auth_by_id_t)(layout.creds)
    if layout.no_auth_flag:
        auth = If((this.header.flags & SLURM_NO_AUTH_CRED) == 0, auth)
    frame = Struct(
        "length" / u32,
        "header" / header,
        "auth" / auth,
        "body_start" / Tell,
        "body" / _body_switch(layout.bodies),
        "end" / Tell,
    )
    head = Struct("header" / header, "auth" / auth)
    bodies = {int(k): compile_schema(v) for k, v in layout.bodies.items()}
    return VersionSpec(row.code, row.name, layout, header, auth, frame, compile_schema(frame), head,
                       compile_schema(head), bodies, row)


VERSIONS: dict[int, VersionSpec] = {row.code: _make_spec(row, _layout(row)) for row in RELEASES}
VERSION_CODES: dict[str, int] = {spec.name: code for code, spec in VERSIONS.items()}

#: The releases whose controllers still have checkpoint RPCs.
CHECKPOINT_VERSIONS = tuple(r.name for r in RELEASES if r.checkpoint)


#: a release with its patch level, as slurmctld -V and scontrol version print it: "22.05.8"
#: (and a suffix after it, "23.11.0-0rc1")
_PATCH_LEVEL = re.compile(r"([0-9]{2}\.[0-9]{2})\.[0-9]+(?:[-.][0-9A-Za-z]+)*")


def without_patch_level(text: str) -> str:
    """``text`` without a patch level ("22.05.8" -> "22.05"); anything else as it is."""
    match = _PATCH_LEVEL.fullmatch(text)
    return match.group(1) if match else text


def version_code(version) -> int:
    """Accept "19.05", 0x2200 or a VersionSpec and return the numeric protocol version."""
    if isinstance(version, VersionSpec):
        return version.code
    if isinstance(version, str):
        try:
            return VERSION_CODES[version]
        except KeyError:
            raise ValueError(f"unknown Slurm release {version!r}; known: {', '.join(VERSION_CODES)}") from None
    if version in VERSIONS:
        return int(version)
    if isinstance(version, int):
        raise ValueError(f"unsupported protocol version {version_text(version)}")
    raise ValueError(f"unsupported protocol version {version!r}")
