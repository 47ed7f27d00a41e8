"""One request/reply exchange over asyncio streams, for the forwarder and the tests."""

from __future__ import annotations

import asyncio
import errno

from pyslurmrpc.client.validate import address_text
from pyslurmrpc.errors import ConnectionClosedError
from pyslurmrpc.transport import read_frame

from .limits import SLOTS, ConnectionSlots


class ConnectionCapError(OSError):
    """Every connection slot of the process is taken (an OSError: the peer counts as unreachable)."""


async def exchange(host: str, port: int, frame: bytes, timeout: float, slots: ConnectionSlots = SLOTS) -> bytes:
    """Send one frame on a new connection and return the one frame answered.

    Raises OSError when the connection fails (:class:`ConnectionCapError` when the
    process's fake connections are all open already: it never waits for a slot, so a
    forwarding tree that fills them fails where it would have waited on itself),
    asyncio.TimeoutError past ``timeout`` seconds, ConnectionClosedError when the
    peer closes without a reply.
    """
    slot = slots.try_slot()
    if slot is None:
        raise ConnectionCapError(errno.EMFILE, f"all {slots.limit} connection slots of the fake daemons are in use")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            writer.write(frame)
            await writer.drain()
            reply = await asyncio.wait_for(read_frame(reader), timeout)
        finally:
            writer.close()
    finally:
        slot.release()
    if reply is None:
        raise ConnectionClosedError(f"{address_text(host, port)} closed the connection without a reply")
    return reply
