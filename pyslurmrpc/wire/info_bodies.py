"""Decoder-side body schemas: the small bodies a capture of any release shows most.

These bodies are read by ``pyslurmrpc decode`` only (the client and the fake
daemons keep the codec's body table, :mod:`.bodies`).  Each schema is keyed by
message-type *name*; :func:`decoder_bodies` turns the names into the numbers of
one release with :mod:`.msg_types_by_release`.  The layouts are the same in
every release 17.11 - 26.05 (protocol_specs/decoder_bodies.md cites each
function); :data:`SHOW_FLAG_NAMES` is the only per-release fact here.
"""

from __future__ import annotations

from functools import lru_cache

from construct import Array, If, Struct, this

from .bodies import ping_msg_t, return_code_msg_t
from .constants import NO_VAL
from .msg_types_by_release import MSG_TYPES_BY_RELEASE
from .versions import RELEASES
from .primitives import BadField, Int, SlurmString, time_t, u16, u32

i32 = Int(">", "l")


class ListCount(Int):
    """A uint32 element count where NO_VAL means "no list" and anything above it is refused."""

    maximum = NO_VAL

    def __init__(self):
        super().__init__(">", "L")

    def _parse(self, stream, context, path):
        start = stream.tell()
        value = super()._parse(stream, context, path)
        if value > self.maximum:
            raise BadField(f"list count 0x{value:08x} is above NO_VAL", path, start)
        return value


# slurm_protocol_pack.c _pack_job_info_request_msg / _unpack_job_info_request_msg
job_info_request_msg_t = Struct(
    "last_update" / time_t,
    "show_flags" / u16,
    "job_id_count" / ListCount(),
    "job_ids" / If(this.job_id_count != NO_VAL, Array(this.job_id_count, Int(">", "L"))),
)

# slurm_protocol_pack.c _pack_part_info_request_msg / _unpack_part_info_request_msg
part_info_request_msg_t = Struct("last_update" / time_t, "show_flags" / u16)

# slurm_protocol_pack.c _pack_node_info_request_msg / _unpack_node_info_request_msg
node_info_request_msg_t = Struct("last_update" / time_t, "show_flags" / u16)

# slurm_protocol_pack.c _pack_node_info_single_msg / _unpack_node_info_single_msg: scontrol show node NAME
node_info_single_msg_t = Struct("node_name" / SlurmString(), "show_flags" / u16)

# slurm_protocol_pack.c _pack_last_update_msg: REQUEST_BUILD_INFO and other "changed since" requests
last_update_msg_t = Struct("last_update" / time_t)

# slurm_protocol_pack.c _pack_return_code2_msg: RESPONSE_SLURM_RC_MSG, a return code with a message
return_code2_msg_t = Struct("return_code" / i32, "err_msg" / SlurmString())

# slurm_protocol_pack.c _pack_submit_response_msg (17.11 - 25.05 headers)
submit_response_msg_t = Struct(
    "job_id" / u32,
    "step_id" / u32,
    "error_code" / u32,
    "job_submit_user_msg" / SlurmString(),
)

# slurm_protocol_pack.c _pack_submit_response_msg (25.11+ headers): the step id is a whole
# slurm_step_id_t (pack_step_id_members: sluid, job_id, step_id, step_het_comp)
submit_response_msg_t_2511 = Struct(
    "sluid" / Int(">", "Q"),
    "job_id" / u32,
    "step_id" / u32,
    "step_het_comp" / u32,
    "error_code" / u32,
    "job_submit_user_msg" / SlurmString(),
)

# slurm_protocol_pack.c _pack_ping_slurmd_resp: a slurmd's answer to REQUEST_PING (also inside ret_list)
ping_slurmd_resp_msg_t = Struct("cpu_load" / u32, "free_mem" / Int(">", "Q"))

# slurm_protocol_pack.c _pack_ping_slurmd_resp (26.05+ headers): the node names itself
ping_slurmd_resp_msg_t_2605 = Struct("cpu_load" / u32, "free_mem" / Int(">", "Q"), "node_name" / SlurmString())

#: message-type name -> ((first release, last release, body schema), ...) where the layout changed
DECODER_BODIES_BY_RELEASE = {
    "RESPONSE_PING_SLURMD": (("17.11", "25.11", ping_slurmd_resp_msg_t),
                             ("26.05", "26.05", ping_slurmd_resp_msg_t_2605)),
    "RESPONSE_SUBMIT_BATCH_JOB": (("17.11", "25.05", submit_response_msg_t),
                                  ("25.11", "26.05", submit_response_msg_t_2511)),
}

#: message-type name -> body schema, in every release that names the type
DECODER_BODIES_BY_NAME = {
    "REQUEST_PING": ping_msg_t,
    "RESPONSE_SLURM_RC": return_code_msg_t,
    "RESPONSE_SLURM_RC_MSG": return_code2_msg_t,
    "REQUEST_JOB_INFO": job_info_request_msg_t,
    "REQUEST_PARTITION_INFO": part_info_request_msg_t,
    "REQUEST_NODE_INFO": node_info_request_msg_t,
    "REQUEST_NODE_INFO_SINGLE": node_info_single_msg_t,
    "REQUEST_BUILD_INFO": last_update_msg_t,
}

#: show_flags bits (slurm/slurm.h[.in] SHOW_*): bit -> (name, first release, last release)
SHOW_FLAG_NAMES = {
    0x0001: ("SHOW_ALL", "17.11", "26.05"),
    0x0002: ("SHOW_DETAIL", "17.11", "26.05"),
    0x0004: ("SHOW_DETAIL2", "17.11", "19.05"),
    0x0008: ("SHOW_MIXED", "17.11", "26.05"),
    0x0010: ("SHOW_LOCAL", "17.11", "26.05"),
    0x0020: ("SHOW_SIBLING", "17.11", "26.05"),
    0x0040: ("SHOW_FEDERATION", "17.11", "26.05"),
    0x0080: ("SHOW_FUTURE", "17.11", "26.05"),
}


#: header.flags bits (src/common/slurm_protocol_common.h): bit -> (name, first release, last release);
#: most are the sender's local flags, which some releases copy onto the wire
HEADER_FLAG_NAMES = {
    0x0001: ("SLURM_GLOBAL_AUTH_KEY", "17.11", "26.05"),
    0x0002: ("SLURMDBD_CONNECTION", "17.11", "26.05"),
    0x0004: ("SLURM_MSG_KEEP_BUFFER", "17.11", "26.05"),
    0x0008: ("SLURM_DROP_PRIV", "17.11", "24.05"),
    0x0010: ("USE_BCAST_NETWORK", "20.02", "26.05"),
    0x0020: ("CTLD_QUEUE_PROCESSING", "20.11", "26.05"),
    0x0040: ("SLURM_NO_AUTH_CRED", "23.02", "26.05"),
    0x0080: ("SLURM_PACK_ADDRS", "23.11", "26.05"),
}

#: step ids with a name (slurm/slurm.h[.in] SLURM_*_STEP / SLURM_BATCH_SCRIPT / SLURM_EXTERN_CONT):
#: (first release, last release, {value: name}); 20.11 moved them below NO_VAL
STEP_ID_NAMES = (
    ("17.11", "20.02", {0xFFFFFFFD: "SLURM_PENDING_STEP", 0xFFFFFFFE: "NO_VAL / SLURM_BATCH_SCRIPT (batch step)",
                        0xFFFFFFFF: "INFINITE / SLURM_EXTERN_CONT (extern step)"}),
    ("20.11", "26.05", {0xFFFFFFFA: "SLURM_INTERACTIVE_STEP", 0xFFFFFFFB: "SLURM_BATCH_SCRIPT (batch step)",
                        0xFFFFFFFC: "SLURM_EXTERN_CONT (extern step)", 0xFFFFFFFD: "SLURM_PENDING_STEP"}),
)


def _release_index(version: int) -> int:
    return [r.code for r in RELEASES].index(version)


def in_span(version: int, first: str, last: str) -> bool:
    """True when protocol ``version`` belongs to a release from ``first`` to ``last``."""
    names = [r.name for r in RELEASES]
    return names.index(first) <= _release_index(version) <= names.index(last)


@lru_cache(maxsize=None)
def decoder_bodies(version: int) -> dict[int, object]:
    """message-type number -> decoder body schema, for the release of protocol ``version``."""
    names = MSG_TYPES_BY_RELEASE.get(version, {})
    table = {number: DECODER_BODIES_BY_NAME[name] for number, name in names.items()
             if name in DECODER_BODIES_BY_NAME}
    for number, name in names.items():
        for first, last, schema in DECODER_BODIES_BY_RELEASE.get(name, ()):
            if in_span(version, first, last):
                table[number] = schema
    return table
