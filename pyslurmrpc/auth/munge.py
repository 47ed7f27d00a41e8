"""MUNGE clients (sync and asyncio) speaking munged's UNIX-socket protocol.

Both clients run the same flows (:meth:`_Options.encode_flow`, ``decode_flow``:
message codec in :mod:`.munge_proto`, retry rules in :mod:`.munge_xfer`) on the
blocking or the asyncio runner; the blocking client makes a transaction's usual first
attempt by the runner's own handler and enters the flow only past it
(:func:`.munge_xfer.first_transact`).  No libmunge needed.

>>> client = MungeClient()                     # /run/munge/munge.socket.2
>>> cred = client.encode(b"hello", ttl=60)
>>> client.decode(cred).payload
b'hello'
"""

from __future__ import annotations

import operator
import os
from typing import Optional, Union

from .munge_constants import DEFAULT_SOCKET, TTL_DEFAULT, TTL_MAXIMUM, UID_ANY, Cipher, Mac, MsgType, Zip
from .munge_cred import MungeKey, ReplayCache, decode_offline, encode_offline
from .munge_proto import (
    Credential, decode_request_body, encode_request_body, parse_decode_response,
    parse_encode_response,
)
from .munge_xfer import LIBMUNGE_RETRY, RetryPolicy, first_transact, transaction
from ..effects import Flow, Transact
from ..errors import InvalidArgumentError
from ..runners import SYNC, run_async, run_sync

__all__ = ["MungeClient", "AsyncMungeClient", "Credential", "RetryPolicy", "decode_offline",
           "encode_offline", "MungeKey", "ReplayCache", "DEFAULT_SOCKET"]

#: distinct (payload, ttl) pairs whose ENC_REQ body a client keeps, and the longest payload kept
#: (a Slurm message hash is 33 bytes)
_USUAL_BODIES_KEPT = 32
_USUAL_PAYLOAD_MAX = 64


def _u32_or_any(name: str, value: Optional[int]) -> int:
    """A uid/gid restriction's field: None, -1 or all bits set (MUNGE_UID_ANY) mean "anyone" to
    munged; any other value must name an id (a larger number would wrap into another id)."""
    if value is None:
        return UID_ANY
    value = _whole(name, value)
    if value in (-1, UID_ANY):           # UID_ANY == GID_ANY
        return UID_ANY
    if not 0 <= value < UID_ANY:
        raise InvalidArgumentError(f"{name} must be -1 or {UID_ANY} (anyone) or an id from 0 to {UID_ANY - 1}, "
                                   f"not {value!r}")
    return value


def _ttl_field(ttl: Optional[int]) -> int:
    if ttl is None:
        return TTL_DEFAULT
    ttl = _whole("ttl", ttl)
    if ttl > TTL_MAXIMUM:               # a uint32 on the wire: no silent wrap
        raise InvalidArgumentError(f"ttl must be seconds up to {TTL_MAXIMUM} (negative: munged's maximum), "
                                   f"not {ttl!r}")
    return TTL_MAXIMUM if ttl < 0 else ttl


def _whole(name: str, value) -> int:
    """``value`` as an int: anything with ``__index__`` (a numpy integer too), not a bool (a
    TypeError naming ``name`` otherwise)."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")


def _payload_bytes(payload) -> bytes:
    """The payload as bytes: any bytes-like object (a buffer); not an int (bytes(5) would be
    five NULs), a list or a str (a TypeError naming the payload)."""
    try:
        return memoryview(payload).tobytes()
    except TypeError:
        raise TypeError(f"payload must be bytes-like (bytes, bytearray, memoryview, array...), "
                        f"not {type(payload).__name__}") from None


class _Options:
    """Arguments and the flows both clients run (no I/O)."""

    def __init__(self, socket_path: Optional[Union[str, os.PathLike]] = None, *,
                 retry: RetryPolicy = LIBMUNGE_RETRY, cipher: int = Cipher.DEFAULT,
                 mac: int = Mac.DEFAULT, zip: int = Zip.DEFAULT, realm: Optional[str] = None):
        self.socket_path = os.fspath(socket_path) if socket_path is not None else DEFAULT_SOCKET
        self.retry = retry
        self._defaults = (cipher, mac, zip, realm)
        self._usual_bodies: dict = {}

    def _encode_body(self, payload: bytes, ttl, uid, gid, cipher, mac, zip, realm) -> bytes:
        # a call's usual request - a bytes payload, munged's or a whole-number TTL, no other
        # argument - is built once (every Slurm call mints one; a ping's payload repeats)
        usual = (type(payload) is bytes and len(payload) <= _USUAL_PAYLOAD_MAX and (ttl is None or type(ttl) is int)
                 and uid is None and gid is None and cipher is None and mac is None and zip is None and realm is None)
        if usual:
            body = self._usual_bodies.get((payload, ttl))
            if body is not None:
                return body
        body = self._build_body(payload, ttl, uid, gid, cipher, mac, zip, realm)
        if usual and len(self._usual_bodies) < _USUAL_BODIES_KEPT:
            self._usual_bodies[payload, ttl] = body
        return body

    def _build_body(self, payload: bytes, ttl, uid, gid, cipher, mac, zip, realm) -> bytes:
        d_cipher, d_mac, d_zip, d_realm = self._defaults
        return encode_request_body(
            _payload_bytes(payload), ttl=_ttl_field(ttl), uid=_u32_or_any("uid", uid), gid=_u32_or_any("gid", gid),
            cipher=d_cipher if cipher is None else cipher, mac=d_mac if mac is None else mac,
            zip=d_zip if zip is None else zip, realm=d_realm if realm is None else realm)

    def encode_flow(self, payload: bytes = b"", ttl: Optional[int] = None, uid: Optional[int] = None,
                    gid: Optional[int] = None, *, realm: Optional[str] = None, cipher: Optional[int] = None,
                    mac: Optional[int] = None, zip: Optional[int] = None,
                    deadline: Optional[float] = None) -> Flow:
        """The flow of :meth:`MungeClient.encode` (for ``yield from`` in other flows).

        ``deadline``: the runner's monotonic time by which the whole transaction,
        every libmunge retry and pause included, succeeds or fails (None: no bound).
        """
        body = self._encode_body(payload, ttl, uid, gid, cipher, mac, zip, realm)
        return parse_encode_response(
            (yield from transaction(self.socket_path, MsgType.ENC_REQ, body, self.retry, deadline)))

    def decode_flow(self, credential: Union[str, bytes], deadline: Optional[float] = None) -> Flow:
        """The flow of :meth:`MungeClient.decode` (``deadline``: see :meth:`encode_flow`)."""
        body = decode_request_body(credential)
        return parse_decode_response(
            (yield from transaction(self.socket_path, MsgType.DEC_REQ, body, self.retry, deadline)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(socket_path={self.socket_path!r})"


class MungeClient(_Options):
    """Blocking client of a local munged.

    ``socket_path`` defaults to ``/run/munge/munge.socket.2``.  ``retry``
    holds libmunge's retry limits.  ``cipher``/``mac``/``zip``/``realm`` are
    the defaults for :meth:`encode` (DEFAULT lets munged choose).
    Errors are :class:`~pyslurmrpc.auth.errors.MungeError` subclasses.
    """

    def encode(self, payload: bytes = b"", ttl: Optional[int] = None, uid: Optional[int] = None,
               gid: Optional[int] = None, *, realm: Optional[str] = None, cipher: Optional[int] = None,
               mac: Optional[int] = None, zip: Optional[int] = None) -> str:
        """Ask munged for a credential carrying ``payload``.

        ``ttl`` None = munged's default, negative = munged's maximum.
        ``uid``/``gid`` restrict who may decode it (None = anyone).
        """
        body = self._encode_body(payload, ttl, uid, gid, cipher, mac, zip, realm)
        return parse_encode_response(self._transact(MsgType.ENC_REQ, body))

    def decode(self, credential: Union[str, bytes]) -> Credential:
        """Ask munged to validate ``credential``; returns who encoded it and what it carries."""
        return parse_decode_response(self._transact(MsgType.DEC_REQ, decode_request_body(credential)))

    def _transact(self, req_type: int, body: bytes) -> bytes:
        """munged's response body: the first attempt at once by the blocking runner's own Transact
        handler (as :meth:`encode_flow` on that runner, less its layers); a failure, or an answer
        cut short, goes on in the flow with libmunge's retries (munge_xfer.first_transact)."""
        action = first_transact(self.socket_path, req_type, body, self.retry)
        if action is None:                # a name too long to connect to: the flow says why
            return run_sync(transaction(self.socket_path, req_type, body, self.retry))
        try:
            size, reply = SYNC.table[Transact](action)
        except Exception as exc:          # as the runner hands it into the flow
            first = exc
        else:
            if len(reply) == size:
                return reply
            first = (size, reply)
        return run_sync(transaction(self.socket_path, req_type, body, self.retry, first=first))


class AsyncMungeClient(_Options):
    """asyncio twin of :class:`MungeClient`: same arguments, awaitable methods.

    Each call uses its own connection, so many may be in flight at once.
    """

    async def encode(self, payload: bytes = b"", ttl: Optional[int] = None,
                     uid: Optional[int] = None, gid: Optional[int] = None, *,
                     realm: Optional[str] = None, cipher: Optional[int] = None,
                     mac: Optional[int] = None, zip: Optional[int] = None) -> str:
        """See :meth:`MungeClient.encode`."""
        return await run_async(self.encode_flow(payload, ttl, uid, gid, realm=realm, cipher=cipher, mac=mac,
                                                zip=zip))

    async def decode(self, credential: Union[str, bytes]) -> Credential:
        """See :meth:`MungeClient.decode`."""
        return await run_async(self.decode_flow(credential))
