"""Captured packets to TCP segments: link layer, IPv4/IPv6, TCP headers.

Each link type has a function returning ``(ethertype, payload)``; IP and TCP
are then parsed the same way whatever carried them.  Packets that are not TCP,
are IP fragments, or are cut short are skipped (and counted by the caller).
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass
from typing import Callable

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
#: 802.1Q / 802.1ad VLAN tags: 4 bytes each, the real ethertype follows
VLAN_ETHERTYPES = frozenset({0x8100, 0x88A8, 0x9100})
VLAN_TAG = 4
SLL_HEADER = 16
SLL2_HEADER = 20
NULL_HEADER = 4

#: BSD address families found in DLT_NULL / DLT_LOOP headers (tcpdump.org LINKTYPE_NULL)
AF_TO_ETHERTYPE = {2: ETHERTYPE_IPV4, 10: ETHERTYPE_IPV6, 24: ETHERTYPE_IPV6,
                   28: ETHERTYPE_IPV6, 30: ETHERTYPE_IPV6}

IPPROTO_TCP = 6
#: IPv6 extension headers walked over to find TCP (RFC 8200 section 4): (8 + 8n)-byte units
IPV6_EXTENSIONS = frozenset({0, 43, 60})
IPV6_FRAGMENT = 44
IPV6_HEADER = 40
IPV4_MIN_HEADER = 20
TCP_MIN_HEADER = 20
IPV4_MORE_FRAGMENTS = 0x2000
IPV4_FRAGMENT_OFFSET = 0x1FFF

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


class SkipReason(enum.Enum):
    """Why a packet gives no TCP segment (sorted on this, never on the message text)."""

    CUT_SHORT = "cut short"                  # a header or packet shorter than it declares
    FRAGMENT = "fragment"                    # IP fragments are not reassembled
    UNSUPPORTED_LINK = "unsupported link"    # a link type we have no parser for
    NOT_IP = "not IP"                        # another network protocol, or no IP header
    NOT_TCP = "not TCP"                      # IP carrying another transport
    MALFORMED = "malformed"                  # a TCP header whose fields do not add up


class NotTcp(Exception):
    """The packet carries no TCP segment we can use; ``reason`` says which kind, ``str()`` the details."""

    def __init__(self, reason: SkipReason, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Segment:
    """One TCP segment: addresses and ports, sequence number, flags, payload."""

    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    flags: int
    payload: bytes
    number: int = 0  # packet number in the capture
    time: float = 0.0  # capture timestamp of its packet (0 when unknown)


# ---------------------------------------------------------------------------
# link layers
# ---------------------------------------------------------------------------
def _ethernet(data: bytes) -> tuple[int, bytes]:
    pos, ethertype = 12, None
    while True:
        if len(data) < pos + 2:
            raise NotTcp(SkipReason.CUT_SHORT, "Ethernet header cut short")
        ethertype = int.from_bytes(data[pos:pos + 2], "big")
        if ethertype not in VLAN_ETHERTYPES:
            return ethertype, data[pos + 2:]
        pos += VLAN_TAG


def _null(order: str) -> Callable[[bytes], tuple[int, bytes]]:
    """DLT_NULL ("host": the writer's byte order, guessed) or DLT_LOOP (">", network order)."""
    def parse(data: bytes) -> tuple[int, bytes]:
        if len(data) < NULL_HEADER:
            raise NotTcp(SkipReason.CUT_SHORT, "loopback header cut short")
        family = int.from_bytes(data[:NULL_HEADER], "big" if order == ">" else "little")
        if family > 0xFFFF:  # families are small: this was written big-endian
            family = int.from_bytes(data[:NULL_HEADER], "big")
        return AF_TO_ETHERTYPE.get(family, -1), data[NULL_HEADER:]
    return parse


def _sll(data: bytes) -> tuple[int, bytes]:
    if len(data) < SLL_HEADER:
        raise NotTcp(SkipReason.CUT_SHORT, "Linux cooked header cut short")
    return int.from_bytes(data[14:16], "big"), data[SLL_HEADER:]


def _sll2(data: bytes) -> tuple[int, bytes]:
    if len(data) < SLL2_HEADER:
        raise NotTcp(SkipReason.CUT_SHORT, "Linux cooked v2 header cut short")
    return int.from_bytes(data[0:2], "big"), data[SLL2_HEADER:]


def _raw_ip(data: bytes) -> tuple[int, bytes]:
    version = data[0] >> 4 if data else 0
    return {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}.get(version, -1), data


#: link type (tcpdump.org linktypes.html) -> parser giving (ethertype, network-layer bytes)
LINKTYPES: dict[int, Callable[[bytes], tuple[int, bytes]]] = {
    0: _null("host"),      # LINKTYPE_NULL: family in the capturing host's byte order
    1: _ethernet,       # LINKTYPE_ETHERNET (DLT_EN10MB)
    12: _raw_ip,        # DLT_RAW on some BSDs
    14: _raw_ip,        # DLT_RAW on OpenBSD
    101: _raw_ip,       # LINKTYPE_RAW
    108: _null(">"),    # LINKTYPE_LOOP (OpenBSD): family in network byte order
    113: _sll,          # LINKTYPE_LINUX_SLL
    228: _raw_ip,       # LINKTYPE_IPV4
    229: _raw_ip,       # LINKTYPE_IPV6
    276: _sll2,         # LINKTYPE_LINUX_SLL2
}


# ---------------------------------------------------------------------------
# IP
# ---------------------------------------------------------------------------
def _not_tcp(proto: int) -> NotTcp:
    return NotTcp(SkipReason.NOT_TCP, f"IP protocol {proto} is not TCP")


def _ipv4(data: bytes) -> tuple[str, str, int, bytes]:
    if len(data) < IPV4_MIN_HEADER or data[0] >> 4 != 4:
        raise NotTcp(SkipReason.NOT_IP, "not an IPv4 header")
    if data[9] != IPPROTO_TCP:      # before fragments and cuts: another transport's are no loss
        raise _not_tcp(data[9])
    ihl = (data[0] & 0x0F) * 4
    total = int.from_bytes(data[2:4], "big")
    frag = int.from_bytes(data[6:8], "big")
    if frag & (IPV4_MORE_FRAGMENTS | IPV4_FRAGMENT_OFFSET):
        raise NotTcp(SkipReason.FRAGMENT, "IPv4 fragment (fragments are not reassembled)")
    if ihl < IPV4_MIN_HEADER or total < ihl or len(data) < total:
        raise NotTcp(SkipReason.CUT_SHORT, "IPv4 packet cut short or malformed")
    src, dst = (str(ipaddress.IPv4Address(data[i:i + 4])) for i in (12, 16))
    return src, dst, data[9], data[ihl:total]  # total length drops Ethernet padding


def _ipv6(data: bytes) -> tuple[str, str, int, bytes]:
    if len(data) < IPV6_HEADER or data[0] >> 4 != 6:
        raise NotTcp(SkipReason.NOT_IP, "not an IPv6 header")
    length = int.from_bytes(data[4:6], "big")
    if len(data) < IPV6_HEADER + length:
        raise NotTcp(SkipReason.CUT_SHORT, "IPv6 packet cut short")
    src, dst = (str(ipaddress.IPv6Address(data[i:i + 16])) for i in (8, 24))
    nxt, rest = data[6], data[IPV6_HEADER:IPV6_HEADER + length]
    while nxt in IPV6_EXTENSIONS and len(rest) >= 8:
        nxt, rest = rest[0], rest[8 + rest[1] * 8:]
    if nxt == IPV6_FRAGMENT:
        if len(rest) >= 8 and rest[0] != IPPROTO_TCP:   # the fragment header's next header
            raise _not_tcp(rest[0])
        raise NotTcp(SkipReason.FRAGMENT, "IPv6 fragment (fragments are not reassembled)")
    return src, dst, nxt, rest


NETWORK = {ETHERTYPE_IPV4: _ipv4, ETHERTYPE_IPV6: _ipv6}


# ---------------------------------------------------------------------------
# TCP
# ---------------------------------------------------------------------------
def _tcp(src: str, dst: str, data: bytes, number: int) -> Segment:
    if len(data) < TCP_MIN_HEADER:
        raise NotTcp(SkipReason.CUT_SHORT, "TCP header cut short")
    sport, dport, seq = struct.unpack_from(">HHI", data)
    offset = (data[12] >> 4) * 4
    if offset < TCP_MIN_HEADER or len(data) < offset:
        raise NotTcp(SkipReason.MALFORMED, "TCP data offset malformed")
    return Segment(src, dst, sport, dport, seq, data[13], data[offset:], number)


def parse_packet(linktype: int, data: bytes, number: int = 0) -> Segment:
    """The TCP segment in one captured packet; raises :class:`NotTcp` when there is none."""
    link = LINKTYPES.get(linktype)
    if link is None:
        raise NotTcp(SkipReason.UNSUPPORTED_LINK, f"link type {linktype} is not supported")
    ethertype, network = link(data)
    ip = NETWORK.get(ethertype)
    if ip is None:
        raise NotTcp(SkipReason.NOT_IP, f"ethertype 0x{ethertype & 0xFFFF:04x} is not IP")
    src, dst, proto, transport = ip(network)
    if proto != IPPROTO_TCP:
        raise _not_tcp(proto)
    return _tcp(src, dst, transport, number)
