"""The asyncio client: the same flows on the asyncio runner (pyslurmrpc.runners).

Every RPC opens its own connection (as Slurm does), so any number of calls
can be in flight at once; nothing mutable is shared between calls except the
failover flag and the version cache.  Cancelling a call closes its socket.
"""

from __future__ import annotations

from ..runners import run_async
from .api import ClientApi


class AsyncClient(ClientApi):
    """asyncio client; the same methods as :class:`~pyslurmrpc.Client`, awaitable.

    >>> client = AsyncClient("ctl.example", 6817)             # doctest: +SKIP
    >>> await client.checkpoint_able(1234, 0)                 # doctest: +SKIP
    0
    """

    def _run(self, flow, convert=None):
        return self._run_async(flow, convert)

    @staticmethod
    async def _run_async(flow, convert):
        result = await run_async(flow)
        return convert(result) if convert else result
