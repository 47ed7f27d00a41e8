"""What libslurm puts in the MUNGE credential's payload, per release.

The release table (pyslurmrpc.wire.versions, column ``payload``) says which
form a sender of each header version uses:

* up to 20.02: nothing.
* 20.11 and 21.08: three bytes, HASH_PLUGIN_NONE and the msg_type as a
  uint16 in the sender's host byte order - little-endian on every platform
  Slurm runs on (slurm_send_node_msg fills ``auth_payload[3]`` with memcpy;
  the receiver's _check_hash compares with memcmp; 22.05's _compute_hash keeps
  host order for <= 21.08 peers).  With CommunicationParameters=block_null_hash
  an empty payload is refused.
* 22.05 and later: one hash-plugin byte and a hash of the packed body keyed
  with the big-endian msg_type (slurm_protocol_api.c _compute_hash; the
  receiver's _check_hash).  The default hash plugin is KangarooTwelve
  (src/plugins/hash/k12, DEFAULT_HASH_PLUGIN "hash/k12" through 26.05).
"""

from __future__ import annotations

import functools

from ..errors import LocalProtocolError
from ..wire.versions import RELEASES, Payload, payload_kind

#: slurm/slurm.h (21.08+) hash plugin ids: the first byte of a message hash
HASH_PLUGIN_NONE = 1
HASH_PLUGIN_K12 = 2
K12_HASH_BYTES = 32
#: message hashes remembered (body and type -> payload)
HASHES_KEPT = 256
#: the first header version whose senders put anything in the payload (20.11).
#: client/flows.py skips the payload below it; callers should prefer
#: :func:`credential_payload` / :func:`hashes_body`, which ask the table per version.
FIRST_HASHED_VERSION = min(r.code for r in RELEASES if r.payload is not Payload.NONE)
#: 20.11 / 21.08 put the msg_type in host order; every Slurm platform is little-endian
MSG_TYPE_HOST_ORDER = "little"


class HashInputTooLarge(LocalProtocolError, ValueError):
    """The pure KangarooTwelve here hashes single-node input only (up to 8 KiB): our limit, not Slurm's.

    Still a ValueError, as before, for callers that caught that."""


# Written from the KangarooTwelve specification (Keccak team; RFC 9861):
# Keccak-p[1600, 12] with rate 168, single node (input up to 8192 bytes
# with the customization string).  Checked against the specification's test
# vectors (empty input; ptn(17)) in the tests.  Pure Python and slow (~160 µs for a
# short body): a client's payloads are remembered (credential_payload), so each kind
# of request is hashed once.
_K12_CHUNK = 8192
_K12_RATE = 168
_MASK64 = (1 << 64) - 1
_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)
_ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61],
        [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]]  # _ROT[x][y]


def _rol(v: int, n: int) -> int:
    return ((v << n) | (v >> (64 - n))) & _MASK64 if n else v


def _keccak_p12(a: list) -> None:
    """Keccak-p[1600, 12] in place on 25 lanes (lane x + 5*y): the last 12 rounds of Keccak-f."""
    for rc in _RC[12:]:
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        a[:] = [a[i] ^ d[i % 5] for i in range(25)]
        b = [0] * 25
        for x in range(5):
            for y in range(5):
                b[y + 5 * ((2 * x + 3 * y) % 5)] = _rol(a[x + 5 * y], _ROT[x][y])
        a[:] = [b[i] ^ ((~b[(i % 5 + 1) % 5 + 5 * (i // 5)]) & b[(i % 5 + 2) % 5 + 5 * (i // 5)])
                for i in range(25)]
        a[0] ^= rc


def turboshake128(message: bytes, separator: int, length: int) -> bytes:
    """TurboSHAKE128(M, D, L): Keccak-p[1600,12] sponge, rate 168, domain byte ``separator``."""
    data = bytearray(message) + bytes([separator])
    data += bytes(-len(data) % _K12_RATE)
    data[-1] ^= 0x80
    state = [0] * 25
    for at in range(0, len(data), _K12_RATE):
        block = data[at:at + _K12_RATE]
        for i in range(_K12_RATE // 8):
            state[i] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        _keccak_p12(state)
    out = bytearray()
    while True:
        out += b"".join(state[i].to_bytes(8, "little") for i in range(_K12_RATE // 8))
        if len(out) >= length:
            return bytes(out[:length])
        _keccak_p12(state)


def _length_encode(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return raw + bytes([len(raw)])


def kangarootwelve(message: bytes, custom: bytes = b"", length: int = 32) -> bytes:
    """KangarooTwelve(M, C, L) as Slurm's hash/k12 plugin computes it."""
    s = bytes(message) + bytes(custom) + _length_encode(len(custom))
    if len(s) <= _K12_CHUNK:
        return turboshake128(s, 0x07, length)
    # the tree mode (8 KiB chunks) is left out: no test message is that large
    raise HashInputTooLarge(f"kangarootwelve: a {len(message)}-byte message is past the single-node "
                            f"limit ({_K12_CHUNK} bytes with the customization); the tree mode is not implemented")


def credential_payload(version: int, msg_type: int, body: bytes) -> bytes:
    """The MUNGE payload libslurm of header ``version`` puts in a credential for this message."""
    kind = payload_kind(version)
    if kind is Payload.NONE:
        return b""
    if kind is Payload.MSG_TYPE:
        return bytes([HASH_PLUGIN_NONE]) + int(msg_type).to_bytes(2, MSG_TYPE_HOST_ORDER)
    return _k12_payload(int(msg_type), bytes(body))


@functools.lru_cache(maxsize=HASHES_KEPT)
def _k12_payload(msg_type: int, body: bytes) -> bytes:
    # a client hashes the same few bodies again and again (every ping's is empty): the pure
    # Python hash costs ~160 µs, the lookup well under one
    return bytes([HASH_PLUGIN_K12]) + kangarootwelve(body, msg_type.to_bytes(2, "big"), K12_HASH_BYTES)


def hashes_body(version: int) -> bool:
    """Whether the payload depends on the packed body (then the body must be encoded first)."""
    return payload_kind(version) is Payload.K12
