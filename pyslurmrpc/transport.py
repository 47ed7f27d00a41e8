"""Reading one frame off a connection: the I/O beside the sans-I/O :class:`~pyslurmrpc.wire.Framer`.

Slurm answers every RPC on its own connection with one length-prefixed
frame.  :func:`recv_frame` (a blocking socket) and :func:`read_frame` (an
asyncio stream) read until the Framer has a whole frame and return it; both
return None when the peer closes first, so the caller says what that means
(pass your own Framer to tell "nothing came" from "part of a frame came" by
``framer.pending``).  A length prefix over the Framer's limit raises
:class:`~pyslurmrpc.errors.FrameTooLargeError` as soon as its four bytes are in.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Callable, Optional

from .effects import PeerClosed
from .wire import Framer

#: bytes asked from the socket per read
READ_CHUNK = 65536
#: the smallest socket timeout set when a deadline is near (0 would make the socket non-blocking)
MIN_WAIT = 0.001


def seconds_left(deadline: float) -> float:
    """Seconds before ``deadline`` (a :func:`time.monotonic` time), at least MIN_WAIT: a last look."""
    return max(deadline - time.monotonic(), MIN_WAIT)


def recv_frame(sock: socket.socket, framer: Optional[Framer] = None,
               deadline: Optional[float] = None) -> Optional[bytes]:
    """The first whole frame from ``sock`` (None if the peer closed before one was in).

    ``deadline`` is a :func:`time.monotonic` time bounding the whole read
    (``socket.timeout`` past it); without one the socket's own timeout applies
    to each read.
    """
    framer = framer if framer is not None else Framer()
    frame = None
    while frame is None:
        if deadline is not None:
            sock.settimeout(seconds_left(deadline))
        frame = _advance(framer, sock.recv(READ_CHUNK))
    return frame or None


async def read_frame(reader: asyncio.StreamReader, framer: Optional[Framer] = None) -> Optional[bytes]:
    """The first whole frame on ``reader`` (None if the peer closed before one was in)."""
    framer = framer if framer is not None else Framer()
    frame = None
    while frame is None:
        frame = _advance(framer, await reader.read(READ_CHUNK))
    return frame or None


def _advance(framer: Framer, data: bytes) -> Optional[bytes]:
    """The first frame ``data`` completes, None if more is needed, b"" when ``data`` is EOF."""
    if not data:
        return b""  # never a frame: a frame holds at least its length prefix
    frames = framer.feed(data)
    return frames[0] if frames else None


def next_frame(framer: Framer, data: bytes, clock: Callable[[], float], deadline: float) -> Optional[bytes]:
    """The runners' step of a reply: the first frame ``data`` completes, or None when more must
    come.  ``data`` empty (the peer closed) raises PeerClosed; no frame yet at ``deadline`` (a
    ``clock()`` time) raises TimeoutError, so bytes that keep coming do not stretch a timeout."""
    frame = _advance(framer, data)
    if frame:
        return frame
    if frame is not None:
        raise PeerClosed(bool(framer.pending))
    if clock() >= deadline:
        raise TimeoutError("timed out")
    return None
