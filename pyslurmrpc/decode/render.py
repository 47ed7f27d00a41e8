"""Reports to text (an annotated tree, like ``tshark -V``) or to JSON lines.

Credentials are never printed: their field shows its size only, and the
decoded contents appear only when ``--munge-key`` opened them.
"""

from __future__ import annotations

import json
from typing import Iterator, Optional

from ..wire.constants import MsgType
from ..wire.msg_types_by_release import msg_type_name
from ..wire.types import holds_credential_text
from .annotate import iso_time, json_value, meaning, show_value
from .fields import Field
from .frames import SECRET_FIELDS, FrameReport, StreamReport
from .withheld import MASK, masked_hex, withheld_spans

#: Raw bytes shown on a field line; longer fields are cut with an ellipsis.
RAW_SHOWN = 8
#: Bytes of an undecodable tail shown as hex (the rest is counted, not shown).
MAX_DUMP = 512
DUMP_ROW = 16
PATH_WIDTH = 26
RAW_WIDTH = 24
INDENT = "  "
MUNGE_INDENT = " " * 9
#: Size prefix of a packstr: the part of a credential field that may be shown.
STRING_SIZE = 4
#: bytes before an undecoded tail, and past its dump, looked at for a credential crossing
#: into it (MUNGE credentials of Slurm are a few hundred bytes)
WITHHELD_LOOKBEHIND = 4096


def _msg_name(msg_type: Optional[int], version: Optional[int] = None) -> Optional[str]:
    """The name of ``msg_type`` in the release of header ``version`` (any release's when unknown)."""
    if msg_type is None:
        return None
    name = msg_type_name(version, msg_type)
    if name is None and version is None:
        try:
            return MsgType(msg_type).name
        except ValueError:
            return None
    return name


def _type_name(msg_type: Optional[int], version: Optional[int] = None) -> str:
    if msg_type is None:
        return "message type unknown"
    name = _msg_name(msg_type, version)
    return f"{name} ({msg_type})" if name else f"unknown message type {msg_type}"


def _secret(field: Field) -> bool:
    return field.name in SECRET_FIELDS


def _credential_like(field: Field) -> bool:
    """Another string field holding a credential's text (read from bytes a peer misplaced):
    withheld as the credential is."""
    return not _secret(field) and isinstance(field.value, str) and holds_credential_text(bytes(field.raw))


def _raw_text(field: Field) -> str:
    raw = field.raw[:STRING_SIZE] if _secret(field) or _credential_like(field) else field.raw
    text = raw[:RAW_SHOWN].hex(" ")
    return text + " …" if len(field.raw) > len(raw[:RAW_SHOWN]) else text


def _value_text(field: Field, version: Optional[int] = None) -> str:
    if _secret(field):
        size = len(field.raw) - STRING_SIZE
        return f"<credential, {size} bytes, not shown>" if field.value is not None else "NULL"
    if _credential_like(field):
        return f"<{len(field.raw) - STRING_SIZE} bytes not shown: they may hold a credential>"
    text = show_value(field.value)
    extra = meaning(field, version)
    return f"{text} ({extra})" if extra else text


def field_line(field: Field, version: Optional[int] = None) -> str:
    """One annotated line: ``  [0012] header.body_length  00 00 00 10  = 16``."""
    return (f"{INDENT}[{field.offset:04d}] {field.path:<{PATH_WIDTH}} "
            f"{_raw_text(field):<{RAW_WIDTH}} = {_value_text(field, version)}")


def _munge_lines(report: FrameReport) -> Iterator[str]:
    if report.munge_error:
        yield f"{MUNGE_INDENT}munge: credential did not open: {report.munge_error}"
    if not report.munge:
        return
    for key, value in report.munge.items():
        if key == "encode_time":
            shown = f"{value} ({iso_time(value)})"
        else:
            shown = "NULL" if value is None else str(value)
        yield f"{MUNGE_INDENT}munge.{key} = {shown if value != '' else '(empty)'}"


def _tail(report: FrameReport) -> tuple[int, bytes]:
    start = report.decoded_end
    return start, report.frame[start:]


def _tail_withheld(report: FrameReport) -> list[tuple[int, int]]:
    """The spans of the dumped part of the undecoded tail (its first MAX_DUMP bytes) that may
    hold a credential, relative to the tail.  Looked for from WITHHELD_LOOKBEHIND bytes before
    the tail, as a credential may begin inside the last field decoded (one begun further back
    still shows as a long base64 run), to a credential's length past the dump."""
    start = report.decoded_end
    low = max(0, start - WITHHELD_LOOKBEHIND)
    window = bytes(report.frame[low:start + MAX_DUMP + WITHHELD_LOOKBEHIND])
    return [(max(s + low, start) - start, e + low - start) for s, e in withheld_spans(window)
            if e + low > start and s + low < start + MAX_DUMP]


def _dump_lines(report: FrameReport) -> Iterator[str]:
    start, tail = _tail(report)
    if not tail:
        return
    field = (report.error.field or "") if report.error else ""
    if field.rsplit(".", 1)[-1] in SECRET_FIELDS:
        yield f"{INDENT}[{start:04d}] undecoded: {len(tail)} bytes not shown (they hold a credential)"
        return
    if report.undecoded_body:
        yield f"{INDENT}[{start:04d}] body: {len(tail)} bytes, body not decoded (no schema for this message type)"
    else:
        yield f"{INDENT}[{start:04d}] undecoded: {len(tail)} bytes"
    shown = tail[:MAX_DUMP]
    spans = _tail_withheld(report)
    for at in range(0, len(shown), DUMP_ROW):
        row = [(max(s, at) - at, min(e, at + DUMP_ROW) - at) for s, e in spans if s < at + DUMP_ROW and e > at]
        yield f"{INDENT}  {start + at:04d}: {masked_hex(shown[at:at + DUMP_ROW], row, ' ')}"
    if len(tail) > MAX_DUMP:
        yield f"{INDENT}  … {len(tail) - MAX_DUMP} more bytes"
    for s, e in spans:
        yield f"{INDENT}  ({e - s} bytes at {start + s:04d} not shown ({MASK}): they may hold a credential)"


def frame_lines(report: FrameReport) -> Iterator[str]:
    """The annotated tree of one frame."""
    version = report.version
    head = f"Frame {report.index} at stream offset {report.offset}: {_type_name(report.msg_type, version)}, " \
           f"{len(report.frame)} bytes"
    if report.error is not None:
        head += f" -- NOT DECODED: {report.error}"
    elif report.undecoded_body:
        head += " -- body not decoded"
    yield head
    for field in report.fields:
        yield field_line(field, version)
        if _secret(field):
            yield from _munge_lines(report)
    yield from _dump_lines(report)


def stream_lines(stream: StreamReport) -> Iterator[str]:
    """A heading, every frame of the stream, then what stopped it if anything did."""
    yield f"=== {stream.label} ==="
    for report in stream.frames:
        yield from frame_lines(report)
        yield ""
    for problem in stream.problems:
        yield f"!!! {problem}"
        yield ""


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------
def _hex_capped(data: bytes, spans: list[tuple[int, int]]) -> dict:
    """Bytes for JSON: at most MAX_DUMP of them as hex, with the full length; ``spans``, the
    parts that may hold a credential, are written as MASK ("--") and listed in ``withheld``."""
    return {"length": len(data), "hex": masked_hex(data[:MAX_DUMP], spans), "truncated": len(data) > MAX_DUMP,
            "withheld": [{"offset": s, "length": e - s} for s, e in spans]}


def field_json(field: Field, version: Optional[int] = None) -> dict:
    """A field as a JSON object (credential values and bytes withheld)."""
    if _secret(field) or _credential_like(field):
        return {"path": field.path, "offset": field.offset, "size": len(field.raw),
                "raw": field.raw[:STRING_SIZE].hex(), "value": None, "redacted": True,
                "meaning": "credential" if _secret(field) else "may hold a credential"}
    obj = {"path": field.path, "offset": field.offset, "size": len(field.raw), "raw": field.raw[:MAX_DUMP].hex(),
           "value": json_value(field.value), "meaning": meaning(field, version)}
    if len(field.raw) > MAX_DUMP:  # "size" keeps the full length; one line stays bounded
        obj["raw_truncated"] = True
    return obj


def _error_json(report: FrameReport) -> Optional[dict]:
    if report.error is None:
        return None
    start, tail = _tail(report)
    secret = (report.error.field or "").rsplit(".", 1)[-1] in SECRET_FIELDS
    shown = _hex_capped(tail, _tail_withheld(report))
    return {"type": type(report.error).__name__, "reason": report.error.detail,
            "field": report.error.field, "offset": report.error.offset,
            "undecoded_offset": start, "undecoded_length": len(tail),
            "undecoded": None if secret else shown["hex"], "undecoded_truncated": shown["truncated"],
            "undecoded_withheld": [] if secret else shown["withheld"]}


def _body_json(report: FrameReport) -> Optional[dict]:
    """The bytes of a body with no schema (None when the body was decoded or the frame failed)."""
    if not report.undecoded_body:
        return None
    start, tail = _tail(report)
    return {"offset": start, **_hex_capped(tail, _tail_withheld(report))}


def frame_json(stream: StreamReport, report: FrameReport) -> dict:
    """One message as a JSON object."""
    msg_type, version = report.msg_type, report.version
    return {
        "kind": "message", "stream": stream.label, "frame": report.index,
        "stream_offset": report.offset, "length": len(report.frame), "ok": report.ok,
        "msg_type": msg_type, "msg_type_name": _msg_name(msg_type, version),
        "body_decoded": report.error is None and report.body_decoded,
        "fields": [field_json(f, version) for f in report.fields],
        "undecoded_body": _body_json(report),
        "error": _error_json(report), "munge": report.munge, "munge_error": report.munge_error,
    }


def stream_json(stream: StreamReport) -> Iterator[str]:
    """JSON lines: one per message, one per problem that stopped the stream."""
    for report in stream.frames:
        yield json.dumps(frame_json(stream, report))
    for problem in stream.problems:
        yield json.dumps({"kind": "stream_error", "stream": stream.label, "reason": problem})
