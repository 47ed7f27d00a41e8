"""Each call keeps the bound protocol_specs/client_behaviour.md F7a gives it, against a
controller (or slurmd) that accepts and never answers, one that refuses every connect and
one whose address swallows connects (a blackhole).

:func:`bound` is F7a's table written as code; the scripted world (virtual clock, the real
flows) checks every call kind against it for several MessageTimeout / TCPTimeout / controller
counts, plus the exact times the rules give; test_budget_sockets.py checks the same on real
sockets (blocking and asyncio) with slack for a shared machine.
"""

from __future__ import annotations

import math

import pytest

from pyslurmrpc.client import calls, detect, fanout, flows
from pyslurmrpc.client.core import FAILOVER_PAUSE, SLURMD_CONNECT_RETRIES, SLURMD_RETRY_PAUSE
from pyslurmrpc.effects import Connect, Send
from pyslurmrpc.errors import PyslurmrpcError
from pyslurmrpc.slurm_errno import SlurmErrno
from pyslurmrpc.wire import MsgType, decode_message

from test_flows_scripted import BLACKHOLE, SILENT, World, answer_rc, ctl, reply_rc, state

NODES = ("n1", "n2", "n3")
NODELIST = "n[1-3]"
#: (MessageTimeout, TCPTimeout, controllers) tried on the virtual clock
SHAPES = [(1, 1, 1), (2.5, 2, 1), (10, 2, 1), (10, 2, 2), (10, 4, 2), (7, 3, 3)]
SCENARIOS = ("silent", "refused", "blackhole")
CALL_KINDS = ("ping()", "ping(0)", "checkpoint_able", "controller_version", "checkpoint_tasks")


# -- F7a as code -------------------------------------------------------------------------------
def connect_rounds(mt: float, tt: float, n: int) -> float:
    """F3's rounds over n controllers end before MT plus one more round of n connects."""
    return mt + n * tt


def slurmd_connect(mt: float, tt: float) -> float:
    """slurm_send_addr_recv_msgs: min(MT, 10) pauses of 1 s, and one connect that times out."""
    return min(math.floor(mt), SLURMD_CONNECT_RETRIES) * SLURMD_RETRY_PAUSE + tt


def bound(call: str, mt: float, tt: float, n: int, tree_width: int, max_wait: int = 0) -> float:
    """F7a's bound of one call with a munged that answers at once (auth/none here)."""
    if call in ("ping(0)",):
        return tt + mt
    if call in ("ping()", "checkpoint_able", "controller_version"):
        return connect_rounds(mt, tt, n) + mt
    tree = max_wait or mt
    first = max(slurmd_connect(mt, tt) + hop_wait(mt, hop, tree, tree_width)
                for hop in fanout.plan(NODELIST, tree_width))
    return first + slurmd_connect(mt, tt) + tree


def hop_wait(mt: float, hop: fanout.Hop, tree: float, tree_width: int) -> float:
    """_send_and_recv_msgs: the tree timeout, plus MT and the tree timeout per level below the hop."""
    if not hop.forward_to:
        return tree
    levels = (len(hop.forward_to) + 1) // tree_width
    return mt * levels + tree * (levels + 1)


# -- the scripted world ----------------------------------------------------------------------------
def _world(scenario: str, n: int) -> World:
    answer = {"silent": lambda frame, w: SILENT, "blackhole": BLACKHOLE}.get(scenario)
    addrs = [ctl(7001 + i) for i in range(n)] + [ctl(7100 + i) for i in range(len(NODES))]
    return World({} if answer is None else {a: answer for a in addrs})


def _state(mt, tt, n, tree_width=2, auth="none"):
    return state(auth=auth, timeout=mt, connect_timeout=tt, tree_width=tree_width,
                 backups=[("127.0.0.1", 7001 + i) for i in range(1, n)],
                 nodes={name: ctl(7100 + i) for i, name in enumerate(NODES)})


FLOWS = {
    "ping()": lambda st: flows.ping(st),
    "ping(0)": lambda st: flows.ping(st, st.settings.controllers[0]),
    "checkpoint_able": lambda st: flows.checkpoint(st, calls.able(1, 0)),
    "controller_version": lambda st: flows.controller_version(st),
    "checkpoint_tasks": lambda st: flows.tasks(st, 1, 0, 0, None, 0, NODELIST),
}


def _run(world: World, flow) -> PyslurmrpcError:
    with pytest.raises(PyslurmrpcError) as info:
        world.run(flow)
    return info.value


@pytest.mark.parametrize("mt, tt, n", SHAPES)
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("call", CALL_KINDS)
def test_every_call_keeps_its_bound(call, scenario, mt, tt, n):
    world = _world(scenario, n)
    _run(world, FLOWS[call](_state(mt, tt, n)))
    assert world.t <= bound(call, mt, tt, n, tree_width=2)


def _rounds_end(mt: float, per_round: float) -> float:
    """When F3's rounds give up: a round starts while its pause would end before MT."""
    t = 0.0
    while True:
        t += per_round
        if t + FAILOVER_PAUSE >= mt:
            return t
        t += FAILOVER_PAUSE


@pytest.mark.parametrize("mt, tt, n", SHAPES)
def test_exact_times_against_each_peer(mt, tt, n):
    """The times the rules give, to the virtual second (a call that waits less than F7a says
    is no bug, one that waits differently from these is a change to document)."""
    expected = {
        ("silent", "ping(0)"): mt, ("silent", "ping()"): mt, ("silent", "checkpoint_able"): mt,
        ("refused", "ping(0)"): 0, ("refused", "ping()"): _rounds_end(mt, 0),
        ("blackhole", "ping(0)"): tt, ("blackhole", "ping()"): _rounds_end(mt, n * tt),
        ("blackhole", "controller_version"): _rounds_end(mt, n * tt),
        ("silent", "checkpoint_tasks"): hop_wait(mt, fanout.plan(NODELIST, 2)[0], mt, 2) + mt,
        ("refused", "checkpoint_tasks"): 2 * min(math.floor(mt), SLURMD_CONNECT_RETRIES),
        ("blackhole", "checkpoint_tasks"): 2 * tt,
    }
    for (scenario, call), seconds in expected.items():
        world = _world(scenario, n)
        _run(world, FLOWS[call](_state(mt, tt, n)))
        assert world.t == pytest.approx(seconds), (scenario, call)


def test_connect_rounds_with_backups_can_pass_message_timeout_by_a_round():
    """Two blackholed controllers, MT 10, TT 4: rounds at 0 and 9 (8 s each): 17 s, below
    MT + n x TT = 18 s - the reason F7a's connect term has n x TT, not one TT."""
    world = _world("blackhole", 2)
    _run(world, FLOWS["ping()"](_state(10, 4, 2)))
    assert [t for t, _ in world.connects] == [0, 4, 9, 13] and world.t == 17


def test_a_direct_hop_waits_the_tree_timeout_only():
    """tree_width=1: n1 forwards to n2 and n3 and never answers; n2 and n3, then sent their own
    copy, wait the tree timeout (forward.cnt 0: _send_and_recv_msgs takes it as it is), not a
    tree level's MT + 2 x timeout."""
    mt = 3
    world = _world("silent", 1)
    _run(world, flows.tasks(_state(mt, 1, 1, tree_width=1), 1, 0, 0, None, 0, NODELIST))
    first = hop_wait(mt, fanout.Hop("n1", ("n2", "n3")), mt, 1)
    assert first == 3 * mt + 4 * mt and world.t == first + mt
    assert world.t <= bound("checkpoint_tasks", mt, 1, 1, tree_width=1)


def test_max_wait_is_the_tree_timeout():
    """max_wait 2 with MT 5: the first hop waits 5 + 2 x 2, the direct hops 2."""
    world = _world("silent", 1)
    _run(world, flows.tasks(_state(5, 1, 1), 1, 0, 0, None, 2, NODELIST))
    assert world.t == (5 + 2 * 2) + 2 <= bound("checkpoint_tasks", 5, 1, 1, 2, max_wait=2)


def test_detection_round_ends_at_the_shared_deadline_after_slow_connects():
    """A controller whose connects take 0.9 x TCPTimeout closes the first ping and never
    answers the probes: the probes' own slow connects come out of the shared MessageTimeout
    (ping(i) <= TT + MT), they do not push it back."""
    mt, tt = 4, 2
    frames = []

    def closes_then_silent(frame, world):
        frames.append(frame)
        return None if len(frames) == 1 else SILENT
    world = World({ctl(7001): closes_then_silent})
    connect = world.table[Connect]

    def slow(a):
        world.t += 0.9 * tt
        return connect(a)
    world.table[Connect] = slow
    _run(world, FLOWS["ping(0)"](_state(mt, tt, 1)))
    assert len(frames) > 1 and world.t == pytest.approx(0.9 * tt + mt)
    assert world.t <= bound("ping(0)", mt, tt, 1, 2)


def test_send_and_reply_share_one_message_timeout():
    """A controller that takes 0.6 x MT to read the request and then never answers: the reply
    gets what the send left (F7: one MessageTimeout for the whole exchange), sync and async alike."""
    mt = 5
    world = _world("silent", 1)
    send = world.table[Send]

    def slow_send(a):
        world.t += 0.6 * a.timeout
        return send(a)
    world.table[Send] = slow_send
    _run(world, FLOWS["ping(0)"](_state(mt, 1, 1)))
    assert world.t == pytest.approx(mt)


def test_a_17_11_controller_asked_again_in_its_version_adds_tt_plus_mt():
    """The 19.05 request is closed, the probes (pings) answer after 0.8 x MT, the call sent again
    in 17.11 is never answered: 0.8 x MT of detection, then one more MT (F7a: + TT + MT)."""
    from test_detection import Controller
    mt = 5
    old = Controller(0x2000)

    def slow_then_silent(frame, world):
        sent = int.from_bytes(frame[4:6], "big")
        msg = decode_message(detect.relabel(frame, detect.wire_version(sent)))
        if msg.msg_type == MsgType.REQUEST_PING:
            world.t += 0.8 * mt
        elif sent == 0x2000:
            return SILENT
        return old(frame, world)
    world = World({ctl(7001): slow_then_silent})
    _run(world, FLOWS["checkpoint_able"](_state(mt, 2, 1, auth="munge")))
    assert world.t == pytest.approx(0.8 * mt + mt)
    assert world.t <= bound("checkpoint_able", mt, 2, 1, 2) + 2 + mt


def test_standby_answers_keep_their_bound():
    """ESLURM_IN_STANDBY_MODE answered after 0.9 x MT each time, two controllers, SlurmctldTimeout 4:
    asked again while less than 4 + 2 s passed, 2 s later (the second answer comes at 7.4 s,
    past the window: it is the result); the whole call stays under
    1.5 x ST + ST / 2 + one attempt."""
    mt, st_timeout = 3, 4

    def standby(frame, world):
        world.t += 0.9 * mt
        return reply_rc(frame, int(SlurmErrno.ESLURM_IN_STANDBY_MODE))
    world = World({ctl(7001): standby, ctl(7002): standby})
    st = state(timeout=mt, connect_timeout=1, backups=[("127.0.0.1", 7002)], slurmctld_timeout=st_timeout)
    _run(world, FLOWS["checkpoint_able"](st))
    requests = len(world.frames[ctl(7001)])
    assert requests == 2 and world.t == pytest.approx(2 * 0.9 * mt + st_timeout // 2)   # 2.7, 4.7 -> 7.4
    assert world.t < 1.5 * st_timeout + st_timeout // 2 + bound("checkpoint_able", mt, 1, 2, 2)


def test_answered_calls_take_no_time():
    world = World({ctl(7001): answer_rc(), **{ctl(7100 + i): answer_rc() for i in range(3)}})
    for calls_on_one_client in (("ping()", "ping(0)", "checkpoint_able"), ("checkpoint_tasks",)):
        # a client whose ping was answered in 26.05's version knows its slurmds cannot checkpoint
        st = _state(10, 2, 1)
        for call in calls_on_one_client:
            world.run(FLOWS[call](st))
    assert world.t == 0
