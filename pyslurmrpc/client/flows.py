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

from ..auth.msg_hash import FIRST_HASHED_VERSION, credential_payload
from ..auth.slurm_auth import create_flow, verify_flow
from ..effects import Close, Connect, Now, Parallel, PeerClosed, RecvFrame, Send, Sleep, WallClock, deadline_passed
from ..errors import (
    AuthError, CheckpointUnsupported, ConnectionClosedError, ConnectionRefusedTransportError,
    CONNECT_ERRNO, RECEIVE_ERRNO, InvalidArgumentError, NoVersionAnsweredError, ProtocolError, PyslurmrpcError, SlurmError,
    TimeoutTransportError, TransportError,
)
from ..hostlist import HostlistError, uniq
from ..wire import VERSIONS, Forward, MsgType
from ..wire.codec import encode_body
from ..wire.types import describe
from . import calls, detect, fanout
from .core import CHECKPOINT_CODES, FAILOVER_PAUSE, Endpoint, Settings, decode_reply, request_frame


log = logging.getLogger("pyslurmrpc.rpc")

# ---------------------------------------------------------------------------
# shared mutable state of one client (a flag and a cache, both safe to race on)
# ---------------------------------------------------------------------------
class State:
    """``auth``: the authenticator (pyslurmrpc.auth.slurm_auth); ``seed``: what libslurm adds
    to the time to spread clients over SlurmctldPort ranges (its pid)."""

    def __init__(self, settings: Settings, auth, seed: int):
        self.settings = settings
        self.auth = auth
        self.seed = seed
        self.use_backup = False
        self.versions: dict[tuple[str, int], int] = {}


def _key(endpoint: Endpoint) -> tuple[str, int]:
    return (endpoint.host, endpoint.port)


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------
def connect(endpoint: Endpoint, timeout: float):
    """An open TCP connection to ``endpoint``, or the TransportError libslurm would report."""
    try:
        return (yield Connect(endpoint, timeout))
    except ConnectionRefusedError:
        raise ConnectionRefusedTransportError(f"{endpoint}: connection refused", address=endpoint) from None
    except TimeoutError:
        raise TimeoutTransportError(f"{endpoint}: connect timed out", address=endpoint, slurm_errno=CONNECT_ERRNO) from None
    except OSError as exc:
        raise TransportError(f"{endpoint}: {exc.strerror or exc}", address=endpoint, slurm_errno=CONNECT_ERRNO) from None


def exchange(conn, frame: bytes, timeout: float, endpoint: Endpoint):
    """Send ``frame``, read one whole reply frame, close ``conn``."""
    try:
        yield Send(conn, frame, timeout)
        raw = yield RecvFrame(conn, timeout)
    except Exception as exc:
        yield Close(conn)
        error = _exchange_error(exc, timeout, endpoint)
        if error is exc:
            raise
        raise error from None
    yield Close(conn)
    return raw


def _exchange_error(exc: Exception, timeout: float, ep: Endpoint) -> Exception:
    if isinstance(exc, PeerClosed):
        what = "in the middle of a reply" if exc.pending else "without a reply"
        return ConnectionClosedError(f"{ep} closed the connection {what}", address=ep)
    if isinstance(exc, TimeoutError):
        return TimeoutTransportError(f"{ep}: no reply within {timeout:g} s", address=ep)
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return ConnectionClosedError(f"{ep} reset the connection", address=ep)
    if isinstance(exc, OSError):
        return TransportError(f"{ep}: {exc.strerror or exc}", address=ep, slurm_errno=RECEIVE_ERRNO)
    return exc


def connect_controller(state: State):
    """Primary, then each backup, in rounds a second apart, bounded by MessageTimeout."""
    s = state.settings
    deadline = (yield Now()) + s.message_timeout
    spread = state.seed + int((yield WallClock())) if s.port_count > 1 else 0
    failures: dict[str, Exception] = {}
    while True:
        for endpoint in s.controller_order(state.use_backup, spread):
            try:
                conn = yield from connect(endpoint, s.connect_timeout)
            except TransportError as exc:
                failures[str(endpoint)] = exc
                continue
            state.use_backup = endpoint.index != 0
            return endpoint, conn
        state.use_backup = False
        if deadline_passed((yield Now()), deadline, FAILOVER_PAUSE):
            break
        yield Sleep(FAILOVER_PAUSE)
    tried = "; ".join(f"{ep}: {exc}" for ep, exc in failures.items())
    raise ConnectionRefusedTransportError(f"no slurmctld answered ({tried})")


def rpc(state: State, call: calls.Call, version: int, endpoint: Endpoint | None = None,
        forward: Forward = Forward(), timeout: float | None = None):
    """One request and its verified reply; returns (endpoint, reply Message)."""
    if version < FIRST_HASHED_VERSION:
        body, payload = None, b""
    else:  # 20.11+: the credential carries a payload (22.05+: the body's hash); the body is encoded once
        body = encode_body(version, call.msg_type, call.body)
        payload = credential_payload(version, call.msg_type, body)
    cred = yield from create_flow(state.auth, version, payload)
    frame = request_frame(call, cred, version, forward, body)
    if endpoint is None:
        endpoint, conn = yield from connect_controller(state)
    else:
        conn = yield from connect(endpoint, state.settings.connect_timeout)
    cached = state.versions.get(_key(endpoint))
    if version in CHECKPOINT_CODES and call.msg_type != MsgType.REQUEST_PING and cached and \
            not detect.has_checkpoint(cached):
        yield Close(conn)
        raise CheckpointUnsupported(str(endpoint), detect.release_name(cached))
    if log.isEnabledFor(logging.DEBUG):
        log.debug("-> %s %s v%s %s", endpoint, call.msg_type.name, VERSIONS[version].name,
                  " ".join(f"{k}={v!r}" for k, v in vars(call.body).items()))
    raw = yield from exchange(conn, frame, timeout or state.settings.message_timeout, endpoint)
    reply = decode_reply(call, raw, version)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("<- %s %s", endpoint, describe(reply))
    if reply.auth is not None:  # 23.02+ replies may carry none (SLURM_NO_AUTH_CRED)
        yield from verify_flow(state.auth, reply.auth, reply.version)
    return endpoint, reply


def controller_version(state: State, endpoint: Endpoint | None = None):
    """The protocol version the controller speaks (cached per controller)."""
    if endpoint is None:
        endpoint, conn = yield from connect_controller(state)
        yield Close(conn)
    cached = state.versions.get(_key(endpoint))
    if cached:
        return cached
    answered = yield Parallel(tuple(_probe(state, endpoint, v) for v in detect.CANDIDATES))
    version = detect.verdict(dict(zip(detect.CANDIDATES, answered)))
    if version is None:
        raise NoVersionAnsweredError(
            f"{endpoint} answered a ping in no protocol version from 17.11 to 25.05", address=endpoint)
    state.versions[_key(endpoint)] = version
    return version


def _probe(state: State, endpoint: Endpoint, version: int):
    try:
        _, reply = yield from rpc(state, calls.ping(), version, endpoint=endpoint)
    except PyslurmrpcError:
        return False
    return reply.msg_type == MsgType.RESPONSE_SLURM_RC and reply.body.return_code == 0


# ---------------------------------------------------------------------------
# operations
# ---------------------------------------------------------------------------
def checkpoint(state: State, call: calls.Call):
    """A controller RPC in the pinned checkpoint version, with the too-new verdict."""
    try:
        _, reply = yield from rpc(state, call, state.settings.protocol_version)
    except ConnectionClosedError as exc:
        endpoint = exc.address
        if endpoint is None:
            raise
        version = yield from controller_version(state, endpoint)
        if not detect.has_checkpoint(version):
            raise CheckpointUnsupported(str(endpoint), detect.release_name(version)) from None
        raise
    return call.read_reply(reply)


def ping(state: State, endpoint: Endpoint | None = None):
    """REQUEST_PING; against a newer controller, in the version it speaks."""
    version = state.settings.protocol_version
    if endpoint is not None:
        version = state.versions.get(_key(endpoint), version)
    try:
        _, reply = yield from rpc(state, calls.ping(), version, endpoint=endpoint)
    except ConnectionClosedError as exc:
        if exc.address is None:
            raise
        version = yield from controller_version(state, exc.address)
        _, reply = yield from rpc(state, calls.ping(), version, endpoint=exc.address)
    return calls.ping().read_reply(reply)


def tasks(state: State, job_id, step_id, begin_time, image_dir, max_wait, nodelist):
    """slurm_checkpoint_tasks: fan out to every node's slurmd; per-node codes, highest raised."""
    call = calls.tasks(job_id, step_id, begin_time, image_dir)
    max_wait = calls._uint("max_wait", max_wait, calls.U16)
    try:
        hops = fanout.plan(nodelist or "", state.settings.tree_width)
    except HostlistError as exc:
        raise InvalidArgumentError(f"nodelist: {exc}") from None
    if not hops:
        raise InvalidArgumentError("nodelist names no node")
    timeout_ms = max_wait * 1000 if max_wait else int(state.settings.message_timeout * 1000)
    results = yield Parallel(tuple(_hop(state, call, hop, timeout_ms) for hop in hops))
    gathered = {node: code for result in results for node, code in result.items()}
    codes = {node: gathered[node] for node in uniq(gathered)}
    rc = fanout.overall(codes)
    if rc:
        raise SlurmError(rc, details=codes)
    return codes


def _hop(state: State, call: calls.Call, hop: fanout.Hop, timeout_ms: int):
    s = state.settings
    names, codes = [hop.node, *hop.forward_to], {}
    while names:
        first = fanout.Hop(names[0], tuple(names[1:]))
        # forward.c: the reply may take one MessageTimeout per tree level plus the tree timeout
        levels = (len(first.forward_to) + 1) // s.tree_width
        wait = (s.message_timeout * 1000 * levels + timeout_ms * (levels + 1)) / 1000
        try:
            _, reply = yield from rpc(state, call, s.protocol_version, endpoint=s.node(first.node),
                                      forward=first.forward(timeout_ms, s.tree_width), timeout=wait)
        except (TransportError, ProtocolError, AuthError):
            codes[first.node] = fanout.SLURM_COMMUNICATIONS_CONNECTION_ERROR
            names = names[1:]
            continue
        got = fanout.node_codes(first, reply)
        codes.update(got)
        lost = fanout.missing(first, got)
        if lost:
            more = yield Parallel(tuple(_hop(state, call, h, timeout_ms) for h in lost))
            for extra in more:
                codes.update(extra)
        break
    return codes
