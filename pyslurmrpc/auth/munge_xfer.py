"""Sans-I/O driver of one munged transaction, with libmunge's retry rules.

:func:`transaction` is a flow (:mod:`pyslurmrpc.effects`): it asks for I/O
by yielding actions and gets each result back, or the ``OSError`` thrown in.
Either runner (:mod:`pyslurmrpc.runners`) performs them, so both share every
rule below, taken from ``m_msg_client_xfer`` and ``_m_msg_client_connect`` in
MUNGE's src/libmunge/m_msg_client.c:

* connect: the path must exist and be a socket; ``ECONNREFUSED`` (listen
  queue full, or nobody listening) is retried up to 10 times, sleeping
  50 ms x attempt; other connect errors fail at once.  A failed connect is
  not retried by the outer loop.
* transaction: a failure while sending or receiving is retried up to 5
  attempts in all, sleeping 10 ms x attempt, on a fresh connection whose
  header carries ``retry = attempt - 1`` (munged then lets a replayed decode
  through).  An over-long message (``EMUNGE_BAD_LENGTH``) is never retried.

libmunge stat()s the path before connecting; here the stat follows the first
refused connect (the hot path saves a system call), so a path that is no socket
still fails at once instead of spending the connect retries.

``deadline`` (monotonic seconds; None: libmunge's own limits only) is the end of
the caller's time: every connect, read, write and pause is cut to fit before it,
and a retry that could not finish in time is not started - the failure is raised
then, naming the socket path and saying the time ran out.
"""

from __future__ import annotations

import errno as _errno
import functools
import os
import stat as _stat
from dataclasses import dataclass
from typing import Optional

from ..effects import Close, Connect, Exchange, ExchangeFailed, Flow, NOW, Sleep, Stat, Transact, deadline_passed
from .errors import MungeError, MungeOutOfTimeError, MungeSocketError, munge_error
from .munge_constants import (
    MAX_RESPONSE_LEN, MSG_HDR_SIZE, SOCKET_CONNECT_ATTEMPTS, SOCKET_CONNECT_RETRY_MS,
    SOCKET_RETRY_ATTEMPTS, SOCKET_RETRY_MS, SOCKET_TIMEOUT_MS, MsgType, MungeErr,
)
from .munge_proto import build_request, unpack_header

#: sun_path is 108 bytes on Linux, NUL included
SUN_PATH_MAX = 108

RESPONSE_TYPE = {MsgType.ENC_REQ: MsgType.ENC_RSP, MsgType.DEC_REQ: MsgType.DEC_RSP}


@dataclass(frozen=True)
class RetryPolicy:
    """libmunge's retry limits (munge_defs.h); tests may shrink them."""

    connect_attempts: int = SOCKET_CONNECT_ATTEMPTS
    connect_backoff_ms: int = SOCKET_CONNECT_RETRY_MS
    xfer_attempts: int = SOCKET_RETRY_ATTEMPTS
    xfer_backoff_ms: int = SOCKET_RETRY_MS
    timeout_ms: int = SOCKET_TIMEOUT_MS


LIBMUNGE_RETRY = RetryPolicy()
#: socket names whose checks are remembered
_PATHS_KEPT = 32


def _os_failure(what: str, err: OSError) -> MungeError:
    reason = "Timed-out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
    os_errno = _errno.ETIMEDOUT if isinstance(err, TimeoutError) else err.errno
    return munge_error(MungeErr.SOCKET, f"{what}: {reason}", os_errno=os_errno)


#: what a failure says when no further try fitted in the caller's time
OUT_OF_TIME = "no time left to try again within the call's time limit"


def out_of_time(err: MungeError) -> MungeError:
    """``err`` (the last failure), saying that no further try fitted in the caller's time."""
    if OUT_OF_TIME in err.text:          # said once, by whichever retry loop stopped first
        return err
    return munge_error(err.code, f"{err.text} ({OUT_OF_TIME})", os_errno=err.os_errno)


def _seconds(seconds: float, deadline: Optional[float], now: Optional[float], path: str,
             failed: Optional[MungeError] = None) -> float:
    """``seconds``, cut to what is left before ``deadline`` at ``now`` (read only when there is a
    deadline: ``None if deadline is None else (yield NOW)``); none left is a MUNGE socket timeout:
    the caller's time spent before munged was asked, or after munged ``failed`` (its failure)."""
    if deadline is None:    # the hot path does not call: ``wait if deadline is None else ...``
        return seconds
    left = deadline - now
    if left <= 0:
        if failed is not None:
            raise out_of_time(failed)
        raise MungeOutOfTimeError(f'No time left for "{path}" within the call\'s time limit',
                                  code=MungeErr.SOCKET, os_errno=_errno.ETIMEDOUT)
    return min(seconds, left)


def _diagnose(path: str) -> Flow:
    """libmunge's checks of the path: it must exist and be a socket (MungeError otherwise)."""
    try:
        mode = yield Stat(path)
    except OSError as err:
        raise munge_error(MungeErr.SOCKET, f'Failed to access "{path}": {err.strerror} '
                          "(Did you start munged?)", os_errno=err.errno) from None
    if not _stat.S_ISSOCK(mode):
        raise munge_error(MungeErr.SOCKET, f'Invalid file type for socket "{path}"',
                          os_errno=_errno.ENOTSOCK)


def _connect_again(path: str, policy: RetryPolicy, deadline: Optional[float], failure: OSError) -> Flow:
    """After the first connect failed with ``failure``: a refused one is tried again as libmunge
    does (its attempts and backoff), anything else diagnosed; an open connection or the MungeError."""
    attempt = 1
    while failure.errno == _errno.ECONNREFUSED:
        if attempt == 1:
            yield from _diagnose(path)     # a regular file refuses too: no retries for it
        error = _os_failure(f'Failed to connect to "{path}"', failure)
        pause = attempt * policy.connect_backoff_ms / 1000
        if attempt >= policy.connect_attempts:
            raise error
        if deadline_passed((yield NOW), deadline, pause):
            raise out_of_time(error)
        yield Sleep(pause)
        attempt += 1
        now = None if deadline is None else (yield NOW)
        try:
            return (yield Connect(path, _seconds(policy.timeout_ms / 1000, deadline, now, path, error)))
        except OSError as err:
            failure = err
    yield from _diagnose(path)
    raise _os_failure(f'Failed to connect to "{path}"', failure)


#: what a failed Exchange step means, as libmunge words it (m_msg_send / m_msg_recv)
_STEP_FAILURE = {"send": "Failed to send message", "header": "Failed to receive message header",
                 "body": "Failed to receive message body"}


#: each response type's Exchange ``body_size``: its header checked as libmunge's m_msg_recv does
_BODY_SIZE = {rsp: (lambda header, rsp=rsp: unpack_header(header, rsp, MAX_RESPONSE_LEN)[2])
              for rsp in RESPONSE_TYPE.values()}


@functools.lru_cache(maxsize=_PATHS_KEPT)
def _path_fits(path: Optional[str]) -> bool:
    """Whether the socket's name fits sun_path; an undefined name raises (every call passes here:
    an answer is remembered, a refusal is not)."""
    if not path:
        raise munge_error(MungeErr.SOCKET, "MUNGE socket name is undefined")
    return len(os.fsencode(path)) < SUN_PATH_MAX


def _too_long(path: str) -> Flow:
    """A name longer than sun_path, refused as libmunge refuses it: after its stat(), so that a
    missing path or one that is no socket says that first (``_m_msg_client_connect``)."""
    yield from _diagnose(path)
    raise munge_error(MungeErr.OVERFLOW, f"Exceeded maximum length of {SUN_PATH_MAX} bytes for socket pathname")


def first_transact(path: Optional[str], req_type: int, body: bytes,
                   policy: RetryPolicy = LIBMUNGE_RETRY) -> Optional[Transact]:
    """The Transact of a transaction's first attempt with no deadline, after the checks made
    before any I/O (an undefined socket name, an over-long request: raised here as the flow
    raises them); None for a name too long to connect to (the flow says what is wrong with it).

    A blocking client performs it at once, with no runner between (the runner and flow layers
    cost about 5 µs per call: 4-7% of a MUNGE encode or decode in an A/B run), and hands
    :func:`transaction` its outcome (``first``) only when it is not the usual whole answer.
    """
    if not _path_fits(path):
        return None
    return Transact(path, build_request(req_type, body), MSG_HDR_SIZE, _BODY_SIZE[RESPONSE_TYPE[req_type]],
                    policy.timeout_ms / 1000)


def transaction(path: Optional[str], req_type: int, body: bytes,
                policy: RetryPolicy = LIBMUNGE_RETRY, deadline: Optional[float] = None,
                first: "tuple[int, bytes] | BaseException | None" = None) -> Flow:
    """One request/response exchange with munged (a flow); returns the response body.

    ``deadline``: monotonic time by which it succeeds or fails (None: libmunge's limits only).
    ``first``: the outcome of the first attempt's :func:`first_transact`, already performed by
    the caller (its result, or the exception it raised); the flow goes on from there.  Only
    for a transaction with no deadline (first_transact's attempt has none to keep).
    """
    if first is not None and deadline is not None:
        raise ValueError("a first attempt made outside the flow had no deadline to keep: give one or the other")
    if not _path_fits(path):
        yield from _too_long(path)
    body_size = _BODY_SIZE[RESPONSE_TYPE[req_type]]
    request = build_request(req_type, body)  # also the length check, before any I/O
    wait = policy.timeout_ms / 1000
    attempt, failed = 1, None
    while True:    # one action per attempt: every call's credential passes here twice
        if first is None:
            seconds = wait if deadline is None else _seconds(wait, deadline, (yield NOW), path, failed)
        try:
            if first is None:
                size, reply = yield Transact(path, request, MSG_HDR_SIZE, body_size, seconds)
            else:
                size, reply = _outcome(first)
        except OSError as err:           # the connect failed; nothing is open
            conn = yield from _connect_again(path, policy, deadline, err)   # its failure is final
            refused = _os_failure(f'Failed to connect to "{path}"', err)
            outcome = yield from _exchange_on(conn, path, request, body_size, wait, deadline, refused)
        except (ExchangeFailed, MungeError) as err:   # a MungeError: the answer's header refused
            outcome = _failure(path, err)
        else:
            outcome = _short(reply, size)
        finally:
            first = None
        if not isinstance(outcome, MungeError):
            return outcome               # the response body
        if outcome.code == MungeErr.BAD_LENGTH or attempt >= policy.xfer_attempts:
            raise outcome
        pause = attempt * policy.xfer_backoff_ms / 1000
        if deadline_passed((yield NOW), deadline, pause):
            raise out_of_time(outcome) from None
        yield Sleep(pause)
        attempt, failed = attempt + 1, outcome
        request = build_request(req_type, body, attempt - 1)


def _outcome(first: "tuple[int, bytes] | BaseException") -> tuple[int, bytes]:
    """A first attempt's result (size, reply), or its exception raised again here."""
    if isinstance(first, BaseException):
        raise first
    return first


def _exchange_on(conn, path: str, request: bytes, body_size, wait: float, deadline: Optional[float],
                 refused: MungeError) -> Flow:
    """The rest of an attempt whose connect was tried again (after ``refused``): its Exchange on
    ``conn``, then the close; the response body, or the MungeError the attempt failed with."""
    try:
        seconds = wait if deadline is None else _seconds(wait, deadline, (yield NOW), path, refused)
        size, reply = yield Exchange(conn, request, MSG_HDR_SIZE, body_size, seconds)
    except (ExchangeFailed, MungeError) as err:
        outcome = _failure(path, err)
    else:
        outcome = _short(reply, size)
    yield Close(conn)
    return outcome


def _failure(path: str, err: ExchangeFailed | MungeError) -> MungeError:
    """An attempt's failure as the MungeError libmunge words it (a failed step names it)."""
    if isinstance(err, ExchangeFailed):
        return _os_failure(f'{_STEP_FAILURE[err.step]} on "{path}"', err.error)
    return err


def _short(reply: bytes, size: int):
    """``reply``, or the MungeError of a body cut short (the peer closed first)."""
    if len(reply) == size:
        return reply
    return MungeSocketError(f"Received incomplete message body: {len(reply)} of {size} bytes")
