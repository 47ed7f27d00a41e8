"""The Exchange action (a munged request and its answer) in both runners and in Background turns.

Real sockets (a socketpair as the peer): the step a failure names, a header refused by
``body_size``, a request sent once however many turns its answer takes, the header and
body split across reads.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import warnings

import pytest

from pyslurmrpc.effects import Background, Close, Connect, Exchange, ExchangeFailed, Sleep, Transact
from pyslurmrpc.runners import AsyncRunner, SyncRunner, UnixStream, run_async

HEADER = 3


def _size(header: bytes) -> int:
    if len(header) < HEADER:
        raise ValueError(f"short header: {header!r}")
    if header[:2] != b"OK":
        raise ValueError(f"refused header {header!r}")
    return header[2]


def _exchange(conn, timeout: float = 2.0) -> Exchange:
    return Exchange(conn, b"request", HEADER, _size, timeout)


def _one(action):
    return (yield action)


@pytest.fixture(params=["sync", "asyncio"])
def run(request):
    """Run a flow on either runner, with our end of a socketpair made as that runner makes it."""
    def run_sync(flow):
        return SyncRunner().run(flow)

    def run_aio(flow):
        return asyncio.run(run_async(flow))
    return run_sync if request.param == "sync" else run_aio


@pytest.fixture
def pair(request):
    ours, peer = socket.socketpair()
    ours.setblocking(False)           # as both runners make munged's sockets
    yield ours, peer
    ours.close()
    peer.close()


def test_answer_split_across_reads_is_put_together(pair, run):
    ours, peer = pair

    def answer():
        assert peer.recv(100) == b"request"
        for part in (b"O", b"K\x05he", b"llo"):
            peer.sendall(part)
            time.sleep(0.02)
    threading.Thread(target=answer).start()
    assert run(_one(_exchange(UnixStream(ours)))) == (5, b"hello")


def test_a_peer_that_closes_early_gives_the_short_parts(run):
    """A peer that stops sending (shutdown) part-way: a short body is returned for the caller to
    judge; a short header goes to ``body_size``, which refuses it."""
    for answer, expect in ((b"OK\x09abc", (9, b"abc")), (b"O", "short header")):
        ours, peer = socket.socketpair()
        peer.sendall(answer)
        peer.shutdown(socket.SHUT_WR)
        try:
            if isinstance(expect, tuple):
                assert run(_one(_exchange(UnixStream(ours)))) == expect
            else:
                with pytest.raises(ValueError, match=expect):
                    run(_one(_exchange(UnixStream(ours))))
        finally:
            ours.close()
            peer.close()


def test_a_refused_header_is_the_callables_error_not_a_socket_one(pair, run):
    ours, peer = pair
    peer.sendall(b"NO\x01x")
    with pytest.raises(ValueError, match="refused header"):
        run(_one(_exchange(UnixStream(ours))))


@pytest.mark.parametrize("sent, step", [(b"", "header"), (b"OK\x04ab", "body")])
def test_a_stalled_answer_times_out_naming_the_step(pair, run, sent, step):
    ours, peer = pair
    peer.sendall(sent)
    start = time.monotonic()
    with pytest.raises(ExchangeFailed) as info:
        run(_one(_exchange(UnixStream(ours), timeout=0.3)))
    assert info.value.step == step and isinstance(info.value.error, TimeoutError)
    assert time.monotonic() - start < 1.0


def test_a_send_to_a_closed_peer_fails_in_the_send_step(pair, run):
    ours, peer = pair
    peer.close()
    with pytest.raises(ExchangeFailed) as info:
        run(_one(_exchange(UnixStream(ours))))
    assert info.value.step == "send" and isinstance(info.value.error, OSError)


def test_background_exchange_sends_once_across_turns_and_the_runs_end(pair):
    """In Background turns the request goes out at once and the answer is read as it comes;
    the rest is waited for when the call ends, without sending the request again."""
    ours, peer = pair
    got, results = [], []

    def answer():
        got.append(peer.recv(100))
        peer.sendall(b"OK")                        # a header in part, then the rest much later
        time.sleep(0.2)
        peer.sendall(b"\x02hi")
        peer.settimeout(0.3)
        try:
            got.append(peer.recv(100))             # nothing more may come
        except socket.timeout:
            pass
    threading.Thread(target=answer).start()

    def main():
        yield Background(_one(_exchange(UnixStream(ours))), lambda value, error: results.append((value, error)))
        yield Sleep(0.05)                          # its first turn: sent, the answer not whole yet
        yield Sleep(0.01)                          # another turn: still not whole
        return "call done"

    assert SyncRunner().run(main()) == "call done"
    assert results == [((2, b"hi"), None)]
    time.sleep(0.4)
    assert got == [b"request"]


def _answers_what_was_sent(peer_of, seen: list):
    """A Background flow that records what the call had sent by its turn (None: nothing yet),
    then answers "hi"."""
    peer = peer_of()
    try:
        seen.append(peer.recv(100, socket.MSG_DONTWAIT))     # the call's request is already there
    except BlockingIOError:
        seen.append(None)
    peer.sendall(b"OK\x02hi")
    return "bg"
    yield                                                    # pragma: no cover


def test_background_turn_before_an_exchange_comes_after_its_request_is_sent(pair):
    """A Background flow's turn overlaps munged's work on the call's request: the request is
    out before the turn, and the handler does not send it again."""
    ours, peer = pair
    seen = []

    def main():
        yield Background(_answers_what_was_sent(lambda: peer, seen), lambda value, error: seen.append((value, error)))
        return (yield _exchange(UnixStream(ours)))

    assert SyncRunner().run(main()) == (2, b"hi")
    assert seen == [b"request", ("bg", None)]
    peer.settimeout(0.1)
    with pytest.raises(socket.timeout):
        peer.recv(100)                                         # sent once


def test_send_on_a_unix_stream_in_the_blocking_runner(pair):
    """Send stays part of the vocabulary on any stream: no flow of the library sends on munged's
    socket outside an Exchange any more, but a flow that does is served whole."""
    from pyslurmrpc.effects import Send

    ours, peer = pair
    data = b"x" * 300_000                       # more than one socket buffer: sendall's loop

    def reader():
        got.append(b"".join(iter(lambda: peer.recv(65536), b"")))
    got: list = []
    thread = threading.Thread(target=reader)
    thread.start()
    assert SyncRunner().run(_one(Send(UnixStream(ours), data, 2.0))) is None
    ours.shutdown(socket.SHUT_WR)
    thread.join(5)
    assert got == [data]


# -- Transact: a whole munged transaction as one action --------------------------------------------
@pytest.fixture
def listener(tmp_path):
    """(a UNIX socket path, the listening socket behind it)."""
    path = str(tmp_path / "munged.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    server.settimeout(2)
    yield path, server
    server.close()


def _transact(path: str, timeout: float = 2.0) -> Transact:
    return Transact(path, b"request", HEADER, _size, timeout)


def test_a_transact_connects_sends_reads_the_answer_and_closes(listener, run):
    path, server = listener
    seen = []

    def munged():
        conn, _ = server.accept()
        seen.append(conn.recv(100))
        conn.sendall(b"OK\x02hi")
        conn.settimeout(2)
        seen.append(conn.recv(100))          # b"": the runner closed its end
        conn.close()
    thread = threading.Thread(target=munged)
    thread.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert run(_one(_transact(path))) == (2, b"hi")
        gc.collect()
    thread.join(5)
    assert seen == [b"request", b""]
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]   # closed, not dropped


@pytest.mark.parametrize("size", [7, 1 << 20], ids=["request", "request-over-the-buffer"])
@pytest.mark.parametrize("cut", [1, HEADER, HEADER + 1], ids=["header-split", "body-apart", "body-split"])
def test_a_transact_answered_in_pieces(listener, run, cut, size):
    """The usual transaction is written out (one send, one read); a request longer than the
    socket takes at once, or an answer that comes in two pieces, goes on from where it stood:
    every byte sent once, the answer put together."""
    path, server = listener
    request = (bytes(range(256)) * 4096)[:size]    # 1 MiB: more than a UNIX socket buffers
    answer = b"OK\x05hello"
    got = bytearray()

    def munged():
        conn, _ = server.accept()
        conn.settimeout(2)
        while len(got) < len(request):
            got.extend(conn.recv(1 << 16))
        conn.sendall(answer[:cut])
        time.sleep(0.05)                      # the runner's first read takes the first piece only
        conn.sendall(answer[cut:])
        conn.close()
    thread = threading.Thread(target=munged)
    thread.start()
    assert run(_one(Transact(path, request, HEADER, _size, 5.0))) == (5, b"hello")
    thread.join(5)
    assert bytes(got) == request


def _one_answer(server, answer: bytes) -> threading.Thread:
    def munged():
        conn, _ = server.accept()
        conn.settimeout(2)
        conn.recv(100)
        conn.sendall(answer)
        conn.close()
    thread = threading.Thread(target=munged)
    thread.start()
    return thread


def test_a_transact_answer_with_bytes_after_it_gives_the_answer_alone(listener, run):
    path, server = listener
    thread = _one_answer(server, b"OK\x05helloEXTRA")      # all in the first read
    assert run(_one(_transact(path))) == (5, b"hello")
    thread.join(5)


def test_a_header_refused_with_an_oserror_fails_in_the_header_step(listener, run):
    """body_size may refuse a header with any exception; an OSError is the header step's
    failure (ExchangeFailed), not a connect's, whichever read the header came in."""
    path, server = listener

    def refuse(header):
        raise ConnectionAbortedError("refused header")
    thread = _one_answer(server, b"OK\x05hello")
    with pytest.raises(ExchangeFailed) as failed:
        run(_one(Transact(path, b"request", HEADER, refuse, 2.0)))
    thread.join(5)
    assert failed.value.step == "header" and isinstance(failed.value.error, ConnectionAbortedError)


def test_a_transact_whose_connect_fails_raises_the_connects_error(tmp_path, run):
    with pytest.raises(FileNotFoundError):
        run(_one(_transact(str(tmp_path / "nobody"))))


def test_a_transact_answered_too_late_fails_in_its_header_step_on_time(listener, run):
    path, server = listener
    start = time.monotonic()
    with pytest.raises(ExchangeFailed) as failed:
        run(_one(_transact(path, timeout=0.2)))
    assert failed.value.step == "header" and isinstance(failed.value.error, TimeoutError)
    assert 0.2 <= time.monotonic() - start < 1.5


def test_background_turn_before_a_transact_comes_after_its_request_is_sent(listener):
    """With a Background flow (or a close left for later) waiting for a turn, the blocking runner
    takes a Transact apart: connect, send, then the turn, then the read - so the turn overlaps
    munged's work on the request, as before an Exchange."""
    path, server = listener
    seen, accepted = [], []

    def accept():
        accepted.append(server.accept()[0])  # the call's connect is already queued
        return accepted[0]

    def main():
        yield Background(_answers_what_was_sent(accept, seen), lambda value, error: seen.append((value, error)))
        return (yield _transact(path))

    assert SyncRunner().run(main()) == (2, b"hi")
    assert seen == [b"request", ("bg", None)]
    accepted[0].close()


def test_a_background_flows_transact_is_sent_at_the_calls_first_wait(listener):
    """A Background flow's Transact is taken apart, so its request goes out at the call's first
    wait (its answer read at a later turn), not when the call ends."""
    path, server = listener
    arrived = []

    def munged():
        conn, _ = server.accept()
        arrived.append((conn.recv(100), time.monotonic()))
        conn.sendall(b"OK\x02hi")
        conn.close()
    thread = threading.Thread(target=munged)
    thread.start()
    results = []

    def main():
        yield Background(_one(_transact(path)), lambda value, error: results.append((value, error)))
        yield Sleep(0.3)
        return time.monotonic()

    ended = SyncRunner().run(main())
    thread.join(5)
    assert results == [((2, b"hi"), None)]
    assert arrived[0][0] == b"request" and arrived[0][1] < ended - 0.2


def test_a_runner_with_no_transact_handler_takes_it_apart_by_its_own_handlers():
    """A runner made with a table of its own (a scripted one) that has no Transact handler
    performs its three steps with the table's handlers, closing on a failure too."""
    steps = []

    async def connect(action):
        steps.append(("Connect", action.target))
        return "conn"

    async def exchange(action):
        steps.append(("Exchange", action.conn, action.data))
        if action.timeout < 1:
            raise ExchangeFailed("header", TimeoutError("timed out"))
        return 2, b"hi"

    def close(action):
        steps.append(("Close", action.conn))

    runner = AsyncRunner({Connect: connect, Exchange: exchange}, fast={Close: close})
    assert asyncio.run(runner.run(_one(_transact("/m")))) == (2, b"hi")
    with pytest.raises(ExchangeFailed):
        asyncio.run(runner.run(_one(_transact("/m", timeout=0.5))))
    assert steps == [("Connect", "/m"), ("Exchange", "conn", b"request"), ("Close", "conn")] * 2
    steps.clear()
    blocking = SyncRunner({Connect: lambda a: steps.append(("Connect", a.target)) or "conn",
                           Exchange: lambda a: steps.append(("Exchange", a.conn, a.data)) or (2, b"hi"),
                           Close: close})
    assert blocking.run(_one(_transact("/m"))) == (2, b"hi")
    assert steps == [("Connect", "/m"), ("Exchange", "conn", b"request"), ("Close", "conn")]
