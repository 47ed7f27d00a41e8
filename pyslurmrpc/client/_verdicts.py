"""The verdict cache a client's calls share (rpc.State.versions).

Apart from the flows because it holds a lock (flows touch no threads): a lock held only
for one dict operation, never across a flow's yield, so either runner may use it.
"""

from __future__ import annotations

import threading
from typing import Callable

from .detect import Verdict


class Verdicts(dict):
    """The controllers' verdicts by (host, port) (rpc._key), shared by every call of a client,
    threads included.  Read as a dict; changed only through these methods, under one lock, so
    that a verdict is dropped only while it is still the one the dropping call read (a newer
    one set by another call's round meanwhile stays)."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()

    def put(self, key: tuple[str, int], verdict: Verdict) -> None:
        with self._lock:
            self[key] = verdict

    def put_if_absent(self, key: tuple[str, int], verdict: Verdict) -> None:
        with self._lock:
            self.setdefault(key, verdict)

    def drop_if(self, key: tuple[str, int], stale: Callable[[Verdict], bool]) -> None:
        """Drop the verdict under ``key`` if there is one and ``stale`` says so."""
        with self._lock:
            verdict = self.get(key)
            if verdict is not None and stale(verdict):
                del self[key]
