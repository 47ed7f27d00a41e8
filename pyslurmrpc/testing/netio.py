"""Small loopback socket helpers the real-daemon tests share.

:func:`wire_ping` (one REQUEST_PING in any header version), :func:`exchange`
(send bytes, collect what comes back until the peer closes) and
:class:`RecordingProxy` (a loopback TCP proxy that keeps every byte of each
connection, used to record Debian's ``scontrol ping``).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from pyslurmrpc.auth.msg_hash import credential_payload
from pyslurmrpc.wire import Address, Header, Message, MsgType, decode_message, encode_message, version_code
from pyslurmrpc.wire.bodies import PingMsg

LOOPBACK = "127.0.0.1"
IO_TIMEOUT = 5.0            # per-socket timeout of the helpers


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# socket helpers
# ---------------------------------------------------------------------------
@dataclass
class Exchange:
    """What one connection got back: every byte, how it ended, how long it took."""

    sent: bytes
    received: bytes
    closed: bool            # the peer closed (EOF or reset) before our timeout
    reset: bool             # ... with a reset rather than a clean EOF
    elapsed: float          # seconds from the last byte sent to the close/timeout
    send_error: Optional[str] = None
    frames: list = field(default_factory=list)

    @property
    def silent_close(self) -> bool:
        """The peer closed without sending a single byte."""
        return self.closed and not self.received


def exchange(host: str, port: int, data: bytes, *, timeout: float = IO_TIMEOUT,
             half_close: bool = False, until_frame: bool = False) -> Exchange:
    """Connect, send ``data``, read until the peer closes (or ``timeout``).

    ``half_close`` shuts our sending side after ``data`` (a truncated frame
    then EOF).  ``until_frame`` returns as soon as one whole frame is in.
    """
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        send_error = None
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as err:  # the peer may close while we are still sending
            send_error = repr(err)
        start = time.monotonic()
        received = bytearray()
        closed = reset = False
        deadline = start + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = reset = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
            if until_frame and len(received) >= 4 and len(received) >= 4 + int.from_bytes(received[:4], "big"):
                break
        elapsed = time.monotonic() - start
    ex = Exchange(bytes(data), bytes(received), closed, reset, elapsed, send_error)
    ex.frames = split_frames(ex.received)
    return ex


def split_frames(data: bytes) -> list:
    """Whole length-prefixed frames in ``data`` (a partial tail is dropped)."""
    frames, at = [], 0
    while len(data) - at >= 4:
        end = at + 4 + int.from_bytes(data[at:at + 4], "big")
        if end > len(data):
            break
        frames.append(data[at:end])
        at = end
    return frames


def ping_frame(auth, version="22.05", *, msg_type: int = MsgType.REQUEST_PING) -> bytes:
    """A REQUEST_PING frame in header ``version`` with ``auth`` (an Auth or an authenticator).

    20.11+ headers get orig_addr family 0, as libslurm packs a never-forwarded
    message; older headers an all-zero IPv4 orig_addr.  An authenticator makes
    the credential with the message hash 22.05+ senders put in it; an ``Auth``
    is used as it is.
    """
    code = version_code(version)
    if hasattr(auth, "create"):  # an authenticator: a credential as libslurm of that version makes it
        payload = credential_payload(code, msg_type, b"")
        auth = auth.create(code, payload) if payload else auth.create(code)
    addr = Address(0, None, 0) if code >= 0x2400 else Address(None, 0, 0)
    return encode_message(Message(Header(code, msg_type, orig_addr=addr), auth, PingMsg()))


def wire_ping(host: str, port: int, auth, version="22.05", *, timeout: float = IO_TIMEOUT) -> Message:
    """One REQUEST_PING over a fresh connection; the decoded answer (raises if none)."""
    ex = exchange(host, port, ping_frame(auth, version), timeout=timeout, until_frame=True)
    if not ex.frames:
        raise ConnectionError(f"no answer to a {version} ping from {host}:{port} "
                              f"(closed={ex.closed}, {len(ex.received)} bytes)")
    return decode_message(ex.frames[0])


# ---------------------------------------------------------------------------
# a recording proxy
# ---------------------------------------------------------------------------
@dataclass
class Recording:
    """The two byte streams of one proxied connection."""

    request: bytearray = field(default_factory=bytearray)
    response: bytearray = field(default_factory=bytearray)


class RecordingProxy:
    """A loopback TCP proxy that records each connection's bytes in both directions.

    >>> with RecordingProxy(ctld.port) as proxy:   # clients connect to proxy.port
    ...     ...
    >>> proxy.recordings[0].request
    """

    def __init__(self, target_port: int, target_host: str = LOOPBACK, *, port: int = 0):
        self.target = (target_host, target_port)
        self.recordings: list[Recording] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, port))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> "RecordingProxy":
        self._acceptor.start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            rec = Recording()
            self.recordings.append(rec)
            upstream = socket.create_connection(self.target, timeout=IO_TIMEOUT)
            for src, dst, buf in ((client, upstream, rec.request), (upstream, client, rec.response)):
                t = threading.Thread(target=self._pump, args=(src, dst, buf), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, buf: bytearray) -> None:
        src.settimeout(IO_TIMEOUT)
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                buf += chunk
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        for t in self._threads:
            t.join(IO_TIMEOUT + 1)
        self._listener.close()

    def __enter__(self) -> "RecordingProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


