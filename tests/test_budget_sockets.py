"""F7a's bounds (protocol_specs/client_behaviour.md) on real sockets, blocking and asyncio: every
call kind against a controller that never answers, one that refuses and one that swallows
connects; a fan-out round of many hops; a controller that reads a big request slowly.
The formulas and the exact virtual-clock times are in test_budget_calls.py; here the slack
is for a shared machine.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from pyslurmrpc import AsyncClient, Client
from pyslurmrpc.errors import PyslurmrpcError, SlurmError

from test_budget_calls import NODELIST, NODES, SCENARIOS, bound

#: what a real call may take past its F7a bound on a shared 2-core machine
SLACK = 1.0
REAL_MT, REAL_TT = 1.0, 0.5


class Peers:
    """A silent listener (accepts, never answers), a refusing port (bound, not listening) and a
    blackhole (a listener whose one-place accept queue is full: further SYNs are dropped)."""

    def __init__(self):
        self.silent = socket.create_server(("127.0.0.1", 0))
        self.accepted: list[socket.socket] = []
        self.refusing = socket.socket()
        self.refusing.bind(("127.0.0.1", 0))
        self.blackhole = socket.socket()
        self.blackhole.bind(("127.0.0.1", 0))
        self.blackhole.listen(0)
        self.fillers = [self._fill() for _ in range(2)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _fill(self) -> socket.socket:
        sock = socket.socket()
        sock.settimeout(0.3)
        try:
            sock.connect(self.blackhole.getsockname())
        except OSError:
            pass
        return sock

    def _accept(self):
        self.silent.settimeout(0.1)
        while not self.stop.is_set():
            try:
                self.accepted.append(self.silent.accept()[0])
            except OSError:
                continue

    def addr(self, scenario: str):
        return {"silent": self.silent, "refused": self.refusing, "blackhole": self.blackhole}[scenario].getsockname()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for sock in self.accepted + self.fillers + [self.silent, self.refusing, self.blackhole]:
            sock.close()


@pytest.fixture
def peers():
    p = Peers()
    yield p
    p.close()


def test_the_blackhole_swallows_connects(peers):
    sock = socket.socket()
    sock.settimeout(0.3)
    with sock, pytest.raises(TimeoutError):
        sock.connect(peers.addr("blackhole"))


def _real_client(cls, addr):
    host, port = addr
    return cls(host, port, auth="none", timeout=REAL_MT, connect_timeout=REAL_TT, tree_width=2,
               nodes={name: (host, port) for name in NODES})


REAL_CALLS = {
    "ping()": lambda c: c.ping(), "ping(0)": lambda c: c.ping(0),
    "checkpoint_able": lambda c: c.checkpoint_able(1, 0),
    "controller_version": lambda c: c.controller_version(),
    "checkpoint_tasks": lambda c: c.checkpoint_tasks(1, 0, 0, None, 0, NODELIST),
}


def _verdict(results: dict) -> None:
    assert len(results) == len(SCENARIOS) * len(REAL_CALLS)
    over = {case: round(took, 2) for case, (took, _) in results.items()
            if took > bound(case[1], REAL_MT, REAL_TT, 1, 2) + SLACK}
    assert not over, f"past F7a's bound + {SLACK} s: {over}"
    for case, (_, exc) in results.items():
        assert isinstance(exc, (PyslurmrpcError, SlurmError)), (case, exc)


def test_blocking_calls_keep_their_bounds_on_real_sockets(peers):
    results = {}

    def one(scenario, call):
        client = _real_client(Client, peers.addr(scenario))
        start = time.monotonic()
        try:
            REAL_CALLS[call](client)
            exc = None
        except Exception as err:      # judged in _verdict
            exc = err
        results[scenario, call] = (time.monotonic() - start, exc)
    threads = [threading.Thread(target=one, args=(s, c)) for s in SCENARIOS for c in REAL_CALLS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    _verdict(results)


async def test_async_calls_keep_their_bounds_on_real_sockets(peers):
    async def one(scenario, call):
        client = _real_client(AsyncClient, peers.addr(scenario))
        start = time.monotonic()
        try:
            await REAL_CALLS[call](client)
            exc = None
        except Exception as err:
            exc = err
        return (scenario, call), (time.monotonic() - start, exc)
    _verdict(dict(await asyncio.gather(*(one(s, c) for s in SCENARIOS for c in REAL_CALLS))))


#: more first hops than the blocking runner once ran at a time (64): 4 turns of one hop's time
WIDE = 200


def test_blocking_fan_out_round_takes_one_hop_time(peers):
    """WIDE nodes, TreeWidth above it: every node is a first hop of its own, side by side (one
    thread per hop, as forward.c); against a silent slurmd the round takes T, not T per 64 hops."""
    host, port = peers.addr("silent")
    client = Client(host, port, auth="none", timeout=REAL_MT, connect_timeout=REAL_TT, tree_width=WIDE + 1,
                    nodes={f"w{i}": (host, port) for i in range(WIDE)})
    start = time.monotonic()
    with pytest.raises(SlurmError) as info:
        client.checkpoint_tasks(1, 0, 0, None, 0, f"w[0-{WIDE - 1}]")
    assert len(info.value.details) == WIDE
    assert time.monotonic() - start <= REAL_MT + SLACK


#: a request larger than the socket buffers, so the send itself has to wait for the peer
BIG_IMAGE_DIR = "d" * (32 << 20)


@pytest.fixture
def slow_reader():
    """A controller that reads 64 KiB every 0.2 s and never answers."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop, conns = threading.Event(), []

    def drain(conn):
        try:
            while not stop.is_set() and conn.recv(65536):
                time.sleep(0.2)
        except OSError:
            pass

    def run():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn = srv.accept()[0]
            except OSError:
                continue
            conns.append(conn)
            threading.Thread(target=drain, args=(conn,), daemon=True).start()
    threading.Thread(target=run, daemon=True).start()
    yield srv.getsockname()
    stop.set()
    for conn in conns:
        conn.close()
    srv.close()


def test_blocking_send_to_a_slow_reader_keeps_the_exchange_bound(slow_reader):
    """sendall() gave each partial send the whole timeout: a peer reading a little at a time held
    the call without end. Now the send and the reply share one MessageTimeout."""
    client = Client(*slow_reader, auth="none", timeout=REAL_MT)
    outcome = []

    def call():
        start = time.monotonic()
        try:
            client.checkpoint_create(1, 0, 0, BIG_IMAGE_DIR)
        except PyslurmrpcError as exc:
            outcome.append((time.monotonic() - start, exc))
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(REAL_MT + SLACK + 5)     # encoding 32 MiB takes a moment on a busy machine
    assert outcome, "the blocking send to a slow reader did not end"
    assert outcome[0][0] <= REAL_MT + SLACK + 2 and "no reply within" in str(outcome[0][1])


async def test_async_send_to_a_slow_reader_keeps_the_exchange_bound(slow_reader):
    client = AsyncClient(*slow_reader, auth="none", timeout=REAL_MT)
    start = time.monotonic()
    with pytest.raises(PyslurmrpcError, match="no reply within"):
        await asyncio.wait_for(client.checkpoint_create(1, 0, 0, BIG_IMAGE_DIR), REAL_MT + SLACK + 5)
    assert time.monotonic() - start <= REAL_MT + SLACK + 2


@pytest.fixture
def trickler():
    """A controller that announces a 1 MiB reply and then sends it a byte every 0.2 ms."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn.recv(65536)
            conn.sendall((1 << 20).to_bytes(4, "big"))
            while not stop.is_set():
                conn.send(b"\0")
                time.sleep(0.0002)
        except OSError:
            pass
        finally:
            conn.close()

    def run():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
            except OSError:
                continue
    threading.Thread(target=run, daemon=True).start()
    yield srv.getsockname()
    stop.set()
    srv.close()


def test_a_reply_trickled_faster_than_any_wait_still_ends_on_time(trickler):
    """Each read waited at least 1 ms, even past the deadline: a byte every 0.2 ms held the call
    until the whole reply came (minutes). Now the reply's time ends it."""
    client = Client(*trickler, auth="none", timeout=REAL_MT)
    outcome = []

    def call():
        start = time.monotonic()
        try:
            client.ping(0)
        except PyslurmrpcError as exc:
            outcome.append(exc)
        outcome.append(time.monotonic() - start)
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(REAL_MT + SLACK + 5)
    assert outcome, "a trickled reply held the blocking call"
    assert outcome[-1] <= REAL_MT + SLACK and "no reply within" in str(outcome[0]), outcome


async def test_async_reply_trickled_faster_than_any_wait_still_ends_on_time(trickler):
    client = AsyncClient(*trickler, auth="none", timeout=REAL_MT)
    start = time.monotonic()
    with pytest.raises(PyslurmrpcError, match="no reply within"):
        await asyncio.wait_for(client.ping(0), REAL_MT + SLACK + 5)
    assert time.monotonic() - start <= REAL_MT + SLACK
