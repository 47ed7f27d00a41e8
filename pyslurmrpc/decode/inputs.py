"""Recognise the input (raw frames, hex dump, pcap, pcapng) and turn it into byte streams."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Iterable

from .capture import CaptureError, capture_kind, read_capture
from .packets import NotTcp, SkipReason, parse_packet
from .tcp import DEFAULT_PORTS, reassemble

#: Bytes a hex dump may consist of.
_TEXT_BYTES = frozenset((string.printable).encode())
#: "0000: 0000 00cc ..." (the specs, xxd): an offset and a colon before the hex
_COLON_OFFSET = re.compile(r"^\s*(?:0x)?[0-9a-fA-F]+:\s?")
#: "00000000  00 00 00 cc ...  |....|" (hexdump -C) or "000000 00 00 00 cc ..." (od -Ax -tx1):
#: an offset of 6-16 digits, then bytes as two-digit groups, then perhaps an ASCII column
_OFFSET_LINE = re.compile(r"^([0-9a-fA-F]{6,16})((?:\s+[0-9a-fA-F]{2})+)\s*(?:\|.*\|)?\s*$")
#: the line that closes such a dump: the offset past the last byte, alone
_OFFSET_ALONE = re.compile(r"^([0-9a-fA-F]{6,16})\s*$")
#: the widest line of such a dump taken (hexdump -C and od print 16 bytes; od -w can ask for more)
_OFFSET_DUMP_WIDTH_MAX = 4096
#: Two spaces end the hex part of an xxd line (the ASCII column follows).
_COLUMN_GAP = "  "
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
#: Packet-level reasons worth a warning (others are just traffic that is not TCP).
_WORTH_WARNING = frozenset({SkipReason.CUT_SHORT, SkipReason.FRAGMENT, SkipReason.UNSUPPORTED_LINK})


class InputError(ValueError):
    """The input is not something the decoder can read (exit code 2)."""


@dataclass
class ByteStream:
    """Bytes to be framed, with a heading and any problem found while collecting them."""

    label: str
    data: bytes
    problems: list[str] = field(default_factory=list)


@dataclass
class Source:
    """What was read: its kind, its streams and warnings about the input itself."""

    kind: str
    streams: list
    warnings: list[str] = field(default_factory=list)


def detect_kind(data: bytes) -> str:
    """``"pcap"``, ``"pcapng"``, ``"hex"`` or ``"raw"``."""
    kind = capture_kind(data)
    if kind:
        return kind
    return "hex" if data and all(b in _TEXT_BYTES for b in data) else "raw"


def parse_hex_dump(text: str) -> bytes:
    """Bytes from an xxd dump, a ``0000: ...`` dump, ``hexdump -C`` or ``od -Ax -tx1`` output
    (offsets checked, ``*`` repeats expanded, the closing offset read as the length) or plain hex.

    Blank lines and lines starting with ``#`` are ignored.  Raises
    :class:`InputError` naming the first line that is not hex.
    """
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if lines and _OFFSET_LINE.match(lines[0][1]):
        return _offset_dump(lines)
    out = []
    for number, line in lines:
        digits = re.sub(r"\s+", "", _hex_part(line))
        if not _HEX.match(digits):
            raise InputError(f"line {number} is not a hex dump: {line.strip()[:60]!r}")
        out.append(digits)
    return bytes.fromhex("".join(out))


def _hex_part(line: str) -> str:
    match = _COLON_OFFSET.match(line)
    if match:
        return line[match.end():].split(_COLUMN_GAP)[0]
    return line


def _offset_dump(lines: list[tuple[int, str]]) -> bytes:
    """``hexdump -C`` / ``od -Ax -tx1``: each line's offset must be where the bytes so far end;
    after a ``*`` the line before repeats up to it; a last line of an offset alone is the length."""
    out, previous, repeating = bytearray(), b"", False
    for number, line in lines:
        if line.strip() == "*":
            repeating = True
            continue
        match = _OFFSET_LINE.match(line) or _OFFSET_ALONE.match(line)
        if not match:
            raise InputError(f"line {number} is not a hex dump line (offset, then bytes): {line.strip()[:60]!r}")
        offset = int(match.group(1), 16)
        if repeating and previous and offset > len(out) and (offset - len(out)) % len(previous) == 0:
            out += previous * ((offset - len(out)) // len(previous))
        repeating = False
        if offset != len(out):
            raise InputError(f"line {number}: offset 0x{offset:x} where 0x{len(out):x} bytes were read")
        previous = bytes.fromhex(match.group(2)) if match.re is _OFFSET_LINE else b""
        if len(previous) > _OFFSET_DUMP_WIDTH_MAX:
            raise InputError(f"line {number}: more than {_OFFSET_DUMP_WIDTH_MAX} bytes on one line")
        out += previous
    return bytes(out)


def load(data: bytes, name: str, ports: Iterable[int] = DEFAULT_PORTS) -> Source:
    """Read ``data`` (from the file ``name``) into byte streams, detecting its kind."""
    kind = detect_kind(data)
    if not data:
        raise InputError(f"{name}: empty input")
    if kind == "hex":
        return Source(kind, [ByteStream(f"{name} (hex dump)", parse_hex_dump(data.decode("ascii")))])
    if kind == "raw":
        return Source(kind, [ByteStream(f"{name} (raw frames)", data)])
    return _load_capture(data, name, kind, ports)


def _load_capture(data: bytes, name: str, kind: str, ports: Iterable[int]) -> Source:
    warnings: list[str] = []
    skipped: dict[tuple[SkipReason, str], int] = {}
    try:
        segments = list(_segments(read_capture(data, warnings), skipped))
    except CaptureError as exc:
        raise InputError(f"{name}: {exc}") from None
    warnings += [f"{count} packet(s) skipped: {text}" for (reason, text), count in skipped.items()
                 if reason in _WORTH_WARNING]
    streams = [s for s in reassemble(segments, ports) if s.data or s.problems]
    if not streams:
        raise InputError(f"{name}: no TCP payload to or from ports {', '.join(map(str, sorted(ports)))}")
    return Source(kind, streams, warnings)


def _segments(packets, skipped: dict[tuple[SkipReason, str], int]):
    for packet in packets:
        try:
            yield parse_packet(packet.linktype, packet.data, packet.number)
        except NotTcp as exc:
            key = (exc.reason, str(exc))
            skipped[key] = skipped.get(key, 0) + 1
