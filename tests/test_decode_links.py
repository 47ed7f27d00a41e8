"""Link types other than Ethernet, and TCP reassembly corner cases."""

from __future__ import annotations

import struct

import pytest

from pyslurmrpc.decode import load, pcap_bytes, pcapng_bytes, reassemble, tcp_conversation, tcp_packet
from pyslurmrpc.decode.packets import TCP_ACK, Segment, parse_packet

from fixtures_data import recording

ETH = 14


def _sll(pkt: bytes) -> bytes:
    return struct.pack(">HHH8sH", 0, 772, 6, b"\0" * 8, int.from_bytes(pkt[12:14], "big")) + pkt[ETH:]


def _sll2(pkt: bytes) -> bytes:
    return struct.pack(">HHIHBB8s", int.from_bytes(pkt[12:14], "big"), 0, 1, 772, 0, 6, b"\0" * 8) + pkt[ETH:]


def _null_le(pkt: bytes) -> bytes:
    return struct.pack("<I", 2 if pkt[ETH] >> 4 == 4 else 24) + pkt[ETH:]


def _null_be(pkt: bytes) -> bytes:
    return struct.pack(">I", 2 if pkt[ETH] >> 4 == 4 else 30) + pkt[ETH:]


def _raw(pkt: bytes) -> bytes:
    return pkt[ETH:]


def _vlan(pkt: bytes) -> bytes:
    return pkt[:12] + bytes.fromhex("81000064") + pkt[12:]


LINKS = {"sll": (113, _sll), "sll2": (276, _sll2), "null-le": (0, _null_le), "null-be": (0, _null_be),
         "loop": (108, _null_be), "raw": (101, _raw), "ipv4": (228, _raw), "vlan": (1, _vlan)}


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("writer", [pcap_bytes, pcapng_bytes], ids=["pcap", "pcapng"])
def test_link_types(link, writer, ipv6):
    linktype, convert = LINKS[link]
    if link == "ipv4" and ipv6:
        linktype = 229
    ends = (("fd00::5", 40001), ("fd00::6", 6817)) if ipv6 else (("192.168.1.5", 40001), ("192.168.1.6", 6817))
    req, resp = recording("able_done", "request"), recording("able_done", "response")
    packets = [convert(p) for p in tcp_conversation(req, resp, *ends, segment=37)]
    streams = load(writer(packets, linktype=linktype), "c").streams
    assert [s.data for s in streams] == [req, resp]


def _seg(seq: int, payload: bytes, number: int) -> Segment:
    return Segment("10.0.0.1", "10.0.0.2", 40000, 6817, seq, TCP_ACK, payload, number)


def test_reassembly_without_syn_with_overlaps_and_wraparound():
    data = bytes(range(256)) * 3
    base = (1 << 32) - 100  # the stream wraps past 2**32
    pieces = [(0, 100), (250, 400), (100, 300), (90, 120), (400, 768), (700, 768)]
    segments = [_seg((base + a) % (1 << 32), data[a:b], i + 1) for i, (a, b) in enumerate(pieces)]
    (stream,) = reassemble(segments)
    assert stream.data == data and not stream.problems
    assert stream.role == "client to server"


def test_earliest_segment_may_arrive_late_when_the_capture_starts_mid_connection():
    data = b"abcdefghij" * 10
    segments = [_seg(5000 + 50, data[50:], 1), _seg(5000, data[:50], 2)]
    assert reassemble(segments)[0].data == data


def test_new_syn_on_the_same_ports_starts_a_new_connection(tmp_path):
    ping_req, ping_resp = recording("ping", "request"), recording("ping", "response")
    first = tcp_conversation(ping_req, ping_resp, client_isn=10)
    second = tcp_conversation(recording("enable", "request"), recording("enable", "response"), client_isn=99999)
    streams = load(pcap_bytes(first + second), "c").streams
    assert [s.data for s in streams] == [ping_req, ping_resp, recording("enable", "request"),
                                         recording("enable", "response")]


def test_non_tcp_and_fragments_are_skipped():
    pkt = bytearray(tcp_packet("10.0.0.1", "10.0.0.2", 1, 6817, 0, payload=b"x"))
    pkt[ETH + 6] |= 0x20  # more fragments
    with pytest.raises(Exception, match="fragment"):
        parse_packet(1, bytes(pkt))
    udp = bytearray(tcp_packet("10.0.0.1", "10.0.0.2", 1, 6817, 0))
    udp[ETH + 9] = 17
    with pytest.raises(Exception, match="not TCP"):
        parse_packet(1, bytes(udp))
