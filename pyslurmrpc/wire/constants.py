"""Numbers of Slurm's wire protocol: message types, plugin ids, flags, limits.

Protocol versions and everything that differs between releases are in the
release table, :mod:`pyslurmrpc.wire.versions`.

Every value here is data read from Slurm's sources; ``protocol_specs/`` says
which file each comes from.
"""

from __future__ import annotations

import enum

#: slurm/slurm.h.in (19.05): "no value" marker for 32-bit fields.
NO_VAL = 0xFFFFFFFE
#: slurm/slurm.h.in (19.05): 16-bit "no value".
NO_VAL16 = 0xFFFE
#: slurm/slurm.h.in (19.05): the batch step's id, equal to NO_VAL in 19.05.
SLURM_BATCH_SCRIPT = 0xFFFFFFFE
#: slurm/slurm.h.in (19.05): the extern step's id.
SLURM_EXTERN_CONT = 0xFFFFFFFF
#: slurm/slurm.h.in (19.05): a step not created yet (below the batch and extern steps).
SLURM_PENDING_STEP = 0xFFFFFFFD
#: slurm/slurm.h.in: "infinite" for 32-bit fields.
INFINITE = 0xFFFFFFFF
#: a C int (32 bits on every platform Slurm runs on): what libslurm and libmunge take as one
C_INT_MIN, C_INT_MAX = -2**31, 2**31 - 1
C_LONG_MIN, C_LONG_MAX = -2**63, 2**63 - 1   # a C long on the 64-bit machines Slurm runs on

#: MAX_MSG_SIZE (src/common/slurm_protocol_socket.c; src/common/pack.h in 25.11,
#: 26.05): the largest length prefix a daemon accepts (1 GiB, 17.11 to 26.05).
MAX_MSG_SIZE = 1024 * 1024 * 1024
#: src/common/pack.h MAX_PACK_MEM_LEN: the largest packed string / memory block.
MAX_PACK_MEM_LEN = 1024 * 1024 * 1024
#: Bytes of the length prefix in front of every message.
LENGTH_PREFIX_SIZE = 4
#: how an HTTP answer starts, read where a length prefix is: 26.05 hands a frame in a version
#: it refuses to its HTTP server (http_switch.c http_switch_on_data, rpc_fingerprint), which
#: answers "HTTP/1.1 405 ..."
HTTP_PREFIX = b"HTTP"
#: how a MUNGE credential's text begins (munge 0.5.15 src/munged/enc.c enc_armor, MUNGE_CRED_PREFIX
#: in src/libcommon/munge_defs.h): what the wire layer withholds where a string may carry one
CRED_PREFIX = "MUNGE:"


class MsgType(enum.IntEnum):
    """Message types this library speaks (src/common/slurm_protocol_defs.h)."""

    REQUEST_PING = 1008
    REQUEST_CHECKPOINT = 5009
    RESPONSE_CHECKPOINT = 5010
    REQUEST_CHECKPOINT_COMP = 5011
    REQUEST_CHECKPOINT_TASK_COMP = 5012
    RESPONSE_CHECKPOINT_COMP = 5013
    REQUEST_CHECKPOINT_TASKS = 6005
    RESPONSE_SLURM_RC = 8001
    RESPONSE_FORWARD_FAILED = 9001


class CheckOp(enum.IntEnum):
    """``check_opts`` of src/common/checkpoint.h (the ``op`` of REQUEST_CHECKPOINT)."""

    CHECK_ABLE = 0
    CHECK_DISABLE = 1
    CHECK_ENABLE = 2
    CHECK_CREATE = 3
    CHECK_VACATE = 4
    CHECK_RESTART = 5
    CHECK_ERROR = 6
    CHECK_REQUEUE = 7


class AuthPluginId(enum.IntEnum):
    """Numeric auth plugin ids (slurm/slurm.h.in AUTH_PLUGIN_*, 19.05 and later)."""

    AUTH_PLUGIN_NONE = 100
    AUTH_PLUGIN_MUNGE = 101
    AUTH_PLUGIN_JWT = 102
    AUTH_PLUGIN_SLURM = 103


#: plugin id -> plugin type string, as the pre-19.05 framing names them
AUTH_PLUGIN_NAMES = {
    AuthPluginId.AUTH_PLUGIN_NONE: "auth/none",
    AuthPluginId.AUTH_PLUGIN_MUNGE: "auth/munge",
    AuthPluginId.AUTH_PLUGIN_JWT: "auth/jwt",
    AuthPluginId.AUTH_PLUGIN_SLURM: "auth/slurm",
}
AUTH_PLUGIN_IDS = {name: pid for pid, name in AUTH_PLUGIN_NAMES.items()}

#: Header flag bits (src/common/slurm_protocol_defs.h).
SLURM_GLOBAL_AUTH_KEY = 0x0001
SLURMDBD_CONNECTION = 0x0002
SLURM_NO_AUTH_CRED = 0x0040  # 23.02+: no auth envelope follows the header
SLURM_PACK_ADDRS = 0x0080  # 23.11+: forward part carries the alias net_cred
