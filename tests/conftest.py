import pytest

from pyslurmrpc.testing.munged import munged_or_skip


@pytest.fixture(scope="session")
def munged():
    """A real munged with a throw-away key: ``.socket_path``, ``.key_file``."""
    harness = munged_or_skip(pytest)
    yield harness
    harness.stop()


@pytest.fixture(scope="session")
def slurmctld(munged):
    """A real slurmctld (Debian's 22.05) on loopback using ``munged``: ``.host``, ``.port``, ``.conf_path``."""
    from pyslurmrpc.testing.slurmctld import slurmctld_or_skip

    harness = slurmctld_or_skip(pytest, munged.socket_path)
    yield harness
    harness.stop()
