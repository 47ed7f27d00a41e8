"""pytest plugin (entry point ``pyslurmrpc``): a running fake Slurm with a client pointed at it.

Installed with the package; use the fixtures in any test suite::

    def test_my_tool(slurm_client):
        slurm_client.checkpoint_create(2, 0, 10, "/tmp/ckpt")
        assert slurm_client.checkpoint_able(2, 0) > 0

Fixtures (override the first two in your conftest.py to change the cluster):

* ``fake_slurm_cluster`` - the :class:`pyslurmrpc.fake.Cluster` to serve
  (default: the cluster of the project's recordings: jobs 2 and 5 running
  batch jobs of root with step 0, job 3 cancelled, job 4 pending);
* ``fake_slurm_plugin`` - the checkpoint plugin: "simulated" (default; a
  checkpoint that really works), "ompi" or "none";
* ``fake_slurmctld`` - the running :class:`pyslurmrpc.fake.FakeSlurmctld`
  (auth/none, on a free loopback port, in a background thread);
* ``slurm_client`` / ``async_slurm_client`` - a :class:`pyslurmrpc.Client` /
  :class:`pyslurmrpc.AsyncClient` pointed at it.
"""

from __future__ import annotations

import pytest

CLIENT_TIMEOUT = 10


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
def slurm_client(fake_slurmctld):
    from pyslurmrpc import Client

    return Client(fake_slurmctld.host, fake_slurmctld.port, auth="none", timeout=CLIENT_TIMEOUT)


@pytest.fixture
def async_slurm_client(fake_slurmctld):
    from pyslurmrpc import AsyncClient

    return AsyncClient(fake_slurmctld.host, fake_slurmctld.port, auth="none", timeout=CLIENT_TIMEOUT)
