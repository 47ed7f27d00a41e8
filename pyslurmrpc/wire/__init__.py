"""pyslurmrpc's sans-I/O wire layer: construct schemas, codec and framer.

Nothing in this package opens a socket, starts a thread or touches asyncio.

Public entry points:

* :func:`decode_message` - a whole frame (length prefix included) to a :class:`Message`.
* :func:`encode_message` - a :class:`Message` back to bytes (byte-exact round trip).
* :class:`Framer` - bytes in any chunking to whole frames.
"""

from .codec import decode_message, encode_message
from .constants import (
    INFINITE, MAX_MSG_SIZE, NO_VAL, NO_VAL16, SLURM_BATCH_SCRIPT, SLURM_EXTERN_CONT, SLURM_PENDING_STEP,
    AuthPluginId, CheckOp, MsgType,
)
from .framer import Framer
from .bodies import (
    BODY_TABLE, Body, CheckpointCompMsg, CheckpointMsg, CheckpointRespMsg, CheckpointTaskCompMsg,
    CheckpointTasksMsg, ForwardFailedMsg, PingMsg, ReturnCodeMsg,
)
from .types import Address, Auth, Forward, Header, Message, MungeAuthCred, NoneAuthCred, RetDataInfo, RetEntry
from .versions import CHECKPOINT_VERSIONS, VERSION_CODES, VERSIONS, version_code

__all__ = [
    "decode_message", "encode_message", "Framer", "Message", "Header", "Auth", "Forward",
    "MungeAuthCred", "NoneAuthCred", "RetDataInfo", "RetEntry", "Address", "Body", "BODY_TABLE",
    "CheckpointMsg", "CheckpointCompMsg", "CheckpointTaskCompMsg", "CheckpointTasksMsg",
    "CheckpointRespMsg", "ReturnCodeMsg", "PingMsg", "ForwardFailedMsg",
    "MsgType", "CheckOp", "AuthPluginId", "NO_VAL", "NO_VAL16",
    "SLURM_BATCH_SCRIPT", "SLURM_EXTERN_CONT", "SLURM_PENDING_STEP", "INFINITE", "MAX_MSG_SIZE", "VERSIONS",
    "VERSION_CODES", "CHECKPOINT_VERSIONS", "version_code",
]
