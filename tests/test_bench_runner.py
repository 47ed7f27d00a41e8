"""The blocking runner's TCP fast path (kernel timeouts, no name lookup for IPv4 literals)
behaves like the portable one: answers, timeouts, refusals."""

from __future__ import annotations

import socket
import threading
import tomllib

import pytest

from pyslurmrpc import runners, sync_sockets
from pyslurmrpc.bench.rpc import BENCH_JOB, CLUSTER_TOML
from pyslurmrpc.client import Client
from pyslurmrpc.effects import Connect
from pyslurmrpc.errors import TimeoutTransportError, TransportError
from pyslurmrpc.fake import Cluster, FakeSlurmctld


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_both_paths_answer(host):
    cluster = Cluster.from_dict(tomllib.loads(CLUSTER_TOML))
    with FakeSlurmctld(cluster, plugin="simulated") as ctld:
        client = Client(host, ctld.port, auth="none", timeout=5)
        assert client.checkpoint_able(BENCH_JOB, 0) == client.checkpoint_able(BENCH_JOB, 0)


def test_literal_uses_the_fast_stream_without_a_lookup_and_a_name_is_looked_up(monkeypatch):
    lookups = []
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: lookups.append(host) or real(host, *a, **k))
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        target = type("T", (), {"host": "127.0.0.1", "port": port})()
        conn = runners._sync_connect(Connect(target, 2.0))
        assert type(conn) is sync_sockets.TcpStream and lookups == []
        conn.close()
        target.host = "localhost"
        conn = runners._sync_connect(Connect(target, 2.0))
        assert lookups == ["localhost"]  # through the bounded resolver (tests/test_harden_resolve.py)
        conn.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_silent_server_times_out(host):
    with socket.create_server(("127.0.0.1", 0)) as srv:
        held = []
        threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
        client = Client(host, srv.getsockname()[1], auth="none", timeout=0.3)
        with pytest.raises(TimeoutTransportError):
            client.checkpoint_able(BENCH_JOB, 0)


def test_refused_is_a_transport_error():
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
    client = Client("127.0.0.1", port, auth="none", timeout=0.5)
    with pytest.raises(TransportError):
        client.ping()


def test_timeval_never_zero():
    assert sync_sockets.pack_timeval(0.0) == sync_sockets.pack_timeval(0.0009) != bytes(len(sync_sockets.pack_timeval(0.0)))
