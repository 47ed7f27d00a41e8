"""What a fake daemon may hold: request bytes per connection and per daemon, open connections.

Slurm sizes a request buffer from its length prefix alone, up to MAX_MSG_SIZE
(1 GiB, src/common/slurm_protocol_socket.c ``slurm_msg_recvfrom_timeout``); a fake
that did the same would hold gigabytes for a few hostile prefixes and stall its loop
decoding them.  The fake's own requests are small (a ping, a checkpoint request; a
forwarded one grows with its header's node list), so each daemon admits a request
only when its prefix fits these limits, counted before any byte of it is kept.
Connections count against one process-wide cap: a process running a thousand
per-node fakes shares one descriptor table (protocol_specs/fake_limits.md).
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from typing import Optional

from . import codes

#: the largest request one connection may send a fake daemon: a forwarded request
#: naming a million nodes of 16 characters each, uncompressed, still fits
MAX_REQUEST_SIZE = 16 * 1024 * 1024
#: request bytes one fake daemon holds across all its connections (four of the largest)
MAX_BUFFERED_BYTES = 4 * MAX_REQUEST_SIZE
#: connections (accepted and forwarded) all fake daemons of one process keep open at once
MAX_OPEN_CONNECTIONS = 4096
#: ... and never more than this share of the process's descriptor limit (RLIMIT_NOFILE):
#: the rest is for listeners, a client in the same process, files, munged
DESCRIPTOR_SHARE = 0.5
#: first and longest pause of an accept loop the system has no descriptor for
ACCEPT_BACKOFF_FIRST = 0.05
ACCEPT_BACKOFF_MAX = 1.0
#: at most one log line per this many seconds about descriptors running out
EXHAUSTED_LOG_INTERVAL = 10.0

#: why a prefix is refused -> the return code of the RC reply (SLURM_PROTOCOL_INSANE_MSG_LENGTH
#: is what slurmd 19.05 answers a prefix over its own limit with; EAGAIN: busy, try again)
TOO_LARGE = codes.SLURM_PROTOCOL_INSANE_MSG_LENGTH
BUSY = codes.EAGAIN


class ByteBudget:
    """Request bytes one daemon has admitted and not yet let go (used on its loop only)."""

    def __init__(self, per_request: int = MAX_REQUEST_SIZE, total: int = MAX_BUFFERED_BYTES):
        self.per_request, self.total = per_request, total
        self.held = 0

    def admit(self, size: int) -> Optional[int]:
        """Reserve ``size`` bytes; None when admitted, else the return code of the refusal."""
        if size > self.per_request:
            return TOO_LARGE
        if self.held + size > self.total:
            return BUSY
        self.held += size
        return None

    def release(self, size: int) -> None:
        self.held -= size


def descriptor_cap(limit: int = MAX_OPEN_CONNECTIONS) -> int:
    """MAX_OPEN_CONNECTIONS, lowered to DESCRIPTOR_SHARE of this process's descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limit
    return max(1, min(limit, int(soft * DESCRIPTOR_SHARE)))


class ConnectionSlots:
    """The process-wide count of open fake connections, shared by every loop and thread.

    A connection accepted without a free slot is closed at once, unanswered
    (:mod:`.listener`); a forwarding node without one fails at once (its peer is
    then reported unreachable, as Slurm reports a node it cannot connect to).
    """

    def __init__(self, limit: Optional[int] = None):
        self.limit = descriptor_cap() if limit is None else limit
        self.used = 0
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def try_slot(self) -> Optional["Slot"]:
        """A slot if one is free now, else None (the caller answers with an error)."""
        return Slot(self) if self.try_take() else None

    def release(self) -> None:
        with self._lock:
            self.used -= 1


class Slot:
    """One taken slot; released once, however many paths try (accept failed, connection lost)."""

    __slots__ = ("_slots",)

    def __init__(self, slots: ConnectionSlots):
        self._slots: Optional[ConnectionSlots] = slots

    def release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()


#: the one set of slots of this process
SLOTS = ConnectionSlots()


class RateLimitedLog:
    """Logs a condition at most once per ``interval`` seconds, counting what it held back."""

    def __init__(self, logger: logging.Logger, interval: float = EXHAUSTED_LOG_INTERVAL):
        self.logger, self.interval = logger, interval
        self._last: Optional[float] = None
        self._held_back = 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args) -> bool:
        """Log ``message`` (no traceback) unless one was logged within the interval; True if logged."""
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                self._held_back += 1
                return False
            held_back, self._held_back, self._last = self._held_back, 0, now
        suffix = f" ({held_back} more since the last such message)" if held_back else ""
        self.logger.warning(message + suffix, *args)
        return True
