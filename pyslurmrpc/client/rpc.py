"""The building blocks of every client flow: one connection, one exchange, one verified RPC.

Flows here yield pyslurmrpc.effects actions and never touch a socket or the
clock themselves; pyslurmrpc.client.flows builds the operations (detection,
checkpoint calls, ping, fan-out) from them.
"""

from __future__ import annotations

import logging
from typing import Callable

from ..auth.msg_hash import FIRST_HASHED_VERSION, credential_payload, hashes_body
from ..auth.slurm_auth import create_flow, verify_flow
from ..effects import Close, Connect, NOW, PeerClosed, RecvFrame, Send, Sleep, WallClock, deadline_passed, overlapped
from ..errors import (
    AuthError, ConnectionClosedError, ConnectionRefusedTransportError, ConnectTimeoutError, FrameTooLargeError,
    RECEIVE_ERRNO, TimeoutTransportError, TransportError, UnreachableError,
)
from ..wire import Forward, MsgType
from ..wire.codec import encode_body
from ..wire.constants import HTTP_PREFIX
from ..wire.framer import prefix_text
from ..wire.types import describe, fields_text
from . import calls, detect
from .core import (
    FAILOVER_PAUSE, SLURMD_CONNECT_RETRIES, SLURMD_RETRY_PAUSE, Endpoint, Settings, decode_reply, reply_limit,
    request_frame,
)

log = logging.getLogger("pyslurmrpc.rpc")
#: what a reply is given when the send used the whole exchange's time: a last look, no wait
_NO_TIME = 0.001
#: the length prefix the framer reads from an HTTP answer ("HTTP")
_HTTP_LENGTH = int.from_bytes(HTTP_PREFIX, "big")

# ---------------------------------------------------------------------------
# shared mutable state of one client (a flag and a cache, both safe to race on)
# ---------------------------------------------------------------------------
class Verdicts(dict):
    """The controllers' verdicts by :func:`_key`, shared by every call of a client, threads
    included.  Setting one is a dict operation (whole under the GIL); dropping one only if it
    is the one a call read is :meth:`drop_if`."""

    def drop_if(self, key: tuple[str, int], stale: Callable[[detect.Verdict], bool]) -> None:
        """Drop the verdict under ``key`` if ``stale`` says so.  Taken out first and put back
        if not stale, so that a verdict another thread sets meanwhile stays: reading it, then
        popping it, dropped one set in between (no lock: a signal handler's call cannot
        deadlock on it, a forked child inherits none held).  Meanwhile a reader finds none
        and runs detection."""
        verdict = self.pop(key, None)
        if verdict is not None and not stale(verdict):
            self.setdefault(key, verdict)


class State:
    """``auth``: the authenticator (pyslurmrpc.auth.slurm_auth); ``seed``: what libslurm adds
    to the time to spread clients over SlurmctldPort ranges (its pid)."""

    def __init__(self, settings: Settings, auth, seed: int):
        self.settings = settings
        self.auth = auth
        self.seed = seed
        self.use_backup = False
        self.versions = Verdicts()


def _key(endpoint: Endpoint, port: int | None = None) -> tuple[str, int]:
    """The verdict cache's key of ``endpoint`` (at ``port``, one of a SlurmctldPort range)."""
    return (endpoint.host, endpoint.port if port is None else port)


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------
def connect(endpoint: Endpoint, timeout: float):
    """An open TCP connection to ``endpoint``, or the TransportError libslurm would report."""
    try:
        return (yield Connect(endpoint, timeout))
    except OSError as exc:
        error = _connect_error(exc, endpoint)
    log.debug("x %s", error)        # -v: a call that never reached a daemon says why, each try
    raise error


def _connect_error(exc: OSError, endpoint: Endpoint) -> UnreachableError:
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefusedTransportError(f"{endpoint}: connection refused", address=endpoint)
    if isinstance(exc, TimeoutError):
        return ConnectTimeoutError(f"{endpoint}: connect timed out", address=endpoint)
    return UnreachableError(f"{endpoint}: {exc.strerror or exc}", address=endpoint)


def exchange(conn, frame: bytes, timeout: float, endpoint: Endpoint, limit: int | None = None):
    """Send ``frame``, read one whole reply frame of at most ``limit`` bytes, close ``conn``;
    ``timeout`` bounds the two together (the reply gets what the send left)."""
    try:
        end = (yield NOW) + timeout
        yield Send(conn, frame, timeout)
        raw = yield RecvFrame(conn, max(end - (yield NOW), _NO_TIME), limit or reply_limit())
    except Exception as exc:
        yield Close(conn)
        error = _exchange_error(exc, timeout, endpoint)
        if error is exc:
            raise
        raise error from None
    # the reply is whole: close while munged decodes its credential (the next wait). Closing at
    # once cost a ping 22-41 µs more (ABBA runs); libslurm closes after verifying, too
    yield Close(conn, later=True)
    return raw


def _exchange_error(exc: Exception, timeout: float, ep: Endpoint) -> Exception:
    if isinstance(exc, PeerClosed):
        what = "in the middle of a reply" if exc.pending else "without a reply"
        error = ConnectionClosedError(f"{ep} closed the connection {what}", address=ep)
        error.mid_reply = bool(exc.pending)   # a close mid-reply is no refusal (see _exchange_raw)
        return error
    if isinstance(exc, TimeoutError):
        return TimeoutTransportError(f"{ep}: no reply within {timeout:g} s", address=ep)
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return ConnectionClosedError(f"{ep} reset the connection", address=ep)
    if isinstance(exc, OSError):
        return TransportError(f"{ep}: {exc.strerror or exc}", address=ep, slurm_errno=RECEIVE_ERRNO)
    if isinstance(exc, FrameTooLargeError) and hasattr(exc, "length"):   # say whose, and what it is
        error = FrameTooLargeError(f"{ep}: {exc.detail}{prefix_text(exc)}", field=exc.field, offset=exc.offset)
        error.length = exc.length
        return error
    return exc


def connect_slurmd(state: State, endpoint: Endpoint):
    """slurm_send_addr_recv_msgs: only a refused connect is tried again, a second apart."""
    retries = min(int(state.settings.message_timeout), SLURMD_CONNECT_RETRIES)
    for attempt in range(retries + 1):
        if attempt:
            yield Sleep(SLURMD_RETRY_PAUSE)
        try:
            return (yield from connect(endpoint, state.settings.connect_timeout))
        except ConnectionRefusedTransportError:
            if attempt == retries:
                raise


def connect_controller(state: State):
    """Primary, then each backup, in rounds a second apart, bounded by MessageTimeout."""
    s = state.settings
    deadline = (yield NOW) + s.message_timeout
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
        if deadline_passed((yield NOW), deadline, FAILOVER_PAUSE):
            break
        yield Sleep(FAILOVER_PAUSE)
    raise _unreachable(failures)


def _unreachable(failures: dict[str, TransportError]) -> UnreachableError:
    """The error of a call no controller took: refused only when every address refused."""
    tried = "; ".join(map(str, failures.values()))     # each names its controller
    refused = all(type(exc) is ConnectionRefusedTransportError for exc in failures.values())
    cls = ConnectionRefusedTransportError if refused else UnreachableError
    return cls(f"no slurmctld answered ({tried})", failures=failures)


def reach(state: State, endpoint: Endpoint | None, slurmd: bool = False):
    """(endpoint, open connection): the controller that answers (``endpoint`` None), else
    ``endpoint`` itself, tried as libslurm tries a slurmd (``slurmd``) or once."""
    if endpoint is None:
        return (yield from connect_controller(state))
    if slurmd:
        return endpoint, (yield from connect_slurmd(state, endpoint))
    return endpoint, (yield from connect(endpoint, state.settings.connect_timeout))


def _close_reached(reached):
    yield Close(reached[1])


def built_and_reached(state: State, call: calls.Call, version: int, endpoint: Endpoint | None,
                      forward: Forward = Forward(), slurmd: bool = False):
    """((frame, credential), (endpoint, connection)): the connect runs while munged mints the
    credential (libslurm connects, then mints; here the two overlap, and the errors come in
    libslurm's order: a failed connect is the error, the credential given up)."""
    return (yield from overlapped(_frame(state, call, version, forward), reach(state, endpoint, slurmd),
                                  _close_reached))


def _frame(state: State, call: calls.Call, version: int, forward: Forward = Forward(), end: float | None = None):
    """The request frame in ``version`` and the credential it carries (a future label is relabelled);
    ``end``: the runner's time the credential must be had by (None: the authenticator's own budget)."""
    built = detect.wire_version(version)       # the newest layout for a version past the table
    if built < FIRST_HASHED_VERSION and call.msg_type == MsgType.REQUEST_PING:
        # a ping may reach a 20.11/21.08 controller that takes this version but refuses an
        # empty payload (block_null_hash, _check_hash); 17.11-19.05 ignore the payload
        body, payload = None, credential_payload(FIRST_HASHED_VERSION, call.msg_type, b"")
    elif built < FIRST_HASHED_VERSION:
        body, payload = None, b""
    elif hashes_body(built):  # 22.05+: the payload is the body's hash; the body is encoded once, for both
        body = encode_body(built, call.msg_type, call.body)
        payload = credential_payload(built, call.msg_type, body)
    else:  # 20.11, 21.08: the message type alone
        body, payload = None, credential_payload(built, call.msg_type, b"")
    cred = yield from create_flow(state.auth, built, payload, end)
    frame = request_frame(call, cred, built, forward, body)
    return (frame if built == version else detect.relabel(frame, version)), cred


def _check_reply_auth(state: State, reply, sent_cred, end: float | None = None):
    """A reply's credential must verify (by ``end``, see :func:`_frame`) and must not be our own
    request's, reflected."""
    if reply.auth is None:      # 23.02+ replies carry none (SLURM_NO_AUTH_CRED)
        return
    mine = getattr(sent_cred, "credential", None)    # auth/none has no secret to reflect
    if mine and getattr(reply.auth, "credential", None) == mine:
        raise AuthError("the reply carries the request's own credential (reflected)",
                        code=detect.AUTH_ERROR)
    yield from verify_flow(state.auth, reply.auth, reply.version, end)


def rpc(state: State, call: calls.Call, version: int, endpoint: Endpoint | None = None,
        forward: Forward = Forward(), timeout: float | None = None, slurmd: bool = False):
    """One request and its verified reply; returns (endpoint, reply Message).

    A failure drops the credentials the authenticator minted ahead (auth/premint.py).
    """
    try:
        return (yield from _rpc(state, call, version, endpoint, forward, timeout, slurmd))
    except Exception:
        drop = getattr(state.auth, "drop_minted", None)
        if drop is not None:
            drop()
        raise


def _rpc(state: State, call: calls.Call, version: int, endpoint: Endpoint | None,
         forward: Forward, timeout: float | None, slurmd: bool):
    (frame, cred), (endpoint, conn) = yield from built_and_reached(state, call, version, endpoint, forward,
                                                                   slurmd)
    if log.isEnabledFor(logging.DEBUG):
        _log_request(endpoint, call, version)
    raw = yield from exchange(conn, frame, timeout or state.settings.message_timeout, endpoint,
                              reply_limit(forward.cnt))
    reply = decode_reply(call, raw, version)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("<- %s %s", endpoint, describe(reply))
    yield from _check_reply_auth(state, reply, cred)
    return endpoint, reply

def _log_request(endpoint: Endpoint, call: calls.Call, version: int) -> None:
    fields = fields_text(call.body)   # a ping has none
    name = detect.release_name(version)      # "26.05", or "newer than 26.05, protocol 0x2e00"
    label = f"v{name}" if name[:1].isdigit() else f"({name})"
    log.debug("-> %s %s %s%s", endpoint, call.msg_type.name, label, f" {fields}" if fields else "")
