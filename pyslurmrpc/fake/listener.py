"""The fake daemons' accept loop: at most the process's connection slots, and quiet when
descriptors run out.

asyncio's own server accepts whatever the backlog holds and, when accept() fails for
want of a descriptor, logs the failure with a traceback and retries a second later:
a thousand listeners in one process log a thousand tracebacks a second.  Here a
connection accepted while every slot of the process is taken (:data:`.limits.SLOTS`)
is closed at once, unanswered; and an accept() that finds no descriptor pauses that
listener (ACCEPT_BACKOFF_FIRST, doubling to ACCEPT_BACKOFF_MAX).  Either logs one
line per EXHAUSTED_LOG_INTERVAL for the whole process, never a traceback.

Why not leave the excess in the backlog, as slurmd's thread limit does: the fakes of
one process forward to each other, so a chain that holds every slot would wait on
its own next hop for the whole of 19.05's forwarding timeout (minutes for a long
TreeWidth=1 chain); a connection closed at once is a failed node at once (F8).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from typing import Callable, Optional

from ..client.validate import address_text
from .limits import ACCEPT_BACKOFF_FIRST, ACCEPT_BACKOFF_MAX, SLOTS, ConnectionSlots, RateLimitedLog, Slot

log = logging.getLogger("pyslurmrpc.fake")

#: accept() errors that mean "no descriptor or buffer now": pause, then try again
EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: connections accepted in a row before the loop lets other work run
ACCEPT_BATCH = 64

#: rate-limited log lines shared by every listener of the process
exhausted_log = RateLimitedLog(log)
over_cap_log = RateLimitedLog(log)


class Listener:
    """Serves a listening socket: ``factory(slot)`` makes the protocol of each accepted
    connection, which must release ``slot`` when the connection is lost.

    Shaped like the part of :class:`asyncio.Server` the daemons use (``sockets``,
    ``close``, ``wait_closed``, ``serve_forever``), and as cheap per connection: the
    socket stays registered with the loop, and is taken off only for the backoff
    after accept() found no descriptor.
    """

    def __init__(self, sock: socket.socket, factory: Callable[[Slot], asyncio.Protocol], name: str,
                 slots: ConnectionSlots = SLOTS):
        sock.setblocking(False)
        self.sockets = [sock]
        self.factory, self.name, self.slots = factory, name, slots
        self._loop = asyncio.get_running_loop()
        self._backoff = ACCEPT_BACKOFF_FIRST
        self._retry: Optional[asyncio.TimerHandle] = None  # after running out of descriptors
        self._closed = self._loop.create_future()
        self._loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        sock = self.sockets[0]
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # the peer gave up while queued
                continue
            except OSError as exc:
                self._failed(exc)
                return
            self._backoff = ACCEPT_BACKOFF_FIRST
            slot = self.slots.try_slot()
            if slot is None:  # over the cap: closed at once (a queue could wait on itself, see module doc)
                conn.close()
                over_cap_log.warning("fake daemons: %d connections open, the cap; closing new ones "
                                     "unanswered", self.slots.limit)
                continue
            conn.setblocking(False)
            self._loop.create_task(self._adopt(conn, slot))

    def _failed(self, exc: OSError) -> None:
        self._pause()
        if exc.errno not in EXHAUSTED:
            log.error("%s: accept() failed (%s); no longer accepting", self.name, exc)
            return
        exhausted_log.warning("fake daemons: accept() found no free descriptor (%s); "
                              "pausing accept loops up to %.2f s", os.strerror(exc.errno), ACCEPT_BACKOFF_MAX)
        self._retry = self._loop.call_later(self._backoff, self._resume)
        self._backoff = min(2 * self._backoff, ACCEPT_BACKOFF_MAX)

    def _pause(self) -> None:
        self._loop.remove_reader(self.sockets[0].fileno())

    def _resume(self) -> None:
        self._retry = None
        if not self._closed.done():
            self._loop.add_reader(self.sockets[0].fileno(), self._accept)

    async def _adopt(self, conn: socket.socket, slot: Slot) -> None:
        try:
            await self._loop.connect_accepted_socket(lambda: self.factory(slot), conn)
        except (OSError, RuntimeError, asyncio.CancelledError) as exc:
            # the peer left before its socket was wrapped, or the loop is closing: nobody to serve
            log.debug("%s: an accepted connection was lost before it was served (%r)", self.name, exc)
            slot.release()
            conn.close()

    def close(self) -> None:
        """Stop accepting and close the listening socket (open connections are the daemon's)."""
        if self._closed.done():
            return
        self._pause()
        if self._retry is not None:
            self._retry.cancel()
        self.sockets[0].close()
        self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Nothing to wait for: close() has closed the socket."""

    async def serve_forever(self) -> None:
        try:
            await asyncio.shield(self._closed)
        finally:
            self.close()


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A bound, listening, non-blocking TCP socket on ``host`` (a name takes its first address)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:   # the resolver's text names no host: this one does
        raise socket.gaierror(exc.errno, f"cannot listen on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:   # "[Errno 98] Address already in use" named no address
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {address_text(host, port)}: {exc.strerror}") from None
    except BaseException:
        sock.close()
        raise
    return sock
