"""Sans-I/O driver of one munged transaction, with libmunge's retry rules.

:func:`transaction` is a generator that *asks* for I/O by yielding small
action objects and receives each result (bytes, an ``os.stat`` mode, None or
the ``OSError`` that happened) through ``send``.  The sync and asyncio
transports in :mod:`.munge` only perform those actions, so both share every
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
from typing import Generator, Optional, Union

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


# Actions a transport performs; ``kind`` names the transport method.  Plain
# slotted classes: cheaper to create than frozen dataclasses on the hot path.
class _Action:
    __slots__ = ("arg",)
    kind = ""

    def __init__(self, arg):
        self.arg = arg

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.arg!r})"


class Stat(_Action):
    """arg: path -> st_mode or OSError."""
    kind = "stat"


class Connect(_Action):
    """arg: path -> None or OSError (the transport drops any previous socket)."""
    kind = "connect"


class Send(_Action):
    """arg: bytes -> None or OSError."""
    kind = "send"


class Recv(_Action):
    """arg: size -> exactly that many bytes, fewer at EOF, or OSError."""
    kind = "recv"


class Sleep(_Action):
    """arg: seconds -> None."""
    kind = "sleep"


Action = Union[Stat, Connect, Send, Recv, Sleep]
Result = Union[None, int, bytes, OSError]


def _os_failure(what: str, err: OSError) -> MungeError:
    reason = "Timed-out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
    os_errno = _errno.ETIMEDOUT if isinstance(err, TimeoutError) else err.errno
    return munge_error(MungeErr.SOCKET, f"{what}: {reason}", os_errno=os_errno)


def _connect(path: str, policy: RetryPolicy) -> Generator[Action, Result, None]:
    attempt = 1
    while True:
        err = yield Connect(path)
        if err is None:
            return
        if err.errno != _errno.ECONNREFUSED or attempt >= policy.connect_attempts:
            break
        yield Sleep(attempt * policy.connect_backoff_ms / 1000)
        attempt += 1
    # libmunge stat()s before connecting; asking only after a failure saves a
    # system call on the hot path and still yields the same diagnosis.
    mode = yield Stat(path)
    if isinstance(mode, OSError):
        raise munge_error(MungeErr.SOCKET, f'Failed to access "{path}": {mode.strerror} '
                          "(Did you start munged?)", os_errno=mode.errno)
    if not _stat.S_ISSOCK(mode):
        raise munge_error(MungeErr.SOCKET, f'Invalid file type for socket "{path}"',
                          os_errno=_errno.ENOTSOCK)
    raise _os_failure(f'Failed to connect to "{path}"', err)


def _exchange(request: bytes, rsp_type: int) -> Generator[Action, Result, bytes]:
    """Send one request on the open connection and return the response body."""
    err = yield Send(request)
    if err is not None:
        raise _os_failure("Failed to send message", err)
    hdr = yield Recv(MSG_HDR_SIZE)
    if isinstance(hdr, OSError):
        raise _os_failure("Failed to receive message header", hdr)
    _, _, size = unpack_header(hdr, rsp_type, MAX_RESPONSE_LEN)
    body = yield Recv(size)
    if isinstance(body, OSError):
        raise _os_failure("Failed to receive message body", body)
    if len(body) != size:
        raise MungeSocketError(f"Received incomplete message body: {len(body)} of {size} bytes")
    return body


def transaction(path: Optional[str], req_type: int, body: bytes,
                policy: RetryPolicy = LIBMUNGE_RETRY) -> Generator[Action, Result, bytes]:
    """Drive one request/response exchange with munged; returns the response body."""
    if not path:
        raise munge_error(MungeErr.SOCKET, "MUNGE socket name is undefined")
    if len(os.fsencode(path)) >= SUN_PATH_MAX:
        raise munge_error(MungeErr.OVERFLOW,
                          f"Exceeded maximum length of {SUN_PATH_MAX} bytes for socket pathname")
    rsp_type = RESPONSE_TYPE[req_type]
    request = build_request(req_type, body)  # also the length check, before any I/O
    attempt = 1
    while True:
        yield from _connect(path, policy)
        try:
            return (yield from _exchange(request, rsp_type))
        except MungeError as err:
            if err.code == MungeErr.BAD_LENGTH or attempt >= policy.xfer_attempts:
                raise
        yield Sleep(attempt * policy.xfer_backoff_ms / 1000)
        attempt += 1
        request = build_request(req_type, body, attempt - 1)
