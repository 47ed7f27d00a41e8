"""pyslurmrpc.transport: the one frame reader (blocking socket and asyncio stream) beside the Framer."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from pyslurmrpc.effects import PeerClosed
from pyslurmrpc.errors import FrameTooLargeError
from pyslurmrpc.transport import next_frame, read_frame, recv_frame
from pyslurmrpc.wire import Framer

FRAME = (5).to_bytes(4, "big") + b"hello"


def _send_slowly(sock: socket.socket, data: bytes, close: bool = True, pause: float = 0.001) -> threading.Thread:
    def run():
        for i in range(len(data)):  # one byte per segment: every split of the prefix and body
            sock.sendall(data[i:i + 1])
            time.sleep(pause)
        if close:
            sock.shutdown(socket.SHUT_WR)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_recv_frame_collects_a_frame_sent_byte_by_byte():
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(5)
        thread = _send_slowly(a, FRAME)
        assert recv_frame(b) == FRAME
        thread.join(5)


def test_recv_frame_none_on_close_and_pending_tells_a_partial_frame():
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(5)
        a.sendall(FRAME[:6])
        a.shutdown(socket.SHUT_WR)
        framer = Framer()
        assert recv_frame(b, framer) is None
        assert framer.pending == 6
    a, b = socket.socketpair()
    with a, b:
        a.close()
        assert recv_frame(b) is None


def test_recv_frame_refuses_an_oversized_prefix_at_once():
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(5)
        a.sendall(b"\x7f\xff\xff\xff")  # nothing follows: the prefix alone must be refused
        with pytest.raises(FrameTooLargeError):
            recv_frame(b)


def test_recv_frame_deadline_bounds_the_whole_read():
    a, b = socket.socketpair()
    with a, b:
        # a 256-byte frame of which 50 bytes trickle in over half a second
        thread = _send_slowly(a, (256).to_bytes(4, "big") + bytes(50), close=False, pause=0.01)
        start = time.monotonic()
        with pytest.raises(socket.timeout):
            recv_frame(b, deadline=start + 0.2)
        assert time.monotonic() - start < 1.0
        thread.join(5)


async def test_read_frame_from_a_stream():
    reader = asyncio.StreamReader()
    for i in range(len(FRAME)):
        reader.feed_data(FRAME[i:i + 1])
    assert await read_frame(reader) == FRAME
    partial = asyncio.StreamReader()
    partial.feed_data(FRAME[:7])
    partial.feed_eof()
    framer = Framer()
    assert await read_frame(partial, framer) is None and framer.pending == 7
    huge = asyncio.StreamReader()
    huge.feed_data(b"\xff\xff\xff\xff")
    with pytest.raises(FrameTooLargeError):
        await read_frame(huge)


def test_next_frame_the_runners_step_of_a_reply():
    """What both runners do with each read: a frame when one is whole, None while more must
    come, the peer's close (saying whether part of a frame had come), and the deadline."""
    clock = iter([0.5, 1.5]).__next__
    framer = Framer()
    assert next_frame(framer, FRAME[:3], clock, 1.0) is None           # before the deadline: wait on
    with pytest.raises(TimeoutError):
        next_frame(framer, FRAME[3:6], clock, 1.0)                     # bytes came, but too late
    assert next_frame(Framer(), FRAME + FRAME[:2], lambda: 9.0, 1.0) == FRAME   # whole: no clock
    with pytest.raises(PeerClosed) as closed:
        next_frame(framer, b"", lambda: 0.0, 1.0)
    assert closed.value.pending is True
    with pytest.raises(PeerClosed) as closed:
        next_frame(Framer(), b"", lambda: 0.0, 1.0)
    assert closed.value.pending is False
