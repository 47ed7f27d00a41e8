"""Every field of a frame, recorded while the wire layer's own schema parses it.

The frame is parsed once, by construct's interpreter with the schema
``VERSIONS[code].frame`` the codec uses to explain failures; the leaves record
their path, start offset, raw bytes and value as they are read
(:func:`pyslurmrpc.wire._construct_internals.recording_parse`).  No layout is
written down a second time here.

Whether the frame is valid is decided as :func:`pyslurmrpc.wire.decode_message`
decides it, from the same parse: the fields list ends at the first field that
cannot be read, and the error says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

from construct import Construct, Pass, Struct, Switch, Tell, this

from ..errors import InvalidFieldError, ProtocolError, TrailingBytesError, UnknownMessageTypeError
from ..wire._construct_internals import recording_parse
from ..wire.codec import PARSE_ERRORS, as_frame_bytes, check_prefix, message_from_parsed, parse_failure, spec_for
from ..wire.constants import LENGTH_PREFIX_SIZE
from ..wire.header import header_t
from ..wire.info_bodies import decoder_bodies
from ..wire.msg_types_by_release import MSG_TYPES_BY_RELEASE
from ..wire.primitives import u32
from ..wire.versions import VERSIONS, VersionSpec


@dataclass(frozen=True)
class Field:
    """One decoded leaf of a frame: dotted ``path``, byte ``offset`` in the frame, ``raw`` bytes, ``value``."""

    path: str
    offset: int
    raw: bytes
    value: Any

    @property
    def name(self) -> str:
        """The last component of the path (``"job_id"`` for ``body.job_id``)."""
        return self.path.rsplit(".", 1)[-1]

    @property
    def end(self) -> int:
        """Offset just past the field."""
        return self.offset + len(self.raw)


@dataclass
class FrameFields:
    """What one parse of a frame found: its fields, the error if any, and whether the body was read."""

    fields: list[Field]
    error: Optional[ProtocolError]
    body_decoded: bool = True
    body_start: Optional[int] = None


def read_fields(frame: bytes) -> tuple[list[Field], Optional[ProtocolError]]:
    """Every field of ``frame`` (length prefix included) that could be read, in wire order,
    and the :class:`ProtocolError` :func:`~pyslurmrpc.wire.decode_message` raises for it (or None).

    The header version at offset 4 picks the schema; with an unknown version
    only the length prefix is listed.  Message types the codec has no body for
    are read as :func:`read_frame` reads them.
    """
    result = read_frame(frame)
    return result.fields, result.error


def read_frame(frame: bytes) -> FrameFields:
    """:func:`read_fields` plus what the codec leaves out: a message type the codec has no
    body for is named from its release's table; its body is read with the decoder's
    own schemas (:mod:`pyslurmrpc.wire.info_bodies`) or kept as undecoded bytes."""
    frame = as_frame_bytes(frame)
    spec = VERSIONS.get(int.from_bytes(frame[4:6], "big")) if len(frame) >= 6 else None
    if spec is None:
        return FrameFields(_prefix_only(frame), _envelope_error(frame))
    msg_type = _peek_msg_type(spec, frame)
    if msg_type is not None and msg_type not in spec.layout.bodies:
        return _read_other(spec, frame, msg_type)
    result = FrameFields(*_read_codec(spec, frame))
    if isinstance(result.error, UnknownMessageTypeError) and (result.error.field or "").startswith("header.ret_list"):
        return _read_other(spec, frame, msg_type)  # an entry the codec has no body for: try the decoder's
    return result


def _read_codec(spec: VersionSpec, frame: bytes) -> tuple[list[Field], Optional[ProtocolError]]:
    """A message type of the codec's body table: exactly what decode_message decides."""
    parsed, recorded, failure = recording_parse(spec.frame, frame, PARSE_ERRORS)
    fields = [Field(r.path, r.start, frame[r.start:r.end], r.value) for r in recorded]
    error = _envelope_error(frame)
    if error is None and failure is not None:
        error = parse_failure(spec, failure, frame)
    elif error is None:
        try:
            message_from_parsed(spec, parsed, frame)
        except ProtocolError as exc:
            error = exc
    return fields, error


def _peek_msg_type(spec: VersionSpec, frame: bytes) -> Optional[int]:
    at = spec.msg_type_offset
    return int.from_bytes(frame[at:at + 2], "big") if len(frame) >= at + 2 else None


@lru_cache(maxsize=None)
def decoder_frame(code: int) -> Construct:
    """The frame schema of protocol ``code`` with the decoder's bodies; any other body reads nothing.

    The header's ret_list (other nodes' answers, packed whole: no length to skip one by) reads
    the codec's and the decoder's bodies."""
    spec = VERSIONS[code]
    layout = spec.layout
    header = header_t({**layout.bodies, **decoder_bodies(code)}, msg_index=layout.msg_index,
                      forward=layout.forward, addr=layout.addr)
    return Struct(
        "length" / u32,
        "header" / header,
        "auth" / spec.auth,
        "body_start" / Tell,
        "body" / Switch(this.header.msg_type, {**layout.bodies, **decoder_bodies(code)}, default=Pass),
        "end" / Tell,
    )


def _read_other(spec: VersionSpec, frame: bytes, msg_type: int) -> FrameFields:
    parsed, recorded, failure = recording_parse(decoder_frame(spec.code), frame, PARSE_ERRORS)
    fields = [Field(r.path, r.start, frame[r.start:r.end], r.value) for r in recorded]
    decoded = msg_type in decoder_bodies(spec.code) or msg_type in spec.layout.bodies
    error = _envelope_error(frame)
    if error is None and failure is not None:
        error = parse_failure(spec, failure, frame)
    if error is None and msg_type not in MSG_TYPES_BY_RELEASE[spec.code]:
        error = UnknownMessageTypeError(f"unknown message type {msg_type!r} (not in Slurm {spec.name}'s table)",
                                        field="header.msg_type", offset=spec.msg_type_offset)
    start = parsed["body_start"] if parsed is not None else None
    if error is None:
        error = _extent_error(spec, parsed, frame, decoded)
    return FrameFields(fields, error, decoded, start)


def _extent_error(spec: VersionSpec, parsed, frame: bytes, decoded: bool) -> Optional[ProtocolError]:
    """A read body must end the frame; every body must be header.body_length bytes."""
    start, end = parsed["body_start"], parsed["end"] if decoded else len(frame)
    if end != len(frame):
        return TrailingBytesError(f"{len(frame) - end} bytes after the body", field="body", offset=end)
    declared = parsed["header"]["body_length"]
    if declared != end - start:
        return InvalidFieldError(f"header.body_length says {declared}, the body has {end - start} bytes",
                                 field="header.body_length", offset=spec.msg_type_offset + 2)
    return None


def walk_frame(frame: bytes) -> list[Field]:
    """The fields of :func:`read_fields` alone."""
    return read_fields(frame)[0]


def _envelope_error(frame: bytes) -> Optional[ProtocolError]:
    """What is wrong with the length prefix or the version, as decode_message reports it."""
    try:
        check_prefix(frame)
        spec_for(frame)
    except ProtocolError as exc:
        return exc
    return None


def _prefix_only(frame: bytes) -> list[Field]:
    if len(frame) < LENGTH_PREFIX_SIZE:
        return []
    raw = frame[:LENGTH_PREFIX_SIZE]
    return [Field("length", 0, raw, int.from_bytes(raw, "big"))]
