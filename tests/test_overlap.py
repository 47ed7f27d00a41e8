"""The connect to a daemon overlaps munged's mint of the call's credential (effects.overlapped).

libslurm connects, then asks munged for the credential, then sends.  pyslurmrpc posts the
credential's request to munged, connects while munged works on it, then reads the credential:
the call is shorter by about the connect, and a failed credential is still the error raised
first.  These tests check the combinator's order and errors with a scripted driver, the Post
step of both runners on a real socket pair, and the order of a real ping's steps against the
real munged and slurmctld of the harness.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from pyslurmrpc import runners
from pyslurmrpc.client import AsyncClient, Client
from pyslurmrpc.effects import (
    Close, Connect, Exchange, ExchangeFailed, Now, Post, Transact, overlapped, steps_apart, transact_steps,
)
from pyslurmrpc.errors import AuthError, ConnectionRefusedTransportError
from pyslurmrpc.runners import AsyncRunner, SyncRunner, UnixStream
from pyslurmrpc.testing.netio import free_port


class Script:
    """Drives a flow: records each action, answers from ``answers`` (type -> value, an
    exception to throw, or an iterator of those, one per action); the clock moves 1 s per
    Connect."""

    def __init__(self, answers=None):
        self.log, self.t = [], 0.0
        self.answers = answers or {}

    def run(self, flow):
        value, error = None, None
        while True:
            try:
                action = flow.throw(error) if error is not None else flow.send(value)
            except StopIteration as stop:
                return stop.value
            self.log.append(action)
            value, error = None, None
            if type(action) is Now:
                value = self.t
                continue
            if type(action) is Connect:
                self.t += 1.0
            answer = self.answers.get((type(action), getattr(action, "target", None)),
                                      self.answers.get(type(action)))
            if hasattr(answer, "__next__"):
                answer = next(answer)
            if isinstance(answer, Exception):
                error = answer
            else:
                value = answer


def _mint(tries=1):
    """A credential flow as the munged transaction yields it: connect, exchange, close."""
    for attempt in range(tries):
        conn = yield Connect("munged", 2.0)
        try:
            _, body = yield Exchange(conn, b"ENC", 11, len, 5.0)
        except ExchangeFailed:
            yield Close(conn)
            if attempt + 1 == tries:
                raise
            continue
        yield Close(conn)
        return body


def _reach():
    return (yield Connect("controller", 2.0))


def _undo(conn):
    yield Close(conn)


def kinds(log):
    return [(type(a).__name__, getattr(a, "target", None)) for a in log]


def test_the_connect_runs_between_posting_munged_request_and_reading_its_answer():
    script = Script({Connect: "conn", Exchange: (4, b"cred")})
    assert script.run(overlapped(_mint(), _reach(), _undo)) == (b"cred", "conn")
    assert kinds(script.log) == [("Connect", "munged"), ("Post", None), ("Now", None), ("Connect", "controller"),
                                 ("Now", None), ("Exchange", None), ("Close", None)]
    post, exchange = script.log[1], script.log[5]
    assert post.data == exchange.data == b"ENC"
    assert exchange.timeout == pytest.approx(5.0 - 1.0)   # its own time less the connect's


def test_a_failed_credential_is_raised_first_and_the_connection_closed():
    script = Script({Connect: "ctl-conn", Exchange: ExchangeFailed("header", TimeoutError("timed out"))})
    with pytest.raises(ExchangeFailed):
        script.run(overlapped(_mint(), _reach(), _undo))
    assert kinds(script.log)[-2:] == [("Close", None), ("Close", None)]
    assert [a.conn for a in script.log[-2:]] == ["ctl-conn", "ctl-conn"]  # munged's (the same stand-in), then undo's


def test_a_failed_connect_is_raised_without_waiting_for_the_credential():
    """libslurm connects before it mints: a connect that fails is the call's error, and the
    credential posted meanwhile is given up, its answer not waited for."""
    script = Script({(Connect, "controller"): ConnectionRefusedTransportError("refused"),
                     Connect: "m", Exchange: (4, b"cred")})
    with pytest.raises(ConnectionRefusedTransportError):
        script.run(overlapped(_mint(), _reach(), _undo))
    assert kinds(script.log) == [("Connect", "munged"), ("Post", None), ("Now", None), ("Connect", "controller")]
    script = Script({(Connect, "controller"): ConnectionRefusedTransportError("refused"), Connect: "m"})
    with pytest.raises(ConnectionRefusedTransportError):       # taken apart, munged's connection is closed
        script.run(overlapped(_mint_whole(), _reach(), _undo))
    assert kinds(script.log)[-2:] == [("Connect", "controller"), ("Close", None)] and script.log[-1].conn == "m"


def test_a_failed_connect_is_the_error_even_when_the_credential_flow_cannot_be_closed():
    """A credential flow of a caller's own that yields in its ``finally`` cannot be closed
    where it is given up: its RuntimeError must not replace the connect's failure."""
    def stubborn():
        try:
            return (yield Exchange("m", b"ENC", 11, len, 5.0))[1]
        finally:
            yield Close("m")
    script = Script({(Connect, "controller"): ConnectionRefusedTransportError("refused")})
    with pytest.raises(ConnectionRefusedTransportError):
        script.run(overlapped(stubborn(), _reach(), _undo))


def test_a_post_that_fails_is_the_exchanges_own_failure_and_the_credential_flow_decides():
    """A send that fails at the Post is thrown into the credential flow as its Exchange's failure:
    it retries (posting again), and when its tries are spent its error is raised once the daemon,
    which libslurm would have connected to first, was reached and its connection closed."""
    script = Script({Connect: "c", Post: ExchangeFailed("send", ConnectionResetError())})
    with pytest.raises(ExchangeFailed):
        script.run(overlapped(_mint(tries=2), _reach(), _undo))
    assert [k for k in kinds(script.log) if k[0] in ("Connect", "Post", "Close")] == [
        ("Connect", "munged"), ("Post", None), ("Close", None), ("Connect", "munged"), ("Post", None),
        ("Close", None), ("Connect", "controller"), ("Close", None)]
    script = Script({(Connect, "controller"): ConnectionRefusedTransportError("refused"), Connect: "c",
                     Post: ExchangeFailed("send", ConnectionResetError())})
    with pytest.raises(ConnectionRefusedTransportError):   # both failed: the connect's, as libslurm's
        script.run(overlapped(_mint(tries=2), _reach(), _undo))


@pytest.mark.parametrize("mint", ["steps", "transact"])
def test_a_declined_post_keeps_the_order_credential_then_connect(mint):
    """The runner declines: the answer is read (the Transact's taken apart), then the connect."""
    script = Script({Connect: "conn", Post: False, Exchange: (4, b"cred")})
    credential = _mint() if mint == "steps" else _mint_whole()
    assert script.run(overlapped(credential, _reach(), _undo)) == (b"cred", "conn")
    assert kinds(script.log) == [("Connect", "munged"), ("Post", None), ("Exchange", None), ("Close", None),
                                 ("Connect", "controller")]
    assert script.log[2].timeout == 5.0


def test_without_a_munged_request_the_connect_follows_the_credential():
    def stocked():
        return b"from the stock"
        yield  # pragma: no cover
    script = Script({Connect: "conn"})
    assert script.run(overlapped(stocked(), _reach(), _undo)) == (b"from the stock", "conn")
    assert kinds(script.log) == [("Connect", "controller")]


def _mint_whole(tries=1):
    """A credential flow as the munged transaction yields it now: one Transact per try."""
    for attempt in range(tries):
        try:
            _, body = yield Transact("munged", b"ENC", 11, len, 5.0)
        except (OSError, ExchangeFailed):
            if attempt + 1 == tries:
                raise
            yield Now()
            continue
        return body


def test_a_transact_is_taken_apart_so_the_connect_runs_while_munged_mints():
    """Its connect, the Post, the other flow, the read of the answer with the time left; munged's
    connection is closed at the next wait (later), where the close costs the call nothing."""
    script = Script({Connect: "conn", Exchange: (4, b"cred")})
    assert script.run(overlapped(_mint_whole(), _reach(), _undo)) == (b"cred", "conn")
    assert kinds(script.log) == [("Connect", "munged"), ("Post", None), ("Now", None), ("Connect", "controller"),
                                 ("Now", None), ("Exchange", None), ("Close", None)]
    connect, post, exchange, close = script.log[0], script.log[1], script.log[5], script.log[6]
    assert connect.timeout == 5.0 and post.data == exchange.data == b"ENC"
    assert exchange.timeout == pytest.approx(5.0 - 1.0)
    assert close.later is True and close.conn == "conn"


def test_a_transact_whose_exchange_fails_closes_at_once_and_the_credential_flow_decides():
    failed = ExchangeFailed("header", TimeoutError("timed out"))
    script = Script({Connect: "m", Exchange: failed, Transact: failed})
    with pytest.raises(ExchangeFailed):
        script.run(overlapped(_mint_whole(tries=2), _reach(), _undo))
    taken = [(type(a).__name__, getattr(a, "later", None)) for a in script.log if type(a) in (Connect, Close,
                                                                                             Transact)]
    # the first try apart (its close at once), the other flow, the second try whole, undo's close
    assert taken == [("Connect", None), ("Connect", None), ("Close", False), ("Transact", None), ("Close", False)]


def test_a_transact_whose_connect_fails_lets_the_daemon_be_tried_before_the_credential_flow_goes_on():
    """munged not reached: the other flow runs at once (libslurm connects first, and a daemon
    that cannot be reached is the error at once, not after munged's retries); reached, the
    credential flow gets the connect's error as its Transact's and its next try is whole; its
    failure is raised, the daemon's connection closed, nothing open."""
    refused = ConnectionRefusedError(111, "Connection refused")
    script = Script({(Connect, "munged"): refused, Connect: "conn", Transact: refused})
    with pytest.raises(ConnectionRefusedError):
        script.run(overlapped(_mint_whole(tries=2), _reach(), _undo))
    assert kinds(script.log) == [("Connect", "munged"), ("Connect", "controller"), ("Now", None),
                                 ("Transact", None), ("Close", None)]
    assert script.log[-1].conn == "conn"
    script = Script({(Connect, "munged"): refused, (Connect, "controller"): ConnectionRefusedTransportError("no")})
    with pytest.raises(ConnectionRefusedTransportError):
        script.run(overlapped(_mint_whole(tries=5), _reach(), _undo))
    assert kinds(script.log) == [("Connect", "munged"), ("Connect", "controller")]   # munged not tried again


def test_steps_apart_gives_each_transact_as_its_steps_and_its_failure_back():
    def flow():
        first = yield Transact("munged", b"one", 11, len, 2.0)
        try:
            yield Transact("munged", b"two", 11, len, 2.0)
        except ExchangeFailed as failed:
            return first, failed.step
    steps = Script({Connect: "conn", Exchange: iter([(3, b"one"), ExchangeFailed("body", ConnectionResetError())])})
    assert steps.run(steps_apart(flow())) == ((3, b"one"), "body")
    assert [(type(a).__name__, getattr(a, "data", None)) for a in steps.log] == [
        ("Connect", None), ("Exchange", b"one"), ("Close", None), ("Connect", None), ("Exchange", b"two"),
        ("Close", None)]
    assert [a.later for a in steps.log if type(a) is Close] == [False, False]
    assert list(transact_steps(Transact("p", b"", 0, len, 1.0)))[0] == Connect("p", 1.0)


@pytest.fixture
def pair():
    ours, peer = socket.socketpair()
    ours.setblocking(False)           # as both runners make munged's sockets
    yield ours, peer
    ours.close()
    peer.close()


def _meanwhile_sees(peer, seen: list):
    """The flow run meanwhile: what the peer had received by then (the Post went out first)."""
    peer.setblocking(False)
    seen.append(peer.recv(100))
    peer.sendall(b"answer")
    return "other"
    yield  # pragma: no cover


def _exchange_on(conn):
    _, body = yield Exchange(conn, b"request", 0, lambda header: 6, 2.0)
    return body


def test_the_blocking_runner_posts_then_reads(pair):
    ours, peer = pair
    seen = []
    result = SyncRunner().run(overlapped(_exchange_on(UnixStream(ours)), _meanwhile_sees(peer, seen), _undo))
    assert result == (b"answer", "other") and seen == [b"request"]


def test_the_asyncio_runner_posts_then_reads(pair):
    ours, peer = pair
    ours.setblocking(False)
    seen = []
    result = asyncio.run(AsyncRunner().run(overlapped(_exchange_on(UnixStream(ours)),
                                                      _meanwhile_sees(peer, seen), _undo)))
    assert result == (b"answer", "other") and seen == [b"request"]


def _steps_of_one_ping(monkeypatch, client) -> list[str]:
    """The kinds of the real runner's steps in one ping (munged's or the controller's)."""
    steps = []
    for kind in (Connect, Post, Exchange):
        handler = runners.SYNC.table[kind]

        def recorded(action, handler=handler, kind=kind):
            target = getattr(action, "target", None)
            where = "" if target is None else ("munged" if isinstance(target, str) else "controller")
            steps.append(f"{kind.__name__} {where}".strip())
            return handler(action)
        monkeypatch.setitem(runners.SYNC.table, kind, recorded)
    assert client.ping()
    return steps


def test_a_real_ping_connects_while_munged_mints(monkeypatch, slurmctld, munged):
    client = Client(slurmctld.host, slurmctld.port, munge_socket=str(munged.socket_path))
    assert client.ping()   # the version is known: one request from now on
    assert _steps_of_one_ping(monkeypatch, client) == [
        "Connect munged", "Post", "Connect controller", "Exchange",   # the credential, the connect overlapping
        "Connect munged", "Exchange"]                                 # the reply's credential verified


def test_a_real_ping_to_nobody_fails_on_the_connect_once_the_credential_is_in(munged):
    client = Client("127.0.0.1", free_port(), munge_socket=str(munged.socket_path), timeout=1)
    with pytest.raises(ConnectionRefusedTransportError):
        client.ping(0)


def test_without_munged_and_nobody_listening_the_connect_is_the_error_at_once(tmp_path):
    """As libslurm's, which connects before it asks munged: no wait for munged's retries."""
    client = Client("127.0.0.1", free_port(), munge_socket=str(tmp_path / "no-munged"), timeout=1)
    start = time.monotonic()
    with pytest.raises(ConnectionRefusedTransportError):
        client.ping(0)
    assert time.monotonic() - start < 0.5       # munged's connect retries alone take over 2 s


def test_without_munged_the_credential_is_the_error_when_the_controller_answers(slurmctld, tmp_path):
    client = Client(slurmctld.host, slurmctld.port, munge_socket=str(tmp_path / "no-munged"), timeout=1)
    with pytest.raises(AuthError, match="no-munged"):
        client.ping(0)


def test_asyncio_pings_overlap_too(slurmctld, munged):
    client = AsyncClient(slurmctld.host, slurmctld.port, munge_socket=str(munged.socket_path))

    async def pings():
        return [await client.ping() for _ in range(5)]
    assert asyncio.run(pings()) == [True] * 5


def _exchange_logged(conn, log: list):
    _, body = yield Exchange(conn, b"request", 0, lambda header: 6, 2.0)
    log.append("exchange answered")
    return body


def _other_logged(log: list):
    log.append("other ran")
    return "other"
    yield  # pragma: no cover


def test_the_asyncio_runner_posts_only_for_a_run_on_its_own(pair):
    """With other runs under way (many calls in flight) the asyncio runner declines the Post: the
    connect would wait idle at the daemon while munged's queue drains.  The other flow then runs
    after the answer, as before the overlap."""
    from pyslurmrpc.effects import Sleep
    ours, peer = pair
    ours.setblocking(False)
    runner = AsyncRunner()

    def one(log):
        return overlapped(_exchange_logged(UnixStream(ours), log), _other_logged(log), _undo)

    def napping():
        yield Sleep(0.2)

    async def alone_then_together():
        alone, together = [], []
        peer.sendall(b"answer")
        await runner.run(one(alone))
        peer.sendall(b"answer")
        _, result = await asyncio.gather(runner.run(napping()), runner.run(one(together)))
        return alone, together, result
    alone, together, result = asyncio.run(alone_then_together())
    assert alone == ["other ran", "exchange answered"]
    assert together == ["exchange answered", "other ran"] and result == (b"answer", "other")
    assert runner.running == 0
