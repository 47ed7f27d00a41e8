"""Blocking sockets whose limits are kernel timeouts (SO_SNDTIMEO/SO_RCVTIMEO), for the
blocking runner: no poll() before each send and receive as ``settimeout()`` adds, and no name
lookup for an IPv4 address.  Linux bounds a blocking connect() by SO_SNDTIMEO too.
"""

from __future__ import annotations

import _socket
import socket
import struct
import time

from .effects import PeerClosed
from .transport import READ_CHUNK
from .wire import Framer

TCP_RECV_CHUNK = READ_CHUNK    # a whole reply frame usually arrives in one read

_TIMEVALS: dict[float, bytes] = {}
_IPV4_LITERALS: dict[str, bool] = {}
_MAX_REMEMBERED = 4096     # distinct hosts / timeouts whose conversions are kept


def kernel_timeval(seconds: float) -> bytes:
    """A struct timeval for SO_RCVTIMEO/SO_SNDTIMEO (the configured timeouts are few: kept)."""
    timeval = _TIMEVALS.get(seconds)
    if timeval is None:
        timeval = pack_timeval(seconds)
        if len(_TIMEVALS) < _MAX_REMEMBERED:
            _TIMEVALS[seconds] = timeval
    return timeval


def pack_timeval(seconds: float) -> bytes:
    ms = max(int(seconds * 1000), 1)  # never zero: a zero timeval means wait forever
    return struct.pack("@ll", ms // 1000, ms % 1000 * 1000)


def timeval_left(deadline: float) -> bytes:
    """The socket timeout for what is left before ``deadline``; none left is a timeout."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return pack_timeval(left)


def ipv4_literal(host: str) -> bool:
    known = _IPV4_LITERALS.get(host)
    if known is None:
        try:
            _socket.inet_pton(socket.AF_INET, host)
            known = True
        except (OSError, TypeError):
            known = False
        if len(_IPV4_LITERALS) < _MAX_REMEMBERED:
            _IPV4_LITERALS[host] = known
    return known


def tcp_connect(host: str, port: int, timeout: float):
    """A blocking TCP socket to an IPv4 address; the connect bounded by SO_SNDTIMEO (Linux
    honours it for connect), so no name lookup, no non-blocking connect plus poll()."""
    sock = _socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, kernel_timeval(timeout))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect((host, port))
    except BlockingIOError:          # EINPROGRESS: SO_SNDTIMEO expired during the handshake
        sock.close()
        raise TimeoutError("timed out") from None
    except BaseException:
        sock.close()
        raise
    return TcpStream(sock)


class TcpStream:
    """A blocking TCP socket whose send and receive limits are kernel timeouts (no poll())."""

    __slots__ = ("sock",)

    def __init__(self, sock):
        self.sock = sock

    def close(self) -> None:
        self.sock.close()


def tcp_send_all(sock, data: bytes, timeout: float) -> None:
    """All of ``data`` within ``timeout`` as a whole: SO_SNDTIMEO bounds one send(), so each
    send gets what is left (sendall() would give every partial send the whole timeout, and a
    peer reading slowly could stretch it without end)."""
    try:                              # a request fits a fresh socket's buffer: no wait, no timeout to set
        sent = sock.send(data, socket.MSG_DONTWAIT)
    except BlockingIOError:
        sent = 0
    if sent == len(data):
        return
    deadline = time.monotonic() + timeout
    timeval, view = kernel_timeval(timeout), memoryview(data)[sent:]
    while True:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        try:
            sent = sock.send(view)
        except BlockingIOError:       # SO_SNDTIMEO expired before a byte went out
            raise TimeoutError("timed out") from None
        if sent == len(view):         # a request usually goes out whole, at once
            return
        view = memoryview(view)[sent:]
        timeval = timeval_left(deadline)


def tcp_recv_frame(sock, timeout: float, framer: Framer) -> bytes:
    """One whole frame; each recv bounded by SO_RCVTIMEO set to the time left."""
    deadline = time.monotonic() + timeout
    timeval = kernel_timeval(timeout)
    data = None
    while True:
        if data:                      # Slurm sends the length prefix on its own (slurm_msg_sendto):
            try:                      # the rest is usually there already, with no timeout to set
                data = sock.recv(TCP_RECV_CHUNK, socket.MSG_DONTWAIT)
            except BlockingIOError:
                data = None
        if data is None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
            try:
                data = sock.recv(TCP_RECV_CHUNK)
            except BlockingIOError:   # SO_RCVTIMEO expired
                raise TimeoutError("timed out") from None
        if not data:
            raise PeerClosed(bool(framer.pending))
        frames = framer.feed(data)
        if frames:
            return frames[0]
        timeval = timeval_left(deadline)  # a peer trickling faster than any one wait still ends
