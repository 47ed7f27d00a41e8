"""Version detection in the flows, against a scripted controller of every release 17.11 - 26.05
and one from the future, each refusing a version as its release does (the release table,
wire/versions.py, and protocol_specs/real_daemons.md for 26.05's HTTP answer).

Requests are counted per scenario: a ping, controller_version() and the checkpoint verdict
each cost the first request plus at most one round of requests side by side.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from pyslurmrpc.auth.munge_cred import MungeKey, encode_offline
from pyslurmrpc.client import calls, detect, flows
from pyslurmrpc.client.rpc import Verdicts
from pyslurmrpc.effects import Connect, Parallel, RecvFrame, Shared
from pyslurmrpc.runners import AsyncRunner
from pyslurmrpc.errors import (
    AuthError, CheckpointUnsupported, NoVersionAnsweredError, PyslurmrpcError, RemoteProtocolError,
)
from pyslurmrpc.wire import Address, Header, Message, MsgType, MungeAuthCred, ReturnCodeMsg, decode_message, encode_message
from pyslurmrpc.wire.constants import SLURM_NO_AUTH_CRED
from pyslurmrpc.wire.framer import Framer
from pyslurmrpc.wire.versions import NEWEST, RELEASE_BY_CODE, VERSIONS, Refusal, release_name

from test_flows_scripted import SILENT, World, ctl, state

FUTURE = 0x2E00
CODES = sorted(RELEASE_BY_CODE)
HINTING = [c for c in CODES if RELEASE_BY_CODE[c].version_refusal is Refusal.RC_HINT]
#: 26.05.5 hands a frame in a version it refuses to its HTTP server (real_daemons.md)
HTTP_405 = b"HTTP/1.1 405 NOT ALLOWED\r\nConnection: Close\r\n\r\nInvalid HTTP method"
OTHER_KEY = MungeKey(b"x" * 64)


def _frame(version: int, rc: int, auth, flags: int = 0) -> bytes:
    """RESPONSE_SLURM_RC labelled ``version`` (built in the newest layout past the table)."""
    built = detect.wire_version(version)
    addr = Address(0, None, 0) if VERSIONS[built].family_addr else Address()
    header = Header(built, MsgType.RESPONSE_SLURM_RC, flags=flags, orig_addr=addr)
    return detect.relabel(encode_message(Message(header, auth, ReturnCodeMsg(return_code=rc))), version)


def _signed(world, version: int, key: MungeKey | None = None) -> MungeAuthCred:
    cred = encode_offline(key or world.munged.key, uid=0, gid=0, encode_time=world.wall())
    return MungeAuthCred(credential=cred, plugin_version=VERSIONS[detect.wire_version(version)].release.auth_word)


def _as_read(answer: bytes) -> bytes:
    """What the runner's framer makes of the bytes (an HTTP answer fails at its length prefix)."""
    return Framer().feed(answer)[0]


class Controller:
    """A slurmctld of protocol ``code``: answers a request in [min, code] in its version, refuses
    any other version as its release does; a checkpoint RPC to a release without one closes."""

    def __init__(self, code: int, reply=None):
        row = RELEASE_BY_CODE.get(code)
        self.code, self.low = code, row.min_code if row else code - 3 * 0x100
        self.refusal = row.version_refusal if row else Refusal.CLOSE
        self.checkpoint = bool(row and row.checkpoint)
        self.reply = reply          # replaces the answer to an accepted request, if given

    def __call__(self, frame: bytes, world):
        sent = int.from_bytes(frame[4:6], "big")
        if not self.low <= sent <= self.code:
            if self.refusal is Refusal.RC_HINT:
                return _frame(self.code, detect.AUTH_ERROR, None, SLURM_NO_AUTH_CRED)
            if self.code == NEWEST:
                return _as_read(HTTP_405)
            return None
        msg = decode_message(detect.relabel(frame, detect.wire_version(sent)))
        if msg.msg_type != MsgType.REQUEST_PING and not self.checkpoint:
            return None             # the type does not exist in that release: unpack fails, close
        if self.reply is not None:
            return self.reply(sent, msg, world)
        bare = VERSIONS[detect.wire_version(sent)].release.reply_without_cred
        return _frame(sent, 0, None if bare else _signed(world, sent), SLURM_NO_AUTH_CRED if bare else 0)


def _world(controller) -> tuple[World, list]:
    world = World({ctl(7001): controller})
    rounds = []
    parallel = world.table[Parallel]
    world.table[Parallel] = lambda a: rounds.append(len(a.flows)) or parallel(a)
    return world, rounds


def _sent(world) -> list[int]:
    return [int.from_bytes(f[4:6], "big") for f in world.frames.get(ctl(7001), [])]


# (ping, controller_version, checkpoint verdict) requests with nothing cached
def _cost(code: int) -> tuple[int, int, int]:
    if code == NEWEST:
        return 1, 2, 10                 # 0x2e00 probe tells it from the future; HTTP -> blind round
    if code in HINTING:
        return 2, 2, 2                  # refusal hint, then the request in the hinted version
    if code == FUTURE:
        return 1, 2, 10
    return 8, 8, 1 if code == 0x2200 else 10 + (code < 0x2200)   # 17.11/18.08: the call again


ALL = CODES + [FUTURE]


@pytest.mark.parametrize("code", ALL, ids=release_name)
def test_ping_answers_true_in_one_round_beyond_the_first(code):
    world, rounds = _world(Controller(code))
    st = state(auth="munge")
    assert world.run(flows.ping(st)) is True
    assert len(_sent(world)) == _cost(code)[0] and len(rounds) <= 1, [hex(v) for v in _sent(world)]
    world.frames.clear()
    assert world.run(flows.ping(st)) is True          # cached: one request
    assert len(_sent(world)) == 1


def _interleaving(world, rounds: list, on_round=None) -> AsyncRunner:
    """The asyncio runner on ``world``, each reply coming after the other calls had a turn (so
    calls made at once meet in their rounds); ``rounds`` gets each round's size, ``on_round``
    is awaited as a round starts."""
    async def recv_frame(action):
        await asyncio.sleep(0)
        return world.recv_frame(action)

    async def parallel(action):
        rounds.append(len(action.flows))
        if on_round is not None:
            await on_round()
        return await asyncio.gather(*(runner.run(f) for f in action.flows))

    # the world's table holds its blocking runner's Shared handler: the asyncio runner's own here
    fast = {k: f for k, f in world.table.items() if k not in (Parallel, RecvFrame, Shared)}
    runner = AsyncRunner({Parallel: parallel, RecvFrame: recv_frame}, fast=fast)
    return runner


@pytest.mark.parametrize("code", ALL, ids=release_name)
async def test_first_pings_at_once_share_one_round(code):
    """20 first pings at once on one client each ran the round after their first request: 160
    requests to 20.11 (a real one logged 500 error lines, 22.05 580). Each still sends its
    first request; the round is one."""
    world, rounds = _world(Controller(code))
    runner = _interleaving(world, rounds)
    st = state(auth="munge")
    assert await asyncio.gather(*(runner.run(flows.ping(st)) for _ in range(20))) == [True] * 20
    assert len(_sent(world)) == 20 + _cost(code)[0] - 1 and len(rounds) <= 1, [hex(v) for v in _sent(world)]


async def test_calls_waiting_for_a_round_that_ends_without_a_verdict_run_their_own():
    """The call running the round is cancelled in it: the others were waiting, not asking, and
    one of them runs the next round for the rest."""
    controller = Controller(0x2600)

    def first_takes_a_second(frame, world):   # a call waits for a round about as long (2 s here)
        if int.from_bytes(frame[4:6], "big") == NEWEST:
            world.t += 1.0
        return controller(frame, world)
    world, rounds = _world(first_takes_a_second)
    leader = []

    async def on_round():
        if not leader:                       # the first round is slow: the others come to wait for it
            leader.append(asyncio.current_task())
            await asyncio.sleep(0.03)
    runner = _interleaving(world, rounds, on_round)
    st = state(auth="munge")
    calls_ = [asyncio.create_task(runner.run(flows.ping(st))) for _ in range(5)]
    while not leader:
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert len(rounds) == 1                    # the others wait for it, asking nothing
    leader[0].cancel()
    done = await asyncio.gather(*calls_, return_exceptions=True)
    assert sum(isinstance(d, asyncio.CancelledError) for d in done) == 1 and done.count(True) == 4
    assert len(rounds) == 2 and st.versions[("127.0.0.1", 7001)].code == 0x2600   # one ran it for the rest


@pytest.mark.parametrize("code", ALL, ids=release_name)
def test_controller_version_is_exact_asked_each_time_and_cached_for_other_calls(code):
    world, rounds = _world(Controller(code))
    st = state(auth="munge")
    got = world.run(flows.controller_version(st))
    assert got == code and len(_sent(world)) == _cost(code)[1] and len(rounds) <= 1
    name = release_name(got)
    assert name == (RELEASE_BY_CODE[code].name if code in RELEASE_BY_CODE else "newer than 26.05, protocol 0x2e00")
    world.frames.clear()
    assert world.run(flows.controller_version(st)) == code and len(_sent(world)) == _cost(code)[1]
    world.frames.clear()
    assert world.run(flows.ping(st)) is True and len(_sent(world)) == 1


@pytest.mark.parametrize("old, new", [(0x2A00, NEWEST), (0x2800, 0x2A00), (0x2B00, 0x2C00)],
                         ids=["24.11 to 26.05", "23.11 to 24.11", "25.05 to 25.11"])
def test_a_controller_upgraded_in_place_is_seen_by_controller_version(old, new):
    """A 26.05 controller answers 24.11's requests: a ping on the cached 24.11 kept working, and
    controller_version() answered 24.11 from the cache for good, sending nothing."""
    world, _ = _world(Controller(old))
    st = state(auth="munge")
    assert world.run(flows.controller_version(st)) == old and world.run(flows.ping(st)) is True
    world.daemons[ctl(7001)] = Controller(new)      # the same address, the new release
    world.frames.clear()
    assert world.run(flows.ping(st)) is True and len(_sent(world)) == 1   # the cached version still works
    assert world.run(flows.controller_version(st)) == new
    with pytest.raises(CheckpointUnsupported) as info:
        world.run(flows.checkpoint(st, calls.enable(1, 0)))
    assert info.value.version == release_name(new)


@pytest.mark.parametrize("code", ALL, ids=release_name)
def test_checkpoint_answer_or_verdict_naming_the_release(code):
    world, rounds = _world(Controller(code))
    st = state(auth="munge")
    run = lambda: world.run(flows.checkpoint(st, calls.enable(1, 0)))
    if RELEASE_BY_CODE.get(code) and RELEASE_BY_CODE[code].checkpoint:
        assert run() is None
    else:
        with pytest.raises(CheckpointUnsupported) as info:
            run()
        assert info.value.version == release_name(code)
        world.frames.clear()
        with pytest.raises(CheckpointUnsupported):   # the verdict is cached: nothing sent
            run()
        assert _sent(world) == []
        return
    assert len(_sent(world)) == _cost(code)[2] and len(rounds) <= 1


def test_cache_is_dropped_when_a_call_on_that_controller_fails():
    """A 24.11 controller replaced by a 22.05 one: the cached 24.11 ping closes and starts detection."""
    daemons = {ctl(7001): Controller(0x2A00)}
    world = World(daemons)
    st = state(auth="munge")
    assert world.run(flows.controller_version(st)) == 0x2A00
    daemons[ctl(7001)] = Controller(0x2600)
    world.frames.clear()
    assert world.run(flows.ping(st)) is True
    assert _sent(world)[0] == 0x2A00 and world.run(flows.controller_version(st)) == 0x2600


def test_garbage_answer_is_a_typed_error_naming_it():
    world, _ = _world(lambda frame, w: b"\x00\x00\x00\x04junk")
    with pytest.raises(RemoteProtocolError):
        world.run(flows.ping(state(auth="munge")))


def test_reply_in_another_version_that_is_no_refusal_is_a_typed_error():
    world, _ = _world(Controller(NEWEST, reply=lambda sent, msg, w: _frame(sent - 0x100, 0, None, SLURM_NO_AUTH_CRED)))
    with pytest.raises(RemoteProtocolError,
                       match=r"reply in protocol version 0x2c00 \(25.11\), request was 0x2d00 \(26.05\)"):
        world.run(flows.ping(state(auth="munge")))
    world, _ = _world(Controller(0x2600, reply=lambda sent, msg, w: _frame(sent - 0x100, 0, _signed(w, sent))))
    with pytest.raises(NoVersionAnsweredError, match="reply in protocol version 0x2400"):
        world.run(flows.ping(state(auth="munge")))     # first request closed, every probe garbage


def test_refusal_whose_credential_does_not_verify_is_an_auth_error():
    """RC 1007 in our version, but carrying a credential of another key: never a verdict."""
    def forged(sent, msg, w):
        return _frame(sent, detect.AUTH_ERROR, _signed(w, sent, OTHER_KEY))
    world, _ = _world(Controller(0x2600, reply=forged))
    with pytest.raises(AuthError):
        world.run(flows.controller_version(state(auth="munge")))


def test_probe_whose_credential_does_not_verify_is_not_an_answer():
    """A 22.05 controller answering with another key's credential: nothing answered, an auth failure."""
    world, _ = _world(Controller(0x2600, reply=lambda sent, msg, w: _frame(sent, 0, _signed(w, sent, OTHER_KEY))))
    with pytest.raises(AuthError, match="0x2500: Munge decode failed"):
        world.run(flows.ping(state(auth="munge")))


def test_hint_never_confirmed_gives_no_verdict_and_names_the_hint():
    def liar(frame, w):   # hints 24.11 in every version, never answers
        return _frame(0x2A00, detect.AUTH_ERROR, None, SLURM_NO_AUTH_CRED)
    world, _ = _world(liar)
    with pytest.raises(AuthError, match="24.11"):   # 24.11 "refuses our credential" in its own version
        world.run(flows.ping(state(auth="munge")))


def test_http_answer_is_a_refusal_without_a_hint():
    seen = detect.observe(0x2200, HTTP_405)
    assert seen.outcome is detect.Outcome.CLOSED and "HTTP" in seen.problem


def test_reflected_credential_is_refused():
    """A peer that answers with the request's own MUNGE credential proves nothing (issue 14)."""
    def mirror(sent, msg, w):
        return _frame(sent, 0, msg.auth)
    world, _ = _world(Controller(0x2200, reply=mirror))
    with pytest.raises(AuthError, match="reflected"):
        world.run(flows.checkpoint(state(auth="munge"), calls.enable(1, 0)))


# -- the fake answers as the 19.05.8 daemons it impersonates ---------------------------------
@pytest.mark.parametrize("name", ["17.11", "18.08"])
def test_fake_writes_0_after_the_plugin_name_as_19_05_8_did(name):
    """fixtures/slurm-17.11.13-client/*.response.bin: `auth/munge 00000000` in 17.11 and 18.08
    replies; only a 17.11/18.08 client writes its release number there."""
    from pathlib import Path
    from pyslurmrpc.auth.slurm_auth import OfflineMungeAuth
    from pyslurmrpc.fake import FakeSlurmctld, fixture_cluster
    from pyslurmrpc.transport import recv_frame
    from pyslurmrpc.wire import PingMsg, version_code
    import socket
    key = Path(__file__).resolve().parent.parent / "fixtures" / "munge.key"
    auth = OfflineMungeAuth(key)
    version = version_code(name)
    request = encode_message(Message(Header(version, MsgType.REQUEST_PING), auth.create(version), PingMsg()))
    assert decode_message(request).auth.plugin_version == RELEASE_BY_CODE[version].auth_word
    with FakeSlurmctld(fixture_cluster(), auth=OfflineMungeAuth(key), message_timeout=1) as d:
        with socket.create_connection(d.address, timeout=5) as s:
            s.sendall(request)
            reply = recv_frame(s)
    at = reply.index(b"auth/munge") + len(b"auth/munge") + 1
    assert reply[at:at + 4] == b"\0\0\0\0"
    assert decode_message(reply).version == version
    recorded = Path(__file__).resolve().parent.parent / "fixtures" / "slurm-17.11.13-client"
    old = next(recorded.glob("*.response.bin")).read_bytes()
    at = old.index(b"auth/munge") + len(b"auth/munge") + 1
    assert old[at:at + 4] == b"\0\0\0\0"


# -- a reply no bigger than the request can get (issue 14) ---------------------------------------
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("call", ["ping", "checkpoint_able"])
def test_reply_larger_than_any_answer_is_refused_at_its_length_prefix(mode, call):
    """2 MiB announced for an RC: FrameTooLargeError as soon as the prefix arrives, nothing buffered."""
    import asyncio
    import time
    from peers import ReplayPeer
    from pyslurmrpc import AsyncClient, Client
    from pyslurmrpc.client.core import REPLY_LIMIT
    from pyslurmrpc.errors import FrameTooLargeError

    announced = REPLY_LIMIT + 1
    with ReplayPeer(lambda request: announced.to_bytes(4, "big") + b"\0" * 64) as peer:
        cls = Client if mode == "sync" else AsyncClient
        client = cls(peer.host, peer.port, auth="none", timeout=5, protocol_version="19.05")
        args = () if call == "ping" else (1, 0)
        start = time.monotonic()
        with pytest.raises(FrameTooLargeError, match=f"length prefix {announced} over the limit {REPLY_LIMIT}"):
            result = getattr(client, call)(*args)
            if mode == "async":
                asyncio.run(result)
        assert time.monotonic() - start < 2 and len(peer.received) == 1


def test_fan_out_reply_limit_grows_with_the_nodes_forwarded_to():
    from pyslurmrpc.client.core import REPLY_LIMIT, REPLY_LIMIT_PER_FORWARDED_NODE, reply_limit
    from pyslurmrpc.wire import MAX_MSG_SIZE
    assert reply_limit() == REPLY_LIMIT
    assert reply_limit(10) == REPLY_LIMIT + 10 * REPLY_LIMIT_PER_FORWARDED_NODE
    assert reply_limit(10**9) == MAX_MSG_SIZE


# -- one MessageTimeout for the first exchange and the detection round (issue 14) ----------------
def _slow_close_then_silent(seconds):
    from test_flows_scripted import SILENT
    asked = []

    def daemon(frame, world):
        asked.append(frame)
        if len(asked) == 1:
            world.t += seconds         # the first request: closed after ``seconds``
            return None
        return SILENT                  # every probe: no answer
    return daemon


def test_detection_round_gets_what_is_left_of_one_message_timeout():
    world = World({ctl(7001): _slow_close_then_silent(6)})
    with pytest.raises(NoVersionAnsweredError):
        world.run(flows.ping(state(timeout=10)))
    assert world.t == 10                       # 6 s + the round's 4 s, not 6 + 10


def test_no_detection_round_once_the_message_timeout_is_spent():
    from pyslurmrpc.errors import TimeoutTransportError
    world = World({ctl(7001): _slow_close_then_silent(10)})
    with pytest.raises(TimeoutTransportError, match="no time left within 10 s"):
        world.run(flows.ping(state(timeout=10)))
    assert world.t == 10 and len(world.frames[ctl(7001)]) == 1


# -- a reply carrying the request's own credential (issue 14), real runners ---------------------
def _mirror(request: bytes) -> bytes:
    """A peer with no key: it answers RC 0 carrying the request's own MUNGE credential."""
    msg = decode_message(request)
    return _frame(msg.version, 0, msg.auth)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("call, args", [("ping", ()), ("checkpoint_enable", (1, 0)),
                                        ("checkpoint_able", (1, 0)), ("controller_version", ())])
def test_reflected_credential_is_refused_by_both_clients(mode, call, args):
    import asyncio
    from pathlib import Path
    from peers import ReplayPeer
    from pyslurmrpc import AsyncClient, Client
    from pyslurmrpc.auth.slurm_auth import OfflineMungeAuth
    key = Path(__file__).resolve().parent.parent / "fixtures" / "munge.key"
    with ReplayPeer(_mirror) as peer:
        cls = Client if mode == "sync" else AsyncClient
        client = cls(peer.host, peer.port, auth=OfflineMungeAuth(key), timeout=5, protocol_version="19.05")
        with pytest.raises(AuthError, match="reflected"):
            result = getattr(client, call)(*args)
            if mode == "async":
                asyncio.run(result)


def test_reflected_credential_in_a_fan_out_answer_counts_as_a_failed_node():
    from pathlib import Path
    from peers import ReplayPeer
    from pyslurmrpc import Client, SlurmError
    from pyslurmrpc.auth.slurm_auth import OfflineMungeAuth
    key = Path(__file__).resolve().parent.parent / "fixtures" / "munge.key"
    with ReplayPeer(_mirror) as peer:
        client = Client(peer.host, peer.port, auth=OfflineMungeAuth(key), timeout=1,
                        nodes={"n1": (peer.host, peer.port)})
        with pytest.raises(SlurmError) as info:
            client.checkpoint_tasks(5, 0, 1, None, 1, "n1")
    assert info.value.details == {"n1": fanout_failed()}


def fanout_failed() -> int:
    from pyslurmrpc.client.fanout import SLURM_COMMUNICATIONS_CONNECTION_ERROR
    return SLURM_COMMUNICATIONS_CONNECTION_ERROR


@pytest.mark.parametrize("prefix", [b"HTTQ", b"\xf0\x00\x00\x00", b"\x7f\xff\xff\xff"])
def test_other_huge_prefixes_stay_frame_too_large(prefix):
    """Only an answer starting "HTTP" is 26.05's refusal; any other huge prefix is refused as such."""
    from pyslurmrpc.errors import FrameTooLargeError

    def huge(frame, world):
        return Framer().feed(prefix + b"\0" * 8)
    world, _ = _world(huge)
    with pytest.raises(FrameTooLargeError):
        world.run(flows.ping(state(auth="munge")))
    assert len(_sent(world)) == 1


def test_close_in_the_middle_of_a_reply_is_no_refusal():
    from pyslurmrpc.effects import PeerClosed
    from pyslurmrpc.errors import ConnectionClosedError

    def half(frame, world):
        raise PeerClosed(True)
    world, _ = _world(half)
    with pytest.raises(ConnectionClosedError, match="in the middle of a reply"):
        world.run(flows.ping(state(auth="munge")))
    assert len(_sent(world)) == 1


def test_a_close_among_http_refusals_names_the_authentication():
    """26.05 with auth/none: HTTP for every version it refuses, a close for the one it takes.
    The error listed the HTTP refusals alone."""
    http = {v: detect.observe(v, b"HTTP/1.1 405 NOT ALLOWED\r\n\r\n") for v in (0x2000, 0x2900)}
    first = detect.observe(NEWEST, None)
    verdict = detect.decide(first, detect.Plan((), tuple(http)), http)
    assert verdict.code is None
    assert verdict.problem.endswith(f"0x{NEWEST:04x} closed without an answer, as a controller also does on a "
                                    "credential it cannot verify: is the authentication (AuthType, --auth, the "
                                    "munge key) the controller's?)"), verdict.problem
    assert "0x2900 was answered in HTTP (refused)" in verdict.problem
    everyone_closed = detect.decide(first, detect.Plan((), (0x2000,)), {0x2000: detect.observe(0x2000, None)})
    assert "every connection closed without an answer" in everyone_closed.problem    # unchanged


def test_a_refused_prefix_that_is_text_is_named_in_whole_streams_too():
    from pyslurmrpc.decode.frames import decode_stream
    report = decode_stream(b"HTTP/1.1 405 NOT ALLOWED\r\n\r\n", "x")
    assert '(the text "HTTP": an HTTP answer, as 26.05 gives to a version it refuses)' in report.problems[0]


class Losing:
    """``controller``, except that its first request in ``version`` gets no answer (the call times out)."""

    def __init__(self, controller, version: int):
        self.controller, self.version, self.lost = controller, version, 0

    def __call__(self, frame: bytes, world):
        if int.from_bytes(frame[4:6], "big") == self.version and not self.lost:
            self.lost += 1
            return SILENT
        return self.controller(frame, world)


def test_a_lost_probe_is_no_refusal():
    """A 26.05 controller whose 0x2d00 probe timed out was named 25.11 by a checkpoint call,
    and the verdict cached: every later checkpoint call said 25.11 without asking."""
    world, rounds = _world(Losing(Controller(NEWEST), NEWEST))
    st = state(auth="munge", timeout=2)
    with pytest.raises(NoVersionAnsweredError, match=r"fit several releases \(no answer to 0x2d00: "):
        world.run(flows.checkpoint(st, calls.enable(1, 0)))
    assert st.versions == {}
    with pytest.raises(CheckpointUnsupported) as info:
        world.run(flows.checkpoint(st, calls.enable(1, 0)))
    assert info.value.version == "26.05"


def test_a_ping_whose_round_lost_a_probe_is_still_answered():
    """The ping has its answer in a version the controller took; which release it is stays open
    (the lost 0x2700 probe is what tells 22.05 from 23.02), so nothing is cached, and
    controller_version(), which needs the release itself, says why it has none."""
    world, rounds = _world(Losing(Controller(0x2600), 0x2700))
    st = state(auth="munge", timeout=2)
    assert world.run(flows.ping(st)) is True
    assert len(rounds) == 1 and 0x2700 in _sent(world) and st.versions == {}
    world, rounds = _world(Losing(Controller(0x2600), 0x2700))
    with pytest.raises(NoVersionAnsweredError, match=r"fit several releases \(no answer to 0x2700: "):
        world.run(flows.controller_version(state(auth="munge", timeout=2)))


@pytest.mark.parametrize("first_took, waits", [
    (0.0, 0.1 * flows.SHARED_WAIT_FIRSTS),              # its connect (0.1 s) counts: each probe makes one
    (0.2, 0.3 * flows.SHARED_WAIT_FIRSTS),              # about a round's time, twice over
    (4.0, (10 - 4.0) / 2),                              # never more than half the time left
])
def test_a_call_waits_for_a_shared_round_about_as_long_as_a_round_takes(first_took, waits):
    """A round that hangs (a lost probe) ends by its own call's deadline: a waiter that waited
    as long had no time left for its own and failed where alone it succeeded; one that gave up
    at half its time failed on a slow link (probes 0.4 s, timeout 0.5 s) where alone it did not."""
    controller = Controller(0x2600)

    def slow_first(frame, world):
        if int.from_bytes(frame[4:6], "big") == NEWEST:
            world.t += first_took
        return controller(frame, world)
    world, rounds = _world(slow_first)
    connect = world.table[Connect]

    def slow_connect(action):
        if not isinstance(action.target, str):
            world.t += 0.1
        return connect(action)
    world.table[Connect] = slow_connect
    asked = []
    shared = world.table[Shared]
    world.table[Shared] = lambda action: asked.append((world.t, action.deadline)) or shared(action)
    assert world.run(flows.ping(state(auth="munge", timeout=10))) is True
    (at, until), = asked
    assert at == pytest.approx(0.1 + first_took) and until == pytest.approx(at + waits)


THEIRS = {
    "release": detect.Verdict(0x2600, speak=0x2600),
    "answer-only": detect.Verdict(None, speak=0x2500, problem="answers fit several releases (theirs)"),
    "nothing": detect.Verdict(None, problem="nothing answered (theirs)"),
}


@pytest.mark.parametrize("call", ["ping", "controller_version"])
@pytest.mark.parametrize("kind", list(THEIRS))
def test_a_round_another_call_ran_is_taken_only_when_it_does_for_this_one(kind, call):
    """A round's failure may be that call's alone (a reset, a lost probe: one transient close
    failed 15 calls of 15 where alone one failed), and a ping needs an answer where
    controller_version needs the release: a trial found waiters raising what alone they
    would not have."""
    world, rounds = _world(Controller(0x2600))
    verdict = THEIRS[kind]
    sent = verdict.speak or 0x2500
    reply = decode_message(_frame(sent, 0, _signed(world, sent)))
    seen = (detect.Observation(sent, detect.Outcome.ANSWERED, reply=reply) if verdict.speak
            else detect.Observation(sent, detect.Outcome.CLOSED))

    def another_calls_round(action):
        action.flow.close()
        return True, (verdict, {sent: seen}, object())
    world.table[Shared] = another_calls_round
    result = world.run(getattr(flows, call)(state(auth="munge")))
    takes = verdict.code is not None or (call == "ping" and verdict.speak is not None)
    assert len(rounds) == (0 if takes else 1)
    assert result == (True if call == "ping" else 0x2600)


@pytest.mark.parametrize("outcome, asks", [
    ((None, None), 1),
    ((False, None), flows.SHARED_ROUND_TRIES),
    ((True, (detect.Verdict(None, problem="theirs"), {}, object())), 1),
], ids=["still-going", "ended-without-a-verdict", "ended-in-one-that-does-not-do"])
def test_a_round_still_going_is_not_waited_for_twice(outcome, asks):
    """On a slow link (probes 0.4 s, timeout 0.5 s) two waits left too little for the call's own
    round; a round that ended without a verdict may be followed by another call's, worth a look."""
    world, rounds = _world(Controller(0x2600))
    asked = []

    def another_calls_round(action):
        action.flow.close()
        asked.append(action.deadline)
        return outcome
    world.table[Shared] = another_calls_round
    assert world.run(flows.ping(state(auth="munge"))) is True
    assert len(asked) == asks and len(rounds) == 1
    assert len({deadline for deadline in asked}) == 1     # a second look waits no longer than the first


def test_a_probe_answered_too_late_to_verify_is_lost_not_munged_failing():
    """A call whose time went to the controller's answers failed with "SlurmAuthError: Munge
    decode failed: No time left": blamed on munged, and raised as if munged were down."""
    controller = Controller(0x2600)

    def late(frame, world):
        if int.from_bytes(frame[4:6], "big") != NEWEST:
            world.t += 20                      # past the call's 10 s, with the answer in hand
        return controller(frame, world)
    world, rounds = _world(late)
    with pytest.raises(NoVersionAnsweredError, match="No time left for") as info:
        world.run(flows.ping(state(auth="munge", timeout=10)))
    assert not isinstance(info.value, AuthError)


def test_probes_that_got_no_answer_do_not_point_at_the_munge_key():
    """Every probe timed out after a first request that closed: the error said to check the
    authentication, as if the closes were refusals of our credential."""
    first = detect.Observation(NEWEST, detect.Outcome.CLOSED)
    plan = detect.plan_after(first)
    lost = {v: detect.Observation(v, detect.Outcome.LOST, problem=f"0x{v:04x}: no reply") for v in plan.probes}
    verdict = detect.decide(first, plan, lost)
    assert verdict.code is None and "no reply" in verdict.problem and "authentication" not in verdict.problem
    closed = {v: detect.Observation(v, detect.Outcome.CLOSED) for v in plan.probes}
    assert "is the authentication" in detect.decide(first, plan, closed).problem


def test_a_cached_verdict_another_version_failed_for_stays_while_the_round_runs():
    """controller_version asks in the newest version: its refusal dropped the cached 22.05
    verdict until its round ended, so every call made meanwhile ran detection again."""
    world, rounds = _world(Controller(0x2600))
    st = state(auth="munge")
    st.versions[("127.0.0.1", 7001)] = kept = detect.Verdict(0x2600, speak=0x2600)
    seen = []
    parallel = world.table[Parallel]
    world.table[Parallel] = lambda action: seen.append(dict(st.versions)) or parallel(action)
    assert world.run(flows.controller_version(st)) == 0x2600
    assert seen[0] == {("127.0.0.1", 7001): kept}


def test_a_round_that_names_no_release_leaves_the_cached_verdict():
    """A late call whose round lost a probe dropped the verdict other calls had just cached."""
    world, rounds = _world(Losing(Controller(0x2600), 0x2700))
    st = state(auth="munge", timeout=2)
    st.versions[("127.0.0.1", 7001)] = kept = detect.Verdict(0x2600, speak=0x2600)
    with pytest.raises(NoVersionAnsweredError, match="fit several releases"):
        world.run(flows.controller_version(st))
    assert st.versions == {("127.0.0.1", 7001): kept}
    world.frames.clear()
    assert world.run(flows.ping(st)) is True and _sent(world) == [0x2600]   # spoken at once


def test_a_cached_version_that_is_refused_is_still_forgotten():
    world, rounds = _world(Controller(0x2600))
    st = state(auth="munge")
    st.versions[("127.0.0.1", 7001)] = detect.Verdict(0x2A00, speak=0x2A00)    # a 24.11 replaced
    assert world.run(flows.ping(st)) is True
    assert _sent(world)[0] == 0x2A00 and st.versions[("127.0.0.1", 7001)].code == 0x2600


def _refusing_credential(frame, world):
    """Our credential refused: an unauthenticated refusal (23.02+) in the version sent."""
    return _frame(int.from_bytes(frame[4:6], "big"), detect.AUTH_ERROR, None, SLURM_NO_AUTH_CRED)


_FAILING_ANSWERS = {"timeout": SILENT, "garbage": b"\x00\x00\x00\x04junk", "credential-refused": _refusing_credential}
#: call -> (how it is made, the release of the verdict cached before it began, the answers that fail it)
_FAILING_CALLS = {
    "ping": (lambda st: flows.ping(st), 0x2A00, ("timeout", "garbage", "credential-refused")),
    "controller_version": (lambda st: flows.controller_version(st), 0x2A00,
                           ("timeout", "garbage", "credential-refused")),
    "checkpoint": (lambda st: flows.checkpoint(st, calls.enable(1, 0)), 0x2200, ("timeout", "garbage")),
}


@pytest.mark.parametrize("kind, answer", [
    pytest.param(kind, _FAILING_ANSWERS[name], id=f"{kind}-{name}")
    for kind, (_, _, names) in _FAILING_CALLS.items() for name in names])
def test_a_failed_first_request_leaves_a_verdict_another_call_set_meanwhile(kind, answer):
    """A call whose first request failed (no answer, garbage, our credential refused) dropped
    whatever was cached, even the verdict another call's round had just set: every call after
    it ran detection again."""
    key, (make, code, _) = ("127.0.0.1", 7001), _FAILING_CALLS[kind]
    st = state(auth="munge", timeout=2)
    fresh = detect.Verdict(code, speak=code)

    def reply(frame, world):
        return answer(frame, world) if callable(answer) else answer

    def another_call_settles_meanwhile(frame, world):
        st.versions[key] = fresh
        return reply(frame, world)
    world, _ = _world(another_call_settles_meanwhile)
    with pytest.raises(PyslurmrpcError):
        world.run(make(st))
    assert st.versions == {key: fresh}
    # the verdict the call began with is still dropped when it fails (a controller replaced)
    world, _ = _world(reply)
    with pytest.raises(PyslurmrpcError):
        world.run(make(st))
    assert st.versions == {}


def test_a_first_ping_answered_leaves_the_release_another_call_named_meanwhile():
    """A ping that began with nothing cached wrote "speaks 0x2d00, release unknown" over the
    verdict another call's round had just cached, and a checkpoint call then asked again."""
    key, fresh = ("127.0.0.1", 7001), detect.Verdict(NEWEST, speak=NEWEST)
    st = state(auth="munge")
    controller = Controller(NEWEST)     # the first version a ping sends: answered at once

    def another_call_settles_meanwhile(frame, world):
        st.versions[key] = fresh
        return controller(frame, world)
    world, _ = _world(another_call_settles_meanwhile)
    assert world.run(flows.ping(st)) is True
    assert st.versions[key] is fresh


def test_the_debug_log_says_what_each_request_got(caplog):
    """-v said "hint: no answer" for a 24.11 refusal that named its release."""
    world, _ = _world(Controller(0x2A00))
    with caplog.at_level(logging.DEBUG, logger="pyslurmrpc"):
        assert world.run(flows.ping(state(auth="munge"))) is True
    got = [r.getMessage() for r in caplog.records if r.getMessage().startswith("<-")]
    assert got[0].endswith("0x2d00 hint: refused without a credential, naming 0x2a00 (24.11)")
    assert " 0x2a00 answered: RESPONSE_SLURM_RC v24.11 return_code=0" in got[1]
    world, _ = _world(Controller(0x2600))
    with caplog.at_level(logging.DEBUG, logger="pyslurmrpc"):
        world.run(flows.controller_version(state(auth="munge")))
    assert any(r.getMessage().endswith("0x2d00 closed: no answer") for r in caplog.records)


def test_a_verdict_set_while_a_call_drops_the_one_it_read_stays():
    """drop_if takes the verdict out and puts it back unless stale: one another thread sets
    meanwhile stays (read, then popped, it was dropped with the stale one)."""
    key, old = ("127.0.0.1", 7001), detect.Verdict(0x2600, speak=0x2600)
    new = detect.Verdict(0x2A00, speak=0x2A00)
    cache = Verdicts({key: old})

    def stale(verdict):
        cache[key] = new               # another call's round, just now
        return verdict is old
    cache.drop_if(key, stale)
    assert cache == {key: new}
    cache.drop_if(key, lambda verdict: False)
    assert cache == {key: new}          # not stale: put back
    cache.drop_if(key, lambda verdict: True)
    assert cache == {}


class _RacyVerdicts(Verdicts):
    """A cache where another call's verdict lands just before each pop, once."""

    def __init__(self, fresh, *args):
        super().__init__(*args)
        self.fresh = fresh

    def pop(self, key, *default):
        if self.fresh is not None:
            self[key], self.fresh = self.fresh, None
        return super().pop(key, *default)


@pytest.mark.parametrize("kind", sorted(_FAILING_CALLS))
def test_a_failed_call_drops_its_verdict_without_dropping_one_landing_just_then(kind):
    """The flows drop a verdict through drop_if: one set by another call between the read and
    the pop stays."""
    key, (make, code, _) = ("127.0.0.1", 7001), _FAILING_CALLS[kind]
    st = state(auth="munge", timeout=2)
    fresh = detect.Verdict(code, speak=code)
    st.versions = _RacyVerdicts(fresh, {key: detect.Verdict(code, speak=code)})
    world, _ = _world(lambda frame, world: _FAILING_ANSWERS["garbage"])   # the first request fails
    with pytest.raises(PyslurmrpcError):
        world.run(make(st))
    assert st.versions == {key: fresh}
