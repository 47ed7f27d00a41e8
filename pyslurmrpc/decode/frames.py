"""Byte streams to decoded frame reports.

A stream (a raw recording, a hex dump, one direction of a TCP connection) is
cut into frames with :class:`pyslurmrpc.wire.Framer`; each frame is judged by
:func:`pyslurmrpc.wire.decode_message`'s rules and explained field by field,
both from one parse (:func:`.fields.read_fields`).  A frame that fails to decode is reported and the
next one is decoded; a length prefix the framer refuses ends the stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from ..auth.munge_constants import MungeErr
from ..errors import ProtocolError, PyslurmrpcError
from ..wire import Framer
from ..wire.constants import LENGTH_PREFIX_SIZE
from ..wire.framer import prefix_text
from .fields import Field, read_frame

#: Fields whose value is a bearer credential: never printed, only opened with --munge-key.
SECRET_FIELDS = frozenset({"credential"})


@dataclass
class FrameReport:
    """One frame of a stream: its fields, and why it failed if it did."""

    index: int
    offset: int  # where the frame starts in its stream
    frame: bytes
    fields: list[Field]
    error: Optional[ProtocolError] = None
    munge: Optional[dict] = None
    munge_error: Optional[str] = None
    #: False when the message type has no body schema: its body is shown as bytes
    body_decoded: bool = True
    #: where the body starts in the frame, when the header and auth could be read
    body_start: Optional[int] = None

    @property
    def ok(self) -> bool:
        """True when the frame decoded (and its credential opened, if asked to)."""
        return self.error is None and self.munge_error is None

    @property
    def credential_unopened(self) -> bool:
        """True when the frame decoded but --munge-key did not open its credential."""
        return self.error is None and self.munge_error is not None

    @property
    def msg_type(self) -> Optional[int]:
        """header.msg_type when it could be read."""
        return next((f.value for f in self.fields if f.path == "header.msg_type"), None)

    @property
    def version(self) -> Optional[int]:
        """header.version when it could be read."""
        return next((f.value for f in self.fields if f.path == "header.version"), None)

    @property
    def undecoded_body(self) -> bool:
        """True when the frame is sound but its message type's body has no schema."""
        return self.error is None and not self.body_decoded

    @property
    def decoded_end(self) -> int:
        """Offset just past the last field that could be read."""
        return max((f.end for f in self.fields), default=0)


@dataclass
class StreamReport:
    """All frames of one byte stream, and what stopped it early if anything did."""

    label: str
    frames: list[FrameReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every frame decoded and nothing stopped the stream."""
        return not self.problems and all(f.ok for f in self.frames)


class MungeOpener:
    """Opens MUNGE credentials offline with a key file (expiry and replay ignored)."""

    def __init__(self, key_file: str | os.PathLike):
        from ..auth.munge_cred import MungeKey

        self._key = MungeKey.from_file(key_file)

    def open(self, credential: str) -> dict:
        """The decoded credential as a plain dict; raises PyslurmrpcError/ValueError if it does not open."""
        from ..auth.munge import decode_offline

        cred = decode_offline(credential, self._key, ignore_expiry=True)
        return {
            "uid": cred.uid, "gid": cred.gid, "encode_time": cred.encode_time, "ttl": cred.ttl,
            "addr": cred.addr, "payload": cred.payload.hex(), "cipher": cred.cipher.name,
            "mac": cred.mac.name, "zip": cred.zip.name, "realm": cred.realm,
        }


def decode_frame(frame: bytes, index: int = 1, offset: int = 0,
                 opener: Optional[MungeOpener] = None) -> FrameReport:
    """Decode one whole frame (length prefix included) into a :class:`FrameReport`."""
    found = read_frame(frame)
    report = FrameReport(index, offset, frame, found.fields, found.error,
                         body_decoded=found.body_decoded, body_start=found.body_start)
    if opener is not None:
        _open_credential(report, opener)
    return report


def _open_credential(report: FrameReport, opener: MungeOpener) -> None:
    cred = next((f for f in report.fields if f.name in SECRET_FIELDS), None)
    if cred is None or not isinstance(cred.value, str):
        return
    try:
        report.munge = opener.open(cred.value)
    except (PyslurmrpcError, ValueError) as exc:
        report.munge_error = str(exc) or type(exc).__name__
        if getattr(exc, "code", None) == MungeErr.CRED_INVALID:   # the MAC did not match
            report.munge_error += " (minted with another key than --munge-key's, or damaged)"


def decode_stream(data: bytes, label: str, opener: Optional[MungeOpener] = None) -> StreamReport:
    """Frame ``data`` with the Framer and decode every frame, going on after bad ones."""
    report = StreamReport(label)
    framer = Framer()
    pos = 0
    while pos < len(data):
        try:
            frame = _next_frame(framer, data, pos)
        except ProtocolError as exc:
            report.problems.append(f"stream offset {pos}: {exc}{prefix_text(exc)}; rest of the stream not decoded "
                                   f"({len(data) - pos} bytes)")
            return report
        report.frames.append(decode_frame(frame, len(report.frames) + 1, pos, opener))
        pos += len(frame)
    return report


def _next_frame(framer: Framer, data: bytes, pos: int) -> bytes:
    """Feed the framer exactly one frame's bytes from ``pos``; close it if the data ends first."""
    frames = framer.feed(data[pos:pos + LENGTH_PREFIX_SIZE])  # a zero length completes here
    need = int.from_bytes(data[pos:pos + LENGTH_PREFIX_SIZE], "big")
    frames += framer.feed(data[pos + LENGTH_PREFIX_SIZE:pos + LENGTH_PREFIX_SIZE + need])
    if not frames:
        framer.close()  # raises TruncatedError: the stream ended inside this frame
    return frames[0]
