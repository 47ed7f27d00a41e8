"""Readers for pcap and pcapng capture files (no libpcap).

Layouts as protocol_specs/captures.md describes them: pcap is a 24-byte file
header then 16-byte record headers; pcapng is a sequence of blocks, each
``type, total length, body, total length``, whose byte order is set by the
section header block before them.
"""

from __future__ import annotations

import struct
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
    """Every packet of a pcap or pcapng file; problems at the end of the file go to ``warnings``."""
    kind = capture_kind(data)
    if kind == "pcap":
        return _read_pcap(data, warnings)
    if kind == "pcapng":
        return _read_pcapng(data, warnings)
    raise CaptureError("not a pcap or pcapng file")


# ---------------------------------------------------------------------------
# pcap
# ---------------------------------------------------------------------------
def _read_pcap(data: bytes, warnings: list[str]) -> Iterator[Packet]:
    if len(data) < PCAP_FILE_HEADER:
        raise CaptureError("pcap file header is cut short")
    order, _ = PCAP_MAGICS[int.from_bytes(data[:4], "big")]
    linktype = struct.unpack_from(order + "I", data, 20)[0] & PCAP_LINKTYPE_MASK
    pos, number = PCAP_FILE_HEADER, 0
    while pos < len(data):
        if pos + PCAP_RECORD_HEADER > len(data):
            warnings.append(f"pcap record header cut short at file offset {pos}")
            return
        _, _, incl, orig = struct.unpack_from(order + "IIII", data, pos)
        if incl > MAX_PACKET:
            warnings.append(f"pcap record at file offset {pos} claims {incl} bytes; reading stopped")
            return
        body = data[pos + PCAP_RECORD_HEADER:pos + PCAP_RECORD_HEADER + incl]
        number += 1
        yield Packet(number, linktype, body, truncated=len(body) < incl or incl < orig)
        if len(body) < incl:
            warnings.append(f"pcap record {number} cut short by the end of the file")
            return
        pos += PCAP_RECORD_HEADER + incl


# ---------------------------------------------------------------------------
# pcapng
# ---------------------------------------------------------------------------
class _Section:
    """Per-section state: byte order and the link type of each interface."""

    def __init__(self, order: str):
        self.order = order
        self.linktypes: list[int] = []


def _read_pcapng(data: bytes, warnings: list[str]) -> Iterator[Packet]:
    pos, number, section = 0, 0, None
    while pos + PCAPNG_MIN_BLOCK <= len(data):
        if int.from_bytes(data[pos:pos + 4], "big") == PCAPNG_SHB:
            section = _section(data, pos)
        order = section.order
        btype, blen = struct.unpack_from(order + "II", data, pos)
        if blen < PCAPNG_MIN_BLOCK or blen % 4 or pos + blen > len(data):
            warnings.append(f"pcapng block at file offset {pos} has a bad length {blen}; reading stopped")
            return
        body = data[pos + 8:pos + blen - 4]
        try:
            packet = _BLOCKS.get(btype, _skip)(section, body)
        except struct.error:
            warnings.append(f"pcapng block at file offset {pos} is too short for its type; reading stopped")
            return
        if packet is not None:
            number += 1
            yield Packet(number, *packet)
        pos += blen
    if pos < len(data):
        warnings.append(f"{len(data) - pos} bytes after the last pcapng block ignored")


def _section(data: bytes, pos: int) -> _Section:
    magic = data[pos + 8:pos + 12]
    orders = {PCAPNG_BYTE_ORDER_MAGIC.to_bytes(4, "big"): ">",
              PCAPNG_BYTE_ORDER_MAGIC.to_bytes(4, "little"): "<"}
    if magic not in orders:
        raise CaptureError(f"pcapng section header at file offset {pos} has no byte-order magic")
    return _Section(orders[magic])


def _skip(section: _Section, body: bytes):
    return None


def _idb(section: _Section, body: bytes):
    section.linktypes.append(struct.unpack_from(section.order + "H", body, 0)[0])
    return None


def _linktype(section: _Section, interface: int) -> int:
    if interface >= len(section.linktypes):
        raise CaptureError(f"pcapng packet names interface {interface}, which was never described")
    return section.linktypes[interface]


def _epb(section: _Section, body: bytes):
    interface, _, _, caplen, origlen = struct.unpack_from(section.order + "IIIII", body, 0)
    data = body[20:20 + caplen]
    return _linktype(section, interface), data, len(data) < caplen or caplen < origlen


def _pb(section: _Section, body: bytes):
    interface, _, _, _, caplen, origlen = struct.unpack_from(section.order + "HHIIII", body, 0)
    data = body[20:20 + caplen]
    return _linktype(section, interface), data, len(data) < caplen or caplen < origlen


def _spb(section: _Section, body: bytes):
    origlen = struct.unpack_from(section.order + "I", body, 0)[0]
    data = body[4:4 + origlen]
    return _linktype(section, 0), data, len(data) < origlen


#: pcapng block type -> handler returning (linktype, data, truncated) for packet blocks
_BLOCKS = {
    PCAPNG_SHB: _skip,
    PCAPNG_IDB: _idb,
    PCAPNG_EPB: _epb,
    PCAPNG_PB: _pb,
    PCAPNG_SPB: _spb,
}
