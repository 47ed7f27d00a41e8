"""Small asyncio helpers shared by the fake daemons, the forwarder and the proxy."""

from __future__ import annotations

import asyncio
from typing import Optional

from pyslurmrpc.errors import ConnectionClosedError
from pyslurmrpc.wire import MAX_MSG_SIZE, Framer

#: bytes asked from the socket per read
READ_CHUNK = 65536


async def read_frame(reader: asyncio.StreamReader, max_size: int = MAX_MSG_SIZE) -> Optional[bytes]:
    """The first whole frame on ``reader`` (None if the peer closed before one came).

    A length prefix over ``max_size`` raises FrameTooLargeError as soon as its
    four bytes are in, before anything else is buffered.
    """
    framer = Framer(max_size)
    while True:
        data = await reader.read(READ_CHUNK)
        if not data:
            return None
        frames = framer.feed(data)
        if frames:
            return frames[0]


async def exchange(host: str, port: int, frame: bytes, timeout: float) -> bytes:
    """Send one frame on a new connection and return the one frame answered.

    Raises OSError when the connection fails, asyncio.TimeoutError past
    ``timeout`` seconds, ConnectionClosedError when the peer closes without a reply.
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(frame)
        await writer.drain()
        reply = await asyncio.wait_for(read_frame(reader), timeout)
    finally:
        writer.close()
    if reply is None:
        raise ConnectionClosedError(f"{host}:{port} closed the connection without a reply")
    return reply
