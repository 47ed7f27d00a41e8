"""PKCS#7 padding of MUNGE's encrypted credential part (munged's EVP cipher context).

Credentials are built here by hand, with the real key and a correct MAC, so
only the padding differs between the accepted and the refused ones.
"""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher as CryptoCipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes

from pyslurmrpc.auth import errors as E
from pyslurmrpc.auth.munge_constants import CRED_PREFIX, CRED_SUFFIX, CRED_VERSION, Cipher, Mac, MungeErr, Zip
from pyslurmrpc.auth.munge_cred import MungeKey, decode_offline, encode_offline

KEY = MungeKey((Path(__file__).resolve().parent.parent / "fixtures" / "munge.key").read_bytes())
BLOCK = 16  # AES
NOW = 1_800_000_000


def inner(payload: bytes) -> bytes:
    """salt, address, the fixed fields (uid 1000, gid 1000, no restriction) and the payload."""
    fixed = struct.pack(">IIIIIII", NOW, 300, 1000, 1000, 0xFFFFFFFF, 0xFFFFFFFF, len(payload))
    return os.urandom(8) + b"\x04" + bytes(4) + fixed + payload


def credential(plain: bytes, tail: bytes) -> str:
    """AES128/SHA256 credential whose ciphertext is ``plain + tail`` (``tail`` = the padding)."""
    iv = os.urandom(BLOCK)
    outer = bytes((CRED_VERSION, Cipher.AES128, Mac.SHA256, Zip.NONE, 0)) + iv
    mac = KEY.mac(Mac.SHA256, outer, plain)
    enc = CryptoCipher(algorithms.AES(KEY.dek(Mac.SHA256, mac)[:16]), modes.CBC(iv)).encryptor()
    data = enc.update(plain + tail) + enc.finalize()
    return CRED_PREFIX + base64.b64encode(outer + mac + data).decode() + CRED_SUFFIX


def pkcs7(length: int) -> bytes:
    n = BLOCK - length % BLOCK
    return bytes((n,)) * n


@pytest.mark.parametrize("payload_len", [0, 3, 15, 16, 21])
def test_pkcs7_padded_credential_decodes(payload_len):
    plain = inner(b"p" * payload_len)
    cred = decode_offline(credential(plain, pkcs7(len(plain))), KEY, now=NOW)
    assert (cred.uid, cred.payload) == (1000, b"p" * payload_len)


def bad_tails(length: int) -> dict[str, bytes]:
    good = pkcs7(length)
    n = len(good)
    room = BLOCK - length % BLOCK
    return {
        "zero pad byte": bytes(room - 1) + b"\x00" if room > 1 else b"\x00" + bytes(BLOCK - 1) + b"\x00",
        "pad longer than a block": (b"\x00" * (room - 1) + bytes((BLOCK + 1,))),
        "pad bytes disagree": (bytes((n,)) * (n - 1))[:-1] + b"\x01" + bytes((n,)) if n > 2 else None,
        "no padding at all": b"" if length % BLOCK == 0 else None,
    }


@pytest.mark.parametrize("payload_len", [2, 5])
def test_bad_padding_is_an_invalid_credential(payload_len):
    plain = inner(b"q" * payload_len)
    for why, tail in bad_tails(len(plain)).items():
        if tail is None:
            continue
        assert (len(plain) + len(tail)) % BLOCK == 0, why
        with pytest.raises(E.MungeCredentialInvalidError) as info:
            decode_offline(credential(plain, tail), KEY, now=NOW)
        assert (info.value.code, info.value.text) == (MungeErr.CRED_INVALID, "Invalid credential"), why


def test_no_padding_on_an_aligned_body_is_invalid():
    plain = inner(b"r" * (BLOCK - len(inner(b"")) % BLOCK))
    assert len(plain) % BLOCK == 0
    with pytest.raises(E.MungeCredentialInvalidError):
        decode_offline(credential(plain, b""), KEY, now=NOW)


@pytest.mark.parametrize("payload_len", [0, 7, 16, 100])
def test_minted_credentials_carry_pkcs7_padding(payload_len):
    """encode_offline pads a whole extra block when the body is already aligned."""
    text = encode_offline(KEY, uid=1, gid=1, payload=b"s" * payload_len, encode_time=NOW)
    raw = base64.b64decode(text[len(CRED_PREFIX):-len(CRED_SUFFIX)])
    data = raw[5 + BLOCK + 32:]
    body = len(inner(b"s" * payload_len))
    assert len(data) == body + len(pkcs7(body))
