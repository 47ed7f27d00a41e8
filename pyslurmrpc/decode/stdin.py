"""Standard input for ``pyslurmrpc decode -`` that Ctrl-C always interrupts.

A blocking read() has a race: a SIGINT that arrives after the interpreter last
checked for signals but before the read() system call starts is handled (the
flag is set) while nothing wakes the read, which then waits for input that may
never come (``tcpdump | pyslurmrpc decode -`` with no traffic: the decoder hangs
on Ctrl-C).  Here every read first waits in select() on the input and on a
wakeup pipe the signal machinery writes to (``signal.set_wakeup_fd``), so a
signal at any moment ends the wait and KeyboardInterrupt is raised.
"""

from __future__ import annotations

import os
import select
import signal
import threading

#: bytes asked of the pipe by read1() when the caller names no size
CHUNK = 65536


class InterruptibleInput:
    """``read``/``read1`` of a file descriptor, each wait also ended by a signal (main thread only)."""

    def __init__(self, fd: int):
        self.fd = fd
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._previous = signal.set_wakeup_fd(self._wake_w)

    def _wait(self) -> None:
        while True:
            ready, _, _ = select.select([self.fd, self._wake_r], [], [])
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 512)  # a handler that raises (SIGINT) does so on return
                except BlockingIOError:
                    pass
            if self.fd in ready:
                return

    def read1(self, size: int = -1) -> bytes:
        self._wait()
        return os.read(self.fd, size if size and size > 0 else CHUNK)

    def read(self, size: int = -1) -> bytes:
        parts, have = [], 0
        while size is None or size < 0 or have < size:
            chunk = self.read1(CHUNK if size is None or size < 0 else size - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        """Give the wakeup fd back; the input itself stays open (it is the process's stdin)."""
        signal.set_wakeup_fd(self._previous)
        os.close(self._wake_r)
        os.close(self._wake_w)


def interruptible(binary_stdin):
    """``binary_stdin`` wrapped when it is a real descriptor read from the main thread, else as is."""
    try:
        fd = binary_stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return binary_stdin
    if threading.current_thread() is not threading.main_thread():
        return binary_stdin
    return InterruptibleInput(fd)
