"""Numbers and limits of MUNGE 0.5.x, as facts taken from its sources.

Each group names the MUNGE file it comes from (see protocol_specs/munge.md).
Nothing here does I/O.
"""

from __future__ import annotations

import enum

from ..wire.constants import CRED_PREFIX  # noqa: F401 - re-exported: defined where the wire layer reads it

# ---------------------------------------------------------------------------
# Client <-> munged message framing (src/libcommon/m_msg.h)
# ---------------------------------------------------------------------------
MSG_MAGIC = 0x00606D4B          # "MUNGE" in base 26; first field of every header
MSG_VERSION = 4                 # message format version of munge 0.5.x
MSG_HDR_SIZE = 11               # magic u32 + version u8 + type u8 + retry u8 + pkt_len u32

#: munged refuses requests longer than this (munge_defs.h MUNGE_MAXIMUM_REQ_LEN)
MAX_REQUEST_LEN = 1_048_576
#: a sanity bound on response bodies: the largest request plus armour overhead
MAX_RESPONSE_LEN = 4 * MAX_REQUEST_LEN


class MsgType(enum.IntEnum):
    """``enum m_msg_type`` (m_msg.h)."""

    UNDEF = 0
    HDR = 1
    ENC_REQ = 2
    ENC_RSP = 3
    DEC_REQ = 4
    DEC_RSP = 5
    AUTH_FD_REQ = 6


# ---------------------------------------------------------------------------
# Client defaults and retry behaviour (src/libcommon/munge_defs.h)
# ---------------------------------------------------------------------------
DEFAULT_SOCKET = "/run/munge/munge.socket.2"
SOCKET_CONNECT_ATTEMPTS = 10     # connect() tries while the listen queue is full
SOCKET_CONNECT_RETRY_MS = 50     # linear back-off step between connect tries
SOCKET_RETRY_ATTEMPTS = 5        # whole-transaction tries on a socket error
SOCKET_RETRY_MS = 10             # linear back-off step between transactions
SOCKET_TIMEOUT_MS = 2000         # per read / write of one message

DEFAULT_TTL = 300                # munged's default credential lifetime
MAXIMUM_TTL = 3600               # munged's default --max-ttl
UID_ANY = 0xFFFFFFFF             # MUNGE_UID_ANY (-1 as uint32): no restriction
GID_ANY = 0xFFFFFFFF             # MUNGE_GID_ANY
TTL_DEFAULT = 0                  # ask munged for its default ttl
TTL_MAXIMUM = 0xFFFFFFFF         # MUNGE_TTL_MAXIMUM (-1): munged clamps to max ttl

# ---------------------------------------------------------------------------
# Credential format (src/libcommon/munge_defs.h, src/munged/cred.h, zip.c; CRED_PREFIX
# "MUNGE:" comes from pyslurmrpc.wire.constants, above)
# ---------------------------------------------------------------------------
CRED_SUFFIX = ":"
CRED_VERSION = 3
CRED_SALT_LEN = 8
ZIP_MAGIC = 0xCACACACA           # header munged puts before compressed data
KEY_LEN_MIN = 32                 # a key file shorter than this is refused
REPLAY_MAC_LEN = 16              # munged's replay hash keeps this much of the MAC
CLOCK_REWIND_GRACE = 1           # seconds a credential may be "from the future"


class Cipher(enum.IntEnum):
    """``munge_cipher_t`` (src/libmunge/munge.h)."""

    NONE = 0
    DEFAULT = 1
    BLOWFISH = 2
    CAST5 = 3
    AES128 = 4
    AES256 = 5


class Mac(enum.IntEnum):
    """``munge_mac_t`` (src/libmunge/munge.h)."""

    NONE = 0
    DEFAULT = 1
    MD5 = 2
    SHA1 = 3
    RIPEMD160 = 4
    SHA256 = 5
    SHA512 = 6


class Zip(enum.IntEnum):
    """``munge_zip_t`` (src/libmunge/munge.h)."""

    NONE = 0
    DEFAULT = 1
    BZLIB = 2
    ZLIB = 3


#: the defaults munged 0.5.15 picks for DEFAULT when built against a modern
#: OpenSSL (munge_defs.h MUNGE_DEFAULT_CIPHER / _MAC / _ZIP)
DEFAULT_CIPHER = Cipher.AES128
DEFAULT_MAC = Mac.SHA256
DEFAULT_ZIP = Zip.NONE


class MungeErr(enum.IntEnum):
    """``munge_err_t`` (src/libmunge/munge.h)."""

    SUCCESS = 0
    SNAFU = 1
    BAD_ARG = 2
    BAD_LENGTH = 3
    OVERFLOW = 4
    NO_MEMORY = 5
    SOCKET = 6
    TIMEOUT = 7
    BAD_CRED = 8
    BAD_VERSION = 9
    BAD_CIPHER = 10
    BAD_MAC = 11
    BAD_ZIP = 12
    BAD_REALM = 13
    CRED_INVALID = 14
    CRED_EXPIRED = 15
    CRED_REWOUND = 16
    CRED_REPLAYED = 17
    CRED_UNAUTHORIZED = 18


#: ``munge_strerror()`` texts (src/libmunge/strerror.c)
STRERROR: dict[int, str] = {
    MungeErr.SUCCESS: "Success",
    MungeErr.SNAFU: "Internal error",
    MungeErr.BAD_ARG: "Invalid argument",
    MungeErr.BAD_LENGTH: "Exceeded maximum message length",
    MungeErr.OVERFLOW: "Buffer overflow",
    MungeErr.NO_MEMORY: "Out of memory",
    MungeErr.SOCKET: "Socket communication error",
    MungeErr.TIMEOUT: "Socket timeout",
    MungeErr.BAD_CRED: "Invalid credential format",
    MungeErr.BAD_VERSION: "Invalid credential version",
    MungeErr.BAD_CIPHER: "Invalid cipher type",
    MungeErr.BAD_MAC: "Invalid MAC type",
    MungeErr.BAD_ZIP: "Invalid compression type",
    MungeErr.BAD_REALM: "Unrecognized security realm",
    MungeErr.CRED_INVALID: "Invalid credential",
    MungeErr.CRED_EXPIRED: "Expired credential",
    MungeErr.CRED_REWOUND: "Rewound credential",
    MungeErr.CRED_REPLAYED: "Replayed credential",
    MungeErr.CRED_UNAUTHORIZED: "Unauthorized credential",
}


def strerror(code: int) -> str:
    """MUNGE's text for an error number (``munge_strerror``)."""
    return STRERROR.get(code, "Unknown error")
