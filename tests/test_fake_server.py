"""The fake daemons on the wire: versions, auth refusals, limits, robustness, lifecycle."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pyslurmrpc.auth.munge_cred import ReplayCache, encode_offline
from pyslurmrpc.auth.slurm_auth import NoneAuth, OfflineMungeAuth
from pyslurmrpc.fake import FakeSlurmctld, FakeSlurmd, fixture_cluster
from pyslurmrpc.fake.transport import exchange
from pyslurmrpc.transport import recv_frame
from pyslurmrpc.wire import (
    CheckOp, CheckpointMsg, Header, Message, MsgType, MungeAuthCred, PingMsg, decode_message, encode_message,
    version_code,
)

from fixtures_data import FIXTURES, manifest, recording

V1905 = version_code("19.05")
KEY = FIXTURES / "munge.key"
#: how long a refused connection may take to close, and a ping to be answered
PROMPT = 2.0


def frame(msg_type=MsgType.REQUEST_PING, body=None, *, uid=0, version=V1905, auth=None) -> bytes:
    auth = auth or NoneAuth(uid=uid, gid=0, hostname="t").create(version)
    return encode_message(Message(Header(version=version, msg_type=msg_type), auth, body or PingMsg()))


def able(job=2, step=0):
    return CheckpointMsg(op=CheckOp.CHECK_ABLE, data=0, job_id=job, step_id=step, image_dir=None)


async def send_raw(addr, data: bytes, timeout=PROMPT, eof=False) -> bytes:
    """Send bytes (then half-close if ``eof``), return everything the daemon sent before closing."""
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(data)
        if eof:
            writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


@pytest.fixture
async def ctld():
    d = FakeSlurmctld(fixture_cluster(), plugin="ompi", message_timeout=0.5)
    await d.start()
    yield d
    await d.stop()


async def ping_ok(d) -> bool:
    reply = decode_message(await exchange(*d.address, frame(), PROMPT))
    return reply.header.msg_type == MsgType.RESPONSE_SLURM_RC and reply.body.return_code == 0


@pytest.mark.parametrize("release", ["17.11", "18.08", "19.05"])
async def test_answers_in_request_version(ctld, release):
    reply = decode_message(await exchange(*ctld.address, frame(MsgType.REQUEST_CHECKPOINT, able(),
                                                               version=version_code(release)), PROMPT))
    assert reply.header.version == version_code(release)
    assert reply.header.msg_type == MsgType.RESPONSE_CHECKPOINT
    assert reply.auth.plugin == "auth/none" and reply.auth.uid == 0


@pytest.mark.parametrize("release", ["20.02", "20.11", "23.11"])
async def test_newer_version_closed_without_reply(ctld, release):
    ping = frame()  # a 19.05 ping relabelled: refused on the version whether or not it decodes
    newer = ping[:4] + version_code(release).to_bytes(2, "big") + ping[6:]
    assert await send_raw(ctld.address, newer) == b""
    assert await ping_ok(ctld)


async def test_garbage_and_wrong_plugin_closed(ctld):
    assert await send_raw(ctld.address, b"\x00\x00\x00\x05hello") == b""
    munge_env = MungeAuthCred(credential="MUNGE:AAAA:")
    assert await send_raw(ctld.address, frame(auth=munge_env)) == b""
    assert await ping_ok(ctld)


async def test_oversized_prefix_closes_at_once(ctld):
    ctld.message_timeout = 10
    start = time.monotonic()
    assert await send_raw(ctld.address, (2 ** 30 + 1).to_bytes(4, "big"), timeout=5) == b""
    assert time.monotonic() - start < 1.0  # at once, not after MessageTimeout


async def test_stalled_client_dropped_after_message_timeout(ctld):
    start = time.monotonic()
    assert await send_raw(ctld.address, frame()[:7], timeout=5) == b""
    assert 0.4 < time.monotonic() - start < 3


async def test_idle_connections_do_not_delay_ping(ctld):
    ctld.message_timeout = 30
    idle = [await asyncio.open_connection(*ctld.address) for _ in range(500)]
    try:
        await asyncio.sleep(0.1)
        start = time.monotonic()
        assert await ping_ok(ctld)
        assert time.monotonic() - start < 1.0
    finally:
        for _, w in idle:
            w.close()


async def test_munge_offline_auth_refusals():
    signer = OfflineMungeAuth(KEY, uid=1000, gid=1000)
    d = FakeSlurmctld(fixture_cluster(), auth=OfflineMungeAuth(KEY, replay_cache=ReplayCache()))
    async with d:
        request = frame(MsgType.REQUEST_CHECKPOINT, able(), auth=signer.create(V1905))
        reply = decode_message(await exchange(*d.address, request, PROMPT))
        assert reply.body.return_code == 2002  # uid 1000 does not own job 2
        assert reply.auth.plugin == "auth/munge"
        assert await send_raw(d.address, request) == b""  # replayed
        other_key = OfflineMungeAuth(os.urandom(32), uid=0, gid=0)
        assert await send_raw(d.address, frame(auth=other_key.create(V1905))) == b""
        for restriction, answered in ((os.geteuid() + 1, False), (os.geteuid(), True)):
            cred = encode_offline(KEY.read_bytes(), uid=0, gid=0, uid_restriction=restriction)
            env = MungeAuthCred(credential=cred)
            assert bool(await send_raw(d.address, frame(auth=env))) is answered
        expired = encode_offline(KEY.read_bytes(), uid=0, gid=0, encode_time=int(time.time()) - 4000)
        assert await send_raw(d.address, frame(auth=MungeAuthCred(credential=expired))) == b""


async def test_slurmd_answers_failed_auth_with_1007():
    cluster = fixture_cluster()
    d = FakeSlurmd(cluster, "localhost", auth=OfflineMungeAuth(KEY))
    async with d:
        reply = decode_message(await exchange(*d.address, frame(), PROMPT))
        assert reply.body.return_code == 1007
        assert reply.header.orig_addr.host == "127.0.0.1"


def _mutations(base: list[bytes], rnd: random.Random):
    for _ in range(300):
        data = bytearray(rnd.choice(base))
        for _ in range(rnd.randint(1, 4)):
            if data:
                data[rnd.randrange(len(data))] = rnd.randrange(256)
        yield bytes(data[:rnd.randint(0, len(data))] if rnd.random() < 0.2 else data)


async def test_mutated_frames_do_not_stop_the_server(ctld):
    base = [recording(e["name"], "request") for e in manifest()] + [frame(), frame(MsgType.REQUEST_CHECKPOINT, able())]
    rnd = random.Random(5)
    for data in _mutations(base, rnd):
        try:
            await send_raw(ctld.address, data, timeout=2, eof=True)
        except (ConnectionError, asyncio.TimeoutError):
            pass
    assert await ping_ok(ctld)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=300))
def test_random_bytes_do_not_stop_the_server(threaded_ctld, data):
    with socket.create_connection(threaded_ctld.address, timeout=2) as s:
        s.sendall(len(data).to_bytes(4, "big") + data)
        s.shutdown(socket.SHUT_WR)
        try:
            s.recv(65536)
        except socket.timeout:
            pass
    assert _sync_ping(threaded_ctld.address).body.return_code == 0


def _sync_ping(addr):
    with socket.create_connection(addr, timeout=PROMPT) as s:
        s.sendall(frame())
        reply = recv_frame(s)
    assert reply is not None, "the fake closed without answering a ping"
    return decode_message(reply)


@pytest.fixture(scope="module")
def threaded_ctld():
    with FakeSlurmctld(fixture_cluster(), message_timeout=1) as d:
        yield d


def test_sync_context_manager_runs_in_background(threaded_ctld):
    assert _sync_ping(threaded_ctld.address).header.msg_type == MsgType.RESPONSE_SLURM_RC
    assert threaded_ctld.call(lambda: threaded_ctld.cluster.jobs[2].uid) == 0


def test_sync_start_failure_leaves_no_thread(threaded_ctld):
    import threading
    before = threading.active_count()
    with pytest.raises(OSError):
        with FakeSlurmctld(fixture_cluster(), port=threaded_ctld.port):
            pass
    assert threading.active_count() == before
