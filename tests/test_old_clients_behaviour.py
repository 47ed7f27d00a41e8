"""Where libslurm 17.11-19.05 decides what a reply means, the client decides the same.

* An rc-returning call (disable, enable, create, vacate, requeue, restart,
  complete, task_complete) counts any reply that decodes the way
  slurm_get_return_code (src/common/slurm_protocol_defs.c) counts it: the
  code of a RESPONSE_SLURM_RC, 1001 for RESPONSE_FORWARD_FAILED, 0 for any
  other type.  able, error and ping still refuse a reply of another type.
* slurm_checkpoint_tasks takes a uint16_t step id (slurm/slurm.h.in) and packs
  it widened to 32 bits (_pack_checkpoint_tasks_msg): a larger id is refused
  before anything is sent.
"""

from __future__ import annotations

import pytest
from pyslurmrpc.wire import CheckpointRespMsg, ForwardFailedMsg, PingMsg, ReturnCodeMsg

from pyslurmrpc import Client, SlurmError, compat
from pyslurmrpc.auth.slurm_auth import NoneAuth
from pyslurmrpc.errors import InvalidArgumentError, UnexpectedMessageError
from pyslurmrpc.wire import Header, Message, MsgType, decode_message, encode_message

from peers import ReplayPeer

NONE = NoneAuth(uid=0, gid=0, hostname="ctl")
RELEASES = ["17.11", "18.08", "19.05"]

#: every rc-returning call, with arguments
RC_CALLS = [
    ("checkpoint_disable", (2, 0)),
    ("checkpoint_enable", (2, 0)),
    ("checkpoint_create", (2, 0, 10, "/ck")),
    ("checkpoint_vacate", (2, 0, 10, None)),
    ("checkpoint_requeue", (2, 10, None)),
    ("checkpoint_restart", (2, 0, True, None)),
    ("checkpoint_complete", (2, 0, 1795460000, 0, None)),
    ("checkpoint_task_complete", (2, 0, 1, 1795460000, 0, None)),
]

_BODIES = {
    MsgType.RESPONSE_CHECKPOINT: CheckpointRespMsg(event_time=7, error_code=3, error_msg="x"),
    MsgType.RESPONSE_CHECKPOINT_COMP: CheckpointRespMsg(event_time=7, error_code=3, error_msg="x"),
    MsgType.RESPONSE_FORWARD_FAILED: ForwardFailedMsg(),
    MsgType.REQUEST_PING: PingMsg(),
}


def answer_with(msg_type):
    """A peer behaviour: answer any request with a ``msg_type`` reply in the request's version."""
    def answer(request: bytes) -> bytes:
        version = decode_message(request).version
        return encode_message(Message(Header(version, int(msg_type)), NONE.create(version), _BODIES[msg_type]))
    return answer


def client(peer, release="19.05", **kw):
    return Client(peer.host, peer.port, auth="none", timeout=3, protocol_version=release,
                  nodes={"n1": (peer.host, peer.port)}, **kw)


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("msg_type", [MsgType.RESPONSE_CHECKPOINT, MsgType.REQUEST_PING])
@pytest.mark.parametrize("method,args", RC_CALLS, ids=[m for m, _ in RC_CALLS])
def test_rc_call_counts_a_reply_without_a_code_as_success(method, args, msg_type, release):
    with ReplayPeer(answer_with(msg_type)) as peer:
        assert getattr(client(peer, release), method)(*args) is None
        assert len(peer.received) == 1


@pytest.mark.parametrize("method,args", RC_CALLS, ids=[m for m, _ in RC_CALLS])
def test_rc_call_counts_forward_failed_as_a_connection_error(method, args):
    with ReplayPeer(answer_with(MsgType.RESPONSE_FORWARD_FAILED)) as peer:
        with pytest.raises(SlurmError) as info:
            getattr(client(peer), method)(*args)
    assert info.value.errno == 1001
    assert str(info.value) == "Communication connection failure"


def test_compat_follows_the_same_count():
    with ReplayPeer(answer_with(MsgType.RESPONSE_CHECKPOINT)) as peer:
        compat.slurm_init(client=client(peer))
        compat.slurm_seterrno(0)
        assert compat.slurm_checkpoint_disable(2, 0) == 0
        assert compat.slurm_get_errno() == 0
    with ReplayPeer(answer_with(MsgType.RESPONSE_FORWARD_FAILED)) as peer:
        compat.slurm_init(client=client(peer))
        assert compat.slurm_checkpoint_complete(2, 0, 1, 0, None) == -1
        assert compat.slurm_get_errno() == 1001


@pytest.mark.parametrize("method,args,reply", [
    ("checkpoint_able", (2, 0), MsgType.RESPONSE_CHECKPOINT_COMP),   # able: -1, *start_time = 0
    ("checkpoint_error", (2, 0), MsgType.RESPONSE_CHECKPOINT_COMP),  # error: 1000
    ("checkpoint_able", (2, 0), MsgType.RESPONSE_FORWARD_FAILED),
    ("ping", (), MsgType.RESPONSE_CHECKPOINT),                        # slurm_ping: 1000
])
def test_calls_that_read_the_type_still_refuse_another_type(method, args, reply):
    with ReplayPeer(answer_with(reply)) as peer:
        with pytest.raises(UnexpectedMessageError, match=f"message type {int(reply)}"):
            getattr(client(peer), method)(*args)


@pytest.mark.parametrize("release", RELEASES)
def test_tasks_step_id_is_sixteen_bits_widened(release):
    def rc0(request):
        version = decode_message(request).version
        return encode_message(Message(Header(version, int(MsgType.RESPONSE_SLURM_RC)), NONE.create(version),
                                      ReturnCodeMsg(return_code=0)))

    with ReplayPeer(rc0) as peer:
        assert client(peer, release).checkpoint_tasks(5, 65535, 1795460000, None, 10, "n1") == {"n1": 0}
    frame = peer.received[0]
    sent = decode_message(frame)
    assert sent.body.job_step_id == 65535
    # job_id, job_step_id (u32), timestamp (int64), image_dir (NULL: length 0) end the frame
    assert frame.endswith(b"\x00\x00\x00\x05" + b"\x00\x00\xff\xff" + (1795460000).to_bytes(8, "big")
                          + b"\x00\x00\x00\x00")


@pytest.mark.parametrize("step_id", [65536, 0xFFFFFFFE, -1])
def test_tasks_step_id_libslurm_cannot_send_is_refused_before_sending(step_id):
    with ReplayPeer(lambda request: None) as peer:
        with pytest.raises(InvalidArgumentError, match="step_id must be an integer from 0 to 65535"):
            client(peer).checkpoint_tasks(5, step_id, 1795460000, None, 10, "n1")
        assert peer.received == []
