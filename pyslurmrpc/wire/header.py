"""Header, address and auth-envelope schemas for every header layout.

The header's own version field picks the layout (pack_header in
src/common/slurm_protocol_pack.c switches on ``header->version``):

* layout A (17.11 - 21.08 headers): flags, msg_index, msg_type, body_length,
  forward part, ret_list, orig_addr.
* layout B (22.05 and 23.02 headers): as A without msg_index.
* layout C (23.11 and 24.05 headers): as B; the forward part also carries the
  alias ``net_cred`` string when the SLURM_PACK_ADDRS flag is set.
* layout D (24.11 - 26.05 headers): as C; the forward part ends with
  ``tree_depth``.

Which header version takes which layout is the ``header`` column of the
release table (pyslurmrpc.wire.versions).

orig_addr is a bare IPv4 address and port up to 20.02 headers
(slurm_pack_slurm_addr) and family-tagged from 20.11 headers (slurm_pack_addr).
"""

from __future__ import annotations

from construct import Array, If, Pass, Struct, Switch, this

from .constants import SLURM_PACK_ADDRS
from .primitives import FixedMem, SlurmString, Unknown, u16, u32, Int

i32 = Int(">", "l")

AF_INET = 2
AF_INET6 = 10


# construct expressions (not lambdas) so the frame schema compiles
_has_forward = this.cnt > 0


# slurm_protocol_socket.c slurm_pack_slurm_addr (17.11 - 20.02): sockaddr_in as uint32 + uint16
sockaddr_in_t = Struct("addr" / u32, "port" / u16)

# slurm_protocol_socket.c slurm_pack_addr (20.11+): uint16 family, then per family
slurm_addr_t = Struct(
    "family" / u16,
    "in" / Switch(
        this.family,
        {
            AF_INET: Struct("addr" / u32, "port" / u16),
            AF_INET6: Struct("addr" / FixedMem(16), "port" / u16),
        },
        default=Pass,
    ),
)

# slurm_protocol_pack.c pack_header: the forward part (forward_t), up to 23.02
forward_t = Struct(
    "cnt" / u16,
    "nodelist" / If(_has_forward, SlurmString()),
    "timeout" / If(_has_forward, u32),
    "tree_width" / If(_has_forward, u16),
)

# slurm_protocol_pack.c pack_header (23.11+): forward_t with the alias net_cred
forward_t_2311 = Struct(
    "cnt" / u16,
    "nodelist" / If(_has_forward, SlurmString()),
    "timeout" / If(_has_forward, u32),
    "tree_width" / If(_has_forward, u16),
    "net_cred" / If((this.cnt > 0) & ((this._.flags & SLURM_PACK_ADDRS) != 0), SlurmString()),
)


# slurm_protocol_pack.c pack_header (24.11+): the 23.11 forward part plus tree_depth
forward_t_2411 = Struct(
    "cnt" / u16,
    "nodelist" / If(_has_forward, SlurmString()),
    "timeout" / If(_has_forward, u32),
    "tree_width" / If(_has_forward, u16),
    "net_cred" / If((this.cnt > 0) & ((this._.flags & SLURM_PACK_ADDRS) != 0), SlurmString()),
    "tree_depth" / If(_has_forward, u16),
)


def _plain(table: dict) -> dict:
    """Enum keys become plain ints: compiled construct code embeds the keys' repr."""
    return {(int(k) if isinstance(k, int) else k): v for k, v in table.items()}


def ret_data_info_t(bodies: dict):
    """slurm_protocol_pack.c _pack_ret_list: one node's answer (err, type, node_name, body)."""
    return Struct(
        "err" / i32,
        "msg_type" / u16,
        "node_name" / SlurmString(),
        "body" / Switch(this.msg_type, _plain(bodies),
                        default=Unknown("ret_list message type", lambda c: c["msg_type"])),
    )


def header_t(bodies: dict, *, msg_index: bool, forward, addr):
    """slurm_protocol_pack.c pack_header / unpack_header for one layout."""
    fields = [
        "version" / u16,
        "flags" / u16,
        "msg_index" / u16 if msg_index else None,
        "msg_type" / u16,
        "body_length" / u32,
        "forward" / forward,
        "ret_cnt" / u16,
        "ret_list" / Array(this.ret_cnt, ret_data_info_t(bodies)),
        "orig_addr" / addr,
    ]
    return Struct(*[f for f in fields if f is not None])


# slurm_auth.c g_slurm_auth_pack + auth_munge.c slurm_auth_pack: one packstr
munge_cred_t = Struct("credential" / SlurmString())
# auth_none.c slurm_auth_pack (19.05): uid, gid, hostname
none_cred_1905_t = Struct("uid" / u32, "gid" / u32, "hostname" / SlurmString())
# auth_none.c slurm_auth_pack (17.11, 18.08): uid, gid
none_cred_1711_t = Struct("uid" / u32, "gid" / u32)


def auth_by_id_t(creds: dict):
    """slurm_auth.c g_slurm_auth_pack (19.05+): uint32 plugin id, then the plugin's credential."""
    return Struct(
        "plugin_id" / u32,
        "cred" / Switch(this.plugin_id, _plain(creds),
                        default=Unknown("auth plugin id", lambda c: c["plugin_id"])),
    )


def auth_by_type_t(creds: dict):
    """slurm_auth.c g_slurm_auth_pack (17.11, 18.08): plugin type string, uint32, credential."""
    return Struct(
        "plugin_type" / SlurmString(limit=256),
        "plugin_version" / u32,
        "cred" / Switch(this.plugin_type, creds,
                        default=Unknown("auth plugin type", lambda c: c["plugin_type"])),
    )
