"""The pytest plugin works in someone else's test suite (a fresh pytest run in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

USER_TESTS = textwrap.dedent('''
    import pytest
    from pyslurmrpc import SlurmError

    def test_sync(slurm_client, fake_slurmctld, tmp_path):
        assert slurm_client.ping() is True
        assert slurm_client.checkpoint_able(2, 0) == 0
        slurm_client.checkpoint_create(2, 0, 10, str(tmp_path))
        assert slurm_client.checkpoint_able(2, 0) > 0
        with pytest.raises(SlurmError) as info:
            slurm_client.checkpoint_able(999999, 0)
        assert info.value.name == "ESLURM_INVALID_JOB_ID"

    async def test_async(async_slurm_client):
        assert await async_slurm_client.checkpoint_able(5, 0) == 0

    def test_tasks_reach_the_fake_slurmd(slurm_client, fake_slurmds, tmp_path):
        assert [d.node for d in fake_slurmds] == ["localhost"]
        assert slurm_client.checkpoint_tasks(2, 0, 1795460000, str(tmp_path), 10, "localhost") == {"localhost": 0}

    async def test_tasks_async(async_slurm_client):
        assert await async_slurm_client.checkpoint_tasks(5, 0, 1795460000, None, 10, "localhost") == {"localhost": 0}

    class TestTwoNodes:
        @pytest.fixture
        def fake_slurm_cluster(self):
            from pyslurmrpc.fake import Cluster
            import os
            cluster = Cluster(slurm_user=os.geteuid(), job_checkpoint_dir="/tmp")
            cluster.node_addrs.update({"a1": ("127.0.0.1", 0), "a2": ("127.0.0.1", 0)})
            cluster.add_job(7, os.geteuid(), "running", batch=True, steps=[0], nodes=("a1", "a2"))
            return cluster

        def test_each_node_its_slurmd(self, slurm_client, fake_slurmds):
            assert sorted(d.node for d in fake_slurmds) == ["a1", "a2"]
            assert slurm_client.checkpoint_tasks(7, 0, 1795460000, None, 10, "a[1-2]") == {"a1": 0, "a2": 0}

    class TestPortTaken:
        """A port in node_addrs that is taken (the suite's own daemon) is not bound again."""
        @pytest.fixture
        def fake_slurm_cluster(self):
            import os, socket
            from pyslurmrpc.fake import Cluster
            taken = socket.socket()
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            cluster = Cluster(slurm_user=os.geteuid(), job_checkpoint_dir="/tmp")
            cluster.node_addrs["b1"] = taken.getsockname()
            cluster.add_job(9, os.geteuid(), "running", batch=True, steps=[0], nodes=("b1",))
            yield cluster
            taken.close()

        def test_a_free_port_instead(self, slurm_client):
            assert slurm_client.checkpoint_tasks(9, 0, 1795460000, None, 10, "b1") == {"b1": 0}

    class TestOmpi:
        @pytest.fixture
        def fake_slurm_plugin(self):
            return "ompi"

        def test_override_plugin(self, slurm_client):
            with pytest.raises(SlurmError) as info:
                slurm_client.checkpoint_restart(2, 0)
            assert info.value.errno == 2036
''')


def test_plugin_fixtures_in_a_user_suite(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:pyslurmrpc", "-p", "pyslurmrpc.testing.plugin",
         "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout
