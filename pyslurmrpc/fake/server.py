"""The asyncio transport of the fake daemons: one request, one reply, per connection.

All decisions are made by the sans-I/O rules (:mod:`.rules`, :mod:`.node_rules`);
this module only reads a frame, checks it the way 19.05's
``slurm_receive_msg_and_forward`` does, and writes the answer.  Whatever a
client sends, the failure stays inside its own connection.

Closed without a reply by slurmctld (spec §3 A1, Q9): garbage, a length
prefix over the limit, a header version other than 17.11/18.08/19.05
(``check_header_version``), a credential that does not verify, a client that
stops sending for MessageTimeout.  slurmd answers a failed verification with
RC(1007) instead (slurmd.c ``_service_connection``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import dataclasses
import logging
import threading
from typing import Optional

from pyslurmrpc import defaults
from pyslurmrpc.auth.slurm_auth import NoneAuth
from pyslurmrpc.errors import AuthError, ProtocolError, PyslurmrpcError, RemoteProtocolError
from pyslurmrpc.wire.versions import RELEASE_BY_CODE
from pyslurmrpc.wire import (
    MAX_MSG_SIZE, Address, Framer, Header, Message, decode_message, encode_message, version_code,
)
from pyslurmrpc.wire.constants import LENGTH_PREFIX_SIZE

from ..client.validate import address_text
from .daemon_auth import DaemonAuth
from .limits import MAX_BUFFERED_BYTES, MAX_REQUEST_SIZE, ByteBudget, Slot
from .listener import Listener, listening_socket
from .rules import rc_reply

log = logging.getLogger("pyslurmrpc.fake")

#: failures that close a connection unanswered on purpose, as 19.05 would: the client's bytes
#: are not a request, or no credential could be had to sign (or check) with
REFUSALS = (RemoteProtocolError, AuthError, OSError, asyncio.TimeoutError)

#: header versions 19.05's check_header_version lets through (current, one back, minimum)
ACCEPTED_VERSIONS = frozenset(version_code(v) for v in ("17.11", "18.08", "19.05"))
#: the word after the plugin name in the fake's replies: 19.05.8's, whatever the request's release
FAKE_AUTH_WORD = RELEASE_BY_CODE[version_code("19.05")].auth_word
#: pending connections the kernel queues for accept()
LISTEN_BACKLOG = 1024
#: seconds the sync context manager waits for the server thread to start or stop
THREAD_START_TIMEOUT = 30.0
#: bytes read of a refused request: its length prefix and the header's first field, the version
REFUSAL_PEEK = LENGTH_PREFIX_SIZE + 2


def peer_address(transport: asyncio.BaseTransport) -> Address:
    """The requester's IPv4 address and port as a 19.05 orig_addr (0 for non-IPv4)."""
    peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
    try:
        return Address(None, int(ipaddress.IPv4Address(peer[0])), peer[1])
    except ValueError:
        return Address(None, 0, peer[1])


class _Connection(asyncio.Protocol):
    """One accepted connection: admit one request by its length prefix, collect it, answer, close.

    A plain Protocol rather than streams: a connection costs one object and
    one timer until its request is complete, which keeps thousands of idle
    sockets cheap and the per-RPC overhead low.  ``slot`` is the process-wide
    connection slot it holds (:mod:`.limits`), released when it is lost.

    The length prefix is checked against the daemon's :class:`~.limits.ByteBudget`
    before any byte of the request is kept.  A prefix over Slurm's own limit closes
    the connection at once (as 19.05 does); one the budget refuses is answered with
    an RC in the version its header's first field names (6 bytes read, nothing
    buffered), then the connection is half-closed and what the client still sends
    is dropped unread until it closes.
    """

    def __init__(self, daemon: "FakeDaemon", slot: Optional[Slot] = None):
        self.daemon = daemon
        self.slot = slot
        self.framer = Framer(daemon.max_msg_size)
        self.transport: Optional[asyncio.Transport] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        self.task: Optional[asyncio.Task] = None
        self.respond = daemon.respond
        self.early = b""                    # a prefix (and version) that came in pieces
        self.reserved: Optional[int] = None  # budget bytes this request holds (None: not admitted yet)
        self.refusal: Optional[int] = None   # the return code a refused prefix is answered with
        self.draining = False               # a refusal was sent: drop input until the client closes

    def connection_made(self, transport) -> None:
        self.transport = transport
        respond = self.daemon.responder(transport)
        if respond is None:  # not an address this daemon serves: refuse before reading anything
            transport.abort()
            return
        self.respond = respond
        self.daemon._connections.add(self)
        # MessageTimeout: the whole request must arrive in time (slurm_msg_recvfrom_timeout)
        self.timer = asyncio.get_running_loop().call_later(self.daemon.message_timeout, self.abort)

    def data_received(self, data: bytes) -> None:
        if self.task is not None:
            return  # one request per connection: anything after it (or a refusal) is dropped
        if self.refusal is not None:
            self._refusing(data)
            return
        if self.reserved is None and not self._admit(data):
            return
        try:
            frames = self.framer.feed(data)
        except ProtocolError:  # a second prefix over the limit after the request: close at once
            self.abort()
            return
        if frames:
            self.timer.cancel()
            self.transport.pause_reading()
            self.task = asyncio.get_running_loop().create_task(self._answer(frames[0]))

    def _admit(self, data: bytes) -> bool:
        """Reserve the prefix's length in the daemon's budget; False: not admitted (yet)."""
        head = self.early + bytes(data[:LENGTH_PREFIX_SIZE - len(self.early)])
        if len(head) < LENGTH_PREFIX_SIZE:
            self.early = head
            return False
        early, self.early = self.early, b""
        declared = int.from_bytes(head, "big")
        if declared > self.daemon.max_msg_size:  # over Slurm's own limit: closed unanswered
            self.abort()
            return False
        self.refusal = self.daemon.budget.admit(declared)
        if self.refusal is not None:
            self.early = early
            self._refusing(data)
            return False
        self.reserved = declared
        if early:
            self.framer.feed(early)  # the prefix's first bytes, kept apart so no chunk is joined twice
        return True

    def _refusing(self, data: bytes) -> None:
        """Read up to the header's version field, then answer the refusal in that version."""
        self.early += bytes(data[:REFUSAL_PEEK - len(self.early)])
        if len(self.early) < REFUSAL_PEEK:
            return
        version = int.from_bytes(self.early[LENGTH_PREFIX_SIZE:REFUSAL_PEEK], "big")
        if version not in ACCEPTED_VERSIONS:  # no version to answer in: closed, as 19.05 would
            self.abort()
            return
        self.timer.cancel()
        self.task = asyncio.get_running_loop().create_task(self._refuse(version))

    def eof_received(self) -> bool:
        if self.draining:
            return False  # the client read its refusal and left: close
        if self.task is None:  # closed before a whole request: nothing to answer
            self.abort()
        return True  # keep the write side open for the reply

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self._release()
        if self.slot is not None:
            self.slot.release()
        self.daemon._connections.discard(self)

    def _release(self) -> None:
        """Give the request's bytes back to the daemon's budget (once)."""
        if self.reserved:
            self.daemon.budget.release(self.reserved)
            self.reserved = 0

    def abort(self) -> None:
        self.transport.abort()

    async def _answer(self, frame: bytes) -> None:
        reply = None
        try:
            reply = await self.respond(frame, peer_address(self.transport))
        except REFUSALS:
            pass  # refused: close without a reply
        except PyslurmrpcError as exc:  # the fake's own failure (a reply it cannot encode): say so
            log.error("%s: closed a connection unanswered: %s", type(self.daemon).__name__, exc)
        except Exception:  # a bug must not take the daemon down
            log.exception("%s: unexpected error on a connection", type(self.daemon).__name__)
        finally:
            del frame
            self._release()
        if self.transport.is_closing():
            return
        if reply is not None:
            self.transport.write(reply)
        # a client that does not read its reply is dropped after MessageTimeout
        self.timer = asyncio.get_running_loop().call_later(self.daemon.message_timeout, self.abort)
        self.transport.close()

    async def _refuse(self, version: int) -> None:
        reply = None
        try:
            reply = await self.daemon.refusal_reply(version, self.refusal)
        except REFUSALS:
            pass  # no credential to sign with: closed unanswered
        except PyslurmrpcError as exc:  # the fake's own failure (a reply it cannot encode): say so
            log.error("%s: closed a connection unanswered: %s", type(self.daemon).__name__, exc)
        if self.transport.is_closing():
            return
        if reply is not None:
            self.transport.write(reply)
        # closing with unread input would reset the connection and could destroy the reply
        # before the client reads it: half-close, drop input until the client closes
        self.draining = True
        self.transport.write_eof()
        self.timer = asyncio.get_running_loop().call_later(self.daemon.message_timeout, self.abort)


class FakeDaemon:
    """Base of the fake daemons: listening, per-connection limits, lifecycle.

    Use ``await d.start()`` / ``await d.stop()``, ``async with d:``, or the
    sync ``with d:`` which runs the server in a background thread.
    ``auth`` is an authenticator from :mod:`pyslurmrpc.auth.slurm_auth` (or a
    :class:`DaemonAuth`); default auth/none.  ``max_msg_size``: Slurm's limit on a
    length prefix (over it: closed unread); ``max_request_size`` / ``max_buffered``:
    the fake's own limits per request and across its connections (over them:
    an RC reply, see :mod:`.limits`).
    """

    accept_replayed = False

    def __init__(self, *, auth=None, host: str = "127.0.0.1", port: int = 0,
                 message_timeout: float = defaults.MESSAGE_TIMEOUT, max_msg_size: int = MAX_MSG_SIZE,
                 max_request_size: int = MAX_REQUEST_SIZE, max_buffered: int = MAX_BUFFERED_BYTES):
        auth = NoneAuth(uid=0, gid=0) if auth is None else auth
        self.auth = auth if isinstance(auth, DaemonAuth) else DaemonAuth(
            auth, accept_replayed=self.accept_replayed)
        self.host, self.port = host, port
        self.message_timeout = message_timeout
        self.max_msg_size = max_msg_size
        self.budget = ByteBudget(max_request_size, max_buffered)
        self._server: Optional[Listener] = None
        self._connections: set[_Connection] = set()
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the daemon listens on (port is the real one once started)."""
        return self.host, self.port

    # --- lifecycle ----------------------------------------------------------
    async def start(self) -> "FakeDaemon":
        """Bind and start accepting; returns self."""
        sock = listening_socket(self.host, self.port, LISTEN_BACKLOG)
        self._server = Listener(sock, lambda slot: _Connection(self, slot), type(self).__name__)
        self.port = sock.getsockname()[1]
        log.info("%s listening on %s", type(self).__name__, address_text(self.host, self.port))
        return self

    async def stop(self) -> None:
        """Stop accepting, drop open connections."""
        if self._server is not None:
            self._server.close()
            connections = list(self._connections)
            tasks = [c.task for c in connections if c.task is not None]
            for conn in connections:
                conn.abort()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        """Start if needed and serve until cancelled."""
        if self._server is None:
            await self.start()
        await self._server.serve_forever()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def __enter__(self):
        """Run the daemon on its own event loop in a background thread."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=type(self).__name__,
                                        daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), self._loop).result(THREAD_START_TIMEOUT)
        except BaseException:  # e.g. the port is taken: do not leave the thread behind
            self._end_thread()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(THREAD_START_TIMEOUT)
        finally:
            self._end_thread()

    def _end_thread(self) -> None:
        loop = self._loop
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(THREAD_START_TIMEOUT)
        loop.close()
        self._loop = self._thread = None

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the daemon's loop thread (sync mode) and return its result.

        Use it to change the cluster while the daemon runs in the background.
        """
        if self._loop is None:
            return fn(*args)

        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(THREAD_START_TIMEOUT)

    async def respond(self, frame: bytes, peer: Address) -> Optional[bytes]:
        """The reply frame for one request frame, or None to close without a reply."""
        raise NotImplementedError

    def responder(self, transport: asyncio.BaseTransport):
        """The ``respond`` coroutine function answering a new connection, None to refuse it.
        One daemon answers all its connections; a farm of nodes picks one by local address."""
        return self.respond

    # --- helpers for subclasses -------------------------------------------------
    @staticmethod
    def decode_request(frame: bytes) -> Optional[Message]:
        """The decoded request, or None when 19.05 would refuse the frame unread."""
        msg = decode_message(frame)  # ProtocolError: garbage
        if msg.header.version not in ACCEPTED_VERSIONS:
            log.info("refused protocol version 0x%04x", msg.header.version)
            return None
        return msg

    async def encode_reply(self, request: Message, reply, **header) -> bytes:
        """Encode ``reply`` in the request's version, signed with the daemon's credential."""
        return encode_message(await self.reply_message(request, reply, **header))

    async def refusal_reply(self, version: int, code: int) -> bytes:
        """The RC reply to a request refused at its length prefix, in its header's version."""
        log.info("%s: refused a request at its length prefix (return code %d)", type(self).__name__, code)
        return encode_message(await self.signed_message(version, rc_reply(code)))

    async def reply_message(self, request: Message, reply, **header) -> Message:
        """``reply`` as a Message in the request's version, signed with the daemon's credential."""
        return await self.signed_message(request.header.version, reply, **header)

    async def signed_message(self, version: int, reply, **header) -> Message:
        """``reply`` as a Message in ``version``, signed with the daemon's credential."""
        auth = await self.auth.create(version)
        if auth is not None and getattr(auth, "plugin_version", FAKE_AUTH_WORD) != FAKE_AUTH_WORD:
            # a 17.11/18.08 CLIENT writes its release there; 19.05.8 daemons answer with theirs
            auth = dataclasses.replace(auth, plugin_version=FAKE_AUTH_WORD)
        return Message(Header(version=version, msg_type=int(reply.msg_type), **header), auth, reply.body)
