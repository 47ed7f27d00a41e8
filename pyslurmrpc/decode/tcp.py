"""TCP stream reassembly by sequence number (RFC 9293 section 3.4), both directions.

Segments are grouped by direction (source address and port, destination
address and port); a SYN with a new initial sequence number starts a new
connection on the same ports, as does any SYN after a FIN or RST.  Each direction's payload is laid out by
sequence number relative to the SYN (or to the lowest sequence number seen
when the capture started mid-connection): retransmitted bytes are dropped,
out-of-order segments are put in place, and a hole ends the stream there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..client.validate import address_text
from ..defaults import SLURMCTLD_PORT, SLURMD_PORT
from .packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Segment

#: Slurm's default ports: SlurmctldPort and SlurmdPort (slurm.conf(5))
DEFAULT_PORTS = (SLURMCTLD_PORT, SLURMD_PORT)
SEQ_MODULUS = 1 << 32
SEQ_HALF = 1 << 31


@dataclass
class TcpStream:
    """The reassembled bytes of one direction of one TCP connection."""

    src: str
    sport: int
    dst: str
    dport: int
    role: str  # "client to server" / "server to client"
    data: bytes = b""
    problems: list[str] = field(default_factory=list)
    first_packet: int = 0
    last_packet: int = 0

    @property
    def label(self) -> str:
        """A heading: addresses, ports, direction and packet range."""
        return (f"TCP {address_text(self.src, self.sport)} -> {address_text(self.dst, self.dport)} "
                f"({self.role}), packets {self.first_packet}-{self.last_packet}, {len(self.data)} bytes")


class _Direction:
    """Segments of one direction of one connection, before reassembly."""

    def __init__(self, key: tuple, generation: int, number: int):
        self.key = key
        self.generation = generation
        self.isn: Optional[int] = None
        self.client: Optional[bool] = None  # True: sent the first SYN
        self.segments: list[tuple[int, int, bytes]] = []
        self.first = self.last = number
        self.closed = False  # a FIN or RST was sent

    def restarts(self, seg: Segment) -> bool:
        """True when ``seg`` is a SYN opening a new connection on these ports."""
        return bool(seg.flags & TCP_SYN) and self.isn is not None and (self.closed or self.isn != seg.seq)

    def add(self, seg: Segment) -> None:
        self.last = seg.number
        self.closed |= bool(seg.flags & (TCP_FIN | TCP_RST))
        if seg.flags & TCP_SYN:
            self.isn = seg.seq
            self.client = not seg.flags & TCP_ACK
        if seg.payload:
            self.segments.append((seg.seq, seg.number, seg.payload))


def _rel(seq: int, ref: int) -> int:
    """``seq`` minus ``ref`` modulo 2**32, as a signed distance (sequence numbers wrap)."""
    return (seq - ref + SEQ_HALF) % SEQ_MODULUS - SEQ_HALF


def _assemble(d: _Direction) -> tuple[bytes, list[str]]:
    if not d.segments:
        return b"", []
    ref = (d.isn + 1) % SEQ_MODULUS if d.isn is not None else d.segments[0][0]
    items = sorted((_rel(seq, ref), number, payload) for seq, number, payload in d.segments)
    start = 0 if d.isn is not None else items[0][0]
    out, expect = bytearray(), start
    for off, number, payload in items:
        if off > expect:
            return bytes(out), [f"{off - expect} bytes never captured at stream offset {expect - start} "
                                f"(before packet {number}); the stream is decoded up to the hole"]
        if off + len(payload) > expect:
            out += payload[expect - off:]
            expect = off + len(payload)
    return bytes(out), []


def _role(d: _Direction, ports: frozenset[int]) -> str:
    _, sport, _, dport = d.key
    client = d.client if d.client is not None else (dport in ports and sport not in ports)
    return "client to server" if client else "server to client"


def reassemble(segments: Iterable[Segment], ports: Iterable[int] = DEFAULT_PORTS) -> list[TcpStream]:
    """Reassemble every direction of every connection touching ``ports``.

    Streams come out connection by connection (in order of first packet),
    the client's direction first.
    """
    ports = frozenset(ports)
    current: dict[tuple, _Direction] = {}
    generations: dict[tuple, int] = {}
    directions: list[_Direction] = []
    for seg in segments:
        if seg.sport not in ports and seg.dport not in ports:
            continue
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        d = current.get(key)
        if d is None or d.restarts(seg):
            generations[key] = generations.get(key, -1) + 1
            d = current[key] = _Direction(key, generations[key], seg.number)
            directions.append(d)
        d.add(seg)
    firsts: dict[tuple, int] = {}
    for d in directions:
        firsts[_conn(d)] = min(firsts.get(_conn(d), d.first), d.first)
    order = sorted(directions, key=lambda d: (firsts[_conn(d)], _role(d, ports) != "client to server", d.first))
    return [_stream(d, ports) for d in order]


def _conn(d: _Direction) -> tuple:
    """Both directions of one connection share this key."""
    src, sport, dst, dport = d.key
    return frozenset({(src, sport), (dst, dport)}), d.generation


def _stream(d: _Direction, ports: frozenset[int]) -> TcpStream:
    data, problems = _assemble(d)
    src, sport, dst, dport = d.key
    return TcpStream(src, sport, dst, dport, _role(d, ports), data, problems, d.first, d.last)


#: ports of TCP payload not followed that are remembered, to name them when nothing was followed
OTHER_PORTS_KEPT = 64
#: connections among them remembered (each counts once for both its ports)
OTHER_CONNECTIONS_KEPT = 4096
#: of those ports, the most an error names (the busiest first)
OTHER_PORTS_NAMED = 5


class OtherPorts:
    """The ports of TCP payload on no followed port, each counted once per connection: a
    server's port is in every connection to it, a client's ephemeral one in one (which is
    the lower is no rule: a test controller's random port may be above its clients')."""

    def __init__(self):
        self.counts: dict[int, int] = {}
        self._seen: set[frozenset] = set()

    def add(self, seg: Segment) -> None:
        if not seg.payload or len(self._seen) >= OTHER_CONNECTIONS_KEPT:
            return
        ends = frozenset({(seg.src, seg.sport), (seg.dst, seg.dport)})
        if ends in self._seen:
            return
        self._seen.add(ends)
        for port in {seg.sport, seg.dport}:
            if port not in self.counts and len(self.counts) >= OTHER_PORTS_KEPT:
                once = next((p for p, n in self.counts.items() if n == 1), None)
                if once is None:
                    continue
                del self.counts[once]       # a client's port makes room: a server's comes back
            self.counts[port] = self.counts.get(port, 0) + 1

    def nothing_followed(self, name: str, ports: Iterable[int]) -> str:
        """The error for a capture with no payload on ``ports``, naming the ports it had."""
        said = f"{name}: no TCP payload to or from ports {', '.join(map(str, sorted(ports)))}"
        if not self.counts:
            return said
        busiest = sorted(self.counts, key=lambda p: (-self.counts[p], p))
        if self.counts[busiest[0]] > 1:         # servers: in several connections each
            busiest = [p for p in busiest if self.counts[p] > 1]
        shown = ", ".join(map(str, busiest[:OTHER_PORTS_NAMED]))
        return f"{said} (the capture's TCP payload is on port(s) {shown}: name the server's with --port)"
