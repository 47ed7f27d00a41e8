"""The real flows on a scripted runner: no sockets, no real time.

:class:`World` is a runner (pyslurmrpc.runners.SyncRunner, or AsyncRunner) whose
handlers are scripted: daemons are functions of the request frame, munged is
played from a MUNGE key (it mints and checks credentials as munged would), and
the clock is virtual - a Sleep, a connect that times out or a silent peer
moves it forward.  Failover, timeouts, MUNGE retries and the fan-out through
the forwarding tree are then checked to the exact virtual second, instantly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pyslurmrpc.auth.errors import MungeSocketError, SlurmAuthError
from pyslurmrpc.auth.munge_constants import MsgType as MungeMsg, MungeErr
from pyslurmrpc.auth.munge_cred import MungeKey, decode_offline, encode_offline
from pyslurmrpc.auth.munge_proto import (
    pack_decode_response, pack_encode_response, pack_header, parse_decode_request, parse_encode_request,
    unpack_header,
)
from pyslurmrpc.auth.munge_xfer import RetryPolicy
from pyslurmrpc.auth.slurm_auth import MungeAuth, NoneAuth
from pyslurmrpc.client import calls, detect, flows
from pyslurmrpc.client.core import make_auth, settings_from_args
from pyslurmrpc.effects import (
    Close, Connect, Exchange, ExchangeFailed, Invoke, Now, Parallel, PeerClosed, Post, RecvFrame, Send, Sleep, Stat,
    WallClock,
)
from pyslurmrpc.errors import (
    CheckpointUnsupported, ConnectionClosedError, ConnectionRefusedTransportError, NoVersionAnsweredError, SlurmError, TimeoutTransportError,
    ConnectTimeoutError, UnreachableError,
)
from pyslurmrpc.hostlist import expand
from pyslurmrpc.slurm_errno import SlurmErrno
from pyslurmrpc.wire import VERSION_CODES, ForwardFailedMsg, ReturnCodeMsg
from pyslurmrpc.runners import AsyncRunner, SyncRunner
from pyslurmrpc.wire import Address, Header, Message, MsgType, RetEntry, decode_message, encode_message

MUNGE_PATH = "/scripted/munge.socket.2"
EPOCH = 1_800_000_000
DAEMON = NoneAuth(uid=0, gid=0, hostname="ctl")
SILENT = object()     # a daemon that accepts and never answers
BLACKHOLE = object()  # an address whose connect times out


def reply_rc(request: bytes, code: int = 0, ret_list=(), auth=DAEMON) -> bytes:
    msg = decode_message(request)
    header = Header(msg.version, MsgType.RESPONSE_SLURM_RC, ret_list=tuple(ret_list),
                    orig_addr=Address(0, None, 0) if msg.version >= 0x2400 else Address())
    return encode_message(Message(header, auth.create(msg.version), ReturnCodeMsg(return_code=code)))


@dataclass
class Conn:
    target: object
    sent: list = field(default_factory=list)
    pending: bytes = b""
    closed: bool = False

    def close(self):
        self.closed = True


class Munged:
    """munged, played from a key: ``faults`` is consumed one per connect
    ("refused", "reset" = drop the connection instead of answering, "stall" = never answer,
    None = answer)."""

    def __init__(self, faults=()):
        self.key = MungeKey(b"k" * 64)
        self.faults = list(faults)
        self.requests: list[bytes] = []

    def connect(self):
        fault = self.faults.pop(0) if self.faults else None
        if fault == "refused":
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return fault

    def answer(self, request: bytes, world) -> bytes:
        self.requests.append(request)
        kind, _, _ = unpack_header(request[:11])
        body = request[11:]
        if kind == MungeMsg.ENC_REQ:
            req = parse_encode_request(body)
            cred = encode_offline(self.key, uid=1000, gid=1000, payload=req.payload, encode_time=world.wall())
            return pack_header(MungeMsg.ENC_RSP, len(rsp := pack_encode_response(cred))) + rsp
        cred = decode_offline(parse_decode_request(body), self.key, now=world.wall())
        return pack_header(MungeMsg.DEC_RSP, len(rsp := pack_decode_response(cred))) + rsp


class World:
    """The scripted runner: ``daemons`` maps (host, port) to respond(frame, world) -> bytes,
    None (close without a reply) or SILENT, or to BLACKHOLE; an absent address refuses."""

    def __init__(self, daemons=None, munged: Munged | None = None):
        self.t = 0.0
        self.daemons = {} if daemons is None else daemons
        self.munged = munged or Munged()
        self.connects: list[tuple[float, object]] = []   # (virtual time, target)
        self.frames: dict[tuple, list[bytes]] = {}
        self.table = {Connect: self.connect, Send: self.send, Exchange: self.exchange, Post: self.post,
                      RecvFrame: self.recv_frame,
                      Close: self.close, Stat: self.stat, Sleep: self.sleep, Now: lambda a: self.t,
                      WallClock: lambda a: EPOCH + self.t, Parallel: self.parallel,
                      Invoke: lambda a: a.fn(*a.args)}
        self.runner = SyncRunner(self.table)

    def wall(self) -> int:
        return int(EPOCH + self.t)

    def run(self, flow):
        start = time.monotonic()
        try:
            return self.runner.run(flow)
        finally:
            assert time.monotonic() - start < 2, "a scripted run must not wait in real time"

    # -- handlers ----------------------------------------------------------------------
    def connect(self, a: Connect):
        assert len(self.connects) < 10_000, "a flow that never gives up"
        if isinstance(a.target, str):
            self.connects.append((self.t, "munged"))
            fault = self.munged.connect()
            return Conn("munged", pending=fault or b"")
        key = (a.target.host, a.target.port)
        self.connects.append((self.t, key))
        daemon = self.daemons.get(key)
        if daemon is BLACKHOLE:
            self.t += a.timeout
            raise TimeoutError("timed out")
        if daemon is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return Conn(key)

    def send(self, a: Send):
        a.conn.sent.append(a.data)
        self.frames.setdefault(a.conn.target, []).append(a.data)

    def post(self, a: Post):
        """A request sent ahead of its Exchange (which then only reads): a reset fails here."""
        a.conn.sent.append(a.data)
        if a.conn.pending == "reset":
            raise ExchangeFailed("send", ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))

    def exchange(self, a: Exchange):
        """munged's side of one request: reset, stall (the whole timeout passes) or answer."""
        if not a.conn.sent or a.conn.sent[-1] is not a.data:   # not posted before
            self.post(Post(a.conn, a.data, a.timeout))
        if a.conn.pending == "stall":
            self.t += a.timeout
            raise ExchangeFailed("header", TimeoutError("timed out"))
        answer = self.munged.answer(a.data, self)
        size = a.body_size(answer[:a.header_size])
        return size, answer[a.header_size:a.header_size + size]

    def recv_frame(self, a: RecvFrame) -> bytes:
        answer = self.daemons[a.conn.target](a.conn.sent[-1], self)
        if answer is SILENT:
            self.t += a.timeout
            raise TimeoutError("timed out")
        if not answer:
            raise PeerClosed(False)
        return answer

    def close(self, a: Close):
        a.conn.close()

    def stat(self, a: Stat) -> int:
        return stat.S_IFSOCK | 0o777

    def sleep(self, a: Sleep):
        self.t += a.seconds

    def parallel(self, a: Parallel) -> list:
        """Side by side: each flow starts at the same virtual time; the slowest sets the end."""
        start, ends, results = self.t, [], []
        for flow in a.flows:
            self.t = start
            results.append(self.runner.run(flow))
            ends.append(self.t)
        self.t = max(ends, default=start)
        return results


def ctl(port: int):
    return ("127.0.0.1", port)


def state(auth="none", **kw) -> flows.State:
    kw.setdefault("timeout", 10)
    settings = settings_from_args("127.0.0.1", 7001, auth=auth, munge_socket=MUNGE_PATH, **kw)
    return flows.State(settings, make_auth(settings), seed=0)


def answer_rc(code=0):
    return lambda frame, world: reply_rc(frame, code)


# -- failover ------------------------------------------------------------------------------
def test_primary_down_backup_answers_and_stays_first():
    world = World({ctl(7002): answer_rc()})
    st = state(backups=[("127.0.0.1", 7002)])
    world.run(flows.checkpoint(st, calls.enable(1, 0)))
    world.run(flows.checkpoint(st, calls.enable(1, 0)))
    assert [target for _, target in world.connects] == [ctl(7001), ctl(7002), ctl(7002)]
    assert st.use_backup is True and world.t == 0


def test_backup_not_sticky_once_every_controller_failed_a_round():
    """A whole round without an answer resets use_backup: the next round starts at the primary."""
    daemons = {}
    world = World(daemons)
    st = state(backups=[("127.0.0.1", 7002)], timeout=3)
    st.use_backup = True

    def primary_back(world_):   # the primary comes up during the pause after round one
        daemons[ctl(7001)] = answer_rc()

    world.table[Sleep] = lambda a: (world.sleep(a), primary_back(world))
    world.run(flows.checkpoint(st, calls.enable(1, 0)))
    assert [target for _, target in world.connects] == [ctl(7002), ctl(7001), ctl(7001)]
    assert st.use_backup is False and world.t == 1


def test_all_controllers_down_rounds_a_second_apart_bounded_by_message_timeout():
    world = World()
    st = state(backups=[("127.0.0.1", 7002)], timeout=10)
    with pytest.raises(ConnectionRefusedTransportError) as info:
        world.run(flows.checkpoint(st, calls.able(1, 0)))
    assert info.value.slurm_errno == 1800
    rounds = sorted({t for t, _ in world.connects})
    assert rounds == [float(n) for n in range(10)]           # 0 s, 1 s, ... 9 s: a tenth would pass 10 s
    assert all(sum(1 for t, _ in world.connects if t == r) == 2 for r in rounds)


def test_connect_timeouts_count_against_message_timeout():
    """A controller whose address swallows SYNs costs TCPTimeout per round, within MessageTimeout."""
    world = World({ctl(7001): BLACKHOLE})
    st = state(timeout=10, connect_timeout=2)
    with pytest.raises(UnreachableError, match="connect timed out") as info:
        world.run(flows.checkpoint(st, calls.able(1, 0)))
    assert not isinstance(info.value, ConnectionRefusedTransportError)   # nothing refused
    assert all(type(e) is ConnectTimeoutError for e in info.value.failures.values())

    # 2 s connect + 1 s pause per round; a round starts while a pause would end before 10 s
    assert [t for t, _ in world.connects] == [0, 3, 6, 9]
    assert world.t == 11
    with pytest.raises(ConnectTimeoutError, match="connect timed out") as one:   # one address: its own
        world.run(flows.ping(st, st.settings.controllers[0]))
    assert isinstance(one.value, TimeoutTransportError) and one.value.slurm_errno == 1800


def test_port_range_spread_comes_from_the_runner_clock_and_the_seed():
    """SlurmctldPort=7001-7004: libslurm picks (time + pid) % 4; the flow asks the runner for the time."""
    world = World({ctl(7001 + n): answer_rc() for n in range(4)})
    settings = settings_from_args("127.0.0.1", 7001, auth="none")
    import dataclasses
    st = flows.State(dataclasses.replace(settings, port_count=4), NoneAuth(), seed=3)
    world.t = 2
    world.run(flows.checkpoint(st, calls.enable(1, 0)))
    assert world.connects[-1][1] == ctl(7001 + (3 + EPOCH + 2) % 4)


# -- timeouts and broken replies ---------------------------------------------------------------------
def test_silent_controller_times_out_after_message_timeout():
    world = World({ctl(7001): lambda frame, w: SILENT})
    with pytest.raises(TimeoutTransportError, match="no reply within 4 s"):
        world.run(flows.checkpoint(state(timeout=4), calls.able(1, 0)))
    assert world.t == 4


def test_controller_closing_without_a_reply():
    world = World({ctl(7001): lambda frame, w: None})
    with pytest.raises(ConnectionClosedError, match="without a reply"):
        world.run(flows.rpc(state(), calls.able(1, 0), 0x2200))


def test_ping_closed_in_every_version_probes_once_side_by_side():
    """26.05 first; closed: the versions that tell the closing releases apart, each once."""
    world = World({ctl(7001): lambda frame, w: None})
    with pytest.raises(NoVersionAnsweredError, match="no protocol version in .* was answered"):
        world.run(flows.ping(state()))
    versions = [int.from_bytes(f[4:6], "big") for f in world.frames[ctl(7001)]]
    closed = detect.observe(detect.DETECTION_FIRST, None)
    assert versions == [detect.DETECTION_FIRST, *detect.plan_after(closed).probes]
    assert len(set(versions)) == len(versions) <= 8


def test_every_connection_is_closed():
    world = World({ctl(7001): lambda frame, w: SILENT})
    opened = []
    connect = world.table[Connect]
    world.table[Connect] = lambda a: opened.append(connect(a)) or opened[-1]
    with pytest.raises(TimeoutTransportError):
        world.run(flows.checkpoint(state(auth="munge", timeout=2), calls.able(1, 0)))
    assert opened and all(c.closed for c in opened)


def test_a_whole_reply_is_closed_while_munged_checks_its_credential():
    """The controller's connection is closed with Close(later=True) once its reply is whole, so
    the runner closes it at the next wait (munged decoding the reply's credential), after the
    decode request is out; so is munged's connection of the credential once it is read (at the
    wait for the reply, after the request went out); the reply's own munged connection closes
    at once, and a failed exchange closes at once."""
    world = World({ctl(7001): lambda frame, w: reply_rc(frame, auth=OfflineSigner(w))})
    closes = []
    close = world.table[Close]
    world.table[Close] = lambda a: closes.append((a.conn.target, a.later)) or close(a)
    assert world.run(flows.ping(state(auth="munge"))) is True
    assert closes == [("munged", True), (ctl(7001), True), ("munged", False)]
    silent = World({ctl(7001): lambda frame, w: SILENT})
    closes.clear()
    close = silent.table[Close]
    silent.table[Close] = lambda a: closes.append((a.conn.target, a.later)) or close(a)
    with pytest.raises(TimeoutTransportError):
        silent.run(flows.checkpoint(state(auth="munge", timeout=2), calls.able(1, 0)))
    assert (ctl(7001), False) in closes and (ctl(7001), True) not in closes


# -- MUNGE: libmunge's retries and auth_munge's ------------------------------------------------------
def test_credential_round_trip_through_the_scripted_munged():
    world = World({ctl(7001): lambda frame, w: reply_rc(frame, auth=OfflineSigner(w))})
    assert world.run(flows.ping(state(auth="munge"))) is True
    kinds = [unpack_header(r[:11])[0] for r in world.munged.requests]
    assert kinds == [MungeMsg.ENC_REQ, MungeMsg.DEC_REQ]     # our credential, then the reply's checked


class OfflineSigner:
    """Signs a daemon's reply with the scripted munged's key."""

    def __init__(self, world):
        self.world = world

    def create(self, version):
        from pyslurmrpc.auth.slurm_auth import OfflineMungeAuth
        signer = OfflineMungeAuth(self.world.munged.key)
        env = signer.create(version)
        cred = encode_offline(self.world.munged.key, uid=0, gid=0, encode_time=self.world.wall())
        return type(env)(credential=cred, plugin_version=env.plugin_version)


def test_munged_refusing_connections_libmunge_then_auth_munge_retry():
    """ECONNREFUSED: libmunge tries 10 connects 50 ms x attempt apart; auth_munge then waits 0.1 s
    and starts over; the 13th connect succeeds."""
    world = World(munged=Munged(["refused"] * 12))
    auth = MungeAuth(MUNGE_PATH)
    env = world.run(auth.create_flow(0x2200))
    assert env.credential.startswith("MUNGE:")
    assert len(world.connects) == 13
    libmunge_waits = sum(0.05 * n for n in range(1, 10))     # 9 pauses between 10 connects
    assert world.t == pytest.approx(libmunge_waits + 0.1 + 0.05 * (1 + 2))


def test_munged_gone_auth_munge_gives_up_after_its_retries():
    world = World(munged=Munged(["refused"] * 10_000))
    auth = MungeAuth(MUNGE_PATH, slurm_retries=20, slurm_retry_delay=0.1)
    with pytest.raises(SlurmAuthError) as info:
        world.run(auth.create_flow(0x2200))
    assert info.value.munge_error.code == MungeErr.SOCKET
    assert len(world.connects) == 21 * 10
    assert world.t == pytest.approx(21 * sum(0.05 * n for n in range(1, 10)) + 20 * 0.1)


def test_auth_munge_retry_stops_at_the_budget():
    """The client gives auth_munge MessageTimeout as a budget: libmunge's connect retries and
    pauses fit in it too (two whole rounds of 10 connects, then 5 more before 5 s)."""
    world = World({ctl(7001): answer_rc()}, munged=Munged(["refused"] * 10_000))
    with pytest.raises(SlurmAuthError, match=f'"{MUNGE_PATH}": Connection refused .no time left'):
        world.run(flows.ping(state(auth="munge", timeout=5)))
    assert world.t <= 5 and [target for _, target in world.connects].count("munged") == 25


def _closes_after(seconds):
    """A controller that takes ``seconds`` of virtual time before it closes without a reply."""
    def respond(frame, world):
        world.t += seconds
        return None
    return respond


@pytest.mark.parametrize("fault", ["refused", "stall"])
def test_probes_whose_munged_fails_end_by_the_call_deadline_with_munged_named(fault):
    """The first request's credential was minted; munged then fails.  The probes' mints were
    bounded by their own MessageTimeout, from their start: the call ran 1 s past its own
    (a helper measured 4.03 s for timeout=3).  They end by the call's deadline now, and
    the failure of our own munged is the error, not "no version answered"."""
    world = World({ctl(7001): _closes_after(1.0)}, munged=Munged([None] + [fault] * 10_000))
    with pytest.raises(SlurmAuthError, match="Munge encode failed") as info:
        world.run(flows.ping(state(auth="munge", timeout=3)))
    assert isinstance(info.value.munge_error, MungeSocketError)
    assert world.t <= 3


def test_stalled_munged_holds_a_call_as_long_as_libslurm_would():
    """libmunge: 5 tries of 2 s, 10 ms x try apart; auth_munge: 21 such transactions, 0.1 s apart."""
    world = World(munged=Munged(["stall"] * 10_000))
    with pytest.raises(SlurmAuthError) as info:
        world.run(MungeAuth(MUNGE_PATH).create_flow(0x2200))
    assert info.value.munge_error.os_errno == errno.ETIMEDOUT
    assert world.t == pytest.approx(21 * (5 * 2 + 0.01 * (1 + 2 + 3 + 4)) + 20 * 0.1)  # 214.1 s


def test_stalled_munged_holds_a_client_call_about_one_message_timeout():
    """The client shrinks libmunge's waits to fit MessageTimeout and starts no retry past it."""
    world = World({ctl(7001): answer_rc()}, munged=Munged(["stall"] * 10_000))
    with pytest.raises(SlurmAuthError):
        world.run(flows.ping(state(auth="munge", timeout=10)))
    assert 10 <= world.t <= 10 + 0.1 + 0.2 and world.connects[0][1] == "munged"


def test_with_munged_stalled_and_the_controller_refusing_the_connect_is_the_error():
    """libslurm connects before it asks munged: the controller's refusal (its connect rounds,
    1 s apart, spent) is the call's error, and the credential posted meanwhile is given up,
    neither waited for nor asked again."""
    world = World(munged=Munged(["stall"] * 10_000))
    with pytest.raises(ConnectionRefusedTransportError):
        world.run(flows.ping(state(auth="munge", timeout=10)))
    targets = [target for _, target in world.connects]
    assert targets == ["munged"] + [ctl(7001)] * 10 and world.t == 9.0


def test_reset_during_a_transaction_is_retried_with_the_retry_count_in_the_header():
    world = World(munged=Munged(["reset"]))
    world.run(MungeAuth(MUNGE_PATH, retry=RetryPolicy()).create_flow(0x2200))
    (retry_header,) = [unpack_header(r[:11])[1] for r in world.munged.requests]
    assert retry_header == 1 and world.t == pytest.approx(0.01)


def test_munge_error_that_is_not_a_socket_error_is_not_retried():
    munged = Munged()
    world = World(munged=munged)
    munged.answer = lambda request, w: (munged.requests.append(request), _error_reply())[1]
    with pytest.raises(SlurmAuthError) as info:
        world.run(MungeAuth(MUNGE_PATH).create_flow(0x2200))
    assert info.value.munge_error.code == MungeErr.CRED_INVALID and len(munged.requests) == 1


def _error_reply() -> bytes:
    from pyslurmrpc.auth.errors import munge_error
    body = pack_encode_response(None, munge_error(MungeErr.CRED_INVALID, "Invalid credential"))
    return pack_header(MungeMsg.ENC_RSP, len(body)) + body


# -- checkpoint_tasks through the forwarding tree -------------------------------------------------------
class Slurmds:
    """slurmd per node: answers for itself and for the nodes it forwards to (``lost`` it forgets)."""

    def __init__(self, names, down=(), codes=None, lost=(), silent=()):
        self.ports = {n: 7100 + i for i, n in enumerate(names)}
        self.down, self.codes, self.lost, self.silent = set(down), codes or {}, set(lost), set(silent)

    def daemons(self) -> dict:
        return {ctl(p): self._answer(n) for n, p in self.ports.items() if n not in self.down}

    def _answer(self, name):
        def answer(frame, world):
            if name in self.silent:
                return SILENT
            fwd, ret = decode_message(frame).header.forward, []
            for other in expand(fwd.nodelist) if fwd.cnt else ():
                if other in self.lost:
                    continue
                if other in self.down:
                    ret.append(RetEntry(other, int(SlurmErrno.SLURM_COMMUNICATIONS_CONNECTION_ERROR), int(MsgType.RESPONSE_FORWARD_FAILED), ForwardFailedMsg()))
                else:
                    ret.append(RetEntry(other, 0, int(MsgType.RESPONSE_SLURM_RC),
                                        ReturnCodeMsg(return_code=self.codes.get(other, 0))))
            return reply_rc(frame, self.codes.get(name, 0), ret_list=ret)
        return answer

    def nodes(self) -> dict:
        return {n: ("127.0.0.1", p) for n, p in self.ports.items()}


def tasks(world, sd, nodelist, **kw):
    st = state(nodes=sd.nodes(), **kw)
    return world.run(flows.tasks(st, 5, 0, 1795460000, None, 7, nodelist))


def test_fan_out_through_the_tree_with_a_node_down():
    sd = Slurmds(["n1", "n2", "n3", "n4", "n5"], down=["n4"], codes={"n3": 4027})
    world = World(sd.daemons())
    with pytest.raises(SlurmError) as info:
        tasks(world, sd, "n[1-5]", tree_width=2)
    assert info.value.details == {"n1": 0, "n2": 0, "n3": 4027, "n4": 1001, "n5": 0}
    first = decode_message(world.frames[ctl(7100)][0]).header.forward
    assert (first.cnt, first.nodelist, first.timeout, first.tree_width) == (2, "n[2-3]", 7000, 2)


def test_a_hop_lost_by_the_tree_is_sent_to_directly():
    """n1 forwards to n2 and n3 but its reply has no entry for n3: forward.c sends n3 its own copy."""
    sd = Slurmds(["n1", "n2", "n3", "n4"], lost=["n3"])
    world = World(sd.daemons())
    assert tasks(world, sd, "n[1-4]", tree_width=2) == {"n1": 0, "n2": 0, "n3": 0, "n4": 0}
    (direct,) = world.frames[ctl(sd.ports["n3"])]
    assert decode_message(direct).header.forward.cnt == 0


def test_first_hop_down_rest_of_its_branch_is_sent_directly_side_by_side():
    """forward.c _fwd_tree_thread: a failed first hop makes every other node of its group get
    its own copy (forward.cnt 0), in parallel; the refused connect was retried first."""
    sd = Slurmds(["n1", "n2", "n3"], down=["n1"])
    world = World(sd.daemons())
    with pytest.raises(SlurmError) as info:
        tasks(world, sd, "n[1-3]", tree_width=1, timeout=3)
    assert info.value.details == {"n1": 1001, "n2": 0, "n3": 0}
    for n in ("n2", "n3"):
        (frame,) = world.frames[ctl(sd.ports[n])]
        assert decode_message(frame).header.forward.cnt == 0
    n1 = [t for t, target in world.connects if target == ctl(sd.ports["n1"])]
    n2_n3 = [t for t, target in world.connects if target in (ctl(sd.ports["n2"]), ctl(sd.ports["n3"]))]
    assert n1 == [0, 1, 2, 3] and n2_n3 == [3, 3]     # 1 + min(MessageTimeout, 10) tries, 1 s apart


@pytest.mark.parametrize("timeout, tries", [(3, 4), (10, 11), (60, 11)])
def test_refused_slurmd_connect_is_tried_again_a_second_apart(timeout, tries):
    """slurm_send_addr_recv_msgs: 1 + min(MessageTimeout, 10) connects when every one is refused."""
    sd = Slurmds(["n1"], down=["n1"])
    world = World(sd.daemons())
    with pytest.raises(SlurmError) as info:
        tasks(world, sd, "n1", timeout=timeout)
    assert info.value.details == {"n1": 1001}
    assert [t for t, _ in world.connects] == [float(n) for n in range(tries)]


def test_slurmd_refusing_twice_then_listening_is_reached():
    sd = Slurmds(["n1"])
    world = World(sd.daemons())
    refusals = [2]
    connect = world.table[Connect]

    def flaky(a):
        if not isinstance(a.target, str) and refusals[0]:
            refusals[0] -= 1
            world.connects.append((world.t, (a.target.host, a.target.port)))
            raise ConnectionRefusedError(111, "Connection refused")
        return connect(a)
    world.table[Connect] = flaky
    assert tasks(world, sd, "n1") == {"n1": 0}
    assert [t for t, _ in world.connects] == [0, 1, 2] and world.t == 2


def test_slurmd_connect_that_times_out_is_not_tried_again():
    sd = Slurmds(["n1"])
    world = World({ctl(sd.ports["n1"]): BLACKHOLE})
    with pytest.raises(SlurmError):
        tasks(world, sd, "n1")
    assert len(world.connects) == 1


def test_controller_connect_is_not_retried_like_a_slurmd():
    """The controller path keeps libslurm's rounds over the controllers, one connect each."""
    world = World()
    with pytest.raises(ConnectionRefusedTransportError):
        world.run(flows.checkpoint(state(timeout=3), calls.able(1, 0)))
    assert [t for t, _ in world.connects] == [0, 1, 2]


# -- ESLURM_IN_STANDBY_MODE (slurm_send_recv_controller_msg) ------------------------------------------
STANDBY = int(SlurmErrno.ESLURM_IN_STANDBY_MODE)


def _codes(*sequence):
    left = list(sequence)
    return lambda frame, w: reply_rc(frame, left.pop(0) if len(left) > 1 else left[0])


def test_standby_answer_is_tried_again_after_half_the_slurmctld_timeout_primary_first():
    world = World({ctl(7001): _codes(STANDBY, 0), ctl(7002): _codes(0)})
    st = state(backups=[("127.0.0.1", 7002)], slurmctld_timeout=2)
    assert world.run(flows.checkpoint(st, calls.disable(2, 0))) is None
    assert [target for _, target in world.connects] == [ctl(7001), ctl(7001)] and world.t == 1
    first, second = (decode_message(f) for f in world.frames[ctl(7001)])
    assert first.body == second.body


@pytest.mark.parametrize("slurmctld_timeout, requests", [(120, 4), (5, 5), (2, 4)])
def test_standby_until_one_and_a_half_slurmctld_timeouts_then_2027(slurmctld_timeout, requests):
    world = World({ctl(7001): _codes(STANDBY), ctl(7002): _codes(STANDBY)})
    st = state(backups=[("127.0.0.1", 7002)], slurmctld_timeout=slurmctld_timeout)
    with pytest.raises(SlurmError) as info:
        world.run(flows.checkpoint(st, calls.create(2, 0, 10, None)))
    assert info.value.errno == STANDBY
    assert len(world.frames[ctl(7001)]) == requests and ctl(7002) not in world.frames
    assert world.t == (slurmctld_timeout // 2) * (requests - 1)


def test_standby_with_one_controller_is_the_answer():
    world = World({ctl(7001): _codes(STANDBY, 0)})
    with pytest.raises(SlurmError) as info:
        world.run(flows.checkpoint(state(), calls.enable(2, 0)))
    assert info.value.errno == STANDBY and len(world.frames[ctl(7001)]) == 1 and world.t == 0


def test_standby_answer_to_a_ping_is_not_tried_again():
    world = World({ctl(7001): _codes(STANDBY, 0), ctl(7002): _codes(0)})
    st = state(backups=[("127.0.0.1", 7002)], slurmctld_timeout=2, protocol_version="19.05")
    with pytest.raises(SlurmError):
        world.run(flows.ping(st, st.settings.controllers[0]))
    assert len(world.frames[ctl(7001)]) == 1 and world.t == 0


def test_slurmctld_timeout_comes_from_slurm_conf(tmp_path):
    from pyslurmrpc import defaults
    from pyslurmrpc.client.core import settings_from_conf
    conf = tmp_path / "slurm.conf"
    conf.write_text("SlurmctldHost=a\nSlurmctldHost=b\nAuthType=auth/none\n")
    assert settings_from_conf(str(conf)).slurmctld_timeout == defaults.SLURMCTLD_TIMEOUT
    conf.write_text("SlurmctldHost=a\nSlurmctldHost=b\nAuthType=auth/none\nSlurmctldTimeout=7\n")
    assert settings_from_conf(str(conf)).slurmctld_timeout == 7


@pytest.mark.parametrize("width", [0, -1, True, 1.5])
def test_tree_width_below_one_is_an_invalid_argument(width):
    from pyslurmrpc.errors import InvalidArgumentError
    with pytest.raises(InvalidArgumentError, match="tree_width"):
        state(tree_width=width)
    import dataclasses
    st = state()
    st.settings = dataclasses.replace(st.settings, tree_width=0)
    with pytest.raises(InvalidArgumentError, match="tree_width"):
        World().run(flows.tasks(st, 5, 0, 1, None, 7, "n1"))


def test_silent_first_hop_waits_per_tree_level_then_its_branch_is_tried():
    """The reply may take one MessageTimeout per level plus max_wait per level (forward.c), no more."""
    sd = Slurmds(["n1", "n2", "n3"], silent=["n1"])
    world = World(sd.daemons())
    with pytest.raises(SlurmError) as info:
        tasks(world, sd, "n[1-3]", tree_width=1, timeout=10)
    assert info.value.details == {"n1": 1001, "n2": 0, "n3": 0}
    levels = (2 + 1) // 1                                   # n1 forwards to n2 and n3, width 1
    assert world.t == 10 * levels + 7 * (levels + 1)


# -- the same flows on the asyncio runner ------------------------------------------------------------
async def test_the_asyncio_runner_runs_the_same_flows():
    world = World({ctl(7002): answer_rc()})

    async def parallel(action):
        return await asyncio.gather(*(runner.run(f) for f in action.flows))

    runner = AsyncRunner({Parallel: parallel}, fast={k: f for k, f in world.table.items() if k is not Parallel})
    st = state(backups=[("127.0.0.1", 7002)])
    assert await runner.run(flows.ping(st)) is True
    assert [target for _, target in world.connects] == [ctl(7001), ctl(7002)] and st.use_backup


def test_22_05_credential_carries_the_hash_of_the_body_sent():
    """The body is encoded once: the bytes hashed into the credential are the bytes in the frame."""
    from pyslurmrpc.auth.msg_hash import credential_payload
    world = World({ctl(7001): lambda frame, w: reply_rc(frame, auth=OfflineSigner(w))})
    st = state(auth="munge")
    world.run(flows.rpc(st, calls.ping(), 0x2600))
    frame = world.frames[ctl(7001)][0]
    body = frame[len(frame) - decode_message(frame).header.body_length:]
    sent = parse_encode_request(world.munged.requests[0][11:]).payload
    assert sent == credential_payload(0x2600, MsgType.REQUEST_PING, body) and len(sent) == 33


@pytest.mark.parametrize("module", ["pyslurmrpc.effects", "pyslurmrpc.client.flows", "pyslurmrpc.client.rpc",
                                    "pyslurmrpc.client.detect", "pyslurmrpc.client.fanout", "pyslurmrpc.auth.munge_xfer",
                                    "pyslurmrpc.auth.slurm_auth", "pyslurmrpc.client.core"])
def test_flows_do_no_io_and_read_no_clock(module):
    """Only the runners touch sockets, threads, the event loop or the clock."""
    import ast
    import importlib
    source = Path(importlib.import_module(module).__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    if module.endswith("slurm_auth"):
        imported.discard("socket")  # socket.gethostname, for auth/none's default hostname
    assert not imported & {"socket", "_socket", "asyncio", "threading", "time", "concurrent", "selectors"}
    assert "getpid" not in source


async def test_asyncio_runner_awaits_a_munged_send_that_would_block():
    """The real runner: a UNIX stream whose buffer is full makes the send wait, not fail."""
    import socket
    from pyslurmrpc.runners import UnixStream, run_async
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setblocking(False)
    filled = 0
    try:
        while True:
            filled += ours.send(b"\0" * 65536)
    except BlockingIOError:
        pass

    def flow():
        yield Send(UnixStream(ours), b"x" * 1000, 5.0)
        return "sent"

    async def drain():
        theirs.setblocking(False)
        got = 0
        while got < filled + 1000:
            got += len(await asyncio.get_running_loop().sock_recv(theirs, 65536))
        return got

    try:
        sent, got = await asyncio.gather(run_async(flow()), drain())
        assert sent == "sent" and got == filled + 1000
    finally:
        ours.close()
        theirs.close()


#: verdict cached -> (release the refusal names, oldest slurmd release), or None: the nodes are asked
_TASKS_AFTER = {
    "22.05": ((0x2600, 0x2600), ("22.05", "20.11")), "21.08": ((0x2500, 0x2500), ("21.08", "20.02")),
    "26.05": ((0x2D00, 0x2D00), ("26.05", "24.11")),
    "past the table": ((0x2E00, 0x2D00), ("newer than 26.05, protocol 0x2e00", "24.11")),
    "answered in 26.05's version": ((None, 0x2D00), ("26.05 or newer", "24.11")),
    "answered in 21.08's version": ((None, 0x2500), ("21.08 or newer", "20.02")),
    "answered in 20.11's version": ((None, 0x2400), None), "20.11": ((0x2400, 0x2400), None),
    "20.02": ((0x2300, 0x2300), None), "19.05": ((0x2200, 0x2200), None), "nothing": (None, None),
}


@pytest.mark.parametrize("port_count", [1, 4])
@pytest.mark.parametrize("known", sorted(_TASKS_AFTER))
def test_checkpoint_tasks_to_a_cluster_found_to_be_21_08_or_newer_is_refused_at_once(known, port_count):
    """A controller found to be 22.05 takes only 20.11+ slurmds, none with checkpoint RPCs: every
    node waited its MessageTimeout and the call said only "Communication connection failure".
    A 20.11 controller may still have 19.05 slurmds; with nothing known the slurmds are asked.
    A ping answered at once knows only the version it was answered in: a lower bound, enough.
    With a SlurmctldPort range the verdict is cached under the port a call reached."""
    verdict, refusal = _TASKS_AFTER[known]
    sd = Slurmds(["n1", "n2"])
    world = World(sd.daemons())
    st = state(nodes=sd.nodes())
    st.settings = dataclasses.replace(st.settings, port_count=port_count)
    if verdict is not None:
        st.versions[("127.0.0.1", 7001 + port_count - 1)] = detect.Verdict(*verdict)
    call = flows.tasks(st, 5, 0, 1795460000, None, 7, "n[1-2]")
    if refusal is None:
        assert world.run(call) == {"n1": 0, "n2": 0}
        return
    with pytest.raises(CheckpointUnsupported) as info:
        world.run(call)
    assert str(info.value) == (f"controller 127.0.0.1:7001 speaks Slurm {refusal[0]}, whose slurmds are "
                               f"{refusal[1]} or newer: checkpoint RPCs were removed in Slurm 20.02, so no "
                               "node of n[1-2] can checkpoint (nothing was sent)")
    assert (info.value.nodes, info.value.oldest) == ("n[1-2]", refusal[1])
    assert world.connects == [] and world.frames == {}
