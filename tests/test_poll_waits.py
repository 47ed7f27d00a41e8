"""The blocking runner waits in poll(), bounded by the time left, on sockets that never block.

Real sockets throughout: a munged listen queue that is full (against libmunge's own answer,
through ctypes), requests bigger than a socket's buffer whose peer reads slowly or not at all,
and :func:`pyslurmrpc.sync_sockets.wait_ready` itself.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import socket
import threading
import time

import pytest

from pyslurmrpc.auth.errors import MungeSocketError
from pyslurmrpc.auth.munge import AsyncMungeClient, MungeClient
from pyslurmrpc.effects import Connect, Exchange, ExchangeFailed, Transact
from pyslurmrpc.runners import SyncRunner, run_async
from pyslurmrpc.sync_sockets import POLLIN, POLLOUT, send_within, tcp_connect, wait_ready

BIG = 8 << 20                    # more than any socket buffer here takes at once
MUNGE_OPT_SOCKET = 8             # munge.h


def _connect_and_exchange(path: str, request: bytes, timeout: float):
    conn = yield Connect(path, timeout)
    return (yield Exchange(conn, request, 3, lambda header: header[2], timeout))


@pytest.fixture(params=["sync", "asyncio"])
def run(request):
    if request.param == "sync":
        return SyncRunner().run
    return lambda flow: asyncio.run(run_async(flow))


@pytest.fixture
def full_queue(tmp_path):
    """A UNIX socket path whose listen queue is full (nobody accepts)."""
    path = os.fspath(tmp_path / "full.socket")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    held = []
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.setblocking(False)
        try:
            client.connect(path)
        except BlockingIOError:
            client.close()
            break
        held.append(client)
    yield path
    for sock in held + [server]:
        sock.close()


def _libmunge_encode_error(path: str) -> str:
    lib = ctypes.CDLL(ctypes.util.find_library("munge") or "libmunge.so.2")
    lib.munge_ctx_create.restype = ctypes.c_void_p
    lib.munge_ctx_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    lib.munge_ctx_strerror.argtypes = [ctypes.c_void_p]
    lib.munge_ctx_strerror.restype = ctypes.c_char_p
    lib.munge_encode.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.munge_ctx_destroy.argtypes = [ctypes.c_void_p]
    ctx = lib.munge_ctx_create()
    lib.munge_ctx_set(ctx, MUNGE_OPT_SOCKET, path.encode())
    try:
        assert lib.munge_encode(ctypes.byref(ctypes.c_void_p()), ctx, None, 0) == 6   # EMUNGE_SOCKET
        return lib.munge_ctx_strerror(ctx).decode()
    finally:
        lib.munge_ctx_destroy(ctx)


def test_a_full_munged_queue_fails_at_once_as_libmunge_does(full_queue):
    """libmunge connects without blocking and gives up on EAGAIN (``_m_msg_client_connect``):
    both clients say what it says, at once (before, the blocking client waited 2 s)."""
    expected = _libmunge_encode_error(full_queue)
    assert expected == f'Failed to connect to "{full_queue}": Resource temporarily unavailable'
    for encode in (MungeClient(full_queue).encode, lambda: asyncio.run(AsyncMungeClient(full_queue).encode())):
        start = time.monotonic()
        with pytest.raises(MungeSocketError) as info:
            encode()
        assert info.value.text == expected
        assert time.monotonic() - start < 0.5


def test_a_big_request_goes_out_as_a_slow_peer_reads_it(run, tmp_path):
    """A request that does not fit the socket's buffer: the rest is sent as room comes."""
    path = os.fspath(tmp_path / "slow.socket")
    request = os.urandom(BIG)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        got = []

        def peer():
            conn, _ = server.accept()
            with conn:
                data = b""
                while len(data) < len(request):
                    time.sleep(0.001)
                    data += conn.recv(1 << 18)
                got.append(data)
                conn.sendall(b"OK\x02hi")
        thread = threading.Thread(target=peer)
        thread.start()
        assert run(_connect_and_exchange(path, request, 10.0)) == (2, b"hi")
        thread.join()
    assert got == [request]


def test_a_peer_that_never_reads_fails_the_send_step_in_time(run, tmp_path):
    path = os.fspath(tmp_path / "deaf.socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        start = time.monotonic()
        with pytest.raises(ExchangeFailed) as info:
            run(_connect_and_exchange(path, os.urandom(BIG), 0.3))
        assert info.value.step == "send" and isinstance(info.value.error, TimeoutError)
        assert 0.25 < time.monotonic() - start < 1.5


def test_tcp_send_within_waits_for_room_and_keeps_to_its_time():
    with socket.create_server(("127.0.0.1", 0)) as server:
        host, port = server.getsockname()
        deaf = tcp_connect(host, port, 2.0)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            send_within(deaf.sock, os.urandom(BIG), 0.3)
        assert 0.25 < time.monotonic() - start < 1.5
        deaf.close()
        server.accept()[0].close()

        slow = tcp_connect(host, port, 2.0)
        conn, _ = server.accept()
        data = os.urandom(BIG)
        got = []

        def reader():
            with conn:
                buf = b""
                while len(buf) < len(data):
                    buf += conn.recv(1 << 18)
                got.append(buf)
        thread = threading.Thread(target=reader)
        thread.start()
        assert send_within(slow.sock, data, 10.0) == len(data)
        thread.join()
        slow.close()
    assert got == [data]


def test_wait_ready_returns_when_ready_and_times_out_at_the_deadline():
    ours, peer = socket.socketpair()
    with ours, peer:
        wait_ready(ours, POLLOUT, time.monotonic() + 1.0)          # room in the buffer: at once
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            wait_ready(ours, POLLIN, start + 0.2)
        assert 0.19 < time.monotonic() - start < 1.0
        with pytest.raises(TimeoutError):
            wait_ready(ours, POLLOUT, time.monotonic() - 1)          # no time left: not even ready counts
        peer.sendall(b"x")
        wait_ready(ours, POLLIN, time.monotonic() + 1.0)
        peer.close()
        ours.recv(1)
        wait_ready(ours, POLLIN, time.monotonic() + 1.0)            # a hang-up counts as ready


def _transact(path: str, request: bytes, timeout: float):
    return (yield Transact(path, request, 3, lambda header: header[2], timeout))


def test_a_transacts_time_bounds_its_send_and_its_read_together(run, tmp_path):
    """As an Exchange's: a request the peer takes slowly (about 0.6 s) and never answers fails
    at the 2 s timeout, not 2 s after the send ended (the timeout leaves a loaded machine room
    to take the request well within it, so that the wait that runs out is the answer's)."""
    path = os.fspath(tmp_path / "slow-then-silent.socket")
    request = os.urandom(BIG)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)

        def peer():
            conn, _ = server.accept()
            with conn:
                taken = 0
                while taken < len(request):
                    time.sleep(0.02)
                    chunk = conn.recv(1 << 18)
                    if not chunk:
                        return
                    taken += len(chunk)
                while conn.recv(1 << 16):       # no answer: wait for the client to give up
                    pass
        thread = threading.Thread(target=peer)
        thread.start()
        start = time.monotonic()
        with pytest.raises(ExchangeFailed) as info:
            run(_transact(path, request, 2.0))
        elapsed = time.monotonic() - start
        thread.join(5)
    assert info.value.step == "header" and isinstance(info.value.error, TimeoutError)
    assert 1.95 < elapsed < 2.35, elapsed
