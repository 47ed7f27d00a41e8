"""Background flows in the blocking runner (runners._Aside): no thread, steps at the call's waits.

Each test drives SyncRunner with real sockets (a socketpair as the munged side) and checks
one rule: a Background flow starts only at the call's first wait, takes the steps that
finish at once, finishes (or is given up) when its call ends, and never runs on a thread.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from pyslurmrpc.effects import Background, Connect, Exchange, Now, Sleep
from pyslurmrpc.runners import SyncRunner, UnixStream


@pytest.fixture
def pair():
    """(our end as the runner's UnixStream, the peer socket)."""
    ours, peer = socket.socketpair()
    ours.setblocking(False)           # as both runners make munged's sockets
    yield UnixStream(ours), peer
    ours.close()
    peer.close()


class Log:
    """What happened, in order, and how each Background flow ended."""

    def __init__(self):
        self.events: list = []

    def done(self, value, error):
        self.events.append(("done", value, None if error is None else str(error)))


def _read(conn, size: int, request: bytes = b"") -> Exchange:
    """An Exchange that sends ``request`` and reads ``size`` bytes (no header)."""
    return Exchange(conn, request, 0, lambda header: size, 2.0)


def _reader(log: Log, conn, size: int):
    log.events.append(("bg starts", threading.get_ident()))
    _, data = yield _read(conn, size)
    log.events.append(("bg read", data))
    return data


def test_it_starts_at_the_calls_first_wait_not_when_asked(pair):
    conn, peer = pair
    log = Log()
    peer.sendall(b"ready")

    def main():
        yield Background(_reader(log, conn, 5), log.done)
        log.events.append(("main goes on",))
        yield Now()                            # no wait: the background flow has not begun
        log.events.append(("main waits",))
        yield Sleep(0)                         # a wait: it gets its turn first
        log.events.append(("main after wait",))
        return "main value"

    assert SyncRunner().run(main()) == "main value"
    names = [e[0] for e in log.events]
    assert names == ["main goes on", "main waits", "bg starts", "bg read", "done", "main after wait"]
    assert log.events[1:] and log.events[2][1] == threading.get_ident()   # the caller's thread
    assert ("done", b"ready", None) in log.events


def test_a_read_that_would_wait_is_left_for_a_later_turn(pair):
    conn, peer = pair
    log = Log()

    def main():
        yield Background(_reader(log, conn, 5), log.done)
        yield Sleep(0)                         # its first turn: nothing to read yet
        log.events.append(("after first turn", any(e[0] == "done" for e in log.events)))
        peer.sendall(b"later")
        yield Sleep(0)                         # its second turn: the answer is there
        log.events.append(("after second turn", any(e[0] == "done" for e in log.events)))

    SyncRunner().run(main())
    assert ("after first turn", False) in log.events
    assert ("after second turn", True) in log.events
    assert ("done", b"later", None) in log.events


def test_what_is_left_when_the_call_ends_is_waited_for_then(pair):
    conn, peer = pair
    log = Log()
    threading.Timer(0.2, peer.sendall, (b"late!",)).start()

    def main():
        yield Background(_reader(log, conn, 5), log.done)
        return "answer"

    start = time.monotonic()
    assert SyncRunner().run(main()) == "answer"
    assert time.monotonic() - start >= 0.15
    assert log.events[-1] == ("done", b"late!", None)


def test_a_failed_call_gives_it_up_and_closes_what_it_opened(tmp_path):
    path = str(tmp_path / "sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    log, opened = Log(), []

    def background():
        conn = yield Connect(path, 2.0)
        opened.append(conn)
        yield _read(conn, 1)                   # nobody answers

    def main():
        yield Background(background(), log.done)
        yield Sleep(0)
        raise ValueError("the call failed")

    with pytest.raises(ValueError):
        SyncRunner().run(main())
    assert log.events == [("done", None, "background flow given up: its call failed")]
    assert opened and opened[0].sock.fileno() == -1
    listener.close()


def test_a_pause_after_the_call_ended_is_not_waited_for():
    log = Log()

    def background():
        yield Sleep(30)
        return "never"

    def main():
        yield Background(background(), log.done)
        return 1

    start = time.monotonic()
    assert SyncRunner().run(main()) == 1
    assert time.monotonic() - start < 5
    assert log.events == [("done", None, "background flow given up: it would pause after its call ended")]


def test_an_error_inside_it_is_reported_to_done_not_to_the_call(pair):
    conn, peer = pair
    log = Log()
    peer.close()

    def background():
        _, data = yield _read(conn, 4)         # the peer is gone: fewer bytes than asked
        if len(data) < 4:
            raise ConnectionError("short read")

    def main():
        yield Background(background(), log.done)
        yield Sleep(0)
        return "fine"

    assert SyncRunner().run(main()) == "fine"
    assert log.events == [("done", None, "short read")]


def test_asyncio_runner_connects_to_loopback_without_awaiting():
    """A loopback handshake is over when connect() returns: the asyncio runner's fast step hands
    back the connection (no await); a refused port or another address is left to the awaited
    connect, which reports what it meets."""
    from pyslurmrpc.client.core import Endpoint
    from pyslurmrpc.runners import ASYNC, _AWAIT

    server = socket.create_server(("127.0.0.1", 0))
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    fast = ASYNC.fast[Connect]
    try:
        conn = fast(Connect(Endpoint("c", "127.0.0.1", server.getsockname()[1]), 1.0))
        assert conn is not _AWAIT
        conn.sock.send(b"up")
        peer = server.accept()[0]
        assert peer.recv(2) == b"up"
        peer.close()
        conn.close()
        assert fast(Connect(Endpoint("c", "127.0.0.1", refusing.getsockname()[1]), 1.0)) is _AWAIT
        assert fast(Connect(Endpoint("c", "192.0.2.1", 6817), 1.0)) is _AWAIT   # TEST-NET-1: not loopback
    finally:
        server.close()
        refusing.close()


def test_asyncio_read_answered_within_one_turn_of_the_loop_sets_up_no_reader(monkeypatch):
    """An answer that comes while the loop runs its other callbacks once is read with no
    reader and no timer (two epoll_ctl calls and a heap entry saved per read); one that does
    not come is waited for as before."""
    import asyncio

    from pyslurmrpc import runners

    waits = []
    real = runners._readable

    async def counting(loop, sock, deadline):
        waits.append(sock)
        await real(loop, sock, deadline)
    monkeypatch.setattr(runners, "_readable", counting)

    async def read(answer_now: bool) -> bytes:
        ours, peer = socket.socketpair()
        ours.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            conn = UnixStream(ours)
            action = _read(conn, 4)
            assert runners._try_exchange(action) is runners._AWAIT  # the fast step found nothing
            if answer_now:
                loop.call_soon(peer.send, b"ping")                 # answered in the loop's next turn
            else:
                loop.call_later(0.05, peer.send, b"pong")
            return (await runners.ASYNC.table[Exchange](action))[1]
        finally:
            ours.close()
            peer.close()

    assert asyncio.run(read(True)) == b"ping" and waits == []
    assert asyncio.run(read(False)) == b"pong" and len(waits) == 1


def test_a_background_flow_started_from_a_background_flow_ends_with_it():
    log = Log()

    def inner():
        yield Now()
        return "inner"

    def outer():
        yield Background(inner(), log.done)
        return "outer"

    def main():
        yield Background(outer(), log.done)
        return "main"

    assert SyncRunner().run(main()) == "main"
    assert sorted(e[1] for e in log.events) == ["inner", "outer"]


def test_a_close_left_for_later_happens_at_the_next_wait_or_the_end(pair):
    """Close(later=True): the blocking runner closes just before the flow's next wait (while
    munged works, for a reply's connection) or when the run ends; never before."""
    from pyslurmrpc.effects import Close

    conn, peer = pair
    seen = []

    def main(wait: bool):
        yield Close(conn, later=True)
        yield Now()
        seen.append(("after Now", conn.sock.fileno() == -1))
        if wait:
            yield Sleep(0)
            seen.append(("after a wait", conn.sock.fileno() == -1))
        return "done"

    assert SyncRunner().run(main(True)) == "done"
    assert seen == [("after Now", False), ("after a wait", True)]
    ours, _ = socket.socketpair()
    conn2 = UnixStream(ours)
    seen.clear()

    def ends():
        yield Close(conn2, later=True)
        return "done"
    assert SyncRunner().run(ends()) == "done" and conn2.sock.fileno() == -1


def test_asyncio_close_left_for_later_happens_once_the_call_awaits(pair):
    import asyncio

    from pyslurmrpc.effects import Close
    from pyslurmrpc.runners import ASYNC

    conn, peer = pair
    seen = []

    def main():
        yield Close(conn, later=True)
        seen.append(("before the await", conn.sock.fileno() == -1))
        yield Sleep(0)
        seen.append(("after the await", conn.sock.fileno() == -1))

    asyncio.run(ASYNC.run(main()))
    assert seen == [("before the await", False), ("after the await", True)]
