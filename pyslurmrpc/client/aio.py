"""The asyncio client: the same flows on the asyncio runner (pyslurmrpc.runners).

Every RPC opens its own connection (as Slurm does), so any number of calls
can be in flight at once; nothing mutable is shared between calls except the
failover flag and the version cache.  Cancelling a call closes its socket.
"""

from __future__ import annotations

import functools
import inspect

from ..runners import run_async
from .api import ClientApi


def _coroutine_method(method):
    """``method`` of ClientApi as an ``async def`` with the same signature, docstring and annotations.

    ClientApi's methods build a flow and hand it to ``self._run``; here that
    returns an awaitable, which the coroutine awaits, so introspection
    (``inspect.iscoroutinefunction``, type checkers reading annotations) sees
    what a caller gets.
    """
    @functools.wraps(method)
    async def call(self, *args, **kwargs):
        return await method(self, *args, **kwargs)
    return call


class AsyncClient(ClientApi):
    """asyncio client; the same methods as :class:`~pyslurmrpc.Client`, awaitable.

    >>> client = AsyncClient("ctl.example", 6817)             # doctest: +SKIP
    >>> await client.checkpoint_able(1234, 0)                 # doctest: +SKIP
    0
    """

    async def close(self) -> None:
        """See :meth:`Client.close`; ``async with AsyncClient(...) as client:`` awaits it on leaving."""
        self._drop_minted()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    def _run(self, flow, convert=None):
        return self._run_async(flow, convert)

    async def _run_async(self, flow, convert):
        try:
            result = await run_async(flow)
        except Exception:
            self._drop_minted()
            raise
        return convert(result) if convert else result


for _name, _method in inspect.getmembers(ClientApi, inspect.isfunction):
    if not _name.startswith("_"):
        setattr(AsyncClient, _name, _coroutine_method(_method))
del _name, _method
