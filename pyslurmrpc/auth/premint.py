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

A refill mints only what the caller's pace will use (its size per payload starts at the
depth): a call that finds credentials grown too old halves it; a call more than
:data:`PREMINT_MAX_AGE` seconds after the one before sets it to nothing (such a caller
mints its own, as without premint); a call sooner than that brings back one; and a refill
taken whole while young doubles it, up to the depth.  So a caller slower than the stock
makes munged mint few credentials that are thrown away, and a steady one keeps the depth.
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
#: payloads remembered at most (the one seen first goes first)
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

    ``taken_from_stock``: requests that sent a credential minted ahead (a detection's
    requests too, so one call may take several); ``minted_ahead``:
    credentials minted into the stock; ``thrown_away``: stocked credentials never sent
    (too old, pushed out by other messages' credentials, or dropped after a failed call);
    ``in_stock``: those still waiting.  ``minted_ahead`` is always the sum of the other
    three.  A refill follows the caller's pace (see the module), so many thrown away for
    few taken means a pace that keeps changing, or calls that fail (each credential lives
    :data:`PREMINT_MAX_AGE` seconds in the stock).
    """

    depth: int
    taken_from_stock: int
    minted_ahead: int
    thrown_away: int
    in_stock: int = 0


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
        self._filling: set[bytes] = set()       # payloads whose refill has not reached its size yet
        self._size: dict[bytes, int] = {}       # payload -> what its next refill mints (see the module)
        self._last: dict[bytes, float] = {}     # payload -> when a call last looked for one
        self._generation = 0
        self._forks = _forks        # a stock made before the last fork is the parent's
        self._swept = 0.0           # when stale credentials of every payload were last thrown away
        self.taken = self.minted = self.discarded = 0  # counters, for tests and the benchmark

    def __repr__(self) -> str:
        with self._lock:
            ready = self._ready_count()
        return f"CredentialStock(depth={self.depth}, ready={ready})"

    def _forked(self) -> None:
        """Called with the lock held: a child process starts from nothing."""
        if self._forks != _forks:
            self._forks = _forks
            self.discarded += self._ready_count()    # the parent's: never sent from here
            self._ready.clear()
            self._pending.clear()
            self._filling.clear()
            self._size.clear()
            self._last.clear()
            self._generation += 1

    def counts(self) -> PremintCounts:
        """The counters, read together."""
        with self._lock:
            return PremintCounts(self.depth, self.taken, self.minted, self.discarded, self._ready_count())

    def _ready_count(self) -> int:
        return sum(len(q) for q in self._ready.values())

    def take(self, payload: bytes, now: float) -> str | None:
        """A fresh credential for ``payload`` (removed from the stock), or None.

        ``now``: the monotonic time of the call, which also sets the next refill's size."""
        with self._lock:
            self._forked()
            queue = self._queue(payload)
            self._pace(payload, now)
            if now - self._swept > PREMINT_MAX_AGE:
                self._sweep(payload, now)
            fresh, stale, age = None, False, 0.0
            while queue:
                minted_at, cred = queue.popleft()
                age = now - minted_at
                if age <= PREMINT_MAX_AGE:    # a mint begun after this call read the clock is fresh
                    fresh = cred
                    break
                self.discarded += 1
                stale = True
            size = self._size.get(payload, self.depth)
            if stale:                  # more was minted than the caller used while young
                self._size[payload] = size // 2
            elif fresh is not None and not queue and not self._pending.get(payload) and age <= PREMINT_MAX_AGE / 2:
                self._size[payload] = min(self.depth, 2 * size or 1)    # taken whole, and young
            if fresh is not None:
                self.taken += 1
            return fresh

    def _sweep(self, payload: bytes, now: float) -> None:
        """Called with the lock held, at most once per PREMINT_MAX_AGE: the too-old credentials of
        the other payloads (a detection's probes, a call made once) are thrown away and counted,
        not kept until the client closes."""
        self._swept = now
        for other, queue in self._ready.items():
            while other != payload and queue and now - queue[0][0] > PREMINT_MAX_AGE:
                queue.popleft()
                self.discarded += 1

    def _pace(self, payload: bytes, now: float) -> None:
        """Called with the lock held: a call more than PREMINT_MAX_AGE after the one before
        stops the refills; one sooner than that brings back one credential."""
        last, self._last[payload] = self._last.get(payload), now
        if last is None:
            return
        if now - last > PREMINT_MAX_AGE:
            self._size[payload] = 0
        elif not self._size.get(payload, self.depth):
            self._size[payload] = 1

    def reserve(self, payload: bytes) -> int | None:
        """Start one mint for ``payload`` if the stock wants one: its generation, else None.

        It wants one when nothing is left for ``payload`` (ready or under way), and then
        again until a refill reaches the depth (see the module's text).
        """
        with self._lock:
            self._forked()
            size = self._size.get(payload, self.depth)
            have = len(self._ready.get(payload, ())) + self._pending.get(payload, 0)
            if have >= size or (have and payload not in self._filling):
                self._filling.discard(payload)
                return None
            if have + 1 < size:
                self._filling.add(payload)
            else:
                self._filling.discard(payload)
            self._queue(payload)
            self._pending[payload] = self._pending.get(payload, 0) + 1
            return self._generation

    def _queue(self, payload: bytes) -> deque:
        """Called with the lock held: ``payload``'s credentials, a new payload pushing out the
        least recently stocked one when PREMINT_MAX_PAYLOADS are remembered."""
        queue = self._ready.get(payload)
        if queue is None:
            if len(self._ready) >= PREMINT_MAX_PAYLOADS:
                oldest = next(iter(self._ready))
                self.discarded += len(self._ready.pop(oldest))
                self._size.pop(oldest, None)
                self._last.pop(oldest, None)
                self._filling.discard(oldest)
            queue = self._ready[payload] = deque()
        return queue

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
        self.discarded += self._ready_count()
        self._ready.clear()
        self._pending.clear()
        self._filling.clear()
        self._generation += 1
