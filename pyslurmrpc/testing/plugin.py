"""pytest plugin (entry point ``pyslurmrpc``): a running fake Slurm with a client pointed at it.

Installed with the package; use the fixtures in any test suite::

    def test_my_tool(slurm_client):
        slurm_client.checkpoint_create(2, 0, 10, "/tmp/ckpt")
        assert slurm_client.checkpoint_able(2, 0) > 0

Fixtures (override the first two in your conftest.py to change the cluster):

* ``fake_slurm_cluster`` - the :class:`pyslurmrpc.fake.Cluster` to serve
  (default: the cluster of the project's recordings: jobs 2 and 5 running
  batch jobs of the user running the tests, each with step 0, job 3 cancelled, job 4 pending);
* ``fake_slurm_plugin`` - the checkpoint plugin: "simulated" (default; a
  checkpoint that really works), "ompi" or "none";
* ``fake_slurmctld`` - the running :class:`pyslurmrpc.fake.FakeSlurmctld`
  (auth/none, on a free loopback port, in a background thread);
* ``fake_slurmds`` - a running :class:`pyslurmrpc.fake.FakeSlurmd` per node named in
  ``cluster.node_addrs`` (default: one, ``localhost``), each on a free port of 127.0.0.1
  (recorded in ``node_addrs``; one thread each: for thousands of nodes use
  :class:`pyslurmrpc.fake.FakeSlurmdFarm`), so that ``checkpoint_tasks`` reaches them;
* ``slurm_client`` / ``async_slurm_client`` - a :class:`pyslurmrpc.Client` /
  :class:`pyslurmrpc.AsyncClient` pointed at the controller, knowing the slurmds' addresses.
"""

from __future__ import annotations

import pytest

CLIENT_TIMEOUT = 10
#: the node of a cluster that names none (fixture_cluster's one node)
DEFAULT_NODE = "localhost"


@pytest.fixture
def fake_slurm_cluster():
    from pyslurmrpc.fake import fixture_cluster

    return fixture_cluster()


@pytest.fixture
def fake_slurm_plugin():
    return "simulated"


@pytest.fixture
def fake_slurmctld(fake_slurm_cluster, fake_slurm_plugin):
    from pyslurmrpc.auth.slurm_auth import NoneAuth
    from pyslurmrpc.fake import FakeSlurmctld

    with FakeSlurmctld(fake_slurm_cluster, plugin=fake_slurm_plugin,
                       auth=NoneAuth(uid=fake_slurm_cluster.slurm_user, gid=0)) as daemon:
        yield daemon


@pytest.fixture
def fake_slurmds(fake_slurm_cluster, fake_slurm_plugin):
    from contextlib import ExitStack

    from pyslurmrpc.auth.slurm_auth import NoneAuth
    from pyslurmrpc.fake import FakeSlurmd

    cluster = fake_slurm_cluster
    # a free port each, whatever node_addrs holds: the ports there may be taken (a daemon the
    # suite started itself, or one of an earlier test on the same cluster)
    names = list(cluster.node_addrs) or [DEFAULT_NODE]
    with ExitStack() as running:
        yield [running.enter_context(FakeSlurmd(cluster, node, plugin=fake_slurm_plugin, host="127.0.0.1",
                                                port=0, auth=NoneAuth(uid=cluster.slurm_user, gid=0)))
               for node in names]


def _client_args(fake_slurmctld, fake_slurmds) -> dict:
    nodes = {daemon.node: (daemon.host, daemon.port) for daemon in fake_slurmds}
    return dict(host=fake_slurmctld.host, port=fake_slurmctld.port, auth="none", timeout=CLIENT_TIMEOUT,
                nodes=nodes)


@pytest.fixture
def slurm_client(fake_slurmctld, fake_slurmds):
    from pyslurmrpc import Client

    return Client(**_client_args(fake_slurmctld, fake_slurmds))


@pytest.fixture
def async_slurm_client(fake_slurmctld, fake_slurmds):
    from pyslurmrpc import AsyncClient

    return AsyncClient(**_client_args(fake_slurmctld, fake_slurmds))
