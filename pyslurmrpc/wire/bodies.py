"""Message bodies: one schema and one frozen dataclass per C struct, and the body table.

Schemas follow src/common/slurm_protocol_pack.c, dataclasses the structs of
src/common/slurm_protocol_defs.h; a dataclass lists its fields in wire order
and is named after its struct (``checkpoint_msg_t`` -> :class:`CheckpointMsg`).
The checkpoint bodies are the same in 17.11, 18.08 and 19.05; REQUEST_PING has
no body and RESPONSE_SLURM_RC is one int32 in every release up to 25.05.

:data:`BODY_TABLE` maps each message type to its schema and dataclass: the
decoder returns that dataclass, the encoder accepts only it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple, Optional

from construct import Construct, Struct


from .constants import MsgType
from .primitives import Int, SlurmString, time_t, u16, u32

i32 = Int(">", "l")


@dataclass(frozen=True, kw_only=True)
class Body:
    """Base of every message body; a body with no fields is an instance of a subclass."""


# slurm_protocol_pack.c _pack_checkpoint_msg / _unpack_checkpoint_msg
checkpoint_msg_t = Struct(
    "op" / u16,
    "data" / u16,
    "job_id" / u32,
    "step_id" / u32,
    "image_dir" / SlurmString(),
)


@dataclass(frozen=True, kw_only=True)
class CheckpointMsg(Body):
    """checkpoint_msg_t: REQUEST_CHECKPOINT (``op`` is a :class:`~.constants.CheckOp`)."""

    op: int
    data: int
    job_id: int
    step_id: int
    image_dir: Optional[str] = None  # NULL: the job's or step's own checkpoint directory


# slurm_protocol_pack.c _pack_checkpoint_comp / _unpack_checkpoint_comp
checkpoint_comp_msg_t = Struct(
    "job_id" / u32,
    "step_id" / u32,
    "error_code" / u32,
    "error_msg" / SlurmString(),
    "begin_time" / time_t,
)


@dataclass(frozen=True, kw_only=True)
class CheckpointCompMsg(Body):
    """checkpoint_comp_msg_t: REQUEST_CHECKPOINT_COMP, a step's checkpoint has finished."""

    job_id: int
    step_id: int
    error_code: int
    error_msg: Optional[str] = None
    begin_time: int


# slurm_protocol_pack.c _pack_checkpoint_task_comp / _unpack_checkpoint_task_comp
checkpoint_task_comp_msg_t = Struct(
    "job_id" / u32,
    "step_id" / u32,
    "task_id" / u32,
    "error_code" / u32,
    "error_msg" / SlurmString(),
    "begin_time" / time_t,
)


@dataclass(frozen=True, kw_only=True)
class CheckpointTaskCompMsg(Body):
    """checkpoint_task_comp_msg_t: REQUEST_CHECKPOINT_TASK_COMP, one task's checkpoint has finished."""

    job_id: int
    step_id: int
    task_id: int
    error_code: int
    error_msg: Optional[str] = None
    begin_time: int


# slurm_protocol_pack.c _pack_checkpoint_resp_msg / _unpack_checkpoint_resp_msg
checkpoint_resp_msg_t = Struct(
    "event_time" / time_t,
    "error_code" / u32,
    "error_msg" / SlurmString(),
)


@dataclass(frozen=True, kw_only=True)
class CheckpointRespMsg(Body):
    """checkpoint_resp_msg_t: RESPONSE_CHECKPOINT and RESPONSE_CHECKPOINT_COMP."""

    event_time: int
    error_code: int
    error_msg: Optional[str] = None


# slurm_protocol_pack.c _pack_checkpoint_tasks_msg / _unpack_checkpoint_tasks_msg
checkpoint_tasks_msg_t = Struct(
    "job_id" / u32,
    "job_step_id" / u32,
    "timestamp" / time_t,
    "image_dir" / SlurmString(),
)


@dataclass(frozen=True, kw_only=True)
class CheckpointTasksMsg(Body):
    """checkpoint_tasks_msg_t: REQUEST_CHECKPOINT_TASKS, sent to each slurmd of a step."""

    job_id: int
    job_step_id: int
    timestamp: int
    image_dir: Optional[str] = None


# slurm_protocol_pack.c _pack_return_code_msg (the C field is an int packed as uint32)
return_code_msg_t = Struct("return_code" / i32)


@dataclass(frozen=True, kw_only=True)
class ReturnCodeMsg(Body):
    """return_code_msg_t: RESPONSE_SLURM_RC, a Slurm errno (0 for success)."""

    return_code: int


# slurm_protocol_pack.c pack_msg: REQUEST_PING carries no body
ping_msg_t = Struct()


@dataclass(frozen=True, kw_only=True)
class PingMsg(Body):
    """REQUEST_PING: no struct and no bytes (slurm_msg_t.data stays NULL)."""


# slurm_protocol_pack.c pack_msg: RESPONSE_FORWARD_FAILED (a ret_list entry for a node
# that could not be reached) carries no body either
forward_failed_msg_t = Struct()


@dataclass(frozen=True, kw_only=True)
class ForwardFailedMsg(Body):
    """RESPONSE_FORWARD_FAILED: no struct and no bytes; the ret_list entry's err says why."""


class BodyEntry(NamedTuple):
    """One row of the body table: how the body is packed and what it decodes to."""

    schema: Construct
    cls: type


def _entry(schema: Construct, cls: type) -> BodyEntry:
    """Pair a schema with its dataclass, refusing any difference in field names or order."""
    wire = [sc.name for sc in schema.subcons]
    typed = [f.name for f in fields(cls)]
    if wire != typed:
        raise TypeError(f"{cls.__name__} fields {typed} differ from its schema's {wire}")
    return BodyEntry(schema, cls)


#: message type -> (schema, dataclass), for every body any supported release knows
BODY_TABLE: dict[MsgType, BodyEntry] = {
    MsgType.REQUEST_PING: _entry(ping_msg_t, PingMsg),
    MsgType.RESPONSE_SLURM_RC: _entry(return_code_msg_t, ReturnCodeMsg),
    MsgType.RESPONSE_FORWARD_FAILED: _entry(forward_failed_msg_t, ForwardFailedMsg),
    MsgType.REQUEST_CHECKPOINT: _entry(checkpoint_msg_t, CheckpointMsg),
    MsgType.RESPONSE_CHECKPOINT: _entry(checkpoint_resp_msg_t, CheckpointRespMsg),
    MsgType.REQUEST_CHECKPOINT_COMP: _entry(checkpoint_comp_msg_t, CheckpointCompMsg),
    MsgType.REQUEST_CHECKPOINT_TASK_COMP: _entry(checkpoint_task_comp_msg_t, CheckpointTaskCompMsg),
    MsgType.RESPONSE_CHECKPOINT_COMP: _entry(checkpoint_resp_msg_t, CheckpointRespMsg),
    MsgType.REQUEST_CHECKPOINT_TASKS: _entry(checkpoint_tasks_msg_t, CheckpointTasksMsg),
}

#: message type (plain int) -> dataclass, what the decoder builds
BODY_CLASSES: dict[int, type] = {int(t): e.cls for t, e in BODY_TABLE.items()}

#: The message types every supported release knows (the rest exist up to 19.05 only).
_COMMON_TYPES = (MsgType.REQUEST_PING, MsgType.RESPONSE_SLURM_RC, MsgType.RESPONSE_FORWARD_FAILED)

#: Body schemas of every supported release.
COMMON_BODIES = {t: BODY_TABLE[t].schema for t in _COMMON_TYPES}

#: Body schemas of the releases that still have checkpoint RPCs (17.11 - 19.05).
CHECKPOINT_BODIES = {t: e.schema for t, e in BODY_TABLE.items()}
