"""Test peers: TCP servers on loopback that answer with given bytes (for replaying recordings)."""

from __future__ import annotations

import socket
import threading

from pyslurmrpc.transport import recv_frame


class ReplayPeer:
    """Accepts connections; for each, reads one frame, records it, answers ``respond(frame)``.

    ``respond`` returns the bytes to send (or None to close without a reply).
    """

    def __init__(self, respond, host="127.0.0.1"):
        self.respond = respond
        self.received: list[bytes] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.host, self.port = self.sock.getsockname()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            frame = recv_frame(conn)
            if frame is None:
                return
            self.received.append(frame)
            answer = self.respond(frame)
            if answer:
                conn.sendall(answer)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
