"""bench/floor.py: the hand-written floor under the figures makes the calls it stands for.

A floor that skipped a step (no credential, no reply read, the reply's credential not
decoded) would be a floor too low: each test here fails then.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import threading
import tomllib
import warnings

import pytest

from pyslurmrpc import Client
from pyslurmrpc.auth.errors import MungeCredentialReplayedError, MungeError
from pyslurmrpc.auth.munge import MungeClient
from pyslurmrpc.auth.slurm_auth import MungeAuth
from pyslurmrpc.bench import floor
from pyslurmrpc.bench.rpc import BENCH_JOB, CLUSTER_TOML
from pyslurmrpc.fake import Cluster, FakeSlurmctld
from pyslurmrpc.errors import SlurmError
from pyslurmrpc.slurm_errno import SlurmErrno
from pyslurmrpc.testing import MungedHarness



def _counted(ctld) -> list:
    """The message types of the requests ``ctld`` handles (their credential verified)."""
    seen, handle = [], ctld.controller.handle

    def counting(uid, msg_type, body):
        seen.append(msg_type)
        return handle(uid, msg_type, body)
    ctld.controller.handle = counting
    return seen


def _checkpoint_floor(ctld, munged, depth=3) -> floor.CallFloor:
    client = Client(ctld.host, ctld.port, auth="munge", munge_socket=munged.socket_path, timeout=10)
    return floor.CallFloor(client, "checkpoint_able", BENCH_JOB, munged.socket_path, depth)


def test_floor_calls_reach_the_controller_each_with_a_fresh_credential(munged):
    cluster = Cluster.from_dict(tomllib.loads(CLUSTER_TOML))
    with FakeSlurmctld(cluster, plugin="simulated", auth=MungeAuth(munged.socket_path)) as ctld:
        seen = _counted(ctld)
        least = _checkpoint_floor(ctld, munged)
        decoded = []
        least._decode = lambda cred, decode=least._decode: decoded.append(decode(cred))
        least.plain()
        least.plain()
        for _ in range(4):     # 3 minted at the first, used up by the third, 3 again at the fourth
            least.premint()
    assert len(seen) == 6, seen            # a credential used twice would be refused (replayed)
    assert len(least._stock) == 2
    assert len(decoded) == 6 and all(cred.uid == os.getuid() for cred in decoded)


def test_a_reply_credential_munged_refuses_fails_the_floor_call(munged):
    """The reply's credential goes to munged: one it refuses (decoded once already) raises."""
    cluster = Cluster.from_dict(tomllib.loads(CLUSTER_TOML))
    with FakeSlurmctld(cluster, plugin="simulated", auth=MungeAuth(munged.socket_path)) as ctld:
        least = _checkpoint_floor(ctld, munged, depth=1)
        replies = []
        least._decode = lambda cred, decode=least._decode: replies.append(cred) or decode(cred)
        least.plain()
        least._decode = lambda cred, decode=least._decode: decode(replies[0])
        with pytest.raises(MungeCredentialReplayedError):
            least.premint()


def test_floor_against_a_real_22_05_decodes_each_reply_credential(munged, slurmctld):
    client = Client(slurmctld.host, slurmctld.port, auth="munge", munge_socket=munged.socket_path, timeout=10)
    client.controller_version()
    least = floor.CallFloor(client, "ping", 0, munged.socket_path, 2)
    decoded = []
    least._decode = lambda cred, decode=least._decode: decoded.append(decode(cred))
    for _ in range(3):
        least.plain()
        least.premint()
    assert len(decoded) == 6       # 22.05 signs its replies (23.02+ send none)


def test_the_munge_floor_mints_and_decodes_as_munged_does(munged):
    mint, decode = floor.munge_encode(munged.socket_path, b"payload"), floor.munge_decode(munged.socket_path)
    cred = mint()
    assert cred.startswith(b"MUNGE:")
    assert decode(cred).payload == b"payload"
    with pytest.raises(MungeCredentialReplayedError):
        decode(cred)
    assert MungeClient(munged.socket_path).decode(mint()).payload == b"payload"


def _ping_floor(munged, slurmctld, depth=2) -> floor.CallFloor:
    client = Client(slurmctld.host, slurmctld.port, auth="munge", munge_socket=munged.socket_path, timeout=10)
    client.controller_version()      # as the bench does first: the release known, as for its calls
    return floor.CallFloor(client, "ping", 0, munged.socket_path, depth)


def test_a_reply_refusing_the_call_fails_the_floor_call(munged):
    """The reply is read by the library's own rules: an error code raises, as the client's
    call would (the bench counts it failed, never a fast success)."""
    cluster = Cluster.from_dict(tomllib.loads(CLUSTER_TOML))
    with FakeSlurmctld(cluster, plugin="simulated", auth=MungeAuth(munged.socket_path)) as ctld:
        client = Client(ctld.host, ctld.port, auth="munge", munge_socket=munged.socket_path, timeout=10)
        least = floor.CallFloor(client, "checkpoint_able", 424242, munged.socket_path, 1)
        for call in (least.plain, least.premint):
            with pytest.raises(SlurmError) as err:
                call()
            assert err.value.errno == SlurmErrno.ESLURM_INVALID_JOB_ID


def test_a_credential_the_controller_cannot_verify_fails_the_floor_call(munged, slurmctld):
    """22.05 closes on a credential of another key: the floor call fails (no reply to time)."""
    least = _ping_floor(munged, slurmctld)
    with MungedHarness(key=b"another key, not the controller's munged's" * 2) as other:
        least._stock = [floor.munge_encode(other.socket_path, least_payload(least, munged))()]
    with pytest.raises(ConnectionError):
        least.premint()


def least_payload(least, munged) -> bytes:
    """The payload the floor's credentials carry (its template's)."""
    return MungeClient(munged.socket_path).decode(least._mint()).payload


def _listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    return srv


def test_a_controller_that_never_answers_times_the_floor_call_out(munged, slurmctld, monkeypatch):
    least = _ping_floor(munged, slurmctld)
    monkeypatch.setattr(floor, "_POLL_MS", 200)
    with _listener() as silent:
        least._address = silent.getsockname()       # connects (the backlog takes it), never answers
        for call in (least.plain, least.premint):
            with pytest.raises(TimeoutError):
                call()


def test_a_length_prefix_over_a_replys_limit_is_refused_as_it_arrives(munged, slurmctld):
    least = _ping_floor(munged, slurmctld)
    with _listener() as liar:
        least._address = liar.getsockname()

        def answer():
            conn, _ = liar.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"\xff\xff\xff\xff")
                conn.recv(1)                          # until the floor closes
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        with pytest.raises(ConnectionError, match="over the"):
            least.premint()
        t.join(5)


@contextlib.contextmanager
def _one_answer_munged(tmp_path, answer: bytes):
    """A socket path where a fake munged reads one request and answers ``answer``."""
    path = str(tmp_path / "munge.socket")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(answer)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield path
    finally:
        t.join(5)
        srv.close()


def test_a_failed_mint_leaves_no_connection_open(munged, slurmctld, tmp_path):
    """munged answering garbage after the TCP connect: the floor closes the connection too."""
    least = _ping_floor(munged, slurmctld)
    with _one_answer_munged(tmp_path, b"not munged's answer") as least._path:
        _no_resource_warning(least.plain, MungeError)


def _no_resource_warning(call, error):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(error):
            call()
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)], [str(w.message) for w in seen]


def test_the_floor_sends_the_version_the_clients_own_ping_sends(munged, slurmctld, monkeypatch):
    from pyslurmrpc import runners
    least = _ping_floor(munged, slurmctld)
    client = Client(slurmctld.host, slurmctld.port, auth="munge", munge_socket=munged.socket_path, timeout=10)
    client.controller_version()
    sent = []
    handler = runners.SYNC.table[runners.Send]
    monkeypatch.setitem(runners.SYNC.table, runners.Send, lambda a: sent.append(bytes(a.data)) or handler(a))
    client.ping()
    assert [int.from_bytes(frame[4:6], "big") for frame in sent] == [least.version]
    assert int.from_bytes(least._head[4:6], "big") == least.version


def test_the_floor_makes_the_clients_socket_calls_and_leaves_nothing_open(munged, slurmctld, tmp_path):
    least = _ping_floor(munged, slurmctld)
    sock = least._connect()                                 # the connect bounded as the client's is
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16) != bytes(16)
    finally:
        sock.close()
    _no_resource_warning(floor.munge_encode(str(tmp_path / "none.socket")), FileNotFoundError)
    least._stock = ["MUNGE:too short:".encode()]           # a credential the frame cannot hold
    _no_resource_warning(least.premint, RuntimeError)


def test_the_floor_checks_munged_answers_type(tmp_path, munged):
    """An encode's answer to a decode is refused, as the library's munged exchange refuses it."""
    from pyslurmrpc.auth.munge_constants import MsgType
    from pyslurmrpc.auth.munge_proto import pack_encode_response, pack_header
    body = pack_encode_response("MUNGE:AAAA:")
    with _one_answer_munged(tmp_path, pack_header(MsgType.ENC_RSP, len(body)) + body) as fake:
        with pytest.raises(MungeError, match="unexpected message type"):
            floor.munge_decode(fake)(MungeClient(munged.socket_path).encode())
