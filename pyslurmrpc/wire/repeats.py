"""Frames that repeat but for their MUNGE credential, handled once.

A client sends few kinds of request and gets few kinds of reply, and from one call to the
next only the credential differs (its packstr sits between the auth plugin's fields and the
body; nothing but the frame's length prefix counts its size).  :class:`CredentialTemplate`
builds a kind of request once and packs each call's credential into it;
:func:`decode_reply_frame` decodes a reply that repeats a recent one by reading its
credential alone (a reply without any credential, as 23.02 and later send, repeats whole).  Both give exactly what :func:`~pyslurmrpc.wire.codec.encode_message` and
:func:`~pyslurmrpc.wire.codec.decode_message` give (tests/test_frame_template.py,
tests/test_repeated_reply.py); anything else goes to those two, which name what is wrong.
"""

from __future__ import annotations

from dataclasses import replace

from .codec import as_frame_bytes, decode_message, encode_message, frozen_instance, u32_at
from .constants import LENGTH_PREFIX_SIZE, MAX_MSG_SIZE
from .primitives import pack_string
from .types import Message, MungeAuthCred

#: a packstr's size field
_STRING_SIZE = 4


#: what stands for the credential while a template is built: no MUNGE credential looks like it
#: (munged's are "MUNGE:" and base64), and a frame where it is not unique gets no template
_SLOT = "\x01pyslurmrpc credential slot\x01"
_PACKED_SLOT = pack_string(_SLOT)


class CredentialTemplate:
    """One auth/munge request frame, built once: :meth:`fill` packs a call's credential into
    it and gives the bytes :func:`encode_message` gives for that message with that credential."""

    __slots__ = ("_before", "_after", "_fixed")

    def __init__(self, message: Message, *, body_bytes: bytes | None = None):
        if type(message.auth) is not MungeAuthCred:
            raise TypeError(f"a credential template needs a MungeAuthCred, not {type(message.auth).__name__}")
        frame = encode_message(replace(message, auth=replace(message.auth, credential=_SLOT)), body_bytes=body_bytes)
        at = frame.find(_PACKED_SLOT)
        if at < 0 or frame.find(_PACKED_SLOT, at + 1) >= 0:
            raise ValueError("the frame holds the credential's placeholder elsewhere too: no template")
        self._before = frame[LENGTH_PREFIX_SIZE:at]
        self._after = frame[at + len(_PACKED_SLOT):]
        self._fixed = len(frame) - LENGTH_PREFIX_SIZE - len(_PACKED_SLOT)

    def fill(self, credential: str | None) -> bytes | None:
        """The whole frame carrying ``credential``; None if it cannot be packed (a NUL inside,
        too long: :func:`encode_message` then names the error)."""
        try:
            packed = pack_string(credential)
        except ValueError:
            return None
        return (self._fixed + len(packed)).to_bytes(4, "big") + self._before + packed + self._after

    def __repr__(self) -> str:
        return f"CredentialTemplate({self._fixed} bytes around the credential)"


#: replies kept by :func:`decode_reply_frame` to decode their repeats by the credential alone
MAX_REPEATED_REPLIES = 16
#: ... each at most this long: a bigger reply (a fan-out's, with every node's answer) is not
#: kept, so the cache never holds more than 16 x 64 KiB
MAX_REPEATED_REPLY_BYTES = 64 * 1024
_REPEATED: list["RepeatedFrame | _SameFrame"] = []


def decode_reply_frame(frame) -> Message:
    """:func:`decode_message` for a client's replies, which repeat: a frame that differs from a
    recent one only in its MUNGE credential is decoded by reading that credential alone (the
    same Message, the same errors: anything else goes through :func:`decode_message`)."""
    frame = as_frame_bytes(frame)
    for known in reversed(_REPEATED):
        message = known.decode(frame)
        if message is not None:
            return message
    message = decode_message(frame)
    repeated = repeat_decoder(message, frame) if len(frame) <= MAX_REPEATED_REPLY_BYTES else None
    if repeated is not None:
        _REPEATED.append(repeated)
        del _REPEATED[:-MAX_REPEATED_REPLIES]   # one step each: threads sharing a client may race here
    return message


def repeat_decoder(message: Message, frame: bytes) -> "RepeatedFrame | _SameFrame | None":
    """What decodes the repeats of ``frame`` (which decoded to ``message``): a frame without any
    credential (23.02+ replies) repeats whole; None for one whose credential cannot be cut out."""
    auth = message.auth
    if auth is None:
        return _SameFrame(message, frame)
    if type(auth) is not MungeAuthCred or not auth.credential:
        return None
    packed = pack_string(auth.credential)
    at = frame.find(packed, LENGTH_PREFIX_SIZE)
    if at < 0 or frame.find(packed, at + 1) >= 0:   # which copy is the credential: unknown
        return None
    return RepeatedFrame(message, frame[LENGTH_PREFIX_SIZE:at], frame[at + len(packed):])


class RepeatedFrame:
    """A decoded auth/munge frame, split around its credential: :meth:`decode` gives the Message
    of a frame whose other bytes are the same (they decode the same: the header and body are
    shared, they are frozen), reading only the credential's packstr; None for any other frame."""

    __slots__ = ("_before", "_after", "_least", "_message")

    def __init__(self, message: Message, before: bytes, after: bytes):
        self._message, self._before, self._after = message, before, after
        self._least = LENGTH_PREFIX_SIZE + len(before) + _STRING_SIZE + 1 + len(after)

    def decode(self, frame: bytes) -> Message | None:
        before, after = self._before, self._after
        end = len(frame) - len(after)
        if len(frame) < self._least or not frame.startswith(before, LENGTH_PREFIX_SIZE) \
                or not frame.endswith(after) or u32_at(frame, 0) != len(frame) - LENGTH_PREFIX_SIZE \
                or len(frame) - LENGTH_PREFIX_SIZE > MAX_MSG_SIZE:
            return None
        at = LENGTH_PREFIX_SIZE + len(before) + _STRING_SIZE
        size = u32_at(frame, at - _STRING_SIZE)
        raw = frame[at:end - 1]
        # one NUL-terminated string filling the gap (its size under the frame's, 1 GiB, is under
        # the schema's MAX_PACK_MEM_LEN too); anything else: the decoder says what is wrong
        if size != end - at or frame[end - 1] != 0 or 0 in raw:
            return None
        known = self._message
        auth = frozen_instance(MungeAuthCred, credential=raw.decode("utf-8", "surrogateescape"),
                               plugin_version=known.auth.plugin_version)
        return frozen_instance(Message, header=known.header, auth=auth, body=known.body)


class _SameFrame:
    """A decoded frame that carries no credential (a 23.02+ controller's replies): the same
    bytes again are the same Message (frozen, shared); None for any other frame."""

    __slots__ = ("_frame", "_message")

    def __init__(self, message: Message, frame: bytes):
        self._message, self._frame = message, frame

    def decode(self, frame: bytes) -> Message | None:
        return self._message if frame == self._frame else None
