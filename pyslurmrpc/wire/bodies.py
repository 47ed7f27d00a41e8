"""Message body schemas, one per C struct (src/common/slurm_protocol_pack.c).

The checkpoint bodies are the same in 17.11, 18.08 and 19.05; REQUEST_PING has
no body and RESPONSE_SLURM_RC is one int32 in every release up to 25.05.
"""

from __future__ import annotations

from .fast import FastStruct as Struct

from .constants import MsgType
from .primitives import Int, SlurmString, time_t, u16, u32

i32 = Int(">", "l")

# slurm_protocol_pack.c _pack_checkpoint_msg / _unpack_checkpoint_msg
checkpoint_msg_t = Struct(
    "op" / u16,
    "data" / u16,
    "job_id" / u32,
    "step_id" / u32,
    "image_dir" / SlurmString(),
)

# slurm_protocol_pack.c _pack_checkpoint_comp / _unpack_checkpoint_comp
checkpoint_comp_msg_t = Struct(
    "job_id" / u32,
    "step_id" / u32,
    "error_code" / u32,
    "error_msg" / SlurmString(),
    "begin_time" / time_t,
)

# slurm_protocol_pack.c _pack_checkpoint_task_comp / _unpack_checkpoint_task_comp
checkpoint_task_comp_msg_t = Struct(
    "job_id" / u32,
    "step_id" / u32,
    "task_id" / u32,
    "error_code" / u32,
    "error_msg" / SlurmString(),
    "begin_time" / time_t,
)

# slurm_protocol_pack.c _pack_checkpoint_resp_msg / _unpack_checkpoint_resp_msg
checkpoint_resp_msg_t = Struct(
    "event_time" / time_t,
    "error_code" / u32,
    "error_msg" / SlurmString(),
)

# slurm_protocol_pack.c _pack_checkpoint_tasks_msg / _unpack_checkpoint_tasks_msg
checkpoint_tasks_msg_t = Struct(
    "job_id" / u32,
    "job_step_id" / u32,
    "timestamp" / time_t,
    "image_dir" / SlurmString(),
)

# slurm_protocol_pack.c _pack_return_code_msg (the C field is an int packed as uint32)
return_code_msg_t = Struct("return_code" / i32)

# slurm_protocol_pack.c pack_msg: REQUEST_PING carries no body
ping_msg_t = Struct()

# slurm_protocol_pack.c pack_msg: RESPONSE_FORWARD_FAILED (a ret_list entry for a node
# that could not be reached) carries no body either
forward_failed_msg_t = Struct()

#: Bodies every supported release knows.
COMMON_BODIES = {
    MsgType.REQUEST_PING: ping_msg_t,
    MsgType.RESPONSE_SLURM_RC: return_code_msg_t,
    MsgType.RESPONSE_FORWARD_FAILED: forward_failed_msg_t,
}

#: Bodies of the releases that still have checkpoint RPCs (17.11 - 19.05).
CHECKPOINT_BODIES = {
    **COMMON_BODIES,
    MsgType.REQUEST_CHECKPOINT: checkpoint_msg_t,
    MsgType.RESPONSE_CHECKPOINT: checkpoint_resp_msg_t,
    MsgType.REQUEST_CHECKPOINT_COMP: checkpoint_comp_msg_t,
    MsgType.REQUEST_CHECKPOINT_TASK_COMP: checkpoint_task_comp_msg_t,
    MsgType.RESPONSE_CHECKPOINT_COMP: checkpoint_resp_msg_t,
    MsgType.REQUEST_CHECKPOINT_TASKS: checkpoint_tasks_msg_t,
}
