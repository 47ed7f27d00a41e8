"""Test peers: TCP (or UNIX) servers on loopback, one thread per connection.

:class:`ReplayPeer` answers each request frame with given bytes (replaying
recordings, injecting faults); :class:`ThreadedServer` is its base, for peers
that speak something else (a stalled munged).
"""

from __future__ import annotations

import socket
import threading

from pyslurmrpc.errors import UnsupportedVersionError
from pyslurmrpc.transport import READ_CHUNK, recv_frame

#: seconds close() waits for the accept thread and each connection's thread
SETTLE = 5.0
#: ReplayPeer answer: read the request, never answer, wait for the client to go
STALL = object()


class ThreadedServer:
    """A listening socket served by one thread per connection; ``close()`` closes every
    socket it opened and joins its threads, so it leaves nothing behind."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._sock.listen(64)
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket):
        try:
            self._serve(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def _serve(self, conn: socket.socket):
        raise NotImplementedError

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # never connected to: nothing to shut down
            pass
        self._sock.close()
        self._accepter.join(SETTLE)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(SETTLE)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def drain(conn: socket.socket) -> None:
    """Read until the client gives up and closes."""
    while conn.recv(READ_CHUNK):
        pass


class ReplayPeer(ThreadedServer):
    """A controller on loopback: for each connection, reads one frame, keeps it in
    :attr:`received` and answers ``respond(frame)``: bytes to send then close, None to
    close at once, :data:`STALL` to never answer.  ``respond`` may be replaced while
    the peer runs."""

    def __init__(self, respond, host="127.0.0.1"):
        self.respond = respond
        self.received: list[bytes] = []
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        self.host, self.port = sock.getsockname()
        super().__init__(sock)

    @property
    def requests(self) -> int:
        """Whole request frames received so far."""
        return len(self.received)

    def _serve(self, conn: socket.socket):
        frame = recv_frame(conn)
        if frame is None:
            return
        self.received.append(frame)
        try:
            answer = self.respond(frame)
        except UnsupportedVersionError:  # a header version this peer cannot read: close, as a controller does
            return
        if answer is STALL:
            drain(conn)
        elif answer:
            conn.sendall(answer)
