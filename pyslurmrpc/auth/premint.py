"""Credentials minted ahead of use: a call takes one that is ready, and the next is
minted while the call talks to the daemon (issue 13: MUNGE's round trip off the
critical path).

The rules (each enforced here, each tested in tests/test_premint.py):

* each credential is used once: :meth:`CredentialStock.take` removes it;
* it is used young: one older than :data:`PREMINT_MAX_AGE` seconds (far inside
  munged's default TTL of 300 s, and any AuthInfo ttl= it was minted with) is
  thrown away, never sent;
* never across processes: a stock notices a fork and empties itself; what the
  parent minted is never sent by the child (the fork is counted by an
  ``os.register_at_fork`` hook, which runs in every child that goes on running
  Python, so a check costs no getpid() system call);
* dropped on any error: :meth:`drop` empties the stock and voids every mint
  still under way (a generation count), so nothing minted before an error is
  used after it;
* stocked per payload: from Slurm 22.05 a credential carries the hash of the
  message it travels with, so only the same message (a ping, the same RPC with
  the same arguments) can use a stocked credential.

The stock of a payload is refilled when it runs dry, up to its depth at once (the
mints start together in the call that found it dry); while any credential is left
or under way, no mint starts.  So with a depth of N, N - 1 calls in N send no
request to munged of their own, and munged's work for them falls in one call
instead of in the wait of every call, where it would compete with the controller
for munged and the cores (issue 13: the median call becomes one that mints nothing;
that one call in N takes longer).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass

#: seconds a minted credential may wait in the stock before it is thrown away unused
PREMINT_MAX_AGE = 5.0
#: credentials stocked per payload, at most (the ``premint`` argument's ceiling)
PREMINT_MAX_DEPTH = 64
#: payloads remembered at most (the least recently minted goes first)
PREMINT_MAX_PAYLOADS = 16

#: forks this process descends from, counted in each child as it starts
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)


@dataclass(frozen=True)
class PremintCounts:
    """What a client's premint stock has done since it was made (``Client.premint_counts``).

    ``taken_from_stock``: calls that sent a credential minted ahead; ``minted_ahead``:
    credentials minted into the stock; ``thrown_away``: stocked credentials never sent
    (too old, or dropped after a failed call).  Many thrown away for few taken means the
    client calls too seldom for premint to pay (each credential lives
    :data:`PREMINT_MAX_AGE` seconds in the stock).
    """

    depth: int
    taken_from_stock: int
    minted_ahead: int
    thrown_away: int


class CredentialStock:
    """Up to ``depth`` credentials per payload, minted ahead; thread-safe.

    Holds credential text: its repr says how many, never what.
    """

    def __init__(self, depth: int):
        if not 1 <= depth <= PREMINT_MAX_DEPTH:
            raise ValueError(f"premint depth must be 1-{PREMINT_MAX_DEPTH}, not {depth}")
        self.depth = depth
        self._lock = threading.Lock()
        self._ready: dict[bytes, deque] = {}    # payload -> (minted_at, credential), oldest first
        self._pending: dict[bytes, int] = {}    # payload -> mints under way
        self._filling: set[bytes] = set()       # payloads whose refill has not reached the depth yet
        self._generation = 0
        self._forks = _forks        # a stock made before the last fork is the parent's
        self.taken = self.minted = self.discarded = 0  # counters, for tests and the benchmark

    def __repr__(self) -> str:
        with self._lock:
            ready = sum(len(q) for q in self._ready.values())
        return f"CredentialStock(depth={self.depth}, ready={ready})"

    def _forked(self) -> None:
        """Called with the lock held: a child process starts from nothing."""
        if self._forks != _forks:
            self._forks = _forks
            self._ready.clear()
            self._pending.clear()
            self._filling.clear()
            self._generation += 1

    def counts(self) -> PremintCounts:
        """The counters, read together."""
        with self._lock:
            return PremintCounts(self.depth, self.taken, self.minted, self.discarded)

    def take(self, payload: bytes, now: float) -> str | None:
        """A fresh credential for ``payload`` (removed from the stock), or None."""
        with self._lock:
            self._forked()
            queue = self._ready.get(payload)
            while queue:
                minted_at, cred = queue.popleft()
                if 0 <= now - minted_at <= PREMINT_MAX_AGE:
                    self.taken += 1
                    return cred
                self.discarded += 1
            return None

    def reserve(self, payload: bytes) -> int | None:
        """Start one mint for ``payload`` if the stock wants one: its generation, else None.

        It wants one when nothing is left for ``payload`` (ready or under way), and then
        again until a refill reaches the depth (see the module's text).
        """
        with self._lock:
            self._forked()
            have = len(self._ready.get(payload, ())) + self._pending.get(payload, 0)
            if have >= self.depth or (have and payload not in self._filling):
                self._filling.discard(payload)
                return None
            if have + 1 < self.depth:
                self._filling.add(payload)
            else:
                self._filling.discard(payload)
            if payload not in self._ready and len(self._ready) >= PREMINT_MAX_PAYLOADS:
                oldest = next(iter(self._ready))
                del self._ready[oldest]
                self._filling.discard(oldest)
            self._ready.setdefault(payload, deque())
            self._pending[payload] = self._pending.get(payload, 0) + 1
            return self._generation

    def put(self, payload: bytes, generation: int, minted_at: float, credential: str | None) -> None:
        """A mint ended (``credential`` None: it failed, and the stock is dropped)."""
        with self._lock:
            if generation != self._generation or self._forks != _forks:
                return  # dropped (or forked) since it started: never used
            self._pending[payload] = max(self._pending.get(payload, 1) - 1, 0)
            if credential is None:
                self._drop_locked()
                return
            self.minted += 1
            self._ready.setdefault(payload, deque()).append((minted_at, credential))

    def drop(self) -> None:
        """Forget every stocked credential and void the mints under way."""
        with self._lock:
            self._drop_locked()

    def _drop_locked(self) -> None:
        self.discarded += sum(len(q) for q in self._ready.values())
        self._ready.clear()
        self._pending.clear()
        self._filling.clear()
        self._generation += 1
