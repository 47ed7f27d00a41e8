"""The blocking runner's sockets and how it waits on them: every wait after a connect is one
poll() bounded by the time left (:func:`wait_ready`), as libmunge's are (``fd_timed_read_n``,
src/libcommon/fd.c), rather than a blocking call bounded by SO_RCVTIMEO/SO_SNDTIMEO: no more
system calls (a poll where a setsockopt was), and the answer's wake-up came sooner (README,
Benchmarks).  munged's UNIX sockets are non-blocking; a TCP socket blocks only in its
connect(), and needs no name lookup for an IPv4 address.
"""

from __future__ import annotations

import _socket
import math
import select
import socket
import struct
import time

from .transport import READ_CHUNK, next_frame
from .wire import Framer
from .wire.constants import C_INT_MAX

TCP_RECV_CHUNK = READ_CHUNK    # a whole reply frame usually arrives in one read

_TIMEVALS: dict[float, bytes] = {}
_IPV4_LITERALS: dict[str, bool] = {}
_MAX_REMEMBERED = 4096     # distinct hosts / timeouts whose conversions are kept
#: the sockets of both runners: the C socket type (no Python wrapper to build and close), made
#: non-blocking by socket() itself (no setblocking call)
NONBLOCKING_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK


def kernel_timeval(seconds: float) -> bytes:
    """A struct timeval for SO_SNDTIMEO (the configured timeouts are few: kept)."""
    timeval = _TIMEVALS.get(seconds)
    if timeval is None:
        timeval = pack_timeval(seconds)
        if len(_TIMEVALS) < _MAX_REMEMBERED:
            _TIMEVALS[seconds] = timeval
    return timeval


def pack_timeval(seconds: float) -> bytes:
    ms = max(int(seconds * 1000), 1)  # never zero: a zero timeval means wait forever
    return struct.pack("@ll", ms // 1000, ms % 1000 * 1000)


#: poll()'s longest wait in milliseconds (a C int)
_POLL_MS_MAX = C_INT_MAX
POLLIN, POLLOUT = select.POLLIN, select.POLLOUT


def wait_ready(sock, events: int, deadline: float) -> None:
    """Wait until ``sock`` is ready for ``events`` (POLLIN or POLLOUT; an error or a hang-up
    counts as ready); TimeoutError when ``deadline`` (monotonic seconds) comes first."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    poller = select.poll()
    poller.register(sock, events)
    if not poller.poll(min(math.ceil(left * 1000), _POLL_MS_MAX)):
        raise TimeoutError("timed out")


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


def tcp_connect(host: str, port: int, timeout: float) -> "TcpStream":
    """A TCP connection to an IPv4 address (no name lookup).  Its connect() blocks, bounded by
    SO_SNDTIMEO (Linux honours it for connect): a non-blocking one answers EINPROGRESS even on
    loopback, and poll() plus getsockopt() after it are one system call more."""
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
    """A TCP socket of the blocking runner: it blocks only in connect(); every later step sends
    or reads with MSG_DONTWAIT and waits in poll() (:func:`wait_ready`)."""

    __slots__ = ("sock",)

    def __init__(self, sock):
        self.sock = sock

    def close(self) -> None:
        self.sock.close()


def send_within(sock, data: bytes, timeout: float, sent: int = 0) -> int:
    """The rest of ``data`` from byte ``sent`` on, all of it within ``timeout`` (a peer reading
    slowly cannot stretch it); returns len(data).  A request fits a fresh socket's buffer, so
    the first send usually takes all of it and nothing waits."""
    deadline = None
    while sent < len(data):
        try:
            sent += sock.send(memoryview(data)[sent:] if sent else data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            if deadline is None:
                deadline = time.monotonic() + timeout
            wait_ready(sock, POLLOUT, deadline)
    return sent


def tcp_recv_frame(sock, timeout: float, framer: Framer) -> bytes:
    """One whole frame within ``timeout``, however its bytes trickle in."""
    deadline = time.monotonic() + timeout
    data = None
    while True:
        if not data:                  # a reply is never there at once: wait first
            wait_ready(sock, POLLIN, deadline)
        try:                          # Slurm sends the length prefix on its own (slurm_msg_sendto):
            data = sock.recv(TCP_RECV_CHUNK, socket.MSG_DONTWAIT)   # the rest is usually there already
        except BlockingIOError:
            data = None
            continue
        frame = next_frame(framer, data, time.monotonic, deadline)
        if frame is not None:
            return frame
