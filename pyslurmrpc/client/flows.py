"""Every client operation written once, as a generator of I/O actions (sans-I/O).

A flow yields small action objects (connect, exchange a frame, sleep, make or
check a credential, run flows side by side) and gets back their results; the
blocking client (sync.py) and the asyncio client (aio.py) are two runners of
the same flows.  The decisions - failover order, version detection, the
checkpoint_tasks fan-out, how replies become results - live here only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    AuthError, CheckpointUnsupported, ConnectionClosedError, ConnectionRefusedTransportError,
    InvalidArgumentError, NoVersionAnsweredError, ProtocolError, PyslurmrpcError, SlurmError, TransportError,
)
from ..hostlist import HostlistError, uniq
from ..wire import Forward, MsgType
from ..auth.msg_hash import FIRST_HASHED_VERSION, credential_payload
from ..wire.codec import encode_body
from ..wire.types import describe
from . import calls, detect, fanout
from .core import CHECKPOINT_CODES, FAILOVER_PAUSE, Endpoint, Settings, decode_reply, request_frame


log = logging.getLogger("pyslurmrpc.rpc")

# ---------------------------------------------------------------------------
# actions
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Connect:
    endpoint: Endpoint
    timeout: float


@dataclass(frozen=True)
class Exchange:
    """Send ``frame`` on ``conn``, read one whole reply frame, close ``conn``."""

    conn: Any
    frame: bytes = field(repr=False)
    timeout: float
    endpoint: Endpoint


@dataclass(frozen=True)
class Close:
    conn: Any


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class CreateCred:
    version: int
    payload: bytes = b""


@dataclass(frozen=True)
class VerifyCred:
    auth: Any = field(repr=False)
    version: int


@dataclass(frozen=True)
class Parallel:
    """Run several flows side by side; the result is the list of their results."""

    flows: tuple


# ---------------------------------------------------------------------------
# shared mutable state of one client (a flag and a cache, both safe to race on)
# ---------------------------------------------------------------------------
class State:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.use_backup = False
        self.versions: dict[tuple[str, int], int] = {}


def _key(endpoint: Endpoint) -> tuple[str, int]:
    return (endpoint.host, endpoint.port)


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------
def connect_controller(state: State):
    """Primary, then each backup, in rounds a second apart, bounded by MessageTimeout."""
    s = state.settings
    deadline = time.monotonic() + s.message_timeout
    failures: dict[str, Exception] = {}
    while True:
        for endpoint in s.controller_order(state.use_backup):
            try:
                conn = yield Connect(endpoint, s.connect_timeout)
            except TransportError as exc:
                failures[str(endpoint)] = exc
                continue
            state.use_backup = endpoint.index != 0
            return endpoint, conn
        state.use_backup = False
        if time.monotonic() + FAILOVER_PAUSE >= deadline:
            break
        yield Sleep(FAILOVER_PAUSE)
    tried = "; ".join(f"{ep}: {exc}" for ep, exc in failures.items())
    raise ConnectionRefusedTransportError(f"no slurmctld answered ({tried})")


def rpc(state: State, call: calls.Call, version: int, endpoint: Endpoint | None = None,
        forward: Forward = Forward(), timeout: float | None = None):
    """One request and its verified reply; returns (endpoint, reply Message)."""
    cred = yield CreateCred(version, _payload(call, version))
    frame = request_frame(call, cred, version, forward)
    if endpoint is None:
        endpoint, conn = yield from connect_controller(state)
    else:
        conn = yield Connect(endpoint, state.settings.connect_timeout)
    cached = state.versions.get(_key(endpoint))
    if version in CHECKPOINT_CODES and call.msg_type != MsgType.REQUEST_PING and cached and \
            not detect.has_checkpoint(cached):
        yield Close(conn)
        raise CheckpointUnsupported(str(endpoint), detect.release_name(cached))
    if log.isEnabledFor(logging.DEBUG):
        log.debug("-> %s %s", endpoint, describe(decode_reply(call, frame, version)))
    raw = yield Exchange(conn, frame, timeout or state.settings.message_timeout, endpoint)
    reply = decode_reply(call, raw, version)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("<- %s %s", endpoint, describe(reply))
    if reply.auth is not None:  # 23.02+ replies may carry none (SLURM_NO_AUTH_CRED)
        yield VerifyCred(reply.auth, reply.version)
    return endpoint, reply


def _payload(call: calls.Call, version: int) -> bytes:
    """The message hash libslurm 22.05+ puts in the credential (nothing for older headers)."""
    if version < FIRST_HASHED_VERSION:
        return b""
    return credential_payload(version, call.msg_type, encode_body(version, call.msg_type, call.body))


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
