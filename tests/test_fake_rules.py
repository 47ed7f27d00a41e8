"""The sans-I/O checkpoint rules of the fake slurmctld/slurmd (spec slurmctld_checkpoint.md)."""

from __future__ import annotations

import pytest

from pyslurmrpc.fake import Cluster, SettableClock, codes, fixture_cluster
from pyslurmrpc.fake.node_rules import NodeRules
from pyslurmrpc.fake.plugins import NonePlugin, OmpiPlugin
from pyslurmrpc.fake.rules import Controller
from pyslurmrpc.wire import (
    SLURM_BATCH_SCRIPT, CheckOp, CheckpointCompMsg, CheckpointMsg, CheckpointRespMsg,
    CheckpointTaskCompMsg, CheckpointTasksMsg, MsgType, PingMsg,
)

T0 = 1_700_000_000
USER, OTHER, SLURM_USER = 1000, 1001, 500
RC, CKPT = MsgType.RESPONSE_SLURM_RC, MsgType.RESPONSE_CHECKPOINT


def ckpt(ctl, uid, op, job=2, step=0, data=0, image_dir=None):
    return ctl.handle(uid, MsgType.REQUEST_CHECKPOINT,
                      CheckpointMsg(op=op, data=data, job_id=job, step_id=step, image_dir=image_dir))


def comp(ctl, uid, job=2, step=0, code=0, msg=None, task=None):
    fields = dict(job_id=job, step_id=step, error_code=code, error_msg=msg, begin_time=0)
    if task is None:
        return ctl.handle(uid, MsgType.REQUEST_CHECKPOINT_COMP, CheckpointCompMsg(**fields))
    return ctl.handle(uid, MsgType.REQUEST_CHECKPOINT_TASK_COMP, CheckpointTaskCompMsg(**fields, task_id=task))


def rc(reply):
    assert reply.msg_type == RC, reply
    return reply.body.return_code


def user_cluster() -> Cluster:
    """Jobs of an ordinary user; SlurmUser is not root, so A4 and A5 differ."""
    c = Cluster(slurm_user=SLURM_USER)
    c.add_job(2, USER, "running", batch=False, steps=[0, 1])
    c.add_job(3, USER, "suspended", batch=False, steps=[0])
    c.add_job(4, USER, "pending")
    c.add_job(5, USER, "completed")
    c.add_job(6, USER, "running", batch=True, steps=[0])
    return c


@pytest.fixture
def clock():
    return SettableClock(T0)


@pytest.fixture
def ompi(clock):
    return Controller(user_cluster(), OmpiPlugin(srun_completes=False), clock)


def test_ping_and_unknown_type(ompi):
    assert rc(ompi.handle(OTHER, MsgType.REQUEST_PING, PingMsg())) == 0
    assert rc(ompi.handle(0, MsgType.RESPONSE_CHECKPOINT, CheckpointRespMsg(event_time=0, error_code=0))) == codes.EINVAL


@pytest.mark.parametrize("job,code", [(99, 2017), (4, 2024), (3, 2037), (5, 2021)])
def test_route3_job_checks(ompi, job, code):
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ABLE, job=job)) == code


@pytest.mark.parametrize("job,code", [(99, 2017), (4, 2024), (3, 2077), (5, 2021)])
def test_route2_job_checks(ompi, job, code):
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ABLE, job=job, step=SLURM_BATCH_SCRIPT)) == code


def test_access_slurm_user_only_on_route2(ompi):  # Q7
    assert rc(ckpt(ompi, OTHER, CheckOp.CHECK_ABLE)) == codes.ESLURM_ACCESS_DENIED
    assert rc(ckpt(ompi, SLURM_USER, CheckOp.CHECK_ABLE)) == codes.ESLURM_ACCESS_DENIED
    assert rc(comp(ompi, SLURM_USER)) == codes.ESLURM_ACCESS_DENIED
    assert ckpt(ompi, SLURM_USER, CheckOp.CHECK_ABLE, step=SLURM_BATCH_SCRIPT).msg_type == CKPT
    assert ckpt(ompi, 0, CheckOp.CHECK_ABLE).msg_type == CKPT


def test_missing_step_after_job_checks(ompi):
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ABLE, step=7)) == codes.ESLURM_INVALID_JOB_ID
    assert rc(ckpt(ompi, OTHER, CheckOp.CHECK_ABLE, step=7)) == codes.ESLURM_ACCESS_DENIED


def test_disabled_create_still_stamps_time(ompi, clock):  # Q1
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_DISABLE)) == 0
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ABLE)) == codes.ESLURM_DISABLED
    clock.now = T0 + 5
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_CREATE, data=10, image_dir="/x")) == codes.ESLURM_DISABLED
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ENABLE)) == 0
    assert ckpt(ompi, USER, CheckOp.CHECK_ABLE).body.event_time == T0 + 5


def test_enable_wraps_to_disabled(ompi):  # Q3
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ENABLE)) == 0
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ABLE)) == codes.ESLURM_DISABLED
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_DISABLE)) == 0
    assert ckpt(ompi, USER, CheckOp.CHECK_ABLE).msg_type == CKPT


def test_completion_rules_without_srun(ompi, clock):  # §8.4, Q2, switch off
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_CREATE, data=10, image_dir="/x")) == 0
    assert ckpt(ompi, USER, CheckOp.CHECK_ABLE).body.event_time == T0
    assert rc(comp(ompi, USER, code=5, msg="disk quota exceeded")) == 0  # higher: kept, still open
    assert ckpt(ompi, USER, CheckOp.CHECK_ABLE).body.event_time == T0
    clock.now = T0 + 1
    assert rc(comp(ompi, USER, code=1, msg="ok")) == 0  # lower: closes
    assert ckpt(ompi, USER, CheckOp.CHECK_ABLE).body.event_time == 0
    assert rc(comp(ompi, USER, code=9)) == codes.ESLURM_ALREADY_DONE
    err = ckpt(ompi, USER, CheckOp.CHECK_ERROR)
    assert (err.msg_type, err.body.error_code, err.body.error_msg) == (CKPT, 1, "ok")
    assert rc(comp(ompi, USER, task=0, code=7)) == 0


def test_srun_completion_switch(clock):
    plugin = OmpiPlugin(srun_completes=True, srun_pid="4242")
    ctl = Controller(user_cluster(), plugin, clock)
    assert rc(ckpt(ctl, USER, CheckOp.CHECK_VACATE, data=10, image_dir="/x")) == 0
    assert plugin.srun_execs == [(2, 0, ("ompi-checkpoint", "--term"))]
    assert ckpt(ctl, USER, CheckOp.CHECK_ABLE).body.event_time == 0
    assert ckpt(ctl, USER, CheckOp.CHECK_ERROR).body.error_msg == "4242"
    assert rc(comp(ctl, USER, code=5)) == codes.ESLURM_ALREADY_DONE
    assert 0 in ctl.cluster.jobs[2].steps  # vacate does not end the step


def test_suspended_job_accepts_completions(ompi):  # Q4
    assert rc(comp(ompi, USER, job=3)) == 0
    assert rc(comp(ompi, USER, job=4)) == codes.ESLURM_JOB_PENDING
    assert rc(comp(ompi, USER, job=5)) == codes.ESLURM_ALREADY_DONE


def test_step_level_restart_and_requeue(ompi):  # Q5, U5
    assert rc(ckpt(ompi, OTHER, CheckOp.CHECK_RESTART, job=99, step=0)) == codes.ESLURM_NOT_SUPPORTED
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_REQUEUE)) == codes.ESLURM_NOT_SUPPORTED
    assert rc(ckpt(ompi, USER, 99)) == codes.EINVAL


def test_restart_route1(ompi):
    batch = SLURM_BATCH_SCRIPT
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_RESTART, job=6, step=batch)) == codes.ESLURM_JOB_NOT_FINISHED
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_RESTART, job=5, step=batch)) == codes.ENOENT
    # a batch-route vacate saves the job record, then ompi refuses (Q6)
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_VACATE, job=6, step=batch, image_dir="/ck")) == 2036
    assert 6 in ompi.cluster.jobs and ompi.cluster.job_records[6]["image_dir"] == "/ck"
    ompi.cluster.jobs[6].state = ompi.cluster.jobs[6].state.COMPLETED
    assert rc(ckpt(ompi, OTHER, CheckOp.CHECK_RESTART, job=6, step=batch)) == codes.EPERM
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_RESTART, job=6, step=batch)) == 0
    assert not ompi.cluster.jobs[6].state.finished


def test_batch_route_needs_image_dir(ompi):  # §6 row 7
    batch = SLURM_BATCH_SCRIPT
    ompi.cluster.jobs[6].work_dir = None  # no --checkpoint-dir and no work dir: details->ckpt_dir NULL
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_CREATE, job=6, step=batch)) == codes.ESLURM_DISABLED
    ompi.cluster.jobs[6].has_details = False
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_CREATE, job=6, step=batch, image_dir="/d")) == 2037
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ABLE, job=6, step=batch)) == 2036


def test_all_steps_route_for_non_batch_job(ompi):  # §6 else-branch
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_DISABLE, step=1)) == 0
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ABLE, step=SLURM_BATCH_SCRIPT)) == codes.ESLURM_DISABLED
    assert rc(ckpt(ompi, USER, CheckOp.CHECK_ENABLE, step=1)) == 0
    reply = ckpt(ompi, USER, CheckOp.CHECK_ABLE, step=SLURM_BATCH_SCRIPT)
    assert (reply.msg_type, reply.body.event_time) == (CKPT, 0)


def test_none_plugin(clock):  # §8.7
    ctl = Controller(user_cluster(), NonePlugin(), clock)
    assert rc(ckpt(ctl, USER, CheckOp.CHECK_ABLE)) == codes.ESLURM_NOT_SUPPORTED
    assert rc(ckpt(ctl, USER, CheckOp.CHECK_ERROR, step=SLURM_BATCH_SCRIPT)) == 2036
    assert rc(comp(ctl, USER)) == codes.ESLURM_NOT_SUPPORTED
    assert rc(comp(ctl, USER, task=1)) == 0
    assert rc(ckpt(ctl, USER, CheckOp.CHECK_ABLE, job=99)) == codes.ESLURM_INVALID_JOB_ID


def tasks(rules, uid, job=2, step=0, ts=T0):
    return rc(rules.handle(uid, MsgType.REQUEST_CHECKPOINT_TASKS,
                           CheckpointTasksMsg(job_id=job, job_step_id=step, timestamp=ts, image_dir=None)))


def test_slurmd_checkpoint_tasks():  # §11, Q8
    cluster = user_cluster()
    node = NodeRules(cluster, "localhost", OmpiPlugin())
    assert tasks(node, USER, step=9) == codes.ESLURM_INVALID_JOB_ID
    assert tasks(node, OTHER) == codes.ESLURM_USER_ID_MISSING
    assert tasks(node, SLURM_USER) == codes.ESLURMD_JOB_NOTRUNNING
    assert tasks(node, USER) == codes.ESLURM_ALREADY_DONE  # same timestamp again
    assert tasks(node, USER, ts=T0 + 1) == codes.ESLURMD_JOB_NOTRUNNING
    assert tasks(node, USER, job=3) == codes.ESLURMD_STEP_SUSPENDED
    cluster.jobs[2].steps[1].tasks_started = False
    assert tasks(node, USER, step=1) == codes.ESLURMD_JOB_NOTRUNNING
    assert tasks(NodeRules(cluster, "elsewhere"), USER) == codes.ESLURM_INVALID_JOB_ID
    assert rc(node.handle(OTHER, MsgType.REQUEST_PING, PingMsg())) == codes.ESLURM_USER_ID_MISSING


def test_cluster_from_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("""
slurm_user = 500
job_checkpoint_dir = "/ck"
[nodes]
n1 = "127.0.0.1:7001"
[[jobs]]
job_id = 7
uid = 1000
state = "running"
batch = true
nodes = "n[1-2]"
[[jobs.steps]]
step_id = 0
nodes = "n2"
""")
    c = Cluster.from_toml(path)
    job = c.jobs[7]
    assert (c.slurm_user, c.node_addrs["n1"], job.nodes) == (500, ("127.0.0.1", 7001), ("n1", "n2"))
    assert set(job.steps) == {0, SLURM_BATCH_SCRIPT} and job.steps[0].nodes == ("n2",)
    assert job.steps[SLURM_BATCH_SCRIPT].nodes == ("n1",)


def test_fixture_cluster_shape():
    c = fixture_cluster()
    assert set(c.jobs) == {2, 3, 4, 5} and c.jobs[2].batch and 0 in c.jobs[2].steps
