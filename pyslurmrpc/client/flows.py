"""Every client operation written once, as a flow (sans-I/O, see pyslurmrpc.effects).

A flow yields actions (connect, send, read a frame, sleep, read the clock,
run flows side by side) and gets back their results or has their errors
thrown in; credentials are the authenticator's own flows, reached with
``yield from`` (the munged transaction and auth_munge's retry included).  The
blocking client and the asyncio client run the same flows on the two runners
of pyslurmrpc.runners.  The decisions - failover order, version detection, the
checkpoint_tasks fan-out, how replies become results - live here only.
"""

from __future__ import annotations

import logging

from ..auth.errors import MungeOutOfTimeError, MungeSocketError
from ..effects import Close, NOW, Parallel, Shared, Sleep
from ..errors import (
    AuthError, CheckpointUnsupported, ConnectionClosedError, FrameTooLargeError, InvalidArgumentError,
    NoVersionAnsweredError, ProtocolError, PyslurmrpcError, SlurmError, TimeoutTransportError, TransportError,
    UnexpectedMessageError,
)
from ..hostlist import HostlistError, uniq
from ..slurm_errno import SlurmErrno
from ..wire import MsgType
from ..wire.types import describe
from ..wire.constants import HTTP_PREFIX
from ..wire.versions import has_checkpoint, oldest_peer, peers_may_checkpoint, release_name
from . import calls, detect, fanout
from . import validate
from .core import CHECKPOINT_CODES, Endpoint, Settings, decode_reply
from .rpc import (
    _HTTP_LENGTH, State, _check_reply_auth, _frame, _key, _log_request, built_and_reached, connect, exchange, log,
    reach, rpc,
)


#: slurm_send_recv_controller_msg waits for a backup taking over on this answer
ESLURM_IN_STANDBY_MODE = int(SlurmErrno.ESLURM_IN_STANDBY_MODE)

# ---------------------------------------------------------------------------
# version detection (protocol_specs/versions.md "Detection"; the pure half is detect.py)
# ---------------------------------------------------------------------------
def _ask(state: State, endpoint: Endpoint, version: int, call: calls.Call | None = None,
         conn=None, probe: bool = False, built=None, deadline: float | None = None):
    """One request in ``version`` -> detect.Observation; the peer's refusals never raise here.

    ``probe``: transport failures and bad answers become observations too (a probe
    in the one side-by-side round must not sink the others); otherwise they raise.
    ``built``: the (frame, credential) already made for it; ``deadline``: the runner's time
    by which the exchange ends (the call's budget; None: one MessageTimeout from its start),
    read after the credential and the connect, so neither stretches it.
    """
    s = state.settings
    call = call or calls.ping()
    try:
        frame, cred = built or (yield from _frame(state, call, version, end=deadline))
        if conn is None:
            left = yield from _left(state, endpoint, deadline)
            conn = yield from connect(endpoint, min(s.connect_timeout, left))
        if log.isEnabledFor(logging.DEBUG):
            _log_request(endpoint, call, version)
        raw = yield from _exchange_raw(conn, frame, (yield from _left(state, endpoint, deadline)), endpoint)
        seen = detect.observe(version, raw)
        if seen.outcome is detect.Outcome.ANSWERED:
            yield from _check_reply_auth(state, seen.reply, cred, deadline)
        elif seen.outcome is detect.Outcome.GARBAGE and not probe and raw and raw[:4] != HTTP_PREFIX:
            decode_reply(call, raw, version)        # the decoder's own typed error, if it has one
    except (TransportError, ProtocolError, AuthError) as exc:
        if conn is not None:
            yield Close(conn)
        if not probe or _own_munged_failed(exc):   # our munged failing tells nothing of the peer
            raise
        # an answer whose credential fails is never an answer; nothing else counted: an auth failure;
        # no answer at all (a timeout, no connection) tells nothing of the version
        outcome = (detect.Outcome.LOST if isinstance(exc, TransportError) or _out_of_time(exc) else
                   detect.Outcome.AUTH_REFUSED if isinstance(exc, AuthError) else detect.Outcome.GARBAGE)
        return detect.Observation(version, outcome, problem=f"0x{version:04x}: {exc}")
    if log.isEnabledFor(logging.DEBUG):
        log.debug("<- %s 0x%04x %s: %s", endpoint, version, seen.outcome.value,
                  describe(seen.reply) if seen.reply is not None else seen.told())
    return seen



def _left(state: State, endpoint: Endpoint, deadline: float | None):
    """Seconds before ``deadline`` (None: a whole MessageTimeout); none left is a timeout."""
    if deadline is None:
        return state.settings.message_timeout
    left = deadline - (yield NOW)
    if left <= 0:
        raise TimeoutTransportError(f"{endpoint}: no time left within {state.settings.message_timeout:g} s "
                                    "to find the protocol version it speaks", address=endpoint)
    return left


def _exchange_raw(conn, frame: bytes, timeout: float, endpoint: Endpoint):
    """exchange(), with a close without a byte as None and an HTTP answer as its first bytes."""
    try:
        return (yield from exchange(conn, frame, timeout, endpoint))
    except ConnectionClosedError as exc:
        if getattr(exc, "mid_reply", False):
            raise
        return None
    except FrameTooLargeError as exc:
        if getattr(exc, "length", None) == _HTTP_LENGTH:   # 26.05: a refused version goes to HTTP
            return HTTP_PREFIX
        raise


#: how long a call waits for the round another call of its client runs, in what its own first
#: request took (a round of requests side by side takes about one such): a round still going
#: then is slow or hung (a lost probe), and the call runs its own with the rest of its time
SHARED_WAIT_FIRSTS = 2
#: ... and at least this long (seconds): a first request refused at once says little of a round
SHARED_WAIT_MIN = 0.01
#: shared rounds a call looks for before it runs its own (the call running one may be cancelled
#: or fail: one of those that waited runs the next for the rest; one still going is not waited
#: for twice)
SHARED_ROUND_TRIES = 2


def _settle(state: State, endpoint: Endpoint, first: detect.Observation, deadline: float, begun: float,
            blind: bool = False, needs_release: bool = False):
    """The one extra round after ``first``: the verdict (cached) and every observation by version.

    ``deadline``: the first request's exchange and this round share one MessageTimeout.
    ``blind``: ``first`` was a checkpoint call that closed, which tells nothing of the version.
    Calls of one client that need the same round at once share one: 20 first pings to 20.11
    sent 160 requests, each refused one a few error lines in slurmctld's log.  A call takes a
    round another ran only when it answers it as its own would have (``needs_release``: it
    must name the release, as controller_version and checkpoint calls need); a failed one
    never: a reset or a lost probe in it may be that call's alone.  ``begun``: when the call
    began making its first request (its credential and connect too, as each probe's).
    """
    key = (state, _key(endpoint), first.sent, first.outcome, first.hint, blind)
    now = yield NOW
    took = now - begun
    # one end for every look: a second look must not wait again what the first waited
    until = now + min(max(SHARED_WAIT_MIN, SHARED_WAIT_FIRSTS * took), (deadline - now) / 2)
    for _ in range(SHARED_ROUND_TRIES):
        mine = object()
        ran, found = yield Shared(key, _round(state, endpoint, first, deadline, blind, mine), until)
        if ran and (found[2] is mine or _answers_for(found[0], needs_release)):
            return _settled(endpoint, found)
        if ran is not False:   # still going (slow or hung), or one that does not do: not again
            break
    # no round to take: this call's own, in what is left of its time
    return _settled(endpoint, (yield from _round(state, endpoint, first, deadline, blind)))


def _answers_for(verdict: detect.Verdict, needs_release: bool) -> bool:
    """Whether a round's verdict does for a call that ``needs_release`` (else an answer will do)."""
    return verdict.code is not None or (not needs_release and verdict.speak is not None)


def _settled(endpoint: Endpoint, found: tuple):
    """(verdict, answers) of a round, or the error of one that nothing answered."""
    verdict, answers, _ = found
    if verdict.code is None and verdict.speak is None:
        raise _undetermined(endpoint, verdict)
    return verdict, answers


def _round(state: State, endpoint: Endpoint, first: detect.Observation, deadline: float, blind: bool,
           caller: object = None):
    """:func:`_settle`'s round itself: (verdict, observations by version, ``caller``)."""
    plan = detect.plan_blind() if blind else detect.plan_after(first)
    if plan.probes:
        yield from _left(state, endpoint, deadline)     # none left: the call ends here
    seen = yield Parallel(tuple(_ask(state, endpoint, v, probe=True, deadline=deadline) for v in plan.probes))
    answers = dict(zip(plan.probes, seen))
    verdict = detect.decide_blind(plan, answers) if blind else detect.decide(first, plan, answers)
    if verdict.code is not None:    # a release not told is not cached (nor is what was kept dropped)
        state.versions[_key(endpoint)] = verdict
    answers.setdefault(first.sent, first)
    return verdict, answers, caller


def _undetermined(endpoint: Endpoint, verdict: detect.Verdict) -> PyslurmrpcError:
    """The error of a round that named no release (a ping only needs a version that answered)."""
    if verdict.auth_refused:
        return AuthError(f"{endpoint}: {verdict.problem}", code=detect.AUTH_ERROR)
    return NoVersionAnsweredError(f"{endpoint}: {verdict.problem}", address=endpoint,
                                  answered=verdict.speak is not None)


def _refused(state: State, endpoint: Endpoint, first: detect.Observation, cached: detect.Verdict | None):
    """Raise for an answer detection cannot go on from (our credential refused, garbage)."""
    _forget(state, endpoint, cached)
    if first.outcome is detect.Outcome.AUTH_REFUSED:
        raise AuthError(f"{endpoint}: {first.problem}", code=detect.AUTH_ERROR)
    raise UnexpectedMessageError(f"{endpoint}: {first.problem}", field="header")


def _start(state: State, endpoint: Endpoint | None, call: calls.Call, choose):
    """The credential and the connection, the connect made while munged mints (the errors
    come in libslurm's order, the connect's first: rpc.built_and_reached).

    ``choose(cached Verdict or None)`` is the version; it is read for the controller
    expected to answer and again for the one that did (rebuilt when they differ).
    Returns (endpoint, conn, cached, version, (frame, credential)).
    """
    guess = endpoint or state.settings.controller_order(state.use_backup)[0]
    version = choose(state.versions.get(_key(guess)))
    built, (endpoint, conn) = yield from built_and_reached(state, call, version, endpoint)
    cached = state.versions.get(_key(endpoint))
    if choose(cached) != version:          # another controller answered: its own version
        version = choose(cached)
        built = yield from _frame(state, call, version)
    return endpoint, conn, cached, version, built


def _speaker(state: State):
    """The first version of a ping: what worked before, else the one the caller named, else 26.05."""
    pinned = state.settings.protocol_version if state.settings.pinned else None
    return lambda cached: detect.first_version(cached.speak if cached is not None else None, pinned)


def _first(state: State, endpoint: Endpoint, conn, version: int, cached: detect.Verdict | None,
           call: calls.Call | None = None, built=None):
    """The first request; a cached version that fails is forgotten (its answer starts detection).

    ``cached``: the verdict the call read for ``endpoint`` once connected (the one its failure may drop).
    Returns its observation and the deadline detection must keep (one MessageTimeout from
    the first exchange's start covers it and the round after it)."""
    deadline = (yield NOW) + state.settings.message_timeout
    try:
        first = yield from _ask(state, endpoint, version, call, conn=conn, built=built)
    except PyslurmrpcError:
        _forget(state, endpoint, cached)
        raise
    if first.outcome in (detect.Outcome.AUTH_REFUSED, detect.Outcome.GARBAGE):
        yield from _refused(state, endpoint, first, cached)
    if first.outcome is not detect.Outcome.ANSWERED:
        _forget_refused(state, endpoint, version)
    return first, deadline


def _forget(state: State, endpoint: Endpoint, cached: detect.Verdict | None) -> None:
    """Forget the controller's verdict after a call that began with ``cached`` failed (a controller
    replaced is found afresh), unless another call's round set a newer one meanwhile: dropped,
    every call after it ran detection again."""
    if cached is not None:
        state.versions.drop_if(_key(endpoint), lambda verdict: verdict is cached)


def _forget_refused(state: State, endpoint: Endpoint, version: int) -> None:
    """Forget the cached verdict if it speaks ``version``, which was just refused; one that speaks
    another (controller_version asks in the newest; another call's round set it meanwhile)
    stays: dropped, every call at once ran detection again."""
    state.versions.drop_if(_key(endpoint), lambda verdict: verdict.speak == version)


def controller_version(state: State, endpoint: Endpoint | None = None):
    """The protocol version the controller speaks, asked afresh: a controller upgraded in place
    still answers the release it was cached as (26.05 takes 24.11's requests), so the cache
    is only what this finds, for the calls after it."""
    begun = yield NOW
    endpoint, conn = yield from reach(state, endpoint)
    cached = state.versions.get(_key(endpoint))
    first, deadline = yield from _first(state, endpoint, conn, _speaker(state)(None), cached)
    verdict, _ = yield from _settle(state, endpoint, first, deadline, begun, needs_release=True)
    if verdict.code is None:
        raise _undetermined(endpoint, verdict)
    return verdict.code


# ---------------------------------------------------------------------------
# operations
# ---------------------------------------------------------------------------
def checkpoint(state: State, call: calls.Call):
    """A controller RPC in the pinned checkpoint version, with the too-new verdict and
    slurm_send_recv_controller_msg's wait for a backup taking over (ESLURM_IN_STANDBY_MODE)."""
    s = state.settings
    _refuse_pinned_without_checkpoint(s, str(s.controllers[0]))
    start = yield NOW
    while True:
        reply = yield from _checkpoint_once(state, call)
        if not _retry_standby(s, reply, (yield NOW) - start):
            return call.read_reply(reply)
        yield Sleep(s.slurmctld_timeout // 2)
        state.use_backup = False          # the next attempt starts at the primary again


def _retry_standby(s: Settings, reply, elapsed: float) -> bool:
    """A standby controller's answer, with 2+ controllers, before 1.5 x SlurmctldTimeout passed."""
    return (reply.msg_type == MsgType.RESPONSE_SLURM_RC and reply.body.return_code == ESLURM_IN_STANDBY_MODE
            and len(s.controllers) > 1 and elapsed < s.slurmctld_timeout + s.slurmctld_timeout // 2)


def _refuse_pinned_without_checkpoint(s: Settings, where: str) -> None:
    """A protocol_version of 20.02 or newer names a release without checkpoint RPCs."""
    if not has_checkpoint(s.protocol_version):
        raise CheckpointUnsupported(where, release_name(s.protocol_version), pinned=True)


def _checkpoint_once(state: State, call: calls.Call):
    """The call's reply Message from the controller that answers, or the too-new verdict."""
    pinned = state.settings.protocol_version
    begun = yield NOW
    endpoint, conn, cached, version, built = yield from _start(state, None, call, lambda cached: pinned)
    if cached is not None and cached.code is not None and not cached.has_checkpoint:
        yield Close(conn)
        raise CheckpointUnsupported(str(endpoint), cached.name)
    first, deadline = yield from _first(state, endpoint, conn, version, cached, call, built)
    if first.outcome is detect.Outcome.ANSWERED:
        return first.reply
    blind = first.outcome is detect.Outcome.CLOSED
    verdict, _ = yield from _settle(state, endpoint, first, deadline, begun, blind, needs_release=True)
    if verdict.code is None:
        raise _undetermined(endpoint, verdict)
    if not verdict.has_checkpoint:
        raise CheckpointUnsupported(str(endpoint), verdict.name)
    if verdict.speak in CHECKPOINT_CODES and verdict.speak != version:
        _, reply = yield from rpc(state, call, verdict.speak, endpoint=endpoint)
        return reply
    raise ConnectionClosedError(f"{endpoint} closed the connection without a reply", address=endpoint)


def ping(state: State, endpoint: Endpoint | None = None):
    """REQUEST_PING in the version that worked before, else 26.05's; detection if refused."""
    begun = yield NOW
    endpoint, conn, cached, version, built = yield from _start(state, endpoint, calls.ping(), _speaker(state))
    first, deadline = yield from _first(state, endpoint, conn, version, cached, built=built)
    if first.outcome is detect.Outcome.ANSWERED:
        if cached is None:   # the version to speak is known; the release is not (yet), unless
            # another call's round named it meanwhile: that verdict stays
            state.versions.setdefault(_key(endpoint), detect.Verdict(None, speak=first.sent))
        return calls.ping().read_reply(first.reply)
    verdict, answers = yield from _settle(state, endpoint, first, deadline, begun)
    return calls.ping().read_reply(answers[verdict.speak].reply)


def tasks(state: State, job_id, step_id, begin_time, image_dir, max_wait, nodelist):
    """slurm_checkpoint_tasks: fan out to every node's slurmd; per-node codes, highest raised."""
    call = calls.tasks(job_id, step_id, begin_time, image_dir)
    max_wait = calls._uint("max_wait", max_wait, calls.U16)
    try:
        hops = fanout.plan(validate.nodelist(nodelist or ""), validate.tree_width(state.settings.tree_width))
    except HostlistError as exc:
        raise InvalidArgumentError(f"{validate.NODELIST}: {exc}", argument=validate.NODELIST) from None
    if not hops:
        raise InvalidArgumentError(f"{validate.NODELIST} names no node", argument=validate.NODELIST)
    _refuse_pinned_without_checkpoint(state.settings, f"the slurmds of {nodelist}")
    _refuse_known_without_checkpoint(state, nodelist)
    timeout_ms = max_wait * 1000 if max_wait else int(state.settings.message_timeout * 1000)
    results = yield Parallel(tuple(_hop(state, call, hop, timeout_ms) for hop in hops))
    gathered = {node: code for result in results for node, code in result.items()}
    codes = {node: gathered[node] for node in uniq(gathered)}
    rc = fanout.overall(codes)
    if rc:
        raise SlurmError(rc, details=codes)
    return codes


def _refuse_known_without_checkpoint(state: State, nodelist: str) -> None:
    """A controller already found to be 21.08 or newer takes only slurmds of 20.02 or newer, none
    of which has checkpoint RPCs: refused at once, as the controller's own checkpoint calls are
    (each node waited its MessageTimeout, or closed, and said only "Communication connection
    failure").  A verdict that knows only the version the controller answered in bounds its
    release from below (a controller never answers in a version newer than its own).
    Nothing known: sent as libslurm sends it, the controller not asked."""
    for endpoint, known in _known_controllers(state):
        at_least = known.code if known.code is not None else known.speak
        if peers_may_checkpoint(at_least):
            return
        release = known.name if known.code is not None else f"{release_name(at_least)} or newer"
        raise CheckpointUnsupported(str(endpoint), release, nodes=nodelist,
                                    oldest=release_name(oldest_peer(at_least)))


def _known_controllers(state: State):
    """(endpoint, cached verdict) of each controller with one, in failover order; with a
    SlurmctldPort range a verdict is cached under the port the call reached."""
    s = state.settings
    for endpoint in s.controllers:
        for port in range(endpoint.port, endpoint.port + max(s.port_count, 1)):
            known = state.versions.get(_key(endpoint, port))
            if known is not None and (known.code is not None or known.speak is not None):
                yield endpoint, known
                break


def _hop(state: State, call: calls.Call, hop: fanout.Hop, timeout_ms: int):
    """One group of forward.c _fwd_tree_thread: what the first hop cannot report is sent directly."""
    s = state.settings
    wait = hop_wait(s, hop, timeout_ms)
    try:
        _, reply = yield from rpc(state, call, s.protocol_version, endpoint=s.node(hop.node),
                                  forward=hop.forward(timeout_ms, s.tree_width), timeout=wait, slurmd=True)
    except (TransportError, ProtocolError, AuthError) as exc:
        if _own_munged_failed(exc):   # not the node's fault: every other hop would wait and fail alike
            raise
        codes = {hop.node: fanout.SLURM_COMMUNICATIONS_CONNECTION_ERROR}
        lost = [fanout.Hop(n) for n in hop.forward_to]   # "abandon tree": each one directly, side by side
    else:
        codes = fanout.node_codes(hop, reply)
        lost = fanout.missing(hop, codes)
    if lost:
        for extra in (yield Parallel(tuple(_hop(state, call, h, timeout_ms) for h in lost))):
            codes.update(extra)
    return codes


def hop_wait(s: Settings, hop: fanout.Hop, timeout_ms: int) -> float:
    """Seconds to wait for a hop's reply (_send_and_recv_msgs): the tree timeout, and when the hop
    forwards, one MessageTimeout per tree level below it plus the tree timeout per level."""
    if not hop.forward_to:
        return timeout_ms / 1000
    levels = (len(hop.forward_to) + 1) // s.tree_width
    return (s.message_timeout * 1000 * levels + timeout_ms * (levels + 1)) / 1000


def _own_munged_failed(exc: Exception) -> bool:
    """The local munged could not be reached (socket missing, refused, stalled past the budget);
    not a call whose time ran out before munged was asked."""
    failure = getattr(exc, "munge_error", None)
    return isinstance(failure, MungeSocketError) and not isinstance(failure, MungeOutOfTimeError)


def _out_of_time(exc: Exception) -> bool:
    """The call's time ran out before munged was asked (a probe that tells nothing)."""
    return isinstance(getattr(exc, "munge_error", None), MungeOutOfTimeError)
