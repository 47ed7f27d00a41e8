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
    assert "3 passed" in result.stdout
