"""Rules of the fake slurmctld that nothing else pins (issue 14 items 9, 10, "tests that catch bugs")."""

from __future__ import annotations

import os

import pytest

from pyslurmrpc.fake import Cluster, FakeSlurmctld, SettableClock, codes, fixture_cluster
from pyslurmrpc.fake.plugins import NonePlugin, OmpiPlugin
from pyslurmrpc.fake.rules import Controller
from pyslurmrpc.wire import SLURM_BATCH_SCRIPT, CheckOp, MsgType

from test_fake_rules import ckpt, comp, rc

T0 = 1_700_000_000
OWNER, OTHER, SLURM_USER = 1000, 1001, 500
ALL_OPS = [CheckOp.CHECK_ABLE, CheckOp.CHECK_DISABLE, CheckOp.CHECK_ENABLE, CheckOp.CHECK_CREATE,
           CheckOp.CHECK_VACATE, CheckOp.CHECK_ERROR, CheckOp.CHECK_REQUEUE]


def cluster() -> Cluster:
    c = Cluster(slurm_user=SLURM_USER)
    c.add_job(2, OWNER, "running", batch=False, steps=[0])
    c.add_job(6, OWNER, "running", batch=True, steps=[0])
    return c


@pytest.fixture
def ompi():
    return Controller(cluster(), OmpiPlugin(srun_completes=False), SettableClock(T0))


# --- item 10: requeue of a batch job without ImageDir ----------------------------------------------
def test_requeue_after_step_restart_is_not_supported_like_slurmctld_1905(ompi):
    """scontrol checkpoint restart JOB.0 StickToNodes; scontrol checkpoint requeue JOB.

    The restart of a step is refused (route 1 wants the batch script).  The requeue reaches the
    plugin: the batch job's details->ckpt_dir is its work dir when no --checkpoint-dir was given
    (job_mgr.c _copy_job_desc_to_job_record), so image_dir is never NULL, the job record is saved
    and checkpoint/ompi refuses the stepless op: ESLURM_NOT_SUPPORTED, not ESLURM_DISABLED.
    """
    assert rc(ckpt(ompi, OWNER, CheckOp.CHECK_RESTART, job=6, step=0, data=1)) == codes.ESLURM_NOT_SUPPORTED
    assert rc(ckpt(ompi, OWNER, CheckOp.CHECK_REQUEUE, job=6, step=SLURM_BATCH_SCRIPT, data=10)) \
        == codes.ESLURM_NOT_SUPPORTED
    assert ompi.cluster.job_records[6]["image_dir"] == "/tmp"  # the work dir, as slurmctld would take


def test_image_dir_default_is_checkpoint_dir_then_work_dir(ompi):
    job = ompi.cluster.jobs[6]
    job.work_dir = "/home/u"
    ckpt(ompi, OWNER, CheckOp.CHECK_CREATE, job=6, step=SLURM_BATCH_SCRIPT)
    assert ompi.cluster.job_records[6]["image_dir"] == "/home/u"
    job.ckpt_dir = "/home/u/ck"
    ckpt(ompi, OWNER, CheckOp.CHECK_VACATE, job=6, step=SLURM_BATCH_SCRIPT)
    assert ompi.cluster.job_records[6]["image_dir"] == "/home/u/ck"
    ckpt(ompi, OWNER, CheckOp.CHECK_VACATE, job=6, step=SLURM_BATCH_SCRIPT, image_dir="/given")
    assert ompi.cluster.job_records[6]["image_dir"] == "/given"


def test_work_dir_from_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[jobs]]\njob_id = 8\nuid = 5\nbatch = true\nwork_dir = "/w"\n')
    assert Cluster.from_toml(path).jobs[8].details_ckpt_dir == "/w"


# --- a non-owner changes nothing ---------------------------------------------------------------------
@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: CheckOp(op).name)
@pytest.mark.parametrize("step", [0, SLURM_BATCH_SCRIPT], ids=["route3", "route2"])
@pytest.mark.parametrize("job", [2, 6], ids=["alloc", "batch"])
def test_non_owner_is_denied_every_op(ompi, op, step, job):
    assert rc(ckpt(ompi, OTHER, op, job=job, step=step, data=10, image_dir="/x")) == codes.ESLURM_ACCESS_DENIED


@pytest.mark.parametrize("op", [CheckOp.CHECK_DISABLE, CheckOp.CHECK_ENABLE, CheckOp.CHECK_CREATE,
                                CheckOp.CHECK_VACATE], ids=lambda op: CheckOp(op).name)
@pytest.mark.parametrize("step", [0, SLURM_BATCH_SCRIPT], ids=["route3", "route2"])
def test_non_owner_leaves_the_step_untouched(ompi, op, step):
    """A denied disable/enable/create must not move the step's counters or timestamps either."""
    ckpt(ompi, OTHER, op, job=2, step=step, data=10, image_dir="/x")
    reply = ckpt(ompi, OWNER, CheckOp.CHECK_ABLE, job=2, step=0)
    assert reply.msg_type == MsgType.RESPONSE_CHECKPOINT and reply.body.event_time == 0
    assert ompi.cluster.job_records == {}


def test_non_owner_cannot_complete(ompi):
    assert rc(comp(ompi, OTHER, job=2)) == codes.ESLURM_ACCESS_DENIED
    assert rc(comp(ompi, OTHER, job=2, task=0)) == codes.ESLURM_ACCESS_DENIED


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: CheckOp(op).name)
def test_slurm_user_and_root_pass_route2(ompi, op):
    """Route 2 lets SlurmUser and root in (validate_slurm_user); the plugin then answers."""
    for uid in (SLURM_USER, 0):
        assert rc_or_ckpt(ckpt(ompi, uid, op, job=2, step=SLURM_BATCH_SCRIPT, image_dir="/x")) \
            != codes.ESLURM_ACCESS_DENIED


def test_root_but_not_slurm_user_passes_route3(ompi):
    assert rc(ckpt(ompi, SLURM_USER, CheckOp.CHECK_DISABLE, job=2, step=0)) == codes.ESLURM_ACCESS_DENIED
    assert rc(ckpt(ompi, 0, CheckOp.CHECK_DISABLE, job=2, step=0)) == codes.SUCCESS
    assert rc(ckpt(ompi, OWNER, CheckOp.CHECK_ABLE, job=2, step=0)) == codes.ESLURM_DISABLED


def rc_or_ckpt(reply):
    return 0 if reply.msg_type == MsgType.RESPONSE_CHECKPOINT else reply.body.return_code


def test_none_plugin_refuses_every_op_for_the_owner():
    ctl = Controller(cluster(), NonePlugin(), SettableClock(T0))
    for op in ALL_OPS:
        assert rc(ckpt(ctl, OWNER, op, job=2, step=0, image_dir="/x")) == codes.ESLURM_NOT_SUPPORTED


# --- item 9: the default cluster belongs to whoever runs the fake -------------------------------------
def test_default_cluster_belongs_to_the_caller():
    c = fixture_cluster()
    assert c.slurm_user == os.geteuid()
    assert {job.uid for job in c.jobs.values()} == {os.geteuid()}
    assert {job.uid for job in fixture_cluster(owner=0).jobs.values()} == {0}


def test_fake_default_cluster_answers_its_runner_through_the_client():
    """auth/none sends the caller's uid: as any user, job 2 of the default cluster is the caller's own."""
    from pyslurmrpc import Client, SlurmError

    with FakeSlurmctld(fixture_cluster()) as daemon:
        client = Client(daemon.host, daemon.port, auth="none", timeout=5)
        client.checkpoint_disable(2, 0)  # ESLURM_ACCESS_DENIED would raise here
        with pytest.raises(SlurmError) as exc:
            client.checkpoint_able(2, 0)
    assert exc.value.errno == codes.ESLURM_DISABLED


def test_default_cluster_as_an_ordinary_user():
    """Item 9 for real: a child turned into nobody runs the fake and a client against it (auth/none)."""
    from pyslurmrpc.testing.ci import needs_root

    needs_root(pytest, "turns a child into nobody")
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            import encodings.idna  # noqa: F401  (nobody cannot import from root's home later)

            from pyslurmrpc import Client, SlurmError

            with FakeSlurmctld(fixture_cluster(owner=0)) as daemon:  # as root: every lazy import done
                Client(daemon.host, daemon.port, auth="none", timeout=5).ping()
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with FakeSlurmctld(fixture_cluster()) as daemon:
                client = Client(daemon.host, daemon.port, auth="none", timeout=5)
                client.checkpoint_disable(2, 0)
                try:
                    client.checkpoint_able(2, 0)
                except SlurmError as exc:
                    status = 0 if exc.errno == codes.ESLURM_DISABLED else 2
        except BaseException:
            status = 3
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
