"""Readers for pcap and pcapng capture files (no libpcap).

Layouts as protocol_specs/captures.md describes them: pcap is a 24-byte file
header then 16-byte record headers; pcapng is a sequence of blocks, each
``type, total length, body, total length``, whose byte order is set by the
section header block before them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Iterator

#: pcap magic (as read big-endian) -> (byte order, timestamp units per second)
PCAP_MAGICS = {
    0xA1B2C3D4: (">", 1_000_000),
    0xD4C3B2A1: ("<", 1_000_000),
    0xA1B23C4D: (">", 1_000_000_000),
    0x4D3CB2A1: ("<", 1_000_000_000),
}
PCAP_FILE_HEADER = 24
PCAP_RECORD_HEADER = 16
#: pcap's link-type field: the low 16 bits are the link type (the rest is FCS information)
PCAP_LINKTYPE_MASK = 0xFFFF

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 0x00000001
PCAPNG_PB = 0x00000002  # obsolete Packet Block
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_MIN_BLOCK = 12

#: Refuse packets larger than this (no link layer carries more; guards against corrupt lengths).
MAX_PACKET = 1 << 24


class CaptureError(ValueError):
    """The capture file is not a pcap/pcapng file we can read."""


@dataclass(frozen=True)
class Packet:
    """One captured packet: its number in the file (1-based), link type, bytes, and whether it was cut short."""

    number: int
    linktype: int
    data: bytes
    truncated: bool = False
    time: float = 0.0  # capture timestamp, seconds since the epoch (0 when unknown)


def capture_kind(data: bytes) -> str | None:
    """``"pcap"``, ``"pcapng"`` or None, from the file's first bytes."""
    if len(data) >= 4 and int.from_bytes(data[:4], "big") in PCAP_MAGICS:
        return "pcap"
    if len(data) >= 4 and int.from_bytes(data[:4], "big") == PCAPNG_SHB:
        return "pcapng"
    return None


def read_capture(data: bytes, warnings: list[str]) -> Iterator[Packet]:
    """Every packet of a pcap or pcapng file in memory; problems at the end of the file go to ``warnings``.

    The same reader as a capture streamed from a pipe (capture_stream), over the bytes in hand.
    """
    from .capture_stream import stream_packets  # it builds on this module's constants and Packet
    fh = io.BytesIO(data)
    return stream_packets(fh, fh.read(4), warnings)
