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
"""

from __future__ import annotations

import errno as _errno
import os
import stat as _stat
from dataclasses import dataclass
from typing import Optional

from ..effects import Close, Connect, Flow, Now, Recv, Send, Sleep, Stat
from .errors import MungeError, MungeSocketError, munge_error
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


def _os_failure(what: str, err: OSError) -> MungeError:
    reason = "Timed-out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
    os_errno = _errno.ETIMEDOUT if isinstance(err, TimeoutError) else err.errno
    return munge_error(MungeErr.SOCKET, f"{what}: {reason}", os_errno=os_errno)


def _connect(path: str, policy: RetryPolicy) -> Flow:
    """An open connection to munged, or the MungeError libmunge would report."""
    timeout, attempt = policy.timeout_ms / 1000, 1
    while True:
        try:
            return (yield Connect(path, timeout))
        except OSError as err:
            failure = err
        if failure.errno != _errno.ECONNREFUSED or attempt >= policy.connect_attempts:
            break
        yield Sleep(attempt * policy.connect_backoff_ms / 1000)
        attempt += 1
    # libmunge stat()s before connecting; asking only after a failure saves a
    # system call on the hot path and still yields the same diagnosis.
    try:
        mode = yield Stat(path)
    except OSError as err:
        raise munge_error(MungeErr.SOCKET, f'Failed to access "{path}": {err.strerror} '
                          "(Did you start munged?)", os_errno=err.errno) from None
    if not _stat.S_ISSOCK(mode):
        raise munge_error(MungeErr.SOCKET, f'Invalid file type for socket "{path}"',
                          os_errno=_errno.ENOTSOCK)
    raise _os_failure(f'Failed to connect to "{path}"', failure)


def _left(deadline: float, now: float) -> float:
    """Seconds left before ``deadline``; none left is a timeout like the kernel's."""
    if now >= deadline:
        raise TimeoutError("Timed-out")
    return deadline - now


def _exchange(conn, request: bytes, rsp_type: int, timeout: float) -> Flow:
    """Send one request on the open connection and return the response body.

    ``timeout`` bounds the whole exchange, as libmunge's fd_timed_read_n bounds
    a whole message: a munged that trickles a byte at a time still fails on time
    (each action gets what is left; the runner bounds each action as a whole).
    """
    what = "Failed to send message"
    try:
        deadline = (yield Now()) + timeout
        yield Send(conn, request, timeout)
        what = "Failed to receive message header"
        hdr = yield Recv(conn, MSG_HDR_SIZE, _left(deadline, (yield Now())))
        _, _, size = unpack_header(hdr, rsp_type, MAX_RESPONSE_LEN)
        what = "Failed to receive message body"
        body = yield Recv(conn, size, _left(deadline, (yield Now())))
    except OSError as err:
        raise _os_failure(what, err) from None
    if len(body) != size:
        raise MungeSocketError(f"Received incomplete message body: {len(body)} of {size} bytes")
    return body


def transaction(path: Optional[str], req_type: int, body: bytes,
                policy: RetryPolicy = LIBMUNGE_RETRY) -> Flow:
    """One request/response exchange with munged (a flow); returns the response body."""
    if not path:
        raise munge_error(MungeErr.SOCKET, "MUNGE socket name is undefined")
    if len(os.fsencode(path)) >= SUN_PATH_MAX:
        raise munge_error(MungeErr.OVERFLOW,
                          f"Exceeded maximum length of {SUN_PATH_MAX} bytes for socket pathname")
    rsp_type = RESPONSE_TYPE[req_type]
    request = build_request(req_type, body)  # also the length check, before any I/O
    timeout, attempt = policy.timeout_ms / 1000, 1
    while True:
        conn = yield from _connect(path, policy)
        try:
            reply = yield from _exchange(conn, request, rsp_type, timeout)
        except MungeError as err:
            yield Close(conn)
            if err.code == MungeErr.BAD_LENGTH or attempt >= policy.xfer_attempts:
                raise
        else:
            yield Close(conn)
            return reply
        yield Sleep(attempt * policy.xfer_backoff_ms / 1000)
        attempt += 1
        request = build_request(req_type, body, attempt - 1)
