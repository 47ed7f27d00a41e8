"""pcap and pcapng read incrementally from a binary file object (a pipe from tcpdump -w -).

Each packet is read with exact-size reads and yielded as soon as its record is
complete: nothing but the current record is held, so a capture of any size
streams through.  Layouts as :mod:`.capture` reads them from memory
(protocol_specs/captures.md); here the timestamps are kept too.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

from .capture import (
    MAX_PACKET, PCAP_FILE_HEADER, PCAP_LINKTYPE_MASK, PCAP_MAGICS, PCAP_RECORD_HEADER, PCAPNG_BYTE_ORDER_MAGIC,
    PCAPNG_EPB, PCAPNG_IDB, PCAPNG_MIN_BLOCK, PCAPNG_PB, PCAPNG_SHB, PCAPNG_SPB, CaptureError, Packet,
)

#: pcapng blocks larger than this are refused (a packet block holds at most MAX_PACKET bytes)
MAX_BLOCK = MAX_PACKET + 1024
#: pcapng interface option if_tsresol (RFC draft pcapng section 4.2): timestamp resolution
OPT_END, OPT_TSRESOL = 0, 9
DEFAULT_TSRESOL = 6  # microseconds
_TSRESOL_BASE2 = 0x80


def read_exact(fh: BinaryIO, size: int) -> bytes:
    """``size`` bytes, fewer only at end of input (a pipe may return short reads)."""
    chunks, have = [], 0
    while have < size:
        chunk = fh.read(size - have)
        if not chunk:
            break
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)


def stream_packets(fh: BinaryIO, head: bytes, warnings: list[str]) -> Iterator[Packet]:
    """Every packet of the capture whose first bytes (already read) are ``head``."""
    magic = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
    if magic in PCAP_MAGICS:
        return _pcap(fh, head, warnings)
    if magic == PCAPNG_SHB:
        return _pcapng(fh, head, warnings)
    raise CaptureError("not a pcap or pcapng file")


def _pcap(fh: BinaryIO, head: bytes, warnings: list[str]) -> Iterator[Packet]:
    header = head + read_exact(fh, PCAP_FILE_HEADER - len(head))
    if len(header) < PCAP_FILE_HEADER:
        raise CaptureError("pcap file header is cut short")
    order, per_second = PCAP_MAGICS[int.from_bytes(header[:4], "big")]
    linktype = struct.unpack_from(order + "I", header, 20)[0] & PCAP_LINKTYPE_MASK
    return _pcap_records(fh, order, per_second, linktype, warnings)


def _pcap_records(fh, order: str, per_second: int, linktype: int, warnings: list[str]) -> Iterator[Packet]:
    offset, number = PCAP_FILE_HEADER, 0
    while True:
        record = read_exact(fh, PCAP_RECORD_HEADER)
        if not record:
            return
        if len(record) < PCAP_RECORD_HEADER:
            warnings.append(f"pcap record header cut short at file offset {offset}")
            return
        sec, frac, incl, orig = struct.unpack(order + "IIII", record)
        if incl > MAX_PACKET:
            warnings.append(f"pcap record at file offset {offset} claims {incl} bytes; reading stopped")
            return
        body = read_exact(fh, incl)
        number += 1
        if len(body) < incl:   # said once, here: a packet cut so is never read (a pcapng block neither)
            warnings.append(f"pcap record {number} cut short by the end of the file")
            return
        yield Packet(number, linktype, body, incl < orig, sec + frac / per_second)
        offset += PCAP_RECORD_HEADER + incl


class _Interfaces:
    """Per-section state: byte order, and link type and timestamp resolution of each interface."""

    def __init__(self, order: str):
        self.order = order
        self.links: list[tuple[int, float]] = []  # (linktype, seconds per timestamp unit)

    def get(self, interface: int) -> tuple[int, float]:
        if interface >= len(self.links):
            raise CaptureError(f"pcapng packet names interface {interface}, which was never described")
        return self.links[interface]


def _pcapng(fh: BinaryIO, head: bytes, warnings: list[str]) -> Iterator[Packet]:
    pending, offset, number, section = head, 0, 0, None
    while True:
        start = pending + read_exact(fh, 8 - len(pending))
        pending = b""
        if not start:
            return
        if len(start) < 8:
            warnings.append(f"ignored {len(start)} bytes at the end that make no whole pcapng block")
            return
        if int.from_bytes(start[:4], "big") == PCAPNG_SHB:
            section = _section(fh, start, offset)
            rest, blen = section[1], section[2]
            section = section[0]
        else:
            if section is None:
                raise CaptureError("pcapng file does not start with a section header block")
            btype, blen = struct.unpack(section.order + "II", start)
            if blen < PCAPNG_MIN_BLOCK or blen % 4 or blen > MAX_BLOCK:
                warnings.append(f"pcapng block at file offset {offset} has a bad length {blen}; reading stopped")
                return
            rest = read_exact(fh, blen - 8)
            if len(rest) < blen - 8:
                warnings.append(f"pcapng block at file offset {offset} has a bad length {blen}; reading stopped")
                return
            try:
                packet = _block(section, btype, rest[:-4])
            except struct.error:
                warnings.append(f"pcapng block at file offset {offset} is too short for its type; reading stopped")
                return
            if packet is not None:
                number += 1
                yield Packet(number, *packet)
        offset += blen


def _section(fh: BinaryIO, start: bytes, offset: int) -> tuple[_Interfaces, bytes, int]:
    magic = read_exact(fh, 4)
    orders = {PCAPNG_BYTE_ORDER_MAGIC.to_bytes(4, "big"): ">",
              PCAPNG_BYTE_ORDER_MAGIC.to_bytes(4, "little"): "<"}
    if magic not in orders:
        raise CaptureError(f"pcapng section header at file offset {offset} has no byte-order magic")
    order = orders[magic]
    blen = struct.unpack(order + "I", start[4:8])[0]
    if blen < PCAPNG_MIN_BLOCK + 4 or blen % 4 or blen > MAX_BLOCK:
        raise CaptureError(f"pcapng section header at file offset {offset} has a bad length {blen}")
    rest = read_exact(fh, blen - 12)
    return _Interfaces(order), magic + rest, blen


def _block(section: _Interfaces, btype: int, body: bytes):
    order = section.order
    if btype == PCAPNG_IDB:
        section.links.append((struct.unpack_from(order + "H", body, 0)[0], _resolution(order, body)))
        return None
    if btype == PCAPNG_EPB:
        interface, high, low, caplen, origlen = struct.unpack_from(order + "IIIII", body, 0)
        linktype, unit = section.get(interface)
        data = body[20:20 + caplen]
        return linktype, data, len(data) < caplen or caplen < origlen, ((high << 32) | low) * unit
    if btype == PCAPNG_PB:
        interface, _, high, low, caplen, origlen = struct.unpack_from(order + "HHIIII", body, 0)
        linktype, unit = section.get(interface)
        data = body[20:20 + caplen]
        return linktype, data, len(data) < caplen or caplen < origlen, ((high << 32) | low) * unit
    if btype == PCAPNG_SPB:
        origlen = struct.unpack_from(order + "I", body, 0)[0]
        data = body[4:4 + origlen]
        return section.get(0)[0], data, len(data) < origlen, 0.0
    return None


def _resolution(order: str, body: bytes) -> float:
    """Seconds per timestamp unit from an interface description's if_tsresol option."""
    pos = 8  # linktype, reserved, snaplen
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, pos)
        if code == OPT_END:
            break
        if code == OPT_TSRESOL and length >= 1:
            value = body[pos + 4]
            return 2.0 ** -(value & 0x7F) if value & _TSRESOL_BASE2 else 10.0 ** -value
        pos += 4 + (length + 3) // 4 * 4
    return 10.0 ** -DEFAULT_TSRESOL
