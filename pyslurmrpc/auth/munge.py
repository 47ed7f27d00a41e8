"""MUNGE clients (sync and asyncio) speaking munged's UNIX-socket protocol.

Both clients are thin transports over the sans-I/O pieces: message codec in
:mod:`.munge_proto`, retry rules in :mod:`.munge_xfer`.  No libmunge needed.

>>> client = MungeClient()                     # /run/munge/munge.socket.2
>>> cred = client.encode(b"hello", ttl=60)
>>> client.decode(cred).payload
b'hello'
"""

from __future__ import annotations

import _socket
import asyncio
import os
import socket
import struct
import time
from typing import Any, Generator, Optional, Union

from .munge_constants import DEFAULT_SOCKET, TTL_DEFAULT, TTL_MAXIMUM, Cipher, Mac, MsgType, Zip
from .munge_cred import MungeKey, ReplayCache, decode_offline, encode_offline
from .munge_proto import (
    Credential, decode_request_body, encode_request_body, parse_decode_response,
    parse_encode_response,
)
from .munge_xfer import LIBMUNGE_RETRY, Connect, Recv, RetryPolicy, Send, Sleep, Stat, transaction

__all__ = ["MungeClient", "AsyncMungeClient", "Credential", "RetryPolicy", "decode_offline",
           "encode_offline", "MungeKey", "ReplayCache", "DEFAULT_SOCKET"]

_RECV_CHUNK = 4096  # a whole response almost always fits in one read


def _u32_or_any(value: Optional[int]) -> int:
    """None (or -1) means "anyone" to munged: all bits set."""
    return 0xFFFFFFFF if value is None else value & 0xFFFFFFFF


def _ttl_field(ttl: Optional[int]) -> int:
    if ttl is None:
        return TTL_DEFAULT
    return TTL_MAXIMUM if ttl < 0 else ttl


class _Options:
    """Request building shared by both clients (no I/O)."""

    def __init__(self, socket_path: Optional[Union[str, os.PathLike]], retry: RetryPolicy,
                 cipher: int, mac: int, zip: int, realm: Optional[str]):
        self.socket_path = os.fspath(socket_path) if socket_path is not None else DEFAULT_SOCKET
        self.retry = retry
        self._defaults = (cipher, mac, zip, realm)

    def _encode_body(self, payload: bytes, ttl, uid, gid, cipher, mac, zip, realm) -> bytes:
        d_cipher, d_mac, d_zip, d_realm = self._defaults
        return encode_request_body(
            bytes(payload), ttl=_ttl_field(ttl), uid=_u32_or_any(uid), gid=_u32_or_any(gid),
            cipher=d_cipher if cipher is None else cipher, mac=d_mac if mac is None else mac,
            zip=d_zip if zip is None else zip, realm=d_realm if realm is None else realm)

    def _encode_xfer(self, *args) -> Generator:
        return transaction(self.socket_path, MsgType.ENC_REQ, self._encode_body(*args), self.retry)

    def _decode_xfer(self, credential) -> Generator:
        return transaction(self.socket_path, MsgType.DEC_REQ, decode_request_body(credential), self.retry)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(socket_path={self.socket_path!r})"


# ---------------------------------------------------------------------------
# Blocking transport
# ---------------------------------------------------------------------------
class _SyncIO:
    """Performs the actions :func:`munge_xfer.transaction` yields, blocking."""

    __slots__ = ("sock", "timeval", "pending", "table")

    def __init__(self, timeval: bytes):
        self.sock: Optional[socket.socket] = None
        self.timeval = timeval
        self.pending = b""
        self.table = {Stat: self.stat, Connect: self.connect, Send: self.send,
                      Recv: self.recv, Sleep: self.sleep}

    def run(self, gen: Generator) -> Any:
        table, value = self.table, None
        try:
            while True:
                try:
                    action = gen.send(value)
                except StopIteration as stop:
                    return stop.value
                value = table[type(action)](action)
        finally:
            self.close()

    @staticmethod
    def stat(action: Stat):
        try:
            return os.stat(action.arg).st_mode
        except OSError as err:
            return err

    def connect(self, action: Connect):
        self.close()
        # A blocking socket with kernel-side timeouts: no poll() before every
        # recv/send as Python's settimeout() would add (hot path).
        sock = _socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, self.timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, self.timeval)
        try:
            sock.connect(action.arg)
        except OSError as err:
            sock.close()
            return err
        self.sock = sock
        return None

    def send(self, action: Send):
        try:
            self.sock.sendall(action.arg)
        except BlockingIOError:       # SO_SNDTIMEO expired
            return TimeoutError("Timed-out")
        except OSError as err:
            return err
        return None

    def recv(self, action: Recv):
        data, size = self.pending, action.arg
        try:
            while len(data) < size:
                chunk = self.sock.recv(max(_RECV_CHUNK, size - len(data)))
                if not chunk:
                    break
                data += chunk
        except BlockingIOError:       # SO_RCVTIMEO expired
            return TimeoutError("Timed-out")
        except OSError as err:
            return err
        self.pending = data[size:]
        return data[:size]

    @staticmethod
    def sleep(action: Sleep):
        time.sleep(action.arg)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.pending = b""


class MungeClient(_Options):
    """Blocking client of a local munged.

    ``socket_path`` defaults to ``/run/munge/munge.socket.2``.  ``retry``
    holds libmunge's retry limits.  ``cipher``/``mac``/``zip``/``realm`` are
    the defaults for :meth:`encode` (DEFAULT lets munged choose).
    Errors are :class:`~pyslurmrpc.auth.errors.MungeError` subclasses.
    """

    def __init__(self, socket_path: Optional[Union[str, os.PathLike]] = None, *,
                 retry: RetryPolicy = LIBMUNGE_RETRY, cipher: int = Cipher.DEFAULT,
                 mac: int = Mac.DEFAULT, zip: int = Zip.DEFAULT, realm: Optional[str] = None):
        super().__init__(socket_path, retry, cipher, mac, zip, realm)
        ms = retry.timeout_ms
        self._timeval = struct.pack("@ll", ms // 1000, ms % 1000 * 1000)

    def encode(self, payload: bytes = b"", ttl: Optional[int] = None, uid: Optional[int] = None,
               gid: Optional[int] = None, *, realm: Optional[str] = None, cipher: Optional[int] = None,
               mac: Optional[int] = None, zip: Optional[int] = None) -> str:
        """Ask munged for a credential carrying ``payload``.

        ``ttl`` None = munged's default, negative = munged's maximum.
        ``uid``/``gid`` restrict who may decode it (None = anyone).
        """
        gen = self._encode_xfer(payload, ttl, uid, gid, cipher, mac, zip, realm)
        return parse_encode_response(_SyncIO(self._timeval).run(gen))

    def decode(self, credential: Union[str, bytes]) -> Credential:
        """Ask munged to validate ``credential``; returns who encoded it and what it carries."""
        return parse_decode_response(_SyncIO(self._timeval).run(self._decode_xfer(credential)))


# ---------------------------------------------------------------------------
# asyncio transport
# ---------------------------------------------------------------------------
class _AsyncIO:
    """Performs the yielded actions on the running event loop."""

    __slots__ = ("sock", "timeout", "pending", "loop", "unsent")

    def __init__(self, timeout: float):
        self.sock: Optional[socket.socket] = None
        self.timeout = timeout
        self.pending = b""
        self.unsent: Optional[bytes] = None
        self.loop = asyncio.get_running_loop()

    async def run(self, gen: Generator) -> Any:
        value = None
        try:
            while True:
                try:
                    action = gen.send(value)
                except StopIteration as stop:
                    return stop.value
                value = await self._perform(action)
        finally:
            self.close()

    async def _perform(self, action):
        kind = type(action)
        if kind is Stat:
            return _SyncIO.stat(action)   # a stat() never blocks meaningfully
        if kind is Sleep:
            return await asyncio.sleep(action.arg)
        fast = _FAST_STEPS.get(kind)
        if fast is not None:
            # A local UNIX socket usually connects, takes a small request and has
            # the answer's rest at once: doing that without the event loop saves
            # most of the per-call cost; only a step that would block awaits.
            try:
                return fast(self, action)
            except BlockingIOError:
                pass
            except OSError as err:
                return err
        try:
            return await _bounded(_ASYNC_STEPS[kind](self, action), self.timeout)
        except OSError as err:        # TimeoutError included
            return err
        except asyncio.TimeoutError:  # distinct from TimeoutError before 3.11
            return TimeoutError("Timed-out")

    def try_connect(self, action: Connect):
        self.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(action.arg)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def try_send(self, action: Send):
        sent = self.sock.send(action.arg)
        if sent != len(action.arg):
            self.unsent = action.arg[sent:]
            raise BlockingIOError

    def try_recv(self, action: Recv):
        data, size = self.pending, action.arg
        while len(data) < size:
            try:
                chunk = self.sock.recv(max(_RECV_CHUNK, size - len(data)))
            except BlockingIOError:
                self.pending = data
                raise
            if not chunk:
                break
            data += chunk
        self.pending = data[size:]
        return data[:size]

    async def connect(self, action: Connect):
        self.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await self.loop.sock_connect(sock, action.arg)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    async def send(self, action: Send):
        data, self.unsent = (self.unsent, None) if self.unsent is not None else (action.arg, None)
        await self.loop.sock_sendall(self.sock, data)

    async def recv(self, action: Recv):
        data, size = self.pending, action.arg
        while len(data) < size:
            chunk = await self.loop.sock_recv(self.sock, max(_RECV_CHUNK, size - len(data)))
            if not chunk:
                break
            data += chunk
        self.pending = data[size:]
        return data[:size]

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.pending = b""


if hasattr(asyncio, "timeout"):          # Python 3.11+: no extra task per step
    async def _bounded(coro, seconds: float):
        async with asyncio.timeout(seconds):
            return await coro
else:                                    # pragma: no cover
    async def _bounded(coro, seconds: float):
        return await asyncio.wait_for(coro, seconds)


_ASYNC_STEPS = {Connect: _AsyncIO.connect, Send: _AsyncIO.send, Recv: _AsyncIO.recv}
_FAST_STEPS = {Connect: _AsyncIO.try_connect, Send: _AsyncIO.try_send, Recv: _AsyncIO.try_recv}


class AsyncMungeClient(_Options):
    """asyncio twin of :class:`MungeClient`: same arguments, awaitable methods.

    Each call uses its own connection, so many may be in flight at once.
    """

    def __init__(self, socket_path: Optional[Union[str, os.PathLike]] = None, *,
                 retry: RetryPolicy = LIBMUNGE_RETRY, cipher: int = Cipher.DEFAULT,
                 mac: int = Mac.DEFAULT, zip: int = Zip.DEFAULT, realm: Optional[str] = None):
        super().__init__(socket_path, retry, cipher, mac, zip, realm)
        self._timeout = retry.timeout_ms / 1000

    async def encode(self, payload: bytes = b"", ttl: Optional[int] = None,
                     uid: Optional[int] = None, gid: Optional[int] = None, *,
                     realm: Optional[str] = None, cipher: Optional[int] = None,
                     mac: Optional[int] = None, zip: Optional[int] = None) -> str:
        """See :meth:`MungeClient.encode`."""
        gen = self._encode_xfer(payload, ttl, uid, gid, cipher, mac, zip, realm)
        return parse_encode_response(await _AsyncIO(self._timeout).run(gen))

    async def decode(self, credential: Union[str, bytes]) -> Credential:
        """See :meth:`MungeClient.decode`."""
        return parse_decode_response(await _AsyncIO(self._timeout).run(self._decode_xfer(credential)))
