"""Codec figures: decode and encode time per message, compiled fast path and interpreted checker."""

from __future__ import annotations

from ..wire import (
    VERSIONS, CheckpointCompMsg, CheckpointMsg, CheckpointRespMsg, CheckpointTasksMsg, Header, Message,
    MsgType, MungeAuthCred, PingMsg, ReturnCodeMsg, decode_message, encode_message, version_code,
)
from ..defaults import CHECKPOINT_VERSION
from .timing import per_call_us, taking_turns

#: the checkpoint calls' header version (19.05)
VERSION = version_code(CHECKPOINT_VERSION)
_CRED = "MUNGE:" + "A" * 136 + ":"  # the size of a real credential
_AUTH = MungeAuthCred(credential=_CRED)

#: one message of each type, as the client and the daemons send them
SAMPLES = {
    "REQUEST_CHECKPOINT": (MsgType.REQUEST_CHECKPOINT,
                           CheckpointMsg(op=3, data=10, job_id=2, step_id=0, image_dir="/opt/s19/ckpt")),
    "RESPONSE_CHECKPOINT": (MsgType.RESPONSE_CHECKPOINT,
                            CheckpointRespMsg(event_time=1795462038, error_code=0, error_msg=None)),
    "REQUEST_CHECKPOINT_COMP": (MsgType.REQUEST_CHECKPOINT_COMP,
                                CheckpointCompMsg(job_id=2, step_id=0, error_code=5, error_msg="disk quota exceeded",
                                                  begin_time=1795460000)),
    "REQUEST_CHECKPOINT_TASKS": (MsgType.REQUEST_CHECKPOINT_TASKS,
                                 CheckpointTasksMsg(job_id=5, job_step_id=0, timestamp=1795460000, image_dir=None)),
    "RESPONSE_SLURM_RC": (MsgType.RESPONSE_SLURM_RC, ReturnCodeMsg(return_code=0)),
    "REQUEST_PING": (MsgType.REQUEST_PING, PingMsg()),
}


def run(n: int = 20000) -> list[dict]:
    """Per message type: µs to decode, to encode, both, and the interpreted parse for comparison."""
    rows = []
    spec = VERSIONS[VERSION]
    for name, (msg_type, body) in SAMPLES.items():
        message = Message(Header(VERSION, msg_type), _AUTH, body)
        frame = encode_message(message)
        decoded = decode_message(frame)
        # the three take turns round by round: separate best-of-3 runs could put "both" under
        # "decode" alone when the machine slowed down between them
        us = taking_turns({"decode": lambda: decode_message(frame), "encode": lambda: encode_message(decoded),
                           "both": lambda: encode_message(decode_message(frame))}, n)
        interp = per_call_us(lambda: spec.frame.parse(frame), max(n // 10, 100))
        rows.append({"message": name, "bytes": len(frame), "decode_us": us["decode"], "encode_us": us["encode"],
                     "decode_plus_encode_us": us["both"], "interpreted_parse_us": interp})
    return rows
