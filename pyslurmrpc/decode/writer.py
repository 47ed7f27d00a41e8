"""Write small pcap / pcapng captures of TCP conversations (for tests, and to open recordings in Wireshark).

>>> req, resp = open("fixtures/ping.request.bin", "rb").read(), open("fixtures/ping.response.bin", "rb").read()
>>> open("/tmp/ping.pcap", "wb").write(pcap_bytes(tcp_conversation(req, resp)))  # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Iterable, Sequence

from .capture import PCAPNG_BYTE_ORDER_MAGIC, PCAPNG_EPB, PCAPNG_IDB, PCAPNG_SHB
from .packets import ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_SYN

LINKTYPE_ETHERNET = 1
TCP_PSH = 0x08
SNAPLEN = 262144
IP_TTL = 64
TCP_WINDOW = 65535
#: Locally administered MAC addresses for the made-up Ethernet headers.
CLIENT_MAC = bytes.fromhex("020000000001")
SERVER_MAC = bytes.fromhex("020000000002")


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_packet(src: str, dst: str, sport: int, dport: int, seq: int, ack: int = 0,
               flags: int = TCP_ACK | TCP_PSH, payload: bytes = b"") -> bytes:
    """An Ethernet frame carrying one IPv4 or IPv6 TCP segment, checksums filled in."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq % (1 << 32), ack % (1 << 32), 5 << 4, flags,
                      TCP_WINDOW, 0, 0) + payload
    if s.version == 6:
        pseudo = s.packed + d.packed + struct.pack(">IxxxB", len(tcp), IPPROTO_TCP)
        tcp = tcp[:16] + struct.pack(">H", _checksum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack(">IHBB", 6 << 28, len(tcp), IPPROTO_TCP, IP_TTL) + s.packed + d.packed
        return SERVER_MAC + CLIENT_MAC + struct.pack(">H", ETHERTYPE_IPV6) + ip + tcp
    pseudo = s.packed + d.packed + struct.pack(">xBH", IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack(">H", _checksum(pseudo + tcp)) + tcp[18:]
    head = struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(tcp), 0, 0x4000, IP_TTL, IPPROTO_TCP, 0) + s.packed + d.packed
    head = head[:10] + struct.pack(">H", _checksum(head)) + head[12:]
    return SERVER_MAC + CLIENT_MAC + struct.pack(">H", ETHERTYPE_IPV4) + head + tcp


def _chunks(data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(at, data[at:at + size]) for at in range(0, len(data), size)]


def tcp_conversation(request: bytes, response: bytes, client: tuple[str, int] = ("10.0.0.1", 40000),
                     server: tuple[str, int] = ("10.0.0.2", 6817), segment: int = 64,
                     client_isn: int = 1000, server_isn: int = 0xFFFFFF00,
                     retransmit: bool = True, reorder: bool = True) -> list[bytes]:
    """Packets of one connection: handshake, ``request`` then ``response`` in ``segment``-byte pieces, FINs.

    With ``retransmit`` the second request segment is sent twice; with
    ``reorder`` the last two response segments swap places.  The default
    server ISN makes the response's sequence numbers wrap past 2**32.
    """
    (c, cp), (s, sp) = client, server

    def to_server(seq, ack, flags, data=b""):
        return tcp_packet(c, s, cp, sp, seq, ack, flags, data)

    def to_client(seq, ack, flags, data=b""):
        return tcp_packet(s, c, sp, cp, seq, ack, flags, data)

    cseq, sseq = client_isn + 1, server_isn + 1
    packets = [to_server(client_isn, 0, TCP_SYN), to_client(server_isn, cseq, TCP_SYN | TCP_ACK),
               to_server(cseq, sseq, TCP_ACK)]
    sent = [to_server(cseq + at, sseq, TCP_ACK | TCP_PSH, piece) for at, piece in _chunks(request, segment)]
    if retransmit and len(sent) > 1:
        sent.insert(2, sent[1])
    answer = [to_client(sseq + at, cseq + len(request), TCP_ACK | TCP_PSH, piece)
              for at, piece in _chunks(response, segment)]
    if reorder and len(answer) > 1:
        answer[-1], answer[-2] = answer[-2], answer[-1]
    cend, send = cseq + len(request), sseq + len(response)
    closing = [to_server(cend, send, TCP_FIN | TCP_ACK), to_client(send, cend + 1, TCP_FIN | TCP_ACK),
               to_server(cend + 1, send + 1, TCP_ACK)]
    return packets + sent + answer + closing


def pcap_bytes(packets: Iterable[bytes], linktype: int = LINKTYPE_ETHERNET,
               nanoseconds: bool = False, byteorder: str = "<") -> bytes:
    """A classic pcap file holding ``packets`` (one per millisecond from t=0)."""
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = [struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, SNAPLEN, linktype)]
    for i, data in enumerate(packets):
        frac = i * (1_000_000 if nanoseconds else 1000)
        out.append(struct.pack(byteorder + "IIII", 0, frac, len(data), len(data)) + data)
    return b"".join(out)


def _block(btype: int, body: bytes, order: str) -> bytes:
    body += b"\0" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack(order + "II", btype, size) + body + struct.pack(order + "I", size)


def pcapng_bytes(packets: Sequence[bytes], linktype: int = LINKTYPE_ETHERNET, byteorder: str = "<") -> bytes:
    """A pcapng file: one section, one interface, an Enhanced Packet Block per packet."""
    o = byteorder
    out = [_block(PCAPNG_SHB, struct.pack(o + "IHHq", PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1), o),
           _block(PCAPNG_IDB, struct.pack(o + "HHI", linktype, 0, SNAPLEN), o)]
    for i, data in enumerate(packets):
        ts = i * 1000  # microseconds, the default if_tsresol
        out.append(_block(PCAPNG_EPB, struct.pack(o + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF,
                                                  len(data), len(data)) + data, o))
    return b"".join(out)
