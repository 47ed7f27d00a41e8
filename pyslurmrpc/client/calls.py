"""The request/response logic of every call, with no I/O.

A :class:`Call` says which message to send and how to read the answer; both
the blocking and the asyncio client run the same Call objects.  The reading
rules are those of src/api/checkpoint.c (19.05) and are tabled in
protocol_specs/client_behaviour.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InvalidArgumentError, SlurmError, UnexpectedMessageError
from ..wire import CheckOp, Message, MsgType, SLURM_BATCH_SCRIPT
from ..wire.bodies import (
    Body, CheckpointCompMsg, CheckpointMsg, CheckpointTaskCompMsg, CheckpointTasksMsg, PingMsg,
)
from . import validate
from .fanout import SLURM_COMMUNICATIONS_CONNECTION_ERROR

U16, U32 = 0xFFFF, 0xFFFFFFFF
I64 = (-2**63, 2**63 - 1)


@dataclass(frozen=True)
class Call:
    """One RPC: the request to send and the rule that turns the reply into a result."""

    name: str
    msg_type: MsgType
    body: Body
    read_reply: Callable[[Message], Any]


# ---------------------------------------------------------------------------
# argument checks: a bad argument is named before anything is sent
# ---------------------------------------------------------------------------
def _uint(name: str, value, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise InvalidArgumentError(f"{name} must be an integer from 0 to {limit}, not {value!r}")
    return value


def _time(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not I64[0] <= value <= I64[1]:
        raise InvalidArgumentError(f"{name} must be a time in seconds (int64), not {value!r}")
    return value


def _text(name: str, value):
    return validate.text(value, name)


# ---------------------------------------------------------------------------
# reply rules (src/api/checkpoint.c)
# ---------------------------------------------------------------------------
def return_code(reply: Message) -> int:
    """The code of a RESPONSE_SLURM_RC (slurm_get_return_code)."""
    return reply.body.return_code


def slurm_get_return_code(reply: Message) -> int:
    """slurm_protocol_defs.c slurm_get_return_code (17.11-19.05) for any reply that decoded.

    A node that could not be reached (FORWARD_FAILED) counts as a connection
    error; every type without a return code counts as success, as libslurm's
    rc-returning calls count it.
    """
    if reply.msg_type == MsgType.RESPONSE_SLURM_RC:
        return return_code(reply)
    if reply.msg_type == MsgType.RESPONSE_FORWARD_FAILED:
        return SLURM_COMMUNICATIONS_CONNECTION_ERROR
    return 0


def _rc_or_raise(reply: Message):
    code = return_code(reply)
    if code:
        raise SlurmError(code)
    return None


def _any_rc_or_raise(reply: Message):
    """_checkpoint_op, complete, task_complete: slurm_send_recv_controller_rc_msg's code."""
    code = slurm_get_return_code(reply)
    if code:
        raise SlurmError(code)
    return None


def _unexpected(call_name: str, reply: Message):
    raise UnexpectedMessageError(
        f"{call_name} cannot be answered with message type {reply.msg_type}", field="header.msg_type")


def _reader(call_name: str, rules: dict) -> Callable[[Message], Any]:
    def read(reply: Message):
        rule = rules.get(reply.msg_type, rules.get(_ANY_TYPE))
        return rule(reply) if rule else _unexpected(call_name, reply)
    return read


_ANY_TYPE = None  # key of the rule for every reply type without a rule of its own
#: rc-returning calls take any reply, counted by slurm_get_return_code
_RC_ONLY = {_ANY_TYPE: _any_rc_or_raise}

#: slurm_checkpoint_able: RESPONSE_CHECKPOINT -> its event_time; an RC 0 reply -> 0
_ABLE = {MsgType.RESPONSE_CHECKPOINT: lambda r: r.body.event_time,
         MsgType.RESPONSE_SLURM_RC: lambda r: _rc_or_raise(r) or 0}
#: slurm_checkpoint_error: RESPONSE_CHECKPOINT -> (code, msg or ""); an RC 0 reply -> (0, "")
_ERROR = {MsgType.RESPONSE_CHECKPOINT: lambda r: (r.body.error_code, r.body.error_msg or ""),
          MsgType.RESPONSE_SLURM_RC: lambda r: _rc_or_raise(r) or (0, "")}
_PING = {MsgType.RESPONSE_SLURM_RC: lambda r: _rc_or_raise(r) or True}


def _checkpoint(name: str, op: CheckOp, job_id, step_id, data=0, image_dir=None, rules=_RC_ONLY) -> Call:
    body = CheckpointMsg(op=int(op), data=_uint("data", data, U16), job_id=_uint("job_id", job_id, U32),
                         step_id=_uint("step_id", step_id, U32), image_dir=_text("image_dir", image_dir))
    return Call(name, MsgType.REQUEST_CHECKPOINT, body, _reader(name, rules))


def able(job_id, step_id) -> Call:
    return _checkpoint("checkpoint_able", CheckOp.CHECK_ABLE, job_id, step_id, rules=_ABLE)


def disable(job_id, step_id) -> Call:
    return _checkpoint("checkpoint_disable", CheckOp.CHECK_DISABLE, job_id, step_id)


def enable(job_id, step_id) -> Call:
    return _checkpoint("checkpoint_enable", CheckOp.CHECK_ENABLE, job_id, step_id)


def create(job_id, step_id, max_wait, image_dir=None) -> Call:
    return _checkpoint("checkpoint_create", CheckOp.CHECK_CREATE, job_id, step_id,
                       _uint("max_wait", max_wait, U16), image_dir)


def vacate(job_id, step_id, max_wait, image_dir=None) -> Call:
    return _checkpoint("checkpoint_vacate", CheckOp.CHECK_VACATE, job_id, step_id,
                       _uint("max_wait", max_wait, U16), image_dir)


def requeue(job_id, max_wait, image_dir=None) -> Call:
    # libslurm always sends the batch step for requeue
    return _checkpoint("checkpoint_requeue", CheckOp.CHECK_REQUEUE, job_id, SLURM_BATCH_SCRIPT,
                       _uint("max_wait", max_wait, U16), image_dir)


def restart(job_id, step_id, stick=False, image_dir=None) -> Call:
    return _checkpoint("checkpoint_restart", CheckOp.CHECK_RESTART, job_id, step_id, _stick(stick), image_dir)


def _stick(value) -> int:
    """slurm_checkpoint_restart's ``uint16_t stick``, sent as the op's data (checkpoint.c): the
    controller keeps the job on its nodes only when it is 1 (job_mgr.c job_restart), so True/False
    or 1/0 are taken and anything else is refused rather than sent to be ignored."""
    if value in (True, False) and isinstance(value, int):     # bool, or the int 0 or 1
        return int(value)
    raise InvalidArgumentError(f"stick must be True or False (or 1 or 0), not {value!r}")


def error(job_id, step_id) -> Call:
    return _checkpoint("checkpoint_error", CheckOp.CHECK_ERROR, job_id, step_id, rules=_ERROR)


def complete(job_id, step_id, begin_time, error_code, error_msg=None) -> Call:
    body = CheckpointCompMsg(job_id=_uint("job_id", job_id, U32), step_id=_uint("step_id", step_id, U32),
                             error_code=_uint("error_code", error_code, U32),
                             error_msg=_text("error_msg", error_msg), begin_time=_time("begin_time", begin_time))
    return Call("checkpoint_complete", MsgType.REQUEST_CHECKPOINT_COMP, body,
                _reader("checkpoint_complete", _RC_ONLY))


def task_complete(job_id, step_id, task_id, begin_time, error_code, error_msg=None) -> Call:
    body = CheckpointTaskCompMsg(
        job_id=_uint("job_id", job_id, U32), step_id=_uint("step_id", step_id, U32),
        task_id=_uint("task_id", task_id, U32), error_code=_uint("error_code", error_code, U32),
        error_msg=_text("error_msg", error_msg), begin_time=_time("begin_time", begin_time))
    return Call("checkpoint_task_complete", MsgType.REQUEST_CHECKPOINT_TASK_COMP, body,
                _reader("checkpoint_task_complete", _RC_ONLY))


def tasks(job_id, step_id, begin_time, image_dir=None) -> Call:
    """REQUEST_CHECKPOINT_TASKS for one slurmd; the fan-out lives in fanout.py.

    slurm_checkpoint_tasks takes a uint16_t step id (slurm.h.in, 17.11-19.05) and
    sends it widened to 32 bits: larger ids cannot be sent by libslurm, so they
    are refused here rather than sent.
    """
    body = CheckpointTasksMsg(job_id=_uint("job_id", job_id, U32), job_step_id=_uint("step_id", step_id, U16),
                              timestamp=_time("begin_time", begin_time), image_dir=_text("image_dir", image_dir))
    return Call("checkpoint_tasks", MsgType.REQUEST_CHECKPOINT_TASKS, body, lambda reply: reply)


def ping() -> Call:
    """REQUEST_PING (no arguments: one Call, frozen, serves every ping)."""
    return _PING_CALL


_PING_CALL = Call("ping", MsgType.REQUEST_PING, PingMsg(), _reader("ping", _PING))
