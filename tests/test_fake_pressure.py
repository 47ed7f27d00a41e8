"""The fake under pressure (issue 14 item 8): what it buffers, how long its loop stalls, what it opens.

The tests of each fix were run once against the code without it and failed:
the byte limits (a 1 GiB request was buffered, a ping stalled for seconds), the
connection cap (every connection served), the forwarder's slot (a node waited on
itself until MessageTimeout), the forwarder's timeouts (F8 taken for F6; one wait for
a whole subtree), the quiet accept loop (tests/test_fake_pressure_emfile.py) and the
reported chain (tests/test_fake_pressure_chain.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import tracemalloc

import pytest

from pyslurmrpc.fake import FakeSlurmctld, FakeSlurmd, codes, fixture_cluster
from pyslurmrpc.fake import limits
from pyslurmrpc.fake.limits import MAX_BUFFERED_BYTES, MAX_REQUEST_SIZE, SLOTS
from pyslurmrpc.errors import ConnectionClosedError
from pyslurmrpc.fake.transport import ConnectionCapError, exchange
from pyslurmrpc.transport import recv_frame
from pyslurmrpc.wire import Forward, MsgType, decode_message, version_code

from test_fake_server import PROMPT, frame, ping_ok, send_raw

V1905 = version_code("19.05")
#: the longest a ping may wait while another client streams a huge request
PING_BOUND = 0.5
#: a length prefix within Slurm's 1 GiB limit and far over the fake's
HUGE = 2 ** 30 - 64
CHUNK = b"\0" * (256 * 1024)


def prefix(size: int, version: int = V1905) -> bytes:
    """A length prefix and the first header field (the version): all a refusal reads."""
    return size.to_bytes(4, "big") + version.to_bytes(2, "big") + b"\0" * 10


def rc_of(reply: bytes, version: int = V1905) -> int:
    msg = decode_message(reply)
    assert msg.header.version == version and msg.header.msg_type == MsgType.RESPONSE_SLURM_RC
    return msg.body.return_code


@pytest.fixture
async def ctld():
    d = FakeSlurmctld(fixture_cluster(), plugin="ompi", message_timeout=5)
    await d.start()
    yield d
    await d.stop()


# --- 1. bytes: a prefix is admitted or refused before anything of it is kept -----------------------

def test_limits_are_named_and_ordered():
    assert limits.MAX_REQUEST_SIZE == 16 * 1024 * 1024
    assert MAX_REQUEST_SIZE < MAX_BUFFERED_BYTES < 2 ** 30  # under Slurm's MAX_MSG_SIZE
    assert limits.TOO_LARGE == codes.SLURM_PROTOCOL_INSANE_MSG_LENGTH == 1008
    assert limits.BUSY == codes.EAGAIN


@pytest.mark.parametrize("release", ["17.11", "18.08", "19.05"])
@pytest.mark.parametrize("kind", ["slurmctld", "slurmd"])
async def test_prefix_over_the_request_limit_gets_rc_1008_in_its_version(release, kind):
    version = version_code(release)
    d = (FakeSlurmctld(fixture_cluster()) if kind == "slurmctld"
         else FakeSlurmd(fixture_cluster(), "node1"))
    async with d:
        start = time.monotonic()
        reply = await send_raw(d.address, prefix(MAX_REQUEST_SIZE + 1, version))
        assert time.monotonic() - start < PROMPT
        assert rc_of(reply, version) == codes.SLURM_PROTOCOL_INSANE_MSG_LENGTH
        assert d.budget.held == 0
        assert await ping_ok(d)


async def test_request_of_exactly_the_limit_is_admitted(ctld):
    """MAX_REQUEST_SIZE is collected (garbage: closed unanswered), one byte more is refused at once."""
    body = b"\xff" * MAX_REQUEST_SIZE
    assert await send_raw(ctld.address, MAX_REQUEST_SIZE.to_bytes(4, "big") + body, timeout=10) == b""
    assert rc_of(await send_raw(ctld.address, prefix(MAX_REQUEST_SIZE + 1))) == codes.SLURM_PROTOCOL_INSANE_MSG_LENGTH
    assert ctld.budget.held == 0


async def test_refused_prefix_with_a_version_the_fake_refuses_is_closed(ctld):
    assert await send_raw(ctld.address, prefix(HUGE, version_code("23.11"))) == b""
    assert await send_raw(ctld.address, (2 ** 30 + 1).to_bytes(4, "big") + b"\x21\x00") == b""  # over Slurm's


async def test_bytes_across_connections_are_bounded_then_released():
    """Two half-sent requests fill the daemon's budget: a third (a ping) gets EAGAIN, then,
    once one of them is closed, an answer."""
    d = FakeSlurmctld(fixture_cluster(), message_timeout=30, max_request_size=1 << 20, max_buffered=2 << 20)
    async with d:
        held = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection(*d.address)
            writer.write(prefix(1 << 20))
            await writer.drain()
            held.append(writer)
        for _ in range(50):
            if d.budget.held == 2 << 20:
                break
            await asyncio.sleep(0.02)
        assert d.budget.held == 2 << 20
        assert rc_of(await exchange(*d.address, frame(), PROMPT)) == codes.EAGAIN
        held.pop().close()
        for _ in range(50):
            if d.budget.held == 1 << 20:
                break
            await asyncio.sleep(0.02)
        assert await ping_ok(d)
        held.pop().close()


async def test_budget_is_given_back_after_every_answer():
    ping = frame()
    d = FakeSlurmctld(fixture_cluster(), max_request_size=len(ping), max_buffered=3 * len(ping))
    async with d:
        for _ in range(20):
            assert await ping_ok(d)
        assert d.budget.held == 0


def test_a_request_is_copied_at_most_once():
    """The daemon's allocations while one 8 MiB request is collected and refused by the decoder:
    under 2.5 times its size (the chunks and the one joined copy; a second copy is 3 times)."""
    size = 8 << 20
    request = size.to_bytes(4, "big") + b"\xff" * size
    with FakeSlurmctld(fixture_cluster(), max_request_size=size) as d:
        tracemalloc.start()
        try:
            with socket.create_connection(d.address, timeout=10) as s:
                s.sendall(request)
                assert s.recv(1) == b""
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 2.5 * size, peak


# --- 2. the loop: a huge request never stalls a ping ------------------------------------------------

def stream(address, slow: bool, result: dict) -> None:
    """Send a HUGE-byte request (slowly or as fast as possible) until the daemon answers or closes."""
    with socket.create_connection(address, timeout=30) as s:
        s.sendall(prefix(HUGE))
        sent, deadline = 0, time.monotonic() + 20
        s.setblocking(False)
        reply = b""
        while time.monotonic() < deadline:
            try:
                got = s.recv(65536)
                if not got:
                    break
                reply += got
                continue
            except BlockingIOError:
                pass
            except OSError:
                break
            try:
                sent += s.send(CHUNK[:4096] if slow else CHUNK)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break
            if slow:
                time.sleep(0.002)
        result.update(reply=reply, sent=sent)


@pytest.mark.parametrize("slow", [False, True], ids=["fast", "slow"])
def test_ping_answers_while_a_huge_request_streams(slow):
    with FakeSlurmctld(fixture_cluster(), message_timeout=30) as d:
        result: dict = {}
        sender = threading.Thread(target=stream, args=(d.address, slow, result))
        sender.start()
        worst = 0.0
        while sender.is_alive() or worst == 0.0:
            start = time.monotonic()
            with socket.create_connection(d.address, timeout=30) as s:
                s.sendall(frame())
                assert rc_of(recv_frame(s)) == 0
            worst = max(worst, time.monotonic() - start)
            time.sleep(0.01)
        sender.join()
        assert worst < PING_BOUND, worst
        assert rc_of(result["reply"]) == codes.SLURM_PROTOCOL_INSANE_MSG_LENGTH
        assert result["sent"] < HUGE  # never collected


# --- 3. connections: a cap for the whole process, errors rather than waits for forwards ------------

@pytest.fixture
def few_slots(monkeypatch):
    """The process's slots capped at 4 more than are in use now."""
    monkeypatch.setattr(SLOTS, "limit", SLOTS.used + 4)
    return SLOTS


async def test_connections_over_the_cap_are_closed_at_once(ctld, few_slots, caplog):
    idle = [await asyncio.open_connection(*ctld.address) for _ in range(4)]
    try:
        await asyncio.sleep(0.2)
        assert len(ctld._connections) == 4 and few_slots.used == few_slots.limit
        start = time.monotonic()
        for _ in range(3):  # the excess: closed unanswered, one log line for all
            with pytest.raises(ConnectionClosedError):
                await exchange(*ctld.address, frame(), 5, slots=limits.ConnectionSlots(1))
        assert time.monotonic() - start < PROMPT
        assert len(ctld._connections) == 4 and few_slots.used == few_slots.limit
        assert len([r for r in caplog.records if "the cap" in r.getMessage()]) <= 1
        idle.pop()[1].close()
        await asyncio.sleep(0.2)
        assert rc_of(await exchange(*ctld.address, frame(), 5, slots=limits.ConnectionSlots(1))) == 0
    finally:
        for _, writer in idle:
            writer.close()


async def test_exchange_without_a_slot_fails_at_once(few_slots):
    few_slots.limit = few_slots.used
    with pytest.raises(ConnectionCapError):
        await exchange("127.0.0.1", 9, frame(), 5)


async def test_a_forward_without_a_slot_is_an_unreachable_node(few_slots):
    """node1 holds the last slot for its own request: node2 is reported unreachable (1001)
    at once, instead of node1 waiting on its own cap until MessageTimeout."""
    cluster = fixture_cluster()
    n1 = FakeSlurmd(cluster, "node1", message_timeout=10)
    n2 = FakeSlurmd(cluster, "node2", message_timeout=10)
    async with n1, n2:
        few_slots.limit = few_slots.used + 1
        request = decode_message(frame())
        request = request.__class__(
            request.header.__class__(**{**request.header.__dict__,
                                        "forward": Forward(cnt=1, nodelist="node2", timeout=0, tree_width=0)}),
            request.auth, request.body)
        from pyslurmrpc.wire import encode_message
        start = time.monotonic()
        reply = decode_message(await exchange(*n1.address, encode_message(request), 15,
                                              slots=limits.ConnectionSlots(1)))
        assert time.monotonic() - start < 2
    (entry,) = reply.header.ret_list
    assert entry.node_name == "node2" and entry.err == codes.SLURM_COMMUNICATIONS_CONNECTION_ERROR


# --- the cause of the multiplied connections: a forwarding node waits for its whole subtree --------

def test_head_timeout_grows_with_the_steps_below_the_head():
    from pyslurmrpc.fake.forward import Forwarder
    fwd = Forwarder({}, None, message_timeout=10, tree_width=1)
    assert fwd.head_timeout(0, 3) == 3                      # a leaf: the forward timeout
    assert fwd.head_timeout(1, 3) == 10 * 2 + 3 * 3         # (1 + 1) // 1 = 2 steps
    assert Forwarder({}, None, 10, tree_width=50).head_timeout(10, 3) == 3  # 11 // 50 = 0 steps


async def _forward_through_a_chain(silent_node: str, timeouts: dict) -> list:
    """node1 gets a ping to forward to node[2-3] with TreeWidth 1; ``silent_node`` accepts into
    its backlog and never answers, the other two are fake slurmds with the MessageTimeouts given.
    Returns node1's ret_list as (node, code) pairs."""
    from pyslurmrpc.fake import Cluster
    from pyslurmrpc.wire import encode_message
    cluster = Cluster(tree_width=1)
    silent = socket.create_server(("127.0.0.1", 0))
    cluster.node_addrs[silent_node] = silent.getsockname()
    daemons = [FakeSlurmd(cluster, name, message_timeout=t) for name, t in timeouts.items()]
    try:
        async with contextlib.AsyncExitStack() as stack:
            for daemon in daemons:
                await stack.enter_async_context(daemon)
            ping = decode_message(frame())
            header = ping.header.__class__(**{**ping.header.__dict__, "forward": Forward(
                cnt=2, nodelist="node[2-3]", timeout=0, tree_width=1)})
            reply = decode_message(await exchange(*daemons[0].address,
                                                  encode_message(ping.__class__(header, ping.auth, ping.body)),
                                                  10, slots=limits.ConnectionSlots(1)))
    finally:
        silent.close()
    return [(e.node_name, e.err) for e in reply.header.ret_list]


async def test_a_forwarding_node_waits_for_its_head_s_subtree():
    """node1 forwards node[2-3] (TreeWidth 1) to node2, which waits for a silent node3 for its own
    MessageTimeout (1 s, longer than node1's 0.5 s) before answering: node1 waits for that answer
    (node2 0, node3 5004) instead of giving node2 up and asking node3 again."""
    assert await _forward_through_a_chain("node3", {"node1": 0.5, "node2": 1.0}) == [
        ("node2", 0), ("node3", codes.SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT)]


async def test_a_silent_head_is_a_timeout_and_the_next_node_heads_the_rest():
    """F8, not F6: since Python 3.11 a timeout is an OSError, and it was taken for a head that
    refused the connection (1001), which sends the rest one by one, all at once."""
    assert await _forward_through_a_chain("node2", {"node1": 0.3, "node3": 0.3}) == [
        ("node2", codes.SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT), ("node3", 0)]


@pytest.mark.parametrize("served", [False, True])
def test_every_slot_is_given_back_when_the_daemon_stops(served):
    """Idle connections dropped by stop() and answered ones both release their slots: a leak would
    close the process's fakes to every new connection after enough tests."""
    before = SLOTS.used
    with FakeSlurmctld(fixture_cluster(), message_timeout=30) as d:
        idle = [socket.create_connection(d.address) for _ in range(20)]
        if served:
            for _ in range(20):
                with socket.create_connection(d.address, timeout=5) as s:
                    s.sendall(frame())
                    assert rc_of(recv_frame(s)) == 0
        deadline = time.monotonic() + 5  # the daemon's side of a connection ends just after the client's
        while SLOTS.used != before + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert SLOTS.used == before + 20
    for s in idle:
        s.close()
    assert SLOTS.used == before


def test_ping_answers_while_the_largest_admitted_request_is_collected():
    """A request of MAX_REQUEST_SIZE, admitted, arriving in 64 KiB pieces: collecting, joining
    and decoding it never holds the loop for a ping's bound."""
    def send(address, done):
        with socket.create_connection(address, timeout=30) as s:
            s.sendall(MAX_REQUEST_SIZE.to_bytes(4, "big"))
            piece = b"\xff" * 65536
            for _ in range(MAX_REQUEST_SIZE // len(piece)):
                s.sendall(piece)
                time.sleep(0.0005)
            done.append(s.recv(1))  # garbage: closed unanswered once whole
    with FakeSlurmctld(fixture_cluster(), message_timeout=30) as d:
        done: list = []
        sender = threading.Thread(target=send, args=(d.address, done))
        sender.start()
        worst, pings = 0.0, 0
        while sender.is_alive():
            start = time.monotonic()
            with socket.create_connection(d.address, timeout=30) as s:
                s.sendall(frame())
                assert rc_of(recv_frame(s)) == 0
            worst, pings = max(worst, time.monotonic() - start), pings + 1
        sender.join()
    assert done == [b""] and pings > 10
    assert worst < PING_BOUND, worst
