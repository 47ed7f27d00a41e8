"""Packets without a usable TCP segment are sorted by their SkipReason, never by message text."""

from __future__ import annotations

import io

import pytest

from pyslurmrpc.decode import load, pcap_bytes, tcp_conversation, tcp_packet
from pyslurmrpc.decode.packets import NotTcp, SkipReason, parse_packet

from fixtures_data import recording

ETH = 14  # Ethernet header bytes in front of the IPv4 header tcp_packet builds


def _tcp() -> bytearray:
    return bytearray(tcp_packet("10.0.0.1", "10.0.0.2", 1, 6817, 0, payload=b"x"))


def _fragment() -> bytes:
    pkt = _tcp()
    pkt[ETH + 6] |= 0x20  # more fragments
    return bytes(pkt)


def _udp() -> bytes:
    pkt = _tcp()
    pkt[ETH + 9] = 17
    return bytes(pkt)


def _udp_fragment() -> bytes:
    pkt = bytearray(_udp())
    pkt[ETH + 6] |= 0x20  # more fragments
    return bytes(pkt)


@pytest.mark.parametrize("linktype, packet, reason", [
    (1, _fragment(), SkipReason.FRAGMENT),
    (1, _udp(), SkipReason.NOT_TCP),
    (1, _udp_fragment(), SkipReason.NOT_TCP),         # was FRAGMENT: a warning and exit 1
    (1, _udp()[:ETH + 30], SkipReason.NOT_TCP),
    (1, bytes(_tcp())[:ETH + 30], SkipReason.CUT_SHORT),
    (1, bytes(_tcp())[:10], SkipReason.CUT_SHORT),
    (1, bytes(_tcp()[:12]) + b"\x08\x06" + bytes(_tcp()[ETH:]), SkipReason.NOT_IP),
    (147, bytes(_tcp()), SkipReason.UNSUPPORTED_LINK),
])
def test_each_failure_names_its_reason(linktype, packet, reason):
    with pytest.raises(NotTcp) as info:
        parse_packet(linktype, packet)
    assert info.value.reason is reason
    assert str(info.value)  # the details stay readable


def test_only_reasons_worth_a_warning_are_reported():
    """A fragment and a cut-short packet are warned about; UDP is just other traffic."""
    good = tcp_conversation(recording("ping", "request"), recording("ping", "response"))
    capture = pcap_bytes(good + [_fragment(), _udp(), _udp(), bytes(_tcp())[:ETH + 30]])
    source = load(capture, "c")
    assert len(source.warnings) == 2, source.warnings
    assert any(w.startswith("1 packet(s) skipped: IPv4 fragment") for w in source.warnings)
    assert any(w.startswith("1 packet(s) skipped: IPv4 packet cut short") for w in source.warnings)
    assert not any("not TCP" in w for w in source.warnings)


def test_a_capture_whose_only_loss_is_other_traffic_is_all_decoded(tmp_path):
    """A fragment of UDP made the decoder exit 1 ("not all decoded") with every Slurm frame read."""
    from pyslurmrpc.decode.cli import main

    good = tcp_conversation(recording("ping", "request"), recording("ping", "response"))
    (tmp_path / "c.pcap").write_bytes(pcap_bytes(good + [_udp_fragment(), _udp()[:ETH + 30]]))
    assert main([str(tmp_path / "c.pcap")], stdout=io.StringIO(), stderr=io.StringIO()) == 0
