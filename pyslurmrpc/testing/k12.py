"""Checks of the message hash in recorded credentials (the hash itself: pyslurmrpc.auth.msg_hash)."""

from __future__ import annotations

from pyslurmrpc.auth.msg_hash import (  # noqa: F401  (re-exported for the tests)
    HASH_PLUGIN_K12, HASH_PLUGIN_NONE, credential_payload, kangarootwelve, turboshake128,
)
from pyslurmrpc.wire import decode_message


def message_hash(frame: bytes) -> bytes:
    """The MUNGE payload Slurm 22.05 puts in a 22.05-header message's credential."""
    msg = decode_message(frame)
    body = frame[len(frame) - msg.header.body_length:]
    return credential_payload(msg.header.version, msg.header.msg_type, body)
