"""Incremental framing: bytes in any chunking in, whole frames out (no I/O).

Slurm frames every message with a 4-byte big-endian length prefix
(src/common/slurm_protocol_socket.c slurm_msg_sendto / slurm_msg_recvfrom_timeout).
The prefix is checked against the limit as soon as its 4 bytes are in, so a
hostile prefix is refused before anything is buffered for it.
"""

from __future__ import annotations

from collections import deque

from ..errors import FrameTooLargeError, ProtocolError, TruncatedError
from .constants import HTTP_PREFIX, LENGTH_PREFIX_SIZE, MAX_MSG_SIZE


class Framer:
    """Collects bytes and yields complete frames (length prefix included).

    The chunks fed are kept as they came and joined once, when their frame is
    whole: a frame that arrives in one chunk is returned without a copy, any
    other is copied exactly once (a 100 MiB reply never needs 300 MiB).

    >>> f = Framer()
    >>> f.feed(b"\\x00\\x00\\x00\\x01")
    []
    >>> f.feed(b"x")
    [b'\\x00\\x00\\x00\\x01x']
    """

    def __init__(self, max_size: int = MAX_MSG_SIZE):
        self.max_size = max_size
        self._chunks: deque[bytes] = deque()
        self._offset = 0                # bytes of the first chunk already handed out
        self._have = 0                  # bytes held (chunks less the offset)
        self._need: int | None = None   # length of the frame being collected, prefix included

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a whole frame."""
        return self._have

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every frame completed by it, in order.

        A length prefix over the limit raises :class:`FrameTooLargeError`, after
        the frames before it have been returned (the next call raises).
        """
        if not self._have and type(data) is bytes and len(data) >= LENGTH_PREFIX_SIZE \
                and int.from_bytes(data[:LENGTH_PREFIX_SIZE], "big") == len(data) - LENGTH_PREFIX_SIZE \
                and len(data) - LENGTH_PREFIX_SIZE <= self.max_size:
            return [data]  # the usual reply: exactly one whole frame, nothing held
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError(f"Framer.feed takes the bytes read from the connection, not {type(data).__name__}")
            data = bytes(data)      # a copy (the caller may reuse its buffer), counted in bytes, not items
        if data:
            self._chunks.append(data)
            self._have += len(data)
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
            if self._have < LENGTH_PREFIX_SIZE:
                return None
            need = int.from_bytes(self._peek(LENGTH_PREFIX_SIZE), "big")
            if need > self.max_size:
                error = FrameTooLargeError(
                    f"length prefix {need} over the limit {self.max_size}", field="length", offset=0)
                error.length = need   # what the prefix said (an "HTTP" answer tells itself by it)
                raise error
            self._need = LENGTH_PREFIX_SIZE + need
        if self._have < self._need:
            return None
        frame = self._take(self._need)
        self._need = None
        return frame

    def _peek(self, size: int) -> bytes:
        """The first ``size`` held bytes (a few: the length prefix), leaving them held."""
        out = b""
        for i, chunk in enumerate(self._chunks):
            out += chunk[self._offset if i == 0 else 0:][:size - len(out)]
            if len(out) == size:
                return out
        return out

    def _take(self, size: int) -> bytes:
        """Remove and return the first ``size`` held bytes, copying them at most once."""
        first, start = self._chunks[0], self._offset
        self._have -= size
        if start == 0 and len(first) == size:        # the frame is the whole chunk: no copy
            self._chunks.popleft()
            return first
        if len(first) - start >= size:                # inside one chunk: one slice
            self._offset = start + size
            if self._offset == len(first):
                self._chunks.popleft()
                self._offset = 0
            return first[start:start + size]
        parts, left = [], size                        # across chunks: views, joined once
        while left:
            chunk, start = self._chunks[0], self._offset
            take = min(len(chunk) - start, left)
            parts.append(memoryview(chunk)[start:start + take])
            left -= take
            if start + take == len(chunk):
                self._chunks.popleft()
                self._offset = 0
            else:
                self._offset = start + take
        return b"".join(parts)

    def close(self) -> None:
        """Signal end of stream; raise :class:`TruncatedError` if a partial frame is left."""
        if self._have:
            declared = "" if self._need is None else \
                f": it declares {self._need - LENGTH_PREFIX_SIZE} bytes after its length prefix"
            raise TruncatedError(
                f"stream ended inside a frame ({self._have} bytes buffered{declared})",
                field="length" if self._need is None else "frame", offset=0)


def prefix_text(exc: ProtocolError) -> str:
    """What a refused length prefix is when its four bytes are text: HTTP (26.05 answers a
    version it refuses so), or some other protocol's."""
    length = getattr(exc, "length", None)
    if not isinstance(length, int) or not 0 <= length < 1 << 32:
        return ""
    raw = length.to_bytes(LENGTH_PREFIX_SIZE, "big")
    if not all(0x20 <= b < 0x7F for b in raw):
        return ""
    if raw == HTTP_PREFIX:
        return f' (the text "{raw.decode()}": an HTTP answer, as 26.05 gives to a version it refuses)'
    return f' (the text "{raw.decode()}": not a Slurm frame)'
