"""The floor under pyslurmrpc's figures: the least Python that makes a call's system calls.

Each floor call is written out by hand on blocking sockets: no timeouts, no failover, no
version detection, no typed result, and of the reply only what tells a failed call (a
frame cut short, munged refusing the reply's credential).  The frame is the client's own,
made once by the library's encoder; each call puts its own credential in (every
credential of one payload has one length).  Whatever pyslurmrpc costs beyond the floor is
the library's; whatever the floor costs beyond libslurm and libmunge is the interpreter's
and the machine's, and no pure-Python client can go below it.  A goal the floor does not
meet is out of reach here (README, "The floor").
"""

from __future__ import annotations

import socket
import struct

from ..auth.munge import MungeClient
from ..auth.munge_constants import CRED_SUFFIX, MSG_HDR_SIZE, MsgType
from ..auth.munge_proto import (
    build_request, decode_request_body, encode_request_body, parse_decode_response, parse_encode_response,
    unpack_header,
)
from ..client import calls
from ..client.rpc import _frame
from ..runners import run_sync
from ..wire.constants import CRED_PREFIX

#: what one recv() asks for: a munged answer or a reply frame arrives in one
_CHUNK = 65536
#: Slurm's frame length prefix (slurm_msg_sendto): a big-endian uint32 sent on its own
_PREFIX = struct.Struct(">I")
_CRED_START, _CRED_END = CRED_PREFIX.encode(), CRED_SUFFIX.encode()
#: a reply frame is searched for a credential only this far in (header and auth come first)
_CRED_SEARCH = 4096


def _munged_answer(sock) -> bytes:
    """The body of munged's answer on ``sock`` (header checked by the library's unpack_header)."""
    data = sock.recv(_CHUNK)
    while len(data) < MSG_HDR_SIZE:
        data += _more(sock)
    need = MSG_HDR_SIZE + unpack_header(data[:MSG_HDR_SIZE])[2]
    while len(data) < need:
        data += _more(sock)
    return data[MSG_HDR_SIZE:need]


def _more(sock) -> bytes:
    chunk = sock.recv(_CHUNK)
    if not chunk:
        raise ConnectionError("the peer closed before its answer was whole")
    return chunk


def _transact(path: str, request: bytes) -> bytes:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        sock.sendall(request)
        return _munged_answer(sock)
    finally:
        sock.close()


def munge_encode(path: str, payload: bytes = b""):
    """A callable minting one credential (bytes) for ``payload`` at munged's ``path``."""
    request = build_request(MsgType.ENC_REQ, encode_request_body(payload))
    return lambda: parse_encode_response(_transact(path, request)).encode()


def munge_decode(path: str):
    """A callable decoding one credential at munged's ``path`` (munged's refusal raises)."""
    return lambda cred: parse_decode_response(_transact(path, build_request(MsgType.DEC_REQ,
                                                                            decode_request_body(cred))))


class CallFloor:
    """One RPC of ``client``'s (``op``: "ping" or "checkpoint_able" of ``job``), the floor way.

    :meth:`plain` mints its credential as it connects (munged's answer read once the TCP
    connect returned, the best order there is); :meth:`premint` takes one of ``depth`` minted
    together when the last ran out, as ``Client(premint=depth)`` refills its stock."""

    def __init__(self, client, op: str, job: int, version: int, munge_socket: str, depth: int):
        call = calls.ping() if op == "ping" else calls.able(job, 0)
        frame, cred = run_sync(_frame(client._state, call, version))
        text = cred.credential.encode()
        at = frame.index(text)
        self._head, self._tail, self._cred_len = frame[:at], frame[at + len(text):], len(text)
        # the template's own credential is never sent: decoding it spends nothing
        payload = MungeClient(munge_socket).decode(text).payload
        self._mint_request = build_request(MsgType.ENC_REQ, encode_request_body(payload))
        self._mint = munge_encode(munge_socket, payload)
        self._decode = munge_decode(munge_socket)
        self._path, self._address = munge_socket, (client._state.settings.controllers[0].host,
                                                    client._state.settings.controllers[0].port)
        self._depth, self._stock = depth, []

    def _framed(self, cred: bytes) -> bytes:
        if len(cred) != self._cred_len:
            raise RuntimeError(f"munged minted a credential of {len(cred)} bytes, the frame holds "
                               f"{self._cred_len}")
        return self._head + cred + self._tail

    def _connect(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect(self._address)
        except BaseException:
            sock.close()
            raise
        return sock

    def plain(self) -> None:
        munged = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            munged.connect(self._path)
            munged.sendall(self._mint_request)
            sock = self._connect()
            cred = parse_encode_response(_munged_answer(munged)).encode()
        finally:
            munged.close()
        self._exchange(sock, self._framed(cred))

    def premint(self) -> None:
        if not self._stock:
            self._stock = [self._mint() for _ in range(self._depth)]
        self._exchange(self._connect(), self._framed(self._stock.pop()))

    def _exchange(self, sock, frame: bytes) -> None:
        try:
            sock.sendall(frame)
            data = sock.recv(_CHUNK)
            while len(data) < _PREFIX.size:
                data += _more(sock)
            need = _PREFIX.size + _PREFIX.unpack_from(data)[0]
            while len(data) < need:
                data += _more(sock)
        finally:
            sock.close()
        start = data.find(_CRED_START, 0, _CRED_SEARCH)
        if start >= 0:            # 23.02+ replies carry none (SLURM_NO_AUTH_CRED)
            self._decode(data[start:data.index(_CRED_END, start + len(_CRED_START)) + 1])
