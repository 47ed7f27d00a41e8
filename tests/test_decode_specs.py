"""protocol_specs/captures.md: its packet example parses to the frame it shows, and the printed lines match."""

from __future__ import annotations

import re
from pathlib import Path

from pyslurmrpc.decode import decode_frame, parse_hex_dump, pcap_bytes, load
from pyslurmrpc.decode.packets import parse_packet
from pyslurmrpc.decode.render import frame_lines

SPEC = Path(__file__).resolve().parent.parent / "protocol_specs" / "captures.md"
BLOCK = re.compile(r"```([^\n]*)\n(.*?)```", re.S)


def _blocks() -> dict[str, str]:
    return {info.strip(): body for info, body in BLOCK.findall(SPEC.read_text())}


def test_packet_example_carries_the_frame_example():
    blocks = _blocks()
    packet, frame = parse_hex_dump(blocks["hex packet"]), parse_hex_dump(blocks["hex frame"])
    segment = parse_packet(1, packet)
    assert (segment.src, segment.sport, segment.dst, segment.dport) == ("10.0.0.1", 40000, "10.0.0.2", 6817)
    assert segment.seq == 1001 and segment.flags == 0x18
    assert segment.payload == frame
    assert load(pcap_bytes([packet]), "spec").streams[0].data == frame


def test_printed_lines_in_the_spec_are_what_the_decoder_prints():
    blocks = _blocks()
    printed = list(frame_lines(decode_frame(parse_hex_dump(blocks["hex frame"]))))
    for line in blocks["text"].strip("\n").splitlines():
        assert line in printed, line
