"""The asyncio client: a thin runner of the same flows over asyncio streams.

Every RPC opens its own connection (as Slurm does), so any number of calls
can be in flight at once; nothing mutable is shared between calls except the
failover flag and the version cache.  Cancelling a call closes its socket.
"""

from __future__ import annotations

import asyncio
import inspect

from ..errors import (
    CONNECT_ERRNO, ConnectionClosedError, ConnectionRefusedTransportError, ProtocolError, TimeoutTransportError,
    TransportError,
)
from ..wire import Framer
from . import flows
from .core import create_cred
from .api import ClientApi

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


class _ReplyProtocol(asyncio.Protocol):
    """Collects the bytes of one connection until a whole reply frame is in."""

    def __init__(self, loop, endpoint):
        self.endpoint = endpoint
        self.reply = loop.create_future()
        self.framer = Framer()
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.reply.done():
            return
        try:
            frames = self.framer.feed(data)
        except ProtocolError as exc:
            self.reply.set_exception(exc)
            return
        if frames:
            self.reply.set_result(frames[0])

    def connection_lost(self, exc) -> None:
        if not self.reply.done():
            what = "in the middle of a reply" if self.framer.pending else "without a reply"
            self.reply.set_exception(ConnectionClosedError(
                f"{self.endpoint} closed the connection {what}", address=self.endpoint))


async def _connect(action: flows.Connect):
    ep = action.endpoint
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(action.timeout):
            _, protocol = await loop.create_connection(lambda: _ReplyProtocol(loop, ep), ep.host, ep.port)
        return protocol
    except ConnectionRefusedError:
        raise ConnectionRefusedTransportError(f"{ep}: connection refused", address=ep) from None
    except TimeoutError:
        raise TimeoutTransportError(f"{ep}: connect timed out", address=ep, slurm_errno=CONNECT_ERRNO) from None
    except OSError as exc:
        raise TransportError(f"{ep}: {exc.strerror or exc}", address=ep, slurm_errno=CONNECT_ERRNO) from None


async def _exchange(action: flows.Exchange) -> bytes:
    protocol, ep = action.conn, action.endpoint
    try:
        protocol.transport.write(action.frame)
        async with asyncio.timeout(action.timeout):
            return await protocol.reply
    except TimeoutError:
        raise TimeoutTransportError(f"{ep}: no reply within {action.timeout:g} s", address=ep) from None
    finally:
        protocol.transport.close()


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
            flows.CreateCred: lambda a: _maybe_await(create_cred(self._auth, a)),
            flows.VerifyCred: lambda a: _maybe_await(self._auth.verify(a.auth, a.version)),
            flows.Close: self._close,
            flows.Sleep: lambda a: asyncio.sleep(a.seconds),
            flows.Parallel: self._parallel,
        }

    @staticmethod
    async def _close(action: flows.Close):
        action.conn.transport.close()

    async def _parallel(self, action: flows.Parallel):
        return await asyncio.gather(*(drive(f, self._perform) for f in action.flows))
