"""Sans-I/O codec for munged's client protocol (message format version 4).

Every message is an 11-byte header followed by a body; all integers are
big-endian.  Layouts follow ``_msg_pack`` / ``_msg_unpack`` in MUNGE's
src/libcommon/m_msg.c (0.5.15); protocol_specs/munge.md has the tables.

This module never touches a socket: the transports in :mod:`.munge` feed it
bytes.  Both directions are implemented (requests *and* responses) so a fake
munged or a spec test can use the same code.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from typing import Optional

from .errors import MungeError, MungeSocketError, munge_error
from .munge_constants import (
    GID_ANY, MAX_REQUEST_LEN, MSG_HDR_SIZE, MSG_MAGIC, MSG_VERSION, UID_ANY,
    Cipher, Mac, MungeErr, Zip,
)

_HDR = struct.Struct(">IBBBI")          # magic, version, type, retry, pkt_len
_CIPHER_MAC_ZIP_REALM_LEN = struct.Struct(">BBBB")  # in ENC_REQ and DEC_RSP
_U32 = struct.Struct(">I")
_TTL_UID_GID_LEN = struct.Struct(">IIII")
_DEC_TIMES_IDS = struct.Struct(">IIIIIII")  # time0 time1 uid gid auth_uid auth_gid data_len
_DEC_TTL_ADDR_LEN = struct.Struct(">IB")
#: a DEC_RSP with no error text, no realm and a 4-byte origin address, up to its payload:
#: code, text_len, cipher, mac, zip, realm_len, ttl, addr_len, addr, then _DEC_TIMES_IDS's fields
_DEC_RSP_USUAL = struct.Struct(">BBBBBBIB4sIIIIIII")
_SUCCESS = int(MungeErr.SUCCESS)
_inet_ntoa = socket.inet_ntoa

#: munged keeps these credentials' fields in the response despite the error
#: (dec_process_msg in src/munged/dec.c)
ERRORS_WITH_CREDENTIAL = frozenset(
    {MungeErr.CRED_EXPIRED, MungeErr.CRED_REWOUND, MungeErr.CRED_REPLAYED})


#: the members by value, read directly: calling the enum costs a microsecond per field (an
#: unknown value stays an int)
_CIPHERS, _MACS, _ZIPS = Cipher._value2member_map_, Mac._value2member_map_, Zip._value2member_map_


@dataclass(frozen=True)
class Credential:
    """A decoded MUNGE credential.

    ``uid``/``gid`` identify the process that encoded it; ``payload`` is the
    data munged into it; ``encode_time``/``decode_time`` are UNIX seconds;
    ``addr`` is the origin IPv4 address munged recorded; ``uid_restriction``
    and ``gid_restriction`` are None when anyone may decode.
    """

    uid: int
    gid: int
    payload: bytes = field(default=b"", repr=False)
    encode_time: int = 0
    ttl: int = 0
    addr: str = "0.0.0.0"
    decode_time: int = 0
    cipher: Cipher = Cipher.NONE
    mac: Mac = Mac.NONE
    zip: Zip = Zip.NONE
    realm: Optional[str] = None
    uid_restriction: Optional[int] = None
    gid_restriction: Optional[int] = None

    @property
    def expires_at(self) -> int:
        """The last second (UNIX time) at which the credential still decodes."""
        return self.encode_time + self.ttl


# ---------------------------------------------------------------------------
# Header
# ---------------------------------------------------------------------------
def pack_header(msg_type: int, body_len: int, retry: int = 0) -> bytes:
    """The 11-byte header announcing a body of ``body_len`` bytes."""
    return _HDR.pack(MSG_MAGIC, MSG_VERSION, msg_type, retry, body_len)


def unpack_header(data: bytes, expected_type: Optional[int] = None,
                  max_len: int = 0) -> tuple[int, int, int]:
    """Check a header and return ``(msg_type, retry, body_len)``.

    Problems are ``EMUNGE_SOCKET`` errors, as in libmunge's ``m_msg_recv``,
    except an over-long body which is ``EMUNGE_BAD_LENGTH``.
    """
    if len(data) != MSG_HDR_SIZE:
        raise MungeSocketError(f"Received incomplete message header: {len(data)} of {MSG_HDR_SIZE} bytes")
    magic, version, msg_type, retry, body_len = _HDR.unpack(data)
    if magic != MSG_MAGIC:
        raise MungeSocketError(f"Received invalid message magic {magic}")
    if version != MSG_VERSION:
        raise MungeSocketError(f"Received invalid message version {version}")
    if expected_type is not None and msg_type != expected_type:
        raise MungeSocketError(f"Received unexpected message type: wanted {expected_type}, got {msg_type}")
    if max_len and body_len > max_len:
        raise munge_error(MungeErr.BAD_LENGTH,
                          f"Failed to receive message: length of {body_len} exceeds max of {max_len}")
    return msg_type, retry, body_len


# ---------------------------------------------------------------------------
# Requests (client -> munged)
# ---------------------------------------------------------------------------
def _cstr(text: Optional[str]) -> bytes:
    """A NUL-terminated string, or nothing at all for None (length 0)."""
    return b"" if text is None else text.encode() + b"\0"


def encode_request_body(payload: bytes = b"", *, ttl: int = 0, uid: int = UID_ANY,
                        gid: int = GID_ANY, cipher: int = Cipher.DEFAULT,
                        mac: int = Mac.DEFAULT, zip: int = Zip.DEFAULT,
                        realm: Optional[str] = None) -> bytes:
    """Body of MUNGE_MSG_ENC_REQ (``_msg_pack`` case ENC_REQ)."""
    realm_b = _cstr(realm)
    if len(realm_b) > 255:
        raise munge_error(MungeErr.BAD_ARG, "realm longer than 254 bytes")
    return b"".join((
        _CIPHER_MAC_ZIP_REALM_LEN.pack(cipher, mac, zip, len(realm_b)), realm_b,
        _TTL_UID_GID_LEN.pack(ttl & 0xFFFFFFFF, uid & 0xFFFFFFFF, gid & 0xFFFFFFFF, len(payload)),
        payload,
    ))


def credential_type_error(credential) -> TypeError:
    """What a credential that is neither text nor bytes (None, a number) is told."""
    return TypeError(f"credential must be the credential's text (str or bytes), not {type(credential).__name__}")


def decode_request_body(credential: str | bytes) -> bytes:
    """Body of MUNGE_MSG_DEC_REQ: the credential text with its NUL (``_decode_req``)."""
    if isinstance(credential, str):
        raw = credential.encode("ascii")
    elif isinstance(credential, (bytes, bytearray, memoryview)):
        raw = bytes(credential)
    else:
        raise credential_type_error(credential)
    raw = raw.rstrip(b"\0")
    if not raw:
        raise munge_error(MungeErr.BAD_ARG, "No credential specified")
    return _U32.pack(len(raw) + 1) + raw + b"\0"


def build_request(msg_type: int, body: bytes, retry: int = 0) -> bytes:
    """Header + body, refusing what munged would refuse as too long."""
    if len(body) > MAX_REQUEST_LEN:
        raise munge_error(MungeErr.BAD_LENGTH,
                          f"Failed to send message: length of {len(body)} exceeds max of {MAX_REQUEST_LEN}")
    return pack_header(msg_type, len(body), retry) + body


@dataclass(frozen=True)
class EncodeRequest:
    """A parsed MUNGE_MSG_ENC_REQ (for fake daemons and spec tests)."""

    cipher: int
    mac: int
    zip: int
    realm: Optional[str]
    ttl: int
    uid_restriction: int
    gid_restriction: int
    payload: bytes = field(repr=False)


class _Reader:
    """Bounds-checked big-endian reader; running short is a socket error."""

    __slots__ = ("buf", "pos", "what")

    def __init__(self, buf: bytes, what: str):
        self.buf, self.pos, self.what = buf, 0, what

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise _unpack_error(self.what, "truncated")
        chunk = self.buf[self.pos:end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def cstr(self, n: int) -> Optional[str]:
        return _text(self.take(n))

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise _unpack_error(self.what, "trailing bytes")


def parse_encode_request(body: bytes) -> EncodeRequest:
    r = _Reader(body, "ENC_REQ")
    cipher, mac, zip_, realm_len = r.u8(), r.u8(), r.u8(), r.u8()
    realm = r.cstr(realm_len)
    ttl, uid, gid, n = r.u32(), r.u32(), r.u32(), r.u32()
    payload = r.take(n)
    r.done()
    return EncodeRequest(cipher, mac, zip_, realm, ttl, uid, gid, payload)


def parse_decode_request(body: bytes) -> str:
    r = _Reader(body, "DEC_REQ")
    text = r.cstr(r.u32()) or ""
    r.done()
    return text


# ---------------------------------------------------------------------------
# Responses (munged -> client)
# ---------------------------------------------------------------------------
def parse_encode_response(body: bytes) -> str:
    """Credential text from MUNGE_MSG_ENC_RSP, or raise munged's error (read by offsets, as
    :func:`parse_decode_response`: every mint passes here; short or long bodies get the same errors)."""
    try:
        code, text_len = body[0], body[1]
        text = _cstr_at(body, 2, text_len)
        (n,) = _U32.unpack_from(body, 2 + text_len)
    except (IndexError, struct.error):
        raise _unpack_error("ENC_RSP", "truncated") from None
    pos = 2 + text_len + _U32.size
    if pos + n != len(body):
        raise _unpack_error("ENC_RSP", "truncated" if pos + n > len(body) else "trailing bytes")
    data = body[pos:]
    if code != _SUCCESS:
        raise munge_error(code, text)
    if not data:
        raise munge_error(MungeErr.SNAFU, "Client received invalid data length 0")
    return data.rstrip(b"\0").decode("ascii")


def parse_decode_response(body: bytes) -> Credential:
    """Credential from MUNGE_MSG_DEC_RSP, or raise munged's error.

    For expired, rewound and replayed credentials munged still fills in the
    fields; the raised error then carries them as ``.credential``.  Every call's
    reply is verified through here: munged's answer to a good credential (no error
    text, no realm, an IPv4 origin) is read in one unpack, any other by offsets, with
    no helper call per field; short or long bodies get the same errors.
    """
    if len(body) >= _DEC_RSP_USUAL.size:
        (code, text_len, cipher, mac, zip_, realm_len, ttl, addr_len, addr_raw,
         time0, time1, uid, gid, auth_uid, auth_gid, n) = _DEC_RSP_USUAL.unpack_from(body)
        if not (code or text_len or realm_len) and addr_len == 4 and n == len(body) - _DEC_RSP_USUAL.size:
            return _credential(uid, gid, body[_DEC_RSP_USUAL.size:], time0, ttl, _inet_ntoa(addr_raw), time1,
                               cipher, mac, zip_, None, auth_uid, auth_gid)
    try:
        code, text_len = body[0], body[1]
        pos = 2 + text_len
        cipher, mac, zip_, realm_len = _CIPHER_MAC_ZIP_REALM_LEN.unpack_from(body, pos)
        realm = _text(body[pos + 4:pos + 4 + realm_len])
        pos += 4 + realm_len
        ttl, addr_len = _DEC_TTL_ADDR_LEN.unpack_from(body, pos)
        addr_raw = body[pos + 5:pos + 5 + addr_len]
        pos += 5 + addr_len
        time0, time1, uid, gid, auth_uid, auth_gid, n = _DEC_TIMES_IDS.unpack_from(body, pos)
    except (IndexError, struct.error):     # every field ends before the next is unpacked
        raise _unpack_error("DEC_RSP", "truncated") from None
    pos += _DEC_TIMES_IDS.size
    if pos + n != len(body):
        raise _unpack_error("DEC_RSP", "truncated" if pos + n > len(body) else "trailing bytes")
    if code != _SUCCESS and code not in ERRORS_WITH_CREDENTIAL:
        raise munge_error(code, _text(body[2:2 + text_len]))
    cred = _credential(uid, gid, body[pos:], time0, ttl, _inet_ntoa(addr_raw) if addr_len == 4 else "0.0.0.0",
                       time1, cipher, mac, zip_, realm, auth_uid, auth_gid)
    if code != _SUCCESS:
        raise munge_error(code, _text(body[2:2 + text_len]), credential=cred)
    return cred


def _credential(uid, gid, payload, encode_time, ttl, addr, decode_time, cipher, mac, zip_, realm,
                auth_uid, auth_gid) -> Credential:
    """A Credential of a DEC_RSP's fields, built without the frozen dataclass's checked __init__
    (it costs more than parsing the response, on every call's reply verification)."""
    cred = object.__new__(Credential)
    object.__setattr__(cred, "__dict__", {
        "uid": uid, "gid": gid, "payload": payload, "encode_time": encode_time, "ttl": ttl, "addr": addr,
        "decode_time": decode_time, "cipher": _CIPHERS.get(cipher, cipher), "mac": _MACS.get(mac, mac),
        "zip": _ZIPS.get(zip_, zip_), "realm": realm,
        "uid_restriction": None if auth_uid == UID_ANY else auth_uid,
        "gid_restriction": None if auth_gid == GID_ANY else auth_gid,
    })
    return cred


def _cstr_at(body: bytes, pos: int, n: int) -> Optional[str]:
    """The n-byte NUL-terminated string at ``pos`` (None for n 0); IndexError when it runs short."""
    if pos + n > len(body):
        raise IndexError(pos + n)
    return _text(body[pos:pos + n])


def _text(raw: bytes) -> Optional[str]:
    """A string field's bytes as text, its NUL dropped; None when the field is absent (length 0)."""
    return raw.rstrip(b"\0").decode("utf-8", "replace") if raw else None


def _unpack_error(what: str, why: str) -> MungeSocketError:
    return MungeSocketError(f"Failed to unpack message type {what}: {why}")


def _error_fields(error: Optional[MungeError]) -> bytes:
    if error is None:
        return b"\0\0"
    text = _cstr(error.text)[:255]
    return bytes((error.code, len(text))) + text


def pack_encode_response(credential: Optional[str], error: Optional[MungeError] = None) -> bytes:
    """Body of MUNGE_MSG_ENC_RSP (what munged sends; for fakes and tests)."""
    data = _cstr(credential) if credential else b""
    return _error_fields(error) + _U32.pack(len(data)) + data


def pack_decode_response(cred: Credential, error: Optional[MungeError] = None) -> bytes:
    """Body of MUNGE_MSG_DEC_RSP (what munged sends; for fakes and tests)."""
    realm_b = _cstr(cred.realm)
    uid_r = UID_ANY if cred.uid_restriction is None else cred.uid_restriction
    gid_r = GID_ANY if cred.gid_restriction is None else cred.gid_restriction
    return b"".join((
        _error_fields(error),
        bytes((cred.cipher, cred.mac, cred.zip, len(realm_b))), realm_b,
        _U32.pack(cred.ttl), b"\x04", ipaddress.IPv4Address(cred.addr).packed,
        _DEC_TIMES_IDS.pack(cred.encode_time, cred.decode_time, cred.uid, cred.gid,
                            uid_r, gid_r, len(cred.payload)),
        cred.payload,
    ))
