"""A fake's cluster is checked when it is described (TOML file or Python), not when a connection
is served: a value Slurm's wire fields cannot hold is one line naming the key, never a fake that
listens and then closes every connection; and a fake that cannot answer says why."""

from __future__ import annotations

import logging
import pathlib
import subprocess
import sys

import pytest

from pyslurmrpc.auth.slurm_auth import NoneAuth
from pyslurmrpc.errors import ConfigError, InvalidArgumentError
from pyslurmrpc.fake import Cluster, FakeSlurmctld, fixture_cluster
from pyslurmrpc.fake import cluster as cluster_module
from pyslurmrpc.wire import SLURM_BATCH_SCRIPT, SLURM_EXTERN_CONT, SLURM_PENDING_STEP

from test_fake_server import frame, send_raw

JOB = "[[jobs]]\njob_id = 7\nuid = 1\n"


def cli(*argv):
    """The real program in a subprocess: a traceback would show on its stderr."""
    return subprocess.run([sys.executable, "-m", "pyslurmrpc", *argv], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def load(tmp_path, text) -> Cluster:
    path = tmp_path / "c.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return Cluster.from_toml(path)


# --- the file as bytes --------------------------------------------------------------------------
def test_binary_cluster_file_is_one_line_not_a_traceback(tmp_path):
    path = tmp_path / "x.toml"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    proc = cli("fake-slurmctld", "--cluster", str(path))
    assert proc.returncode == 1 and proc.stdout == "", proc
    assert proc.stderr == (f"pyslurmrpc fake-slurmctld: {path}: not TOML: not UTF-8 text "
                           f"(byte 0x80 at offset 136)\n"), proc.stderr


def test_utf8_bom_is_skipped(tmp_path):
    assert load(tmp_path, b"\xef\xbb\xbfslurm_user = 500\n").slurm_user == 500


def test_file_over_the_limit_is_not_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster_module, "CLUSTER_FILE_MAX", 10)
    with pytest.raises(ConfigError, match="not a cluster description: larger than 10 bytes"):
        load(tmp_path, "slurm_user = 500\n")


# --- every key's type and range -----------------------------------------------------------------
@pytest.mark.parametrize("toml, message", [
    ('slurm_user = "root"', "slurm_user must be a uid (integer 0..4294967294), not 'root'"),
    ("slurm_user = 4294967295", "slurm_user must be a uid (integer 0..4294967294), not 4294967295"),
    ("slurm_user = true", "slurm_user must be a uid (integer 0..4294967294), not True"),
    ("tree_width = 0", "tree_width must be an int from 1 to 65533, not 0"),
    ("job_checkpoint_dir = 5", "job_checkpoint_dir must be a directory (non-empty string or path), not 5"),
    ("slurmuser = 5", "unknown key 'slurmuser' (known: job_checkpoint_dir, jobs, nodes, slurm_user, tree_width)"),
    ("jobs = 5", "jobs must be an array of tables ([[jobs]]), not 5"),
    ('[nodes]\nn1 = "127.0.0.1:x"', "nodes.n1 port must be a number from 0 to 65535, not 'x'"),
    ('[nodes]\nn1 = "127.0.0.1:65536"', "nodes.n1 port must be a number from 0 to 65535, not '65536'"),
    ('[nodes]\nn1 = "bad host:7101"', "nodes.n1 host must not hold NUL or blanks: 'bad host'"),
    ('[nodes]\nn1 = "[::1]"', 'nodes.n1 must be "HOST:PORT" or "[V6ADDR]:PORT" (port 0..65535), not \'[::1]\''),
    ('[nodes]\nn1 = 7101', 'nodes.n1 must be "HOST:PORT" or "[V6ADDR]:PORT" (port 0..65535), not 7101'),
    ("[[jobs]]\njob_id = -1\nuid = 1", "job_id must be a job id (integer 1..4294967293), not -1"),
    ("[[jobs]]\njob_id = 0\nuid = 1", "job_id must be a job id (integer 1..4294967293), not 0"),
    ("[[jobs]]\njob_id = 99999999999999\nuid = 1",
     "job_id must be a job id (integer 1..4294967293), not 99999999999999"),
    ("[[jobs]]\njob_id = 4294967294\nuid = 1", "job_id must be a job id (integer 1..4294967293), not 4294967294"),
    ("[[jobs]]\njob_id = 7.0\nuid = 1", "job_id must be a job id (integer 1..4294967293), not 7.0"),
    (JOB + JOB, "job 7: duplicate job_id (two [[jobs]] tables have it)"),
    ("[[jobs]]\njob_id = 7\nuid = -1", "job 7: uid must be a uid (integer 0..4294967294), not -1"),
    (JOB + "owner = 3\nflag = 1", "job 7: unknown keys 'flag', 'owner' (known: batch, ckpt_dir, has_details, "
                                  "job_id, nodes, state, steps, uid, work_dir)"),
    (JOB + 'batch = "yes"', "job 7: batch must be true or false, not 'yes'"),
    (JOB + 'state = "sleeping"', "job 7: state must be one of pending/running/suspended/completed/"
                                 "cancelled/failed, not 'sleeping'"),
    (JOB + 'nodes = "n[1-"', "job 7: nodes: unbalanced brackets in 'n[1-'"),
    (JOB + "nodes = [1, 2]", "job 7: nodes must be a hostlist"),
    (JOB + "steps = 3", "job 7: steps must be an array of tables ([[jobs.steps]]), not 3"),
    (JOB + '[[jobs.steps]]\nstep_id = "x"', "job 7: step_id must be a step id (integer 0..4294967295), not 'x'"),
    (JOB + "[[jobs.steps]]\nstep_id = 4294967296",
     "job 7: step_id must be a step id (integer 0..4294967295), not 4294967296"),
    (JOB + "[[jobs.steps]]\nstep_id = 4294967293",
     "job 7: step_id must be a step id, not 4294967293 (SLURM_PENDING_STEP: a step not created yet)"),
    (JOB + 'batch = true\n[[jobs.steps]]\nstep_id = 4294967294', "job 7: duplicate step_id 4294967294"),
    (JOB + "[[jobs.steps]]\nstep_id = 0\n[[jobs.steps]]\nstep_id = 0", "job 7: duplicate step_id 0"),
    (JOB + "[[jobs.steps]]\nstep_id = 0\npid = 1", "job 7 step 0: unknown key 'pid' (known: ckpt_dir, nodes, "
                                                   "srun, step_id, suspended, tasks_started)"),
    (JOB + "[[jobs.steps]]\nstep_id = 0\nsrun = 1", "job 7 step 0: srun must be true or false, not 1"),
    (JOB + '[[jobs.steps]]\nnodes = "n1"', "missing key 'step_id' (job 7, [[jobs.steps]] table 1)"),
    ("[[jobs]]\njob_id = 7", "missing key 'uid' (job 7)"),
    ("[[jobs]]\nuid = 1", "missing key 'job_id' ([[jobs]] table 1)"),
])
def test_bad_value_is_named_with_what_is_expected(tmp_path, toml, message):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml)
    assert f"c.toml: bad cluster description: {message}" in str(info.value)


@pytest.mark.parametrize("text, where", [("[::1]:7101", ("::1", 7101)), (":0", ("127.0.0.1", 0)),
                                         ("node-1.example:65535", ("node-1.example", 65535))])
def test_a_node_address_is_read_as_the_client_reads_controller(tmp_path, text, where):
    assert load(tmp_path, f'[nodes]\nn1 = "{text}"').node_addrs == {"n1": where}


def test_a_node_on_ipv6_loopback_listens_there(tmp_path):
    (tmp_path / "c.toml").write_text('[nodes]\nn1 = "[::1]:0"\n')
    proc = subprocess.Popen([sys.executable, "-m", "pyslurmrpc", "fake-slurmctld", "--port", "0", "--cluster",
                             str(tmp_path / "c.toml"), "--slurmd", "--plugin", "none"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        line = proc.stdout.readline().strip()
        assert line.startswith("slurmd n1 listening on [::1]:"), (line, proc.stderr.read() if proc.poll() else "")
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_largest_ids_slurm_allows_load(tmp_path):
    c = load(tmp_path, "slurm_user = 4294967294\n[[jobs]]\njob_id = 4294967293\nuid = 0\n"
                       "[[jobs.steps]]\nstep_id = 4294967292\n[[jobs.steps]]\nstep_id = 4294967295\n")
    assert set(c.jobs[4294967293].steps) == {4294967292, SLURM_EXTERN_CONT}


def test_slurm_user_name_is_refused_before_the_fake_listens(tmp_path):
    """It used to print "listening on" and close every connection unanswered, logging nothing."""
    path = tmp_path / "c.toml"
    path.write_text('slurm_user = "root"\n')
    proc = cli("fake-slurmctld", "--cluster", str(path), "--port", "0")
    assert proc.returncode == 1 and proc.stdout == "", proc
    assert proc.stderr == (f"pyslurmrpc fake-slurmctld: {path}: bad cluster description: "
                           "slurm_user must be a uid (integer 0..4294967294), not 'root'\n")


# --- the Python API refuses the same ------------------------------------------------------------
@pytest.mark.parametrize("build, message", [
    (lambda: Cluster(slurm_user="root"), "slurm_user must be a uid"),
    (lambda: Cluster(tree_width=0), "tree_width must be an int from 1 to 65533"),
    (lambda: Cluster().add_job(-1, 0), "job_id must be a job id"),
    (lambda: Cluster().add_job(2 ** 32, 0), "job_id must be a job id"),
    (lambda: Cluster().add_job(7, "root"), "job 7: uid must be a uid (integer 0..4294967294), not 'root'"),
    (lambda: Cluster().add_job(7, 1, "sleeping"), "job 7: state must be one of"),
    (lambda: Cluster().add_job(7, 1, steps=["x"]), "job 7: step_id must be a step id"),
    (lambda: Cluster().add_job(7, 1).add_step(SLURM_PENDING_STEP), "job 7: step_id must be a step id"),
    (lambda: Cluster(job_checkpoint_dir=""), "job_checkpoint_dir must be a directory"),
    (lambda: Cluster().add_job(7, 1, nodes=[1, 2]), "job 7: nodes must be a hostlist"),
    (lambda: Cluster().add_job(7, 1).add_step(0, srun="no"), "job 7 step 0: srun must be true or false"),
])
def test_api_refuses_what_the_file_refuses(build, message):
    with pytest.raises(InvalidArgumentError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_api_still_builds_the_batch_step_and_takes_a_hostlist():
    job = Cluster().add_job(7, 1, batch=True, steps=[0], nodes="n[1-2]")
    assert job.nodes == ("n1", "n2") and set(job.steps) == {0, SLURM_BATCH_SCRIPT}
    assert job.steps[SLURM_BATCH_SCRIPT].nodes == ("n1",)


def test_api_takes_what_it_took_before_the_checks():
    """Paths, any iterable of node names, the extern step, a batch step given again."""
    cluster = Cluster(job_checkpoint_dir=pathlib.Path("/ckpt"))
    job = cluster.add_job(7, 1, batch=True, nodes=(n for n in ("n1", "n2")), work_dir=pathlib.Path("/w"),
                          ckpt_dir=pathlib.Path("/c"))
    assert (cluster.job_checkpoint_dir, job.work_dir, job.ckpt_dir, job.nodes) == ("/ckpt", "/w", "/c", ("n1", "n2"))
    assert job.add_step(SLURM_EXTERN_CONT).nodes == ("n1", "n2")
    assert job.add_step(SLURM_BATCH_SCRIPT, tasks_started=False).tasks_started is False
    assert sorted(cluster.add_job(8, 1, nodes={"b", "a"}).nodes) == ["a", "b"]


# --- a fake that cannot answer says why -------------------------------------------------------
async def test_reply_that_cannot_be_encoded_is_logged_not_silent(caplog):
    """A uid the credential cannot carry reached the server through auth= (and, before the
    checks, through the cluster file): every reply failed to encode and nothing was logged."""
    ctld = FakeSlurmctld(fixture_cluster(), auth=NoneAuth(uid="root", gid=0), message_timeout=2)
    await ctld.start()
    try:
        with caplog.at_level(logging.INFO, logger="pyslurmrpc.fake"):
            assert await send_raw(ctld.address, b"\x00\x00\x00\x04junk") == b""  # the client's: quiet
            assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert await send_raw(ctld.address, frame()) == b""
    finally:
        await ctld.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == ["FakeSlurmctld: closed a connection unanswered: cannot encode: struct '>L' error during "
                      "building, given value 'root' (field auth.cred.uid)"], errors
