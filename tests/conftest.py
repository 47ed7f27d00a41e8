import pytest

from pyslurmrpc.testing.munged import munged_or_skip


@pytest.fixture(scope="session")
def munged():
    """A real munged with a throw-away key: ``.socket_path``, ``.key_file``."""
    harness = munged_or_skip(pytest)
    yield harness
    harness.stop()
