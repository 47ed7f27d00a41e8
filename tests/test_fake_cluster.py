"""Several fake slurmds forwarding to each other; the simulated plugin end to end."""

from __future__ import annotations

import pytest

from pyslurmrpc.auth.munge_cred import ReplayCache
from pyslurmrpc.auth.slurm_auth import NoneAuth, OfflineMungeAuth
from pyslurmrpc.fake import Cluster, FakeSlurmctld, FakeSlurmd, SettableClock
from pyslurmrpc.fake.transport import exchange
from pyslurmrpc.testing.netio import free_port
from pyslurmrpc.wire import (
    SLURM_BATCH_SCRIPT, CheckOp, CheckpointCompMsg, CheckpointMsg, CheckpointTasksMsg, Forward, Header, Message,
    MsgType, decode_message, encode_message,
)

from test_fake_server import KEY, V1905, frame

T0 = 1_800_000_000
USER = 1000
TIMEOUT = 5.0


def tasks_frame(job, step, ts, forward=Forward(), uid=USER) -> bytes:
    body = CheckpointTasksMsg(job_id=job, job_step_id=step, timestamp=ts, image_dir=None)
    auth = NoneAuth(uid=uid, gid=0, hostname="t").create(V1905)
    return encode_message(Message(Header(version=V1905, msg_type=MsgType.REQUEST_CHECKPOINT_TASKS,
                                         forward=forward), auth, body))


@pytest.mark.parametrize("plugin,own_rc", [("ompi", 4027), ("simulated", 0)])
async def test_forwarding_tree(plugin, own_rc):
    cluster = Cluster()
    cluster.add_job(5, USER, "running", steps=[0], nodes=["n1", "n2", "n3", "n4"])
    daemons = [FakeSlurmd(cluster, f"n{i}", plugin=plugin) for i in range(1, 5)]
    for d in daemons:
        await d.start()
    cluster.node_addrs["n9"] = ("127.0.0.1", free_port())  # a node that is down
    try:
        fwd = Forward(cnt=5, nodelist="n[2-4],n9,zz", timeout=5000, tree_width=2)
        reply = decode_message(await exchange(*daemons[0].address, tasks_frame(5, 0, T0, fwd), TIMEOUT))
    finally:
        for d in daemons:
            await d.stop()
    assert reply.body.return_code == own_rc
    got = {(e.node_name, e.msg_type, e.err, getattr(e.body, "return_code", None)) for e in reply.header.ret_list}
    assert got == {
        ("n2", MsgType.RESPONSE_SLURM_RC, 0, own_rc), ("n3", MsgType.RESPONSE_SLURM_RC, 0, own_rc),
        ("n4", MsgType.RESPONSE_SLURM_RC, 0, own_rc),
        ("n9", MsgType.RESPONSE_FORWARD_FAILED, 1001, None),
        ("zz", MsgType.RESPONSE_FORWARD_FAILED, 1012, None),
    }
    assert len(reply.header.ret_list) == 5


def ckpt_frame(op, job, step, data=0, image_dir=None, uid=USER):
    return frame(MsgType.REQUEST_CHECKPOINT,
                 CheckpointMsg(op=op, data=data, job_id=job, step_id=step, image_dir=image_dir), uid=uid)


async def call(d, data):
    return decode_message(await exchange(*d.address, data, TIMEOUT))


def rc_of(msg):
    assert msg.header.msg_type == MsgType.RESPONSE_SLURM_RC
    return msg.body.return_code


async def test_simulated_checkpoint_end_to_end(tmp_path):
    clock = SettableClock(T0)
    cluster = Cluster(node_addrs={f"n{i}": ("127.0.0.1", free_port()) for i in range(1, 5)})
    job = cluster.add_job(7, USER, "running", batch=True, steps=[0, 1], nodes=["n3", "n4"])
    d = FakeSlurmctld(cluster, plugin="simulated", clock=clock)
    slurmd = FakeSlurmd(cluster, "n3", plugin="simulated")
    img = str(tmp_path)
    async with d, slurmd:
        able = await call(d, ckpt_frame(CheckOp.CHECK_ABLE, 7, 0))
        assert (able.header.msg_type, able.body.event_time) == (MsgType.RESPONSE_CHECKPOINT, 0)
        assert rc_of(await call(d, ckpt_frame(CheckOp.CHECK_CREATE, 7, 0, 10, img))) == 0
        assert (tmp_path / "7.0" / "image.json").exists()
        assert (await call(d, ckpt_frame(CheckOp.CHECK_ABLE, 7, 0))).body.event_time == T0
        for code, msg in ((3, "three"), (1, "one")):
            comp = CheckpointCompMsg(job_id=7, step_id=0, error_code=code, error_msg=msg, begin_time=T0)
            assert rc_of(await call(d, frame(MsgType.REQUEST_CHECKPOINT_COMP, comp, uid=USER))) == 0
        err = (await call(d, ckpt_frame(CheckOp.CHECK_ERROR, 7, 0))).body
        assert (err.error_code, err.error_msg) == (3, "three")  # the highest code is kept
        assert rc_of(await call(slurmd, tasks_frame(7, 0, T0))) == 0
        # a step-level vacate ends the step
        assert rc_of(await call(d, ckpt_frame(CheckOp.CHECK_VACATE, 7, 1, 10, img))) == 0
        assert rc_of(await call(d, ckpt_frame(CheckOp.CHECK_ABLE, 7, 1))) == 2017
        # the batch route: vacate the job, then restart it from its image
        batch = SLURM_BATCH_SCRIPT
        clock.advance(60)
        assert rc_of(await call(d, ckpt_frame(CheckOp.CHECK_VACATE, 7, batch, 10, img))) == 0
        assert (tmp_path / "7" / "image.json").exists() and job.state.finished
        assert rc_of(await call(d, ckpt_frame(CheckOp.CHECK_ABLE, 7, 0))) == 2021
        assert rc_of(await call(slurmd, tasks_frame(7, 0, T0 + 1))) == 2017
        assert rc_of(await call(d, ckpt_frame(CheckOp.CHECK_RESTART, 7, batch, 1, None, uid=0))) == 0
        assert job.nodes == ("n3", "n4") and set(job.steps) == {0, batch}
        assert rc_of(await call(d, ckpt_frame(CheckOp.CHECK_RESTART, 7, batch))) == 2088
        assert rc_of(await call(d, ckpt_frame(CheckOp.CHECK_VACATE, 7, batch, 10, img))) == 0
        assert rc_of(await call(d, ckpt_frame(CheckOp.CHECK_RESTART, 7, batch, 0))) == 0
        assert job.nodes == ("n1", "n2")  # not sticky: the cluster's first nodes (the fake has no scheduler)
        assert (await call(d, ckpt_frame(CheckOp.CHECK_ABLE, 7, 0))).header.msg_type == MsgType.RESPONSE_CHECKPOINT


async def test_forwarded_munge_credential_accepted_by_every_node():
    """One munged (here: one key and one replay cache) for all fake nodes: the forwarded
    copies of a credential are replays, which fake slurmds tolerate (MULTIPLE_SLURMD)."""
    cache = ReplayCache()
    cluster = Cluster()
    cluster.add_job(5, 0, "running", steps=[0], nodes=["n1", "n2", "n3"])
    daemons = [FakeSlurmd(cluster, f"n{i}", auth=OfflineMungeAuth(KEY, replay_cache=cache))
               for i in (1, 2, 3)]
    for d in daemons:
        await d.start()
    try:
        signer = OfflineMungeAuth(KEY, uid=0, gid=0)
        body = CheckpointTasksMsg(job_id=5, job_step_id=0, timestamp=T0, image_dir=None)
        msg = Message(Header(version=V1905, msg_type=MsgType.REQUEST_CHECKPOINT_TASKS,
                             forward=Forward(cnt=2, nodelist="n[2-3]", timeout=5000, tree_width=50)),
                      signer.create(V1905), body)
        reply = decode_message(await exchange(*daemons[0].address, encode_message(msg), TIMEOUT))
    finally:
        for d in daemons:
            await d.stop()
    assert reply.body.return_code == 4027
    assert sorted((e.node_name, e.body.return_code) for e in reply.header.ret_list) == [("n2", 4027), ("n3", 4027)]
