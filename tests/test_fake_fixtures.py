"""Acceptance: the fake, seeded with the recordings' cluster, reproduces every recorded outcome.

Each fixtures/NAME.request.bin is replayed over TCP, in manifest order, to a
FakeSlurmctld / FakeSlurmd (plugin ompi) that verifies the recorded MUNGE
credentials offline; the reply's type and body must equal the recorded reply.
A second run rebuilds every request from the manifest's arguments with
auth/none and the recorded caller uid.
"""

from __future__ import annotations

from pyslurmrpc.auth.slurm_auth import NoneAuth, OfflineMungeAuth
from pyslurmrpc.fake import FakeSlurmctld, FakeSlurmd, SettableClock, fixture_cluster
from pyslurmrpc.fake.transport import exchange
from pyslurmrpc.wire import (
    SLURM_BATCH_SCRIPT, Body, CheckOp, CheckpointCompMsg, CheckpointMsg, CheckpointTaskCompMsg,
    CheckpointTasksMsg, Header, Message, MsgType, PingMsg, decode_message, encode_message, version_code,
)

from fixtures_data import FIXTURES, manifest, recording

#: the wall-clock second at which create_while_disabled was served (able_enabled shows it)
RECORDED_NOW = 1795462038
TIMEOUT = 5.0


async def _daemons(auth):
    cluster = fixture_cluster()
    ctld = FakeSlurmctld(cluster, plugin="ompi", auth=auth, clock=SettableClock(RECORDED_NOW))
    slurmd = FakeSlurmd(cluster, "localhost", plugin="ompi", auth=auth)
    await ctld.start()
    await slurmd.start()
    return ctld, slurmd


async def _replay_all(build_request, auth):
    ctld, slurmd = await _daemons(auth)
    try:
        for entry in manifest():
            target = slurmd if entry["target"] == "slurmd" else ctld
            reply = decode_message(await exchange(*target.address, build_request(entry), TIMEOUT))
            expected = decode_message(recording(entry["name"], "response"))
            assert (entry["name"], reply.header.msg_type, reply.body) == \
                   (entry["name"], expected.header.msg_type, expected.body)
            assert reply.header.version == expected.header.version
            if entry["target"] == "slurmd":  # orig_addr = the requester as seen by slurmd
                assert reply.header.orig_addr.host == expected.header.orig_addr.host == "127.0.0.1"
    finally:
        await ctld.stop()
        await slurmd.stop()


async def test_recorded_requests_reproduce_recorded_replies():
    auth = OfflineMungeAuth(FIXTURES / "munge.key", ignore_expiry=True)
    await _replay_all(lambda entry: recording(entry["name"], "request"), auth)


# --- the same, with requests rebuilt from the manifest's arguments ------------------
_OPS = {
    "slurm_checkpoint_able": CheckOp.CHECK_ABLE, "slurm_checkpoint_disable": CheckOp.CHECK_DISABLE,
    "slurm_checkpoint_enable": CheckOp.CHECK_ENABLE, "slurm_checkpoint_create": CheckOp.CHECK_CREATE,
    "slurm_checkpoint_vacate": CheckOp.CHECK_VACATE, "slurm_checkpoint_restart": CheckOp.CHECK_RESTART,
    "slurm_checkpoint_error": CheckOp.CHECK_ERROR, "slurm_checkpoint_requeue": CheckOp.CHECK_REQUEUE,
}


def _body(entry) -> tuple[int, Body]:
    """What libslurm 19.05 packs for the manifest's call (spec §14)."""
    fn, a = entry["function"], entry["args"]
    if fn in _OPS:
        data = a.get("stick", a.get("max_wait", 0))
        return MsgType.REQUEST_CHECKPOINT, CheckpointMsg(
            op=_OPS[fn], data=data, job_id=a["job_id"], step_id=a.get("step_id", SLURM_BATCH_SCRIPT),
            image_dir=a.get("image_dir"))
    comp = dict(job_id=a.get("job_id"), step_id=a.get("step_id"), error_code=a.get("error_code"),
                error_msg=a.get("error_msg"), begin_time=a.get("begin_time"))
    if fn == "slurm_checkpoint_complete":
        return MsgType.REQUEST_CHECKPOINT_COMP, CheckpointCompMsg(**comp)
    if fn == "slurm_checkpoint_task_complete":
        return MsgType.REQUEST_CHECKPOINT_TASK_COMP, CheckpointTaskCompMsg(**comp, task_id=a["task_id"])
    if fn == "slurm_checkpoint_tasks":
        return MsgType.REQUEST_CHECKPOINT_TASKS, CheckpointTasksMsg(
            job_id=a["job_id"], job_step_id=a["step_id"], timestamp=a["begin_time"], image_dir=a["image_dir"])
    return MsgType.REQUEST_PING, PingMsg()


def _rebuilt(entry) -> bytes:
    msg_type, body = _body(entry)
    auth = NoneAuth(uid=entry.get("caller_uid", 0), gid=0, hostname="vm").create(version_code("19.05"))
    return encode_message(Message(Header(version=version_code("19.05"), msg_type=msg_type), auth, body))


async def test_rebuilt_requests_reproduce_recorded_replies():
    await _replay_all(_rebuilt, NoneAuth(uid=0, gid=0))


def test_rebuilt_bodies_equal_recorded_bodies():
    """The rebuild above is what libslurm sent (so the second run tests the same thing)."""
    for entry in manifest():
        msg_type, body = _body(entry)
        recorded = decode_message(recording(entry["name"], "request"))
        assert (entry["name"], recorded.header.msg_type, recorded.body) == \
               (entry["name"], msg_type, body)
