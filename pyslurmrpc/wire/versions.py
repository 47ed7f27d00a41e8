"""The protocol versions pyslurmrpc speaks, as one table.

A protocol version is ``(major_index << 8)``: src/common/slurm_protocol_common.h
(SLURM_19_05_PROTOCOL_VERSION is (34 << 8) and so on).  Each row says which
header layout, orig_addr packing, auth framing and message bodies belong to a
header carrying that version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from construct import Construct, If, Switch, Tell, this
from .fast import FastStruct as Struct

from .bodies import CHECKPOINT_BODIES, COMMON_BODIES
from .constants import SLURM_NO_AUTH_CRED, AuthPluginId
from .header import (
    _plain, auth_by_id_t, auth_by_type_t, forward_t, forward_t_2311, forward_t_2411, header_t,
    munge_cred_t,
    none_cred_1711_t, none_cred_1905_t, slurm_addr_t, sockaddr_in_t,
)
from .primitives import Unknown, u32


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
_BY_ID_1905 = {AuthPluginId.AUTH_PLUGIN_MUNGE: munge_cred_t,
               AuthPluginId.AUTH_PLUGIN_NONE: none_cred_1905_t}
_BY_ID_MODERN = _BY_ID_1905  # auth/none keeps the 19.05 credential through 25.05

_LAYOUTS = {
    "17.11": Layout(True, forward_t, sockaddr_in_t, "by_type", _BY_TYPE_CREDS, CHECKPOINT_BODIES),
    "19.05": Layout(True, forward_t, sockaddr_in_t, "by_id", _BY_ID_1905, CHECKPOINT_BODIES),
    "20.02": Layout(True, forward_t, sockaddr_in_t, "by_id", _BY_ID_MODERN, COMMON_BODIES),
    "20.11": Layout(True, forward_t, slurm_addr_t, "by_id", _BY_ID_MODERN, COMMON_BODIES),
    "22.05": Layout(False, forward_t, slurm_addr_t, "by_id", _BY_ID_MODERN, COMMON_BODIES),
    "23.02": Layout(False, forward_t, slurm_addr_t, "by_id", _BY_ID_MODERN, COMMON_BODIES, True),
    "23.11": Layout(False, forward_t_2311, slurm_addr_t, "by_id", _BY_ID_MODERN, COMMON_BODIES, True),
    "24.11": Layout(False, forward_t_2411, slurm_addr_t, "by_id", _BY_ID_MODERN, COMMON_BODIES, True),
}

#: (protocol version, release name, layout name)
_RELEASES = [
    (0x2000, "17.11", "17.11"),
    (0x2100, "18.08", "17.11"),
    (0x2200, "19.05", "19.05"),
    (0x2300, "20.02", "20.02"),
    (0x2400, "20.11", "20.11"),
    (0x2500, "21.08", "20.11"),
    (0x2600, "22.05", "22.05"),
    (0x2700, "23.02", "23.02"),
    (0x2800, "23.11", "23.11"),
    (0x2900, "24.05", "23.11"),
    (0x2A00, "24.11", "24.11"),
    (0x2B00, "25.05", "24.11"),
]


@dataclass(frozen=True)
class VersionSpec:
    """Everything the codec needs for one header version."""

    code: int
    name: str
    layout: Layout
    header: Construct = field(repr=False)
    auth: Construct = field(repr=False)
    frame: Construct = field(repr=False)
    compiled: Construct = field(repr=False)
    head: Construct = field(repr=False)  # header + auth, for encoding
    compiled_head: Construct = field(repr=False)
    compiled_bodies: dict = field(repr=False)

    @property
    def has_checkpoint(self) -> bool:
        """Checkpoint RPCs exist up to 19.05 (removed in 20.02)."""
        return self.layout.bodies is CHECKPOINT_BODIES

    @property
    def family_addr(self) -> bool:
        """orig_addr starts with an address family (20.11 and later headers)."""
        return self.layout.addr is slurm_addr_t

    @property
    def msg_type_offset(self) -> int:
        """Offset of header.msg_type in a frame (length prefix included)."""
        return 10 if self.layout.msg_index else 8


def _body_switch(bodies: dict) -> Construct:
    return Switch(this.header.msg_type, _plain(bodies),
                  default=Unknown("message type", lambda c: c["header"]["msg_type"]))


def _make_spec(code: int, name: str, layout: Layout) -> VersionSpec:
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
    bodies = {int(k): v.compile() for k, v in layout.bodies.items()}
    return VersionSpec(code, name, layout, header, auth, frame, frame.compile(), head, head.compile(), bodies)


VERSIONS: dict[int, VersionSpec] = {
    code: _make_spec(code, name, _LAYOUTS[layout]) for code, name, layout in _RELEASES
}
VERSION_CODES: dict[str, int] = {spec.name: code for code, spec in VERSIONS.items()}

#: The releases whose controllers still have checkpoint RPCs.
CHECKPOINT_VERSIONS = tuple(n for n, c in VERSION_CODES.items() if VERSIONS[c].has_checkpoint)


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
    raise ValueError(f"unsupported protocol version {version!r}")
