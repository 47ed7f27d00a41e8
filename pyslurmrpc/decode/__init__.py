"""Protocol debugging: decode Slurm messages from recordings, hex dumps and pcap/pcapng captures.

``pyslurmrpc decode`` is :func:`cli.main`; it decodes live (:mod:`.live`): captures
packet by packet (:mod:`.capture_stream`), TCP reassembled and requests paired with
replies as they arrive (:class:`FlowTracker`), ``--summary`` totals in :mod:`.summary`.
Message types are named per release (:mod:`pyslurmrpc.wire.msg_types_by_release`).
The pieces, usable on their own:

* :func:`walk_frame` - every field of a frame with its offset, raw bytes and value,
  read with the wire layer's own schemas;
* :func:`decode_frame` / :func:`decode_stream` - frames judged by
  :func:`pyslurmrpc.wire.decode_message`, streams cut by the Framer;
* :func:`load` - detect the input kind and turn it into byte streams (captures
  are reassembled per TCP direction by :func:`reassemble`);
* :func:`pcap_bytes`, :func:`pcapng_bytes`, :func:`tcp_conversation` - write
  small captures (to open a recording in Wireshark, or in tests).
"""

from .fields import Field, walk_frame
from .flow import Decoded, FlowTracker, FrameCutter, Problem
from .frames import FrameReport, MungeOpener, StreamReport, decode_frame, decode_stream
from .inputs import InputError, detect_kind, load, parse_hex_dump
from .tcp import DEFAULT_PORTS, TcpStream, reassemble
from .writer import pcap_bytes, pcapng_bytes, tcp_conversation, tcp_packet

__all__ = [
    "Field", "walk_frame", "FrameReport", "StreamReport", "MungeOpener", "decode_frame", "decode_stream",
    "InputError", "detect_kind", "load", "parse_hex_dump", "DEFAULT_PORTS", "TcpStream", "reassemble",
    "pcap_bytes", "pcapng_bytes", "tcp_conversation", "tcp_packet",
    "Decoded", "FlowTracker", "FrameCutter", "Problem",
]
