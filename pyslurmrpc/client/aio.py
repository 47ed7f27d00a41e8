"""The asyncio client: a thin runner of the same flows over asyncio streams.

Every RPC opens its own connection (as Slurm does), so any number of calls
can be in flight at once; nothing mutable is shared between calls except the
failover flag and the version cache.  Cancelling a call closes its socket.
"""

from __future__ import annotations

import asyncio
import inspect
import time

from ..errors import (
    ConnectionClosedError, ConnectionRefusedTransportError, TimeoutTransportError, TransportError,
)
from ..wire import Framer
from . import flows
from .api import ClientApi

RECV_CHUNK = 65536


async def drive(flow, perform):
    """Run a flow generator, awaiting ``perform`` for each action it yields."""
    value, error = None, None
    while True:
        try:
            action = flow.throw(error) if error is not None else flow.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = await perform(action)
        except Exception as exc:  # handed back into the flow, which decides
            error = exc


async def _connect(action: flows.Connect):
    ep = action.endpoint
    try:
        return await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port), action.timeout)
    except ConnectionRefusedError:
        raise ConnectionRefusedTransportError(f"{ep}: connection refused", address=ep) from None
    except asyncio.TimeoutError:
        raise TimeoutTransportError(f"{ep}: connect timed out", address=ep, slurm_errno=1800) from None
    except OSError as exc:
        raise TransportError(f"{ep}: {exc.strerror or exc}", address=ep, slurm_errno=1800) from None


async def _read_frame(reader, ep) -> bytes:
    framer = Framer()
    while True:
        data = await reader.read(RECV_CHUNK)
        if not data:
            raise ConnectionClosedError(
                f"{ep} closed the connection without a reply" if not framer.pending
                else f"{ep} closed the connection in the middle of a reply", address=ep)
        frames = framer.feed(data)
        if frames:
            return frames[0]


async def _exchange(action: flows.Exchange) -> bytes:
    reader, writer = action.conn
    ep = action.endpoint
    try:
        writer.write(action.frame)
        return await asyncio.wait_for(_drain_and_read(writer, reader, ep), action.timeout)
    except asyncio.TimeoutError:
        raise TimeoutTransportError(f"{ep}: no reply within {action.timeout:g} s", address=ep) from None
    except (ConnectionResetError, BrokenPipeError):
        raise ConnectionClosedError(f"{ep} reset the connection", address=ep) from None
    except OSError as exc:
        raise TransportError(f"{ep}: {exc.strerror or exc}", address=ep, slurm_errno=1802) from None
    finally:
        writer.close()


async def _drain_and_read(writer, reader, ep) -> bytes:
    await writer.drain()
    return await _read_frame(reader, ep)


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


class AsyncClient(ClientApi):
    """asyncio client; the same methods as :class:`~pyslurmrpc.Client`, awaitable.

    >>> client = AsyncClient("ctl.example", 6817)             # doctest: +SKIP
    >>> await client.checkpoint_able(1234, 0)                 # doctest: +SKIP
    0
    """

    _asynchronous = True

    def _run(self, flow, convert=None):
        return self._run_async(flow, convert)

    async def _run_async(self, flow, convert):
        result = await drive(flow, self._perform)
        return convert(result) if convert else result

    def _perform(self, action):
        return self._handlers[type(action)](action)

    def _make_handlers(self) -> dict:
        return {
            flows.Exchange: _exchange,
            flows.Connect: _connect,
            flows.CreateCred: lambda a: _maybe_await(self._auth.create(a.version)),
            flows.VerifyCred: lambda a: _maybe_await(self._auth.verify(a.auth, a.version)),
            flows.Close: self._close,
            flows.Sleep: lambda a: asyncio.sleep(a.seconds),
            flows.Parallel: self._parallel,
        }

    @staticmethod
    async def _close(action: flows.Close):
        action.conn[1].close()

    async def _parallel(self, action: flows.Parallel):
        return await asyncio.gather(*(drive(f, self._perform) for f in action.flows))
