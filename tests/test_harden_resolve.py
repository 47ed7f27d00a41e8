"""Name resolution is inside the connect timeout (issue 14 item 5): a resolver that hangs cannot hold a call."""

from __future__ import annotations

import socket
import time

import pytest

from pyslurmrpc import AsyncClient, Client, SlurmError, TransportError
from pyslurmrpc.slurm_errno import SlurmErrno

SLURM_COMMUNICATIONS_CONNECTION_ERROR = SlurmErrno.SLURM_COMMUNICATIONS_CONNECTION_ERROR

HANG = 3.0          # seconds the slow resolver takes
CONNECT = 0.3       # TCPTimeout of the client
MESSAGE = 0.6       # MessageTimeout: failover rounds stop after it


@pytest.fixture
def slow_resolver(monkeypatch):
    real = socket.getaddrinfo
    looked_up = []

    def slow(host, *args, **kwargs):
        if host.endswith(".invalid"):
            looked_up.append(host)
            time.sleep(HANG)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    return looked_up


def test_blocking_client_gives_up_on_a_hanging_lookup_at_its_timeout(slow_resolver):
    client = Client("ctl.invalid", 6817, auth="none", timeout=MESSAGE, connect_timeout=CONNECT)
    start = time.monotonic()
    with pytest.raises(TransportError):
        client.ping()
    assert slow_resolver, "the lookup was not made through socket.getaddrinfo"
    assert time.monotonic() - start < HANG - 0.5


async def test_async_client_gives_up_on_a_hanging_lookup_at_its_timeout(slow_resolver):
    client = AsyncClient("ctl.invalid", 6817, auth="none", timeout=MESSAGE, connect_timeout=CONNECT)
    start = time.monotonic()
    with pytest.raises(TransportError):
        await client.ping()
    assert slow_resolver
    assert time.monotonic() - start < HANG - 0.5


def test_a_name_that_resolves_still_connects():
    """localhost goes through the bounded lookup (not an IPv4 literal) and reaches a listener."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        from pyslurmrpc.effects import Connect
        from pyslurmrpc.client.core import Endpoint
        from pyslurmrpc.runners import _sync_connect
        conn = _sync_connect(Connect(Endpoint("localhost", "localhost", port), CONNECT))
        try:
            peer, _ = listener.accept()
            peer.close()
        finally:
            conn.close()


@pytest.mark.parametrize("bad", ["x" * 64, "a..b", ".x"])
def test_a_node_name_the_idna_codec_refuses_is_that_node_s_connect_failure(bad):
    """It was a raw UnicodeError out of checkpoint_tasks ("label too long"): now the node's own
    1001 in ``.details``, as a name no resolver knows."""
    with pytest.raises(SlurmError) as info:
        Client("127.0.0.1", 1, auth="none", timeout=1).checkpoint_tasks(2, 0, 0, None, 1, bad)
    assert info.value.errno == SLURM_COMMUNICATIONS_CONNECTION_ERROR
    assert info.value.details == {bad: SLURM_COMMUNICATIONS_CONNECTION_ERROR}


async def test_the_async_client_names_a_refused_node_name_the_same_way():
    with pytest.raises(SlurmError) as info:
        await AsyncClient("127.0.0.1", 1, auth="none", timeout=1).checkpoint_tasks(2, 0, 0, None, 1, "y" * 70)
    assert info.value.details == {"y" * 70: SLURM_COMMUNICATIONS_CONNECTION_ERROR}
