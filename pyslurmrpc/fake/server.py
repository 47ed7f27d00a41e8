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
from pyslurmrpc.errors import ProtocolError, PyslurmrpcError
from pyslurmrpc.wire.versions import RELEASE_BY_CODE
from pyslurmrpc.wire import (
    MAX_MSG_SIZE, Address, Framer, Header, Message, decode_message, encode_message, version_code,
)

from .daemon_auth import DaemonAuth

log = logging.getLogger("pyslurmrpc.fake")

#: header versions 19.05's check_header_version lets through (current, one back, minimum)
ACCEPTED_VERSIONS = frozenset(version_code(v) for v in ("17.11", "18.08", "19.05"))
#: the word after the plugin name in the fake's replies: 19.05.8's, whatever the request's release
FAKE_AUTH_WORD = RELEASE_BY_CODE[version_code("19.05")].auth_word
#: pending connections the kernel queues for accept()
LISTEN_BACKLOG = 1024
#: seconds the sync context manager waits for the server thread to start or stop
THREAD_START_TIMEOUT = 30.0


def peer_address(transport: asyncio.BaseTransport) -> Address:
    """The requester's IPv4 address and port as a 19.05 orig_addr (0 for non-IPv4)."""
    peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
    try:
        return Address(None, int(ipaddress.IPv4Address(peer[0])), peer[1])
    except ValueError:
        return Address(None, 0, peer[1])


class _Connection(asyncio.Protocol):
    """One accepted connection: collect one frame, answer it, close.

    A plain Protocol rather than streams: a connection costs one object and
    one timer until its request is complete, which keeps thousands of idle
    sockets cheap and the per-RPC overhead low.
    """

    def __init__(self, daemon: "FakeDaemon"):
        self.daemon = daemon
        self.framer = Framer(daemon.max_msg_size)
        self.transport: Optional[asyncio.Transport] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        self.task: Optional[asyncio.Task] = None
        self.respond = daemon.respond

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
            return  # one request per connection: anything after it is ignored
        try:
            frames = self.framer.feed(data)
        except ProtocolError:  # a length prefix over the limit: close at once
            self.abort()
            return
        if frames:
            self.timer.cancel()
            self.transport.pause_reading()
            self.task = asyncio.get_running_loop().create_task(self._answer(frames[0]))

    def eof_received(self) -> bool:
        if self.task is None:  # closed before a whole request: nothing to answer
            self.abort()
        return True  # keep the write side open for the reply

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.daemon._connections.discard(self)

    def abort(self) -> None:
        self.transport.abort()

    async def _answer(self, frame: bytes) -> None:
        reply = None
        try:
            reply = await self.respond(frame, peer_address(self.transport))
        except (PyslurmrpcError, OSError, asyncio.TimeoutError):
            pass  # refused: close without a reply
        except Exception:  # a bug must not take the daemon down
            log.exception("%s: unexpected error on a connection", type(self.daemon).__name__)
        if self.transport.is_closing():
            return
        if reply is not None:
            self.transport.write(reply)
        # a client that does not read its reply is dropped after MessageTimeout
        self.timer = asyncio.get_running_loop().call_later(self.daemon.message_timeout, self.abort)
        self.transport.close()


class FakeDaemon:
    """Base of the fake daemons: listening, per-connection limits, lifecycle.

    Use ``await d.start()`` / ``await d.stop()``, ``async with d:``, or the
    sync ``with d:`` which runs the server in a background thread.
    ``auth`` is an authenticator from :mod:`pyslurmrpc.auth.slurm_auth` (or a
    :class:`DaemonAuth`); default auth/none.
    """

    accept_replayed = False

    def __init__(self, *, auth=None, host: str = "127.0.0.1", port: int = 0,
                 message_timeout: float = defaults.MESSAGE_TIMEOUT, max_msg_size: int = MAX_MSG_SIZE):
        auth = NoneAuth(uid=0, gid=0) if auth is None else auth
        self.auth = auth if isinstance(auth, DaemonAuth) else DaemonAuth(
            auth, accept_replayed=self.accept_replayed)
        self.host, self.port = host, port
        self.message_timeout = message_timeout
        self.max_msg_size = max_msg_size
        self._server: Optional[asyncio.base_events.Server] = None
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
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self.port,
                                                backlog=LISTEN_BACKLOG)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s listening on %s:%d", type(self).__name__, self.host, self.port)
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

    async def reply_message(self, request: Message, reply, **header) -> Message:
        """``reply`` as a Message in the request's version, signed with the daemon's credential."""
        version = request.header.version
        auth = await self.auth.create(version)
        if auth is not None and getattr(auth, "plugin_version", FAKE_AUTH_WORD) != FAKE_AUTH_WORD:
            # a 17.11/18.08 CLIENT writes its release there; 19.05.8 daemons answer with theirs
            auth = dataclasses.replace(auth, plugin_version=FAKE_AUTH_WORD)
        return Message(Header(version=version, msg_type=int(reply.msg_type), **header), auth, reply.body)
