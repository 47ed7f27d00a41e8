"""Small loopback socket helpers the tests share.

:func:`free_port`, :func:`wire_ping` (one REQUEST_PING in any header
version), :func:`exchange` (send bytes, collect what comes back until the
peer closes) and :func:`message_hash` (the MUNGE payload a 22.05+ sender
puts in a frame's credential).  The proxy that records connections is
:class:`pyslurmrpc.fake.RecordingProxy`.
"""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass, field
from typing import Optional

from pyslurmrpc.auth.msg_hash import credential_payload
from pyslurmrpc.errors import ProtocolError
from pyslurmrpc.transport import READ_CHUNK
from pyslurmrpc.wire import (
    Address, Framer, Header, Message, MsgType, decode_message, encode_message, version_code,
)
from pyslurmrpc.wire.bodies import PingMsg
from pyslurmrpc.wire.versions import has_family_addr

LOOPBACK = "127.0.0.1"
#: every IPv4 address: where slurmctld binds its port
ANY_ADDRESS = "0.0.0.0"
IO_TIMEOUT = 5.0            # per-socket timeout of the helpers


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """Whether a listener could take ``port`` on every address (as slurmctld binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as slurmctld: TIME_WAIT is no owner
        try:
            s.bind((ANY_ADDRESS, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return False
            raise
    return True


# ---------------------------------------------------------------------------
# socket helpers
# ---------------------------------------------------------------------------
@dataclass
class Transcript:
    """What one connection got back: every byte, how it ended, how long it took.

    ``frames`` are the whole frames the Framer cut from ``received`` (up to
    the first length prefix it refuses; a partial tail is left out).
    """

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
             half_close: bool = False, until_frame: bool = False) -> Transcript:
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
        framer, frames = Framer(), []
        closed = reset = False
        deadline = start + timeout
        while not (until_frame and frames):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(READ_CHUNK)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = reset = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
            frames += _frames(framer, chunk)
        elapsed = time.monotonic() - start
    return Transcript(bytes(data), bytes(received), closed, reset, elapsed, send_error, frames)


def _frames(framer: Framer, chunk: bytes) -> list:
    """The frames ``chunk`` completes; none once the framer has refused a length prefix."""
    try:
        return framer.feed(chunk)
    except ProtocolError:
        return []


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
    addr = Address(0, None, 0) if has_family_addr(code) else Address(None, 0, 0)
    return encode_message(Message(Header(code, msg_type, orig_addr=addr), auth, PingMsg()))


def wire_ping(host: str, port: int, auth, version="22.05", *, timeout: float = IO_TIMEOUT) -> Message:
    """One REQUEST_PING over a fresh connection; the decoded answer (raises if none)."""
    ex = exchange(host, port, ping_frame(auth, version), timeout=timeout, until_frame=True)
    if not ex.frames:
        raise ConnectionError(f"no answer to a {version} ping from {host}:{port} "
                              f"(closed={ex.closed}, {len(ex.received)} bytes)")
    return decode_message(ex.frames[0])


def message_hash(frame: bytes) -> bytes:
    """The MUNGE payload a Slurm 22.05+ sender puts in the credential of ``frame`` (by its header version)."""
    msg = decode_message(frame)
    body = frame[len(frame) - msg.header.body_length:]
    return credential_payload(msg.header.version, msg.header.msg_type, body)
