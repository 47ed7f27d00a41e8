"""Malformed and unwelcome inputs for a Slurm controller, with what slurmctld 22.05.8 does.

One table, :data:`CASES`, so the same bytes can be sent to the real
slurmctld (tests/test_real_slurmctld.py) and, later, to pyslurmrpc's fake
controller side by side.  Each case is a dict:

* ``name``: a short id;
* ``build(auth)``: the bytes to send.  ``auth`` is an authenticator with
  ``create(protocol_version) -> Auth`` (``MungeAuth`` against a real munged,
  ``OfflineMungeAuth`` with the same key for a fake); every call makes a
  fresh credential, so a case can be sent again without a replay;
* ``half_close``: shut our sending side after the bytes (EOF mid-frame);
* ``expect``: what slurmctld 22.05.8 was observed to do, one of
  ``{"outcome": "silent_close"}`` (the connection is closed without a single
  byte in answer) or ``{"outcome": "reply", "msg_type": ..., "return_code":
  ...}`` (one frame comes back, then the close);
* ``why``: the reason in Slurm 22.05.8's source (see
  protocol_specs/slurmctld_2205.md for the citations);
* ``log``: a line slurmctld 22.05.8 (SlurmctldDebug=debug2) writes to its log
  for the case: only meaningful for the real daemon.
"""

from __future__ import annotations

import random


from pyslurmrpc.wire import (
    VERSIONS, Address, CheckpointMsg, Header, Message, MsgType, MungeAuthCred, NoneAuthCred, PingMsg,
    encode_message,
)
from pyslurmrpc.wire.bodies import checkpoint_msg_t

V1905, V2205 = 0x2200, 0x2600
SILENT_CLOSE = {"outcome": "silent_close"}


def ping(auth, version: int = V2205, *, auth_obj=None) -> bytes:
    """A REQUEST_PING in header ``version`` (family-0 orig_addr from 20.11 on)."""
    addr = Address(0, None, 0) if version >= 0x2400 else Address(None, 0, 0)
    envelope = auth_obj if auth_obj is not None else auth.create(version)
    return encode_message(Message(Header(version, MsgType.REQUEST_PING, orig_addr=addr), envelope, PingMsg()))


def with_body(frame: bytes, msg_type: int, body: bytes) -> bytes:
    """``frame`` (a body-less message) re-typed as ``msg_type`` carrying ``body``.

    For message types pyslurmrpc has no schema for in that header version
    (e.g. REQUEST_CHECKPOINT in a 22.05 header): the header's msg_type and
    body_length and the length prefix are patched, the body appended.
    """
    spec = VERSIONS[int.from_bytes(frame[4:6], "big")]
    at = spec.msg_type_offset
    out = bytearray(frame + body)
    out[0:4] = (len(out) - 4).to_bytes(4, "big")
    out[at:at + 2] = int(msg_type).to_bytes(2, "big")
    out[at + 2:at + 6] = len(body).to_bytes(4, "big")
    return bytes(out)


def checkpoint_body(op: int = 0, job_id: int = 1, step_id: int = 0) -> bytes:
    """A 19.05 checkpoint_msg_t (CHECK_ABLE of job 1 step 0 by default)."""
    return checkpoint_msg_t.build({"op": op, "data": 0, "job_id": job_id, "step_id": step_id,
                                   "image_dir": None})


def flip_credential(cred: str) -> str:
    """The MUNGE credential with characters in its base64 body swapped (same length)."""
    head, _, rest = cred.partition("MUNGE:")
    body = list(rest)
    for i in (10, 40, 80):
        if i < len(body) - 1 and body[i] not in ":=":
            body[i] = "B" if body[i] != "B" else "C"
    return head + "MUNGE:" + "".join(body)


def _flipped(auth) -> bytes:
    good = auth.create(V2205)
    bad = MungeAuthCred(credential=flip_credential(good.credential))
    return ping(auth, auth_obj=bad)


def _auth_none(auth) -> bytes:
    none = NoneAuthCred(uid=0, gid=0, hostname="localhost")
    return ping(auth, auth_obj=none)


def _garbage(auth) -> bytes:
    return random.Random(2205).randbytes(256)


def _wrong_body_length(auth) -> bytes:
    frame = bytearray(ping(auth))
    at = VERSIONS[V2205].msg_type_offset + 2
    frame[at:at + 4] = (4).to_bytes(4, "big")  # says 4 body bytes, none follow
    return bytes(frame)


def _unknown_type(auth) -> bytes:
    return with_body(ping(auth), 65000, b"")


CASES = [
    {
        "name": "length_over_1gib",
        "log": 'Insane message length',
        "build": lambda auth: (1024 ** 3 + 1).to_bytes(4, "big") + b"\x00" * 16,
        "expect": SILENT_CLOSE,
        "why": "slurm_msg_recvfrom_timeout refuses a length prefix over MAX_MSG_SIZE",
    },
    {
        "name": "garbage",
        "log": 'Insane message length',
        "build": _garbage,
        "expect": SILENT_CLOSE,
        "why": "the first 4 bytes as a length prefix are over MAX_MSG_SIZE",
    },
    {
        "name": "truncated_then_eof",
        "log": 'Zero Bytes were transmitted or received',
        "build": lambda auth: ping(auth)[:40],
        "half_close": True,
        "expect": SILENT_CLOSE,
        "why": "EOF before the declared length: the receive fails, nothing to answer",
    },
    {
        "name": "small_garbage_frame",
        "log": 'unpack_header: protocol_version 258 not supported',
        "build": lambda auth: (12).to_bytes(4, "big") + bytes(range(1, 13)),
        "expect": SILENT_CLOSE,
        "why": "unpack_header: version 0x0102 is not supported",
    },
    {
        "name": "invalid_munge_credential",
        "log": 'Munge decode failed: Invalid credential',
        "build": _flipped,
        "expect": SILENT_CLOSE,
        "why": "auth_g_verify fails: slurm_receive_msg returns an error, no reply",
    },
    {
        "name": "auth_none_credential",
        "log": 'authentication plugin auth/none(100) not found',
        "build": _auth_none,
        "expect": SILENT_CLOSE,
        "why": "auth plugin id 100 is not loaded (AuthType=auth/munge): auth_g_unpack fails",
    },
    {
        "name": "body_length_mismatch",
        "log": 'Header lengths are longer than data received',
        "build": _wrong_body_length,
        "expect": SILENT_CLOSE,
        "why": "the header's body_length runs past the frame: the body unpack fails",
    },
    {
        "name": "unknown_msg_type_2205",
        "log": 'No unpack method for msg type 65000',
        "build": _unknown_type,
        "expect": SILENT_CLOSE,
        "why": "unpack_msg has no unpacker for the type",
    },
    {
        "name": "checkpoint_in_2205_header",
        "log": 'No unpack method for msg type 5009',
        "build": lambda auth: with_body(ping(auth), MsgType.REQUEST_CHECKPOINT, checkpoint_body()),
        "expect": SILENT_CLOSE,
        "why": "5009 is DEFUNCT_RPC_5009 in 22.05: unpack_msg has no unpacker",
    },
    {
        "name": "checkpoint_in_1905_header",
        "log": 'unpack_header: protocol_version 8704 not supported',
        "build": lambda auth: encode_message(Message(
            Header(V1905, MsgType.REQUEST_CHECKPOINT, orig_addr=Address(None, 0, 0)),
            auth.create(V1905),
            CheckpointMsg(op=0, data=0, job_id=1, step_id=0, image_dir=None))),
        "expect": SILENT_CLOSE,
        "why": "unpack_header: 19.05 is below SLURM_MIN_PROTOCOL_VERSION (20.11)",
    },
]

CASES_BY_NAME = {case["name"]: case for case in CASES}
