"""One request/reply exchange over asyncio streams, for the forwarder and the tests."""

from __future__ import annotations

import asyncio

from pyslurmrpc.errors import ConnectionClosedError
from pyslurmrpc.transport import read_frame


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
