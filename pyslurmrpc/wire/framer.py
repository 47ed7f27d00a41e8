"""Incremental framing: bytes in any chunking in, whole frames out (no I/O).

Slurm frames every message with a 4-byte big-endian length prefix
(src/common/slurm_protocol_socket.c slurm_msg_sendto / slurm_msg_recvfrom_timeout).
The prefix is checked against the limit as soon as its 4 bytes are in, so a
hostile prefix is refused before anything is buffered for it.
"""

from __future__ import annotations

from ..errors import FrameTooLargeError, TruncatedError
from .constants import LENGTH_PREFIX_SIZE, MAX_MSG_SIZE


class Framer:
    """Collects bytes and yields complete frames (length prefix included).

    >>> f = Framer()
    >>> f.feed(b"\\x00\\x00\\x00\\x01")
    []
    >>> f.feed(b"x")
    [b'\\x00\\x00\\x00\\x01x']
    """

    def __init__(self, max_size: int = MAX_MSG_SIZE):
        self.max_size = max_size
        self._buf = bytearray()
        self._need: int | None = None  # body length of the frame being collected

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every frame completed by it, in order.

        A length prefix over the limit raises :class:`FrameTooLargeError`, after
        the frames before it have been returned (the next call raises).
        """
        self._buf += data
        frames = []
        while True:
            try:
                frame = self._next()
            except FrameTooLargeError:
                if frames:  # keep the frames before it; the next feed() raises again
                    return frames
                raise
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> bytes | None:
        if self._need is None:
            if len(self._buf) < LENGTH_PREFIX_SIZE:
                return None
            need = int.from_bytes(self._buf[:LENGTH_PREFIX_SIZE], "big")
            if need > self.max_size:
                error = FrameTooLargeError(
                    f"length prefix {need} over the limit {self.max_size}", field="length", offset=0)
                error.length = need   # what the prefix said (an "HTTP" answer tells itself by it)
                raise error
            self._need = need
        end = LENGTH_PREFIX_SIZE + self._need
        if len(self._buf) < end:
            return None
        frame = bytes(self._buf[:end])
        del self._buf[:end]
        self._need = None
        return frame

    def close(self) -> None:
        """Signal end of stream; raise :class:`TruncatedError` if a partial frame is left."""
        if self._buf:
            raise TruncatedError(
                f"stream ended inside a frame ({len(self._buf)} bytes buffered)",
                field="length" if self._need is None else "frame", offset=0)
