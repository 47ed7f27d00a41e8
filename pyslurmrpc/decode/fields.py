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
from typing import Any, Optional

from ..errors import ProtocolError
from ..wire._construct_internals import recording_parse
from ..wire.codec import PARSE_ERRORS, check_prefix, message_from_parsed, parse_failure, spec_for
from ..wire.constants import LENGTH_PREFIX_SIZE
from ..wire.versions import VERSIONS


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


def read_fields(frame: bytes) -> tuple[list[Field], Optional[ProtocolError]]:
    """Every field of ``frame`` (length prefix included) that could be read, in wire order,
    and the :class:`ProtocolError` :func:`~pyslurmrpc.wire.decode_message` raises for it (or None).

    The header version at offset 4 picks the schema; with an unknown version
    only the length prefix is listed.
    """
    frame = bytes(frame)
    spec = VERSIONS.get(int.from_bytes(frame[4:6], "big")) if len(frame) >= 6 else None
    if spec is None:
        return _prefix_only(frame), _envelope_error(frame)
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
