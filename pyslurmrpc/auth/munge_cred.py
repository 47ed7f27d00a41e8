"""MUNGE credentials without munged: decode (and mint) them from the key file.

The steps mirror what munged 0.5.15 does (src/munged/dec.c, enc.c, conf.c
``create_subkeys``); protocol_specs/munge.md walks through them.  Pure
computation apart from reading the key file once.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import hashlib
import hmac
import ipaddress
import os
import struct
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Union

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher as _CryptoCipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes

from .errors import MungeError, munge_error
from .munge_constants import (
    CLOCK_REWIND_GRACE, CRED_PREFIX, CRED_SALT_LEN, CRED_SUFFIX, CRED_VERSION, DEFAULT_CIPHER,
    DEFAULT_MAC, DEFAULT_TTL, DEFAULT_ZIP, GID_ANY, KEY_LEN_MIN, MAXIMUM_TTL, REPLAY_MAC_LEN, UID_ANY,
    ZIP_MAGIC, Cipher, Mac, MungeErr, Zip,
)
from .munge_proto import Credential, credential_type_error

_INNER_FIXED = struct.Struct(">IIIIIII")  # time0 ttl uid gid auth_uid auth_gid data_len
_ZIP_META = struct.Struct(">II")          # magic, uncompressed length


# ---------------------------------------------------------------------------
# Algorithm tables (src/munged/cipher.c, src/libcommon/crypto.c / mac.c, zip.c)
# ---------------------------------------------------------------------------
def _decrepit(name: str):
    """Blowfish/CAST5 live in cryptography's "decrepit" corner (may be absent)."""
    try:
        from cryptography.hazmat.decrepit.ciphers import algorithms as old
        return getattr(old, name)
    except (ImportError, AttributeError):  # older cryptography kept them here
        return getattr(algorithms, name, None)


@dataclass(frozen=True)
class _CipherSpec:
    name: str
    block_size: int      # also the IV length (cipher_iv_size == block size)
    key_size: int
    algorithm: Optional[Callable]


CIPHERS: dict[int, _CipherSpec] = {
    Cipher.BLOWFISH: _CipherSpec("blowfish", 8, 16, _decrepit("Blowfish")),
    Cipher.CAST5: _CipherSpec("cast5", 8, 16, _decrepit("CAST5")),
    Cipher.AES128: _CipherSpec("aes128", 16, 16, algorithms.AES),
    Cipher.AES256: _CipherSpec("aes256", 16, 32, algorithms.AES),
}

#: MAC number -> (hashlib name, digest size)
MACS: dict[int, tuple[str, int]] = {
    Mac.MD5: ("md5", 16),
    Mac.SHA1: ("sha1", 20),
    Mac.RIPEMD160: ("ripemd160", 20),
    Mac.SHA256: ("sha256", 32),
    Mac.SHA512: ("sha512", 64),
}

#: zip number -> (compress, decompress)
ZIPS: dict[int, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    Zip.BZLIB: (lambda b: bz2.compress(b, 9), bz2.decompress),
    Zip.ZLIB: (zlib.compress, zlib.decompress),
}


def _cipher_spec(cipher: int) -> _CipherSpec:
    spec = CIPHERS.get(cipher)
    if spec is None:
        raise munge_error(MungeErr.BAD_CIPHER, f"Invalid cipher type {cipher}")
    if spec.algorithm is None:
        raise munge_error(MungeErr.BAD_CIPHER,
                          f"Cipher {spec.name} is not available in this cryptography build")
    return spec


def _mac_spec(mac: int) -> tuple[str, int]:
    spec = MACS.get(mac)
    if spec is None:
        raise munge_error(MungeErr.BAD_MAC, f"Invalid MAC type {mac}")
    try:
        hashlib.new(spec[0])
    except ValueError:
        raise munge_error(MungeErr.BAD_MAC,
                          f"MAC {spec[0]} is not available in this Python/OpenSSL build") from None
    return spec


def _key_size(cipher: int) -> int:
    return 0 if cipher == Cipher.NONE else _cipher_spec(cipher).key_size


# ---------------------------------------------------------------------------
# Key
# ---------------------------------------------------------------------------
class MungeKey:
    """The two subkeys munged derives from its key file (``create_subkeys``).

    dek_key = SHA1(key file || "1") encrypts; mac_key = SHA1(key file || "2")
    authenticates.  Key bytes are never shown in a repr.
    """

    __slots__ = ("_dek_key", "_mac_key")

    def __init__(self, key_bytes: bytes):
        if len(key_bytes) < KEY_LEN_MIN:
            raise munge_error(MungeErr.BAD_ARG, f"Keyfile must be at least {KEY_LEN_MIN} bytes")
        self._dek_key = hashlib.sha1(key_bytes + b"1").digest()
        self._mac_key = hashlib.sha1(key_bytes + b"2").digest()

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike]) -> "MungeKey":
        """Load (and cache, keyed on path, size and mtime) a MUNGE key file.  A file that
        cannot be read is a MungeError naming it, in munged's words (src/munged/conf.c)."""
        try:
            st = os.stat(path)
            return _load_key(os.fspath(path), st.st_size, st.st_mtime_ns)
        except OSError as exc:
            raise munge_error(MungeErr.BAD_ARG, f"Failed to open keyfile \"{os.fspath(path)}\": "
                                                f"{exc.strerror or exc}", os_errno=exc.errno) from None

    def __repr__(self) -> str:
        return "<MungeKey (hidden)>"

    def mac(self, mac: int, *parts: bytes) -> bytes:
        return hmac.digest(self._mac_key, b"".join(parts), _mac_spec(mac)[0])

    def dek(self, mac: int, cred_mac: bytes) -> bytes:
        return hmac.digest(self._dek_key, cred_mac, _mac_spec(mac)[0])


@lru_cache(maxsize=16)
def _load_key(path: str, _size: int, _mtime_ns: int) -> MungeKey:
    with open(path, "rb") as fh:
        return MungeKey(fh.read())


KeyLike = Union[MungeKey, str, os.PathLike, bytes]


def _as_key(key: KeyLike) -> MungeKey:
    if isinstance(key, MungeKey):
        return key
    if isinstance(key, bytes):
        return MungeKey(key)
    return MungeKey.from_file(key)


# ---------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------
class ReplayCache:
    """Remembers decoded credentials until they expire, like munged's replay hash.

    munged keys the hash on the first 16 MAC bytes plus the expiry time
    (src/munged/replay.c).
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[bytes, int], None] = {}

    def check_and_add(self, cred_mac: bytes, expires: int, now: int) -> bool:
        """True if new; False if this credential was decoded before."""
        if len(self._seen) > 1024:
            self._seen = {k: None for k in self._seen if k[1] >= now}
        key = (cred_mac[:REPLAY_MAC_LEN], expires)
        if key in self._seen:
            return False
        self._seen[key] = None
        return True


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------
def _unarmor(credential: Union[str, bytes]) -> bytes:
    if not isinstance(credential, (str, bytes)):
        raise credential_type_error(credential)
    text = credential.decode("ascii", "replace") if isinstance(credential, bytes) else credential
    text = text.strip().rstrip("\0")
    if not text:
        raise munge_error(MungeErr.BAD_ARG, "No credential specified")
    if not text.startswith(CRED_PREFIX):
        raise munge_error(MungeErr.BAD_CRED, "Failed to match armor prefix")
    body = text[len(CRED_PREFIX):]
    end = body.rfind(CRED_SUFFIX)
    if end < 0:
        raise munge_error(MungeErr.BAD_CRED, "Failed to match armor suffix")
    try:
        return base64.b64decode("".join(body[:end].split()), validate=True)
    except (binascii.Error, ValueError):
        raise munge_error(MungeErr.BAD_CRED, "Failed to base64-decode credential") from None


@dataclass(frozen=True)
class _Outer:
    cipher: int
    mac: int
    zip: int
    realm: Optional[str]
    iv: bytes
    outer_len: int


def _unpack_outer(raw: bytes) -> _Outer:
    if len(raw) < 5:
        raise munge_error(MungeErr.BAD_CRED, "Truncated credential header")
    version, cipher, mac, zip_, realm_len = raw[:5]
    if version != CRED_VERSION:
        raise munge_error(MungeErr.BAD_VERSION, f"Invalid credential version {version}")
    iv_len = 0 if cipher == Cipher.NONE else _cipher_spec(cipher).block_size
    mac_size = _mac_spec(mac)[1]
    if mac_size < _key_size(cipher):
        raise munge_error(MungeErr.BAD_MAC, f"Invalid MAC type {mac} with cipher type {cipher}")
    if zip_ != Zip.NONE and zip_ not in ZIPS:
        raise munge_error(MungeErr.BAD_ZIP, f"Invalid compression type {zip_}")
    end = 5 + realm_len + iv_len
    if end + mac_size > len(raw):
        raise munge_error(MungeErr.BAD_CRED, "Truncated credential")
    realm = raw[5:5 + realm_len].rstrip(b"\0").decode("utf-8", "replace") if realm_len else None
    return _Outer(cipher, mac, zip_, realm, raw[5 + realm_len:end], end)


def _decrypt(key: MungeKey, outer: _Outer, cred_mac: bytes, data: bytes) -> Optional[bytes]:
    """Plaintext, or None when the padding is wrong (reported later as invalid)."""
    if outer.cipher == Cipher.NONE:
        return data
    spec = _cipher_spec(outer.cipher)
    if not data or len(data) % spec.block_size:
        return None
    dek = key.dek(outer.mac, cred_mac)[:spec.key_size]
    dec = _CryptoCipher(spec.algorithm(dek), modes.CBC(outer.iv)).decryptor()
    # munged's cipher context pads like OpenSSL's EVP (PKCS#7), so a wrong pad is a bad key or cred
    unpadder = padding.PKCS7(spec.block_size * 8).unpadder()
    try:
        return unpadder.update(dec.update(data) + dec.finalize()) + unpadder.finalize()
    except ValueError:
        return None


def _decompress(zip_: int, inner: bytes) -> bytes:
    if zip_ == Zip.NONE:
        return inner
    if len(inner) < _ZIP_META.size:
        raise munge_error(MungeErr.CRED_INVALID)
    magic, length = _ZIP_META.unpack_from(inner)
    try:
        out = ZIPS[zip_][1](inner[_ZIP_META.size:])
    except (OSError, ValueError, zlib.error):
        raise munge_error(MungeErr.CRED_INVALID) from None
    if magic != ZIP_MAGIC or len(out) != length:
        raise munge_error(MungeErr.CRED_INVALID)
    return out


def _unpack_inner(inner: bytes, outer: _Outer) -> Credential:
    pos = CRED_SALT_LEN
    if len(inner) < pos + 1:
        raise munge_error(MungeErr.BAD_CRED, "Truncated salt")
    addr_len = inner[pos]
    pos += 1
    if addr_len not in (0, 4) or len(inner) < pos + addr_len + _INNER_FIXED.size:
        raise munge_error(MungeErr.BAD_CRED, "Invalid origin IP addr length")
    addr = str(ipaddress.IPv4Address(inner[pos:pos + 4])) if addr_len else "0.0.0.0"
    pos += addr_len
    time0, ttl, uid, gid, auth_uid, auth_gid, n = _INNER_FIXED.unpack_from(inner, pos)
    pos += _INNER_FIXED.size
    if pos + n != len(inner):
        raise munge_error(MungeErr.BAD_CRED, "Truncated data")
    return Credential(
        uid=uid, gid=gid, payload=inner[pos:], encode_time=time0, ttl=ttl, addr=addr,
        cipher=Cipher(outer.cipher), mac=Mac(outer.mac), zip=Zip(outer.zip), realm=outer.realm,
        uid_restriction=None if auth_uid == UID_ANY else auth_uid,
        gid_restriction=None if auth_gid == GID_ANY else auth_gid,
    )


def _check_time(cred: Credential, now: int, clock_skew: bool) -> Optional[int]:
    """The MUNGE error number for an out-of-window credential, else None.

    munged (dec_validate_time) tolerates an encode time up to ``ttl`` seconds
    in the future by default (its clock-skew allowance), else 1 second.
    """
    skew = cred.ttl if clock_skew else CLOCK_REWIND_GRACE
    if now < cred.encode_time - skew:
        return MungeErr.CRED_REWOUND
    if now > cred.encode_time + cred.ttl:
        return MungeErr.CRED_EXPIRED
    return None


def decode_offline(credential: Union[str, bytes], key_file: KeyLike, ignore_expiry: bool = False,
                   *, now: Optional[float] = None, max_ttl: int = MAXIMUM_TTL,
                   replay_cache: Optional[ReplayCache] = None,
                   clock_skew: bool = True) -> Credential:
    """Decode a MUNGE credential with the key file instead of asking munged.

    ``key_file`` is a path, the key's bytes or a :class:`MungeKey`.  The time
    window is checked against ``now`` (default: the clock) unless
    ``ignore_expiry`` is set, which skips both the expired and the rewound
    check (for recordings).  ``clock_skew`` (munged's default) lets the
    encode time lie up to ``ttl`` seconds ahead before "rewound".  Replays are detected only with ``replay_cache``.
    The decoder's own uid/gid is unknown offline, so uid/gid restrictions are
    reported (``uid_restriction``) but not enforced.  Raises a
    :class:`~pyslurmrpc.auth.errors.MungeError` subclass, as munged would.
    """
    key = _as_key(key_file)
    raw = _unarmor(credential)
    outer = _unpack_outer(raw)
    mac_size = MACS[outer.mac][1]
    cred_mac = raw[outer.outer_len:outer.outer_len + mac_size]
    inner = _decrypt(key, outer, cred_mac, raw[outer.outer_len + mac_size:])
    if inner is None or not hmac.compare_digest(key.mac(outer.mac, raw[:outer.outer_len], inner), cred_mac):
        raise munge_error(MungeErr.CRED_INVALID)
    cred = _unpack_inner(_decompress(outer.zip, inner), outer)
    now_i = int(time.time() if now is None else now)
    cred = _with(cred, ttl=min(cred.ttl, max_ttl), decode_time=now_i)
    failure = None if ignore_expiry else _check_time(cred, now_i, clock_skew)
    if failure is None and replay_cache is not None \
            and not replay_cache.check_and_add(cred_mac, cred.expires_at, now_i):
        failure = MungeErr.CRED_REPLAYED
    if failure is not None:
        raise munge_error(failure, credential=cred)
    return cred


def _with(cred: Credential, **changes) -> Credential:
    from dataclasses import replace
    return replace(cred, **changes)


# ---------------------------------------------------------------------------
# Encoding (for fake daemons and tests: no munged needed)
# ---------------------------------------------------------------------------
def _pick_zip(zip_: int, inner: bytes) -> tuple[int, bytes]:
    """Compress unless pointless, as enc_compress does (empty or not smaller)."""
    if zip_ == Zip.NONE:
        return zip_, inner
    if zip_ not in ZIPS:
        raise munge_error(MungeErr.BAD_ZIP, f"Invalid compression type {zip_}")
    packed = _ZIP_META.pack(ZIP_MAGIC, len(inner)) + ZIPS[zip_][0](inner)
    return (Zip.NONE, inner) if len(packed) >= len(inner) else (zip_, packed)


def _encrypt(key: MungeKey, cipher: int, mac: int, cred_mac: bytes, iv: bytes, inner: bytes) -> bytes:
    if cipher == Cipher.NONE:
        return inner
    spec = _cipher_spec(cipher)
    dek = key.dek(mac, cred_mac)[:spec.key_size]
    padder = padding.PKCS7(spec.block_size * 8).padder()
    enc = _CryptoCipher(spec.algorithm(dek), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(inner) + padder.finalize()) + enc.finalize()


def encode_offline(key_file: KeyLike, *, uid: int, gid: int, payload: bytes = b"",
                   ttl: int = DEFAULT_TTL, encode_time: Optional[int] = None,
                   addr: str = "0.0.0.0", cipher: int = DEFAULT_CIPHER, mac: int = DEFAULT_MAC,
                   zip: int = DEFAULT_ZIP, realm: Optional[str] = None,
                   uid_restriction: Optional[int] = None,
                   gid_restriction: Optional[int] = None) -> str:
    """Mint a credential munged (with the same key) accepts, claiming ``uid``/``gid``.

    Meant for fake daemons and tests; whoever holds the key can claim any uid.
    """
    key = _as_key(key_file)
    _mac_spec(mac)
    if MACS[mac][1] < _key_size(cipher):
        raise munge_error(MungeErr.BAD_MAC, f"Invalid MAC type {mac} with cipher type {cipher}")
    iv = os.urandom(_cipher_spec(cipher).block_size) if cipher != Cipher.NONE else b""
    inner = b"".join((
        os.urandom(CRED_SALT_LEN), b"\x04", ipaddress.IPv4Address(addr).packed,
        _INNER_FIXED.pack(int(time.time()) if encode_time is None else encode_time, ttl, uid, gid,
                          UID_ANY if uid_restriction is None else uid_restriction,
                          GID_ANY if gid_restriction is None else gid_restriction, len(payload)),
        payload,
    ))
    zip_, inner = _pick_zip(zip if payload else Zip.NONE, inner)
    realm_b = realm.encode() + b"\0" if realm else b""
    outer = bytes((CRED_VERSION, cipher, mac, zip_, len(realm_b))) + realm_b + iv
    cred_mac = key.mac(mac, outer, inner)
    body = outer + cred_mac + _encrypt(key, cipher, mac, cred_mac, iv, inner)
    return CRED_PREFIX + base64.b64encode(body).decode("ascii") + CRED_SUFFIX


__all__ = ["Credential", "MungeKey", "ReplayCache", "decode_offline", "encode_offline",
           "CIPHERS", "MACS", "ZIPS", "MungeError"]
