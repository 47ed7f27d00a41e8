"""The floor under pyslurmrpc's figures: the least Python that makes a call's system calls.

Each floor call is written out by hand with the system calls pyslurmrpc's blocking client
makes (munged: a non-blocking socket, connect, send, poll, recv, close; the controller: a
socket bounded by SO_SNDTIMEO, connect, send, poll, recv, close), each wait bounded by
:data:`FLOOR_TIMEOUT`, and no more Python than that needs: no failover, no version
detection, no retries.  The request is the client's own frame, made once by the library's
encoder, with each call's credential put in (every credential of one payload has one
length); the reply is read whole, decoded and read by the library's own rules (a refusal
raises, as the client's call would), and its credential, where it has one, verified at
munged.  Whatever pyslurmrpc costs beyond the floor is the library's; whatever the floor
costs beyond libslurm and libmunge is the interpreter's and the machine's (README, "The
floor under the figures").
"""

from __future__ import annotations

import _socket
import select
import socket
import struct

from ..auth.munge import MungeClient
from ..auth.munge_constants import MSG_HDR_SIZE, MsgType
from ..auth.munge_proto import (
    build_request, decode_request_body, encode_request_body, parse_decode_response, parse_encode_response,
)
from ..auth.munge_xfer import _BODY_SIZE
from ..client import calls
from ..client.core import reply_limit
from ..client.flows import _speaker
from ..client.rpc import _frame, _key
from ..runners import run_sync
from ..sync_sockets import kernel_timeval
from ..wire import MungeAuthCred
from ..wire.repeats import decode_reply_frame

#: seconds each connect, send and wait of a floor call may take (the bench's clients' timeout)
FLOOR_TIMEOUT = 30
_POLL_MS = FLOOR_TIMEOUT * 1000
#: what one recv() asks for: munged's answers are small; Slurm sends a reply's length prefix
#: on its own, then the rest (a reply's second read usually holds all of it)
_CHUNK = 65536
#: Slurm's frame length prefix (slurm_msg_sendto): a big-endian uint32
_PREFIX = struct.Struct(">I")


def _wait(sock) -> None:
    """Until ``sock`` can be read (an error or hang-up counts), at most FLOOR_TIMEOUT."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if not poller.poll(_POLL_MS):
        raise TimeoutError(f"no answer within {FLOOR_TIMEOUT} s")


def _read(sock, have: bytes) -> bytes:
    """``have`` and what comes next on the non-blocking ``sock``, waiting for it first."""
    _wait(sock)
    chunk = sock.recv(_CHUNK, socket.MSG_DONTWAIT)
    if not chunk:
        raise ConnectionError("the peer closed before its answer was whole")
    return have + chunk


def _munged_answer(sock, rsp: int) -> bytes:
    """The body of munged's answer of type ``rsp``, its header checked as the library checks it."""
    data = _read(sock, b"")
    while len(data) < MSG_HDR_SIZE:
        data = _read(sock, data)
    need = MSG_HDR_SIZE + _BODY_SIZE[rsp](data[:MSG_HDR_SIZE])
    while len(data) < need:
        data = _read(sock, data)
    return data[MSG_HDR_SIZE:need]


def _munged(path: str):
    sock = _socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def _transact(path: str, request: bytes, rsp: int) -> bytes:
    sock = _munged(path)
    try:
        _send_small(sock, request)
        return _munged_answer(sock, rsp)
    finally:
        sock.close()


def _send_small(sock, request: bytes) -> None:
    """One send() of a request that fits a fresh socket's buffer (anything else is refused)."""
    if sock.send(request) != len(request):
        raise ConnectionError(f"a {len(request)}-byte request did not go out in one send")


def munge_encode(path: str, payload: bytes = b""):
    """A callable minting one credential (bytes) for ``payload`` at munged's ``path``."""
    return _encoder(path, build_request(MsgType.ENC_REQ, encode_request_body(payload)))


def _encoder(path: str, request: bytes):
    """A callable sending the ENC_REQ ``request`` to munged's ``path``: the credential (bytes)."""
    return lambda: parse_encode_response(_transact(path, request, MsgType.ENC_RSP)).encode()


def munge_decode(path: str):
    """A callable decoding one credential at munged's ``path`` (munged's refusal raises)."""
    return lambda cred: parse_decode_response(_transact(path, build_request(MsgType.DEC_REQ, decode_request_body(cred)),
                                                        MsgType.DEC_RSP))


class CallFloor:
    """One RPC of ``client``'s (``op``: "ping" or "checkpoint_able" of ``job``), the floor way.

    :meth:`plain` connects while munged mints its credential (munged's answer read once the
    TCP connect returned, as the client overlaps them); :meth:`premint` takes a credential
    from a stock of ``depth``, which the call that finds it empty mints one after another
    before its request (``Client(premint=depth)`` refills its stock in one call too, its mints
    during that call's waits)."""

    def __init__(self, client, op: str, job: int, munge_socket: str, depth: int):
        self._call = calls.ping() if op == "ping" else calls.able(job, 0)
        self.version = _sent_version(client, op)
        frame, cred = run_sync(_frame(client._state, self._call, self.version))
        text = cred.credential.encode()
        at = frame.index(text)
        self._head, self._tail, self._cred_len = frame[:at], frame[at + len(text):], len(text)
        # the template's own credential is never sent: decoding it spends nothing
        payload = MungeClient(munge_socket).decode(text).payload
        self._mint_request = build_request(MsgType.ENC_REQ, encode_request_body(payload))
        self._mint = _encoder(munge_socket, self._mint_request)
        self._decode = munge_decode(munge_socket)
        controller = client._state.settings.controllers[0]
        self._path, self._address = munge_socket, (controller.host, controller.port)
        self._depth, self._stock, self._limit = depth, [], reply_limit()

    def _framed(self, cred: bytes) -> bytes:
        if len(cred) != self._cred_len:
            raise RuntimeError(f"munged minted a credential of {len(cred)} bytes, the frame holds "
                               f"{self._cred_len}")
        return self._head + cred + self._tail

    def _connect(self):
        sock = _socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, kernel_timeval(FLOOR_TIMEOUT))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(self._address)
        except BaseException:
            sock.close()
            raise
        return sock

    def plain(self):
        munged = _munged(self._path)
        try:
            _send_small(munged, self._mint_request)
            sock = self._connect()
            try:
                frame = self._framed(parse_encode_response(_munged_answer(munged, MsgType.ENC_RSP)).encode())
            except BaseException:
                sock.close()
                raise
        finally:
            munged.close()
        return self._exchange(sock, frame)

    def premint(self):
        if not self._stock:
            self._stock = [self._mint() for _ in range(self._depth)]
        frame = self._framed(self._stock.pop())
        return self._exchange(self._connect(), frame)

    def _exchange(self, sock, frame: bytes):
        """Send ``frame``, read the whole reply, verify its credential; the call's result."""
        try:
            sock.sendall(frame)                     # bounded by SO_SNDTIMEO
            data = _read(sock, b"")
            while len(data) < _PREFIX.size:
                data = _read(sock, data)
            size = _PREFIX.unpack_from(data)[0]
            if size > self._limit:
                raise ConnectionError(f"a reply of {size} bytes is over the {self._limit} a reply may have")
            while len(data) < _PREFIX.size + size:
                data = _read(sock, data)
        finally:
            sock.close()
        reply = decode_reply_frame(data)
        if type(reply.auth) is MungeAuthCred:       # 23.02+ replies carry none (SLURM_NO_AUTH_CRED)
            self._decode(reply.auth.credential)
        return self._call.read_reply(reply)


def _sent_version(client, op: str) -> int:
    """The header version ``client``'s own call sends (its controller's release known): a ping
    speaks what worked before, the checkpoint calls their pinned version (client/flows.py)."""
    state = client._state
    if op != "ping":
        return state.settings.protocol_version
    controller = state.settings.controller_order(state.use_backup)[0]
    return _speaker(state)(state.versions.get(_key(controller)))
