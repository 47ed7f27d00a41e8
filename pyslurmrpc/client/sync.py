"""The blocking client: the flows on the blocking runner (pyslurmrpc.runners)."""

from __future__ import annotations

from ..runners import run_sync
from .api import ClientApi


class Client(ClientApi):
    """Blocking client for Slurm's checkpoint RPCs; safe to share between threads.

    >>> client = Client("ctl.example", 6817)                  # doctest: +SKIP
    >>> client.checkpoint_able(1234, 0)                       # doctest: +SKIP
    0
    """

    def close(self) -> None:
        """Drop the credentials minted ahead (``premint``); the client holds no connection
        between calls, so nothing else is open, and a later call still works (minting anew).
        ``with Client(...) as client:`` calls it on leaving the block."""
        self._drop_minted()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self, flow, convert=None):
        try:
            result = run_sync(flow)
        except Exception:
            self._drop_minted()
            raise
        return convert(result) if convert else result
