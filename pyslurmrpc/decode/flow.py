"""Live decoding: segments in, decoded messages out as soon as each frame is complete.

:class:`FlowTracker` keeps one :class:`_Direction` per direction of each open
TCP connection: bytes are delivered in sequence order (retransmissions dropped,
out-of-order segments held until the gap fills, at most
:data:`MAX_OUT_OF_ORDER` bytes), cut into frames by a :class:`FrameCutter` and
decoded at once.  A connection is forgotten when both sides have closed it (or
on RST, or after :data:`IDLE_TIMEOUT` seconds of capture time without a packet),
so memory follows the open connections, not the capture.  Requests are paired
with the replies that come back on the same connection, first in first out.
"""

from __future__ import annotations

import gc
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Optional

from ..client.validate import address_text
from ..errors import ProtocolError
from ..wire import Framer
from ..wire.framer import prefix_text
from .frames import FrameReport, MungeOpener, decode_frame
from .packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Segment
from .tcp import SEQ_HALF, SEQ_MODULUS, OtherPorts

#: out-of-order bytes held per direction while waiting for a missing segment
MAX_OUT_OF_ORDER = 8 * 1024 * 1024
#: a connection silent this long (capture time, seconds) is closed and forgotten
IDLE_TIMEOUT = 600.0
#: how often (in segments) idle connections are looked for
IDLE_SWEEP_EVERY = 4096
#: frames at least this big are released at once after decoding: a parse leaves reference
#: cycles (construct's contexts) that hold the frame until the cycle collector runs
BIG_FRAME = 64 * 1024


@dataclass
class Decoded:
    """One message, decoded as soon as its last byte arrived."""

    stream: str
    report: FrameReport
    time: float
    connection: int = 0  # 0: not a TCP stream (raw frames)
    client: bool = True
    reply_to: Optional["Decoded"] = None

    @property
    def rtt(self) -> Optional[float]:
        """Seconds from the request's last byte to this reply's last byte."""
        return self.time - self.reply_to.time if self.reply_to is not None else None


@dataclass
class Problem:
    """Something that stopped a stream early (a hole, a bad length prefix, a cut frame)."""

    stream: str
    text: str


class FrameCutter:
    """One byte stream to decoded frames, incrementally (what decode_stream does for whole streams)."""

    def __init__(self, label: str, opener: Optional[MungeOpener] = None):
        self.label = label
        self.opener = opener
        self._framer = Framer()
        self.offset = 0  # stream offset of the next frame
        self.count = 0
        self.fed = 0
        self._failed: Optional[str] = None
        self._lost = 0

    def feed(self, data: bytes) -> list[FrameReport]:
        if self._failed is not None:
            self._lost += len(data)
            return []
        self.fed += len(data)
        try:
            frames = self._framer.feed(data)
        except ProtocolError as exc:
            self._fail(exc, self._framer.pending)
            return []
        reports = []
        for frame in frames:
            self.count += 1
            reports.append(decode_frame(frame, self.count, self.offset, self.opener))
            self.offset += len(frame)
            if len(frame) >= BIG_FRAME:
                gc.collect(0)
        if frames and self._framer.pending >= 4:
            reports += self.feed(b"")  # a bad prefix right after the last frame fails now, not later
        return reports

    def _fail(self, exc: ProtocolError, held: int) -> None:
        self._failed = f"stream offset {self.offset}: {exc}{prefix_text(exc)}"
        self._lost = held
        self._framer = Framer()

    def close(self) -> Optional[str]:
        """Why the stream stopped early, if it did."""
        if self._failed is None:
            try:
                self._framer.close()
            except ProtocolError as exc:
                self._fail(exc, self._framer.pending)
        if self._failed is None:
            return None
        return f"{self._failed}; rest of the stream not decoded ({self._lost} bytes)"


class _Direction:
    def __init__(self, conn: "_Connection", key: tuple, client: bool, opener):
        self.conn, self.key, self.client = conn, key, client
        src, sport, dst, dport = key
        role = "client to server" if client else "server to client"
        self.label = f"TCP {address_text(src, sport)} -> {address_text(dst, dport)} ({role})"
        self.cutter = FrameCutter(self.label, opener)
        self.next: Optional[int] = None  # next expected sequence number
        self.isn: Optional[int] = None
        self.held: dict[int, tuple[bytes, int]] = {}  # seq -> (payload, packet number)
        self.held_bytes = 0
        self.closed = False
        self.hole: Optional[str] = None

    def payload(self, seg: Segment) -> list[bytes]:
        """The bytes ``seg`` makes deliverable, in order."""
        if self.hole is not None or not seg.payload:
            return []
        if self.next is None:
            self.next = seg.seq
        rel = (seg.seq - self.next + SEQ_HALF) % SEQ_MODULUS - SEQ_HALF
        if rel > 0:
            self._hold(seg)
            return []
        out = []
        if rel + len(seg.payload) > 0:
            out.append(seg.payload[-rel:] if rel else seg.payload)
            self.next = (self.next + rel + len(seg.payload)) % SEQ_MODULUS
        out += self._drain()
        return out

    def _hold(self, seg: Segment) -> None:
        if seg.seq not in self.held:
            self.held[seg.seq] = (seg.payload, seg.number)
            self.held_bytes += len(seg.payload)
        if self.held_bytes > MAX_OUT_OF_ORDER:
            self.give_up()

    def _drain(self) -> list[bytes]:
        out = []
        while self.held:
            usable = None
            for seq, (data, _) in self.held.items():
                rel = (seq - self.next + SEQ_HALF) % SEQ_MODULUS - SEQ_HALF
                if rel <= 0:
                    usable = seq, rel, data
                    break
            if usable is None:
                return out
            seq, rel, data = usable
            del self.held[seq]
            self.held_bytes -= len(data)
            if rel + len(data) > 0:
                out.append(data[-rel:] if rel else data)
                self.next = (self.next + rel + len(data)) % SEQ_MODULUS
        return out

    def give_up(self) -> None:
        """A gap that will not fill: say where, and decode nothing after it."""
        if not self.held or self.hole is not None:
            return
        first = min(self.held, key=lambda s: (s - self.next) % SEQ_MODULUS)
        gap = (first - self.next) % SEQ_MODULUS
        at = self.cutter.fed
        self.hole = (f"{gap} bytes never captured at stream offset {at} (before packet {self.held[first][1]}); "
                     f"the stream is decoded up to the hole")
        self.held.clear()
        self.held_bytes = 0


class _Connection:
    def __init__(self, number: int, last: float):
        self.number = number
        self.directions: dict[tuple, _Direction] = {}
        self.waiting: deque[Decoded] = deque()  # requests not answered yet
        self.last = last
        self.reset = False

    @property
    def finished(self) -> bool:
        return self.reset or (len(self.directions) == 2 and all(d.closed for d in self.directions.values()))


class FlowTracker:
    """Segments of a capture in, :class:`Decoded` messages and :class:`Problem` s out, live."""

    def __init__(self, ports: Iterable[int], opener: Optional[MungeOpener] = None):
        self.ports = frozenset(ports)
        self.opener = opener
        self._open: dict[frozenset, _Connection] = {}
        self.connections = 0  # connections seen so far
        self.streams = 0  # directions that carried payload
        self._since_sweep = 0
        self.other_ports = OtherPorts()

    def add(self, seg: Segment) -> list:
        """Feed one segment; return the messages and problems it completes."""
        if seg.sport not in self.ports and seg.dport not in self.ports:
            self.other_ports.add(seg)
            return []
        events = self._sweep(seg.time)
        ends = frozenset({(seg.src, seg.sport), (seg.dst, seg.dport)})
        conn = self._open.get(ends)
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        if conn is not None and seg.flags & TCP_SYN and not seg.flags & TCP_ACK:
            d = conn.directions.get(key)
            if d is not None and (d.closed or d.isn != seg.seq):  # the ports are reused by a new connection
                events += self._finish(ends)
                conn = None
        if conn is None:
            if not seg.payload and not seg.flags & TCP_SYN:
                return events  # the tail of a connection already forgotten (or never seen)
            self.connections += 1
            conn = self._open[ends] = _Connection(self.connections, seg.time)
        conn.last = seg.time
        events += self._segment(conn, key, seg)
        if conn.finished:
            events += self._finish(ends)
        return events

    def _direction(self, conn: _Connection, key: tuple, seg: Segment) -> _Direction:
        d = conn.directions.get(key)
        if d is None:
            if seg.flags & TCP_SYN:
                client = not seg.flags & TCP_ACK
            else:
                client = seg.dport in self.ports and seg.sport not in self.ports
            d = conn.directions[key] = _Direction(conn, key, client, self.opener)
        return d

    def _segment(self, conn: _Connection, key: tuple, seg: Segment) -> list:
        d = self._direction(conn, key, seg)
        if seg.flags & TCP_SYN:
            d.isn = seg.seq
            d.next = (seg.seq + 1) % SEQ_MODULUS
        events = []
        for data in d.payload(seg):
            if d.cutter.fed == 0:
                self.streams += 1
            for report in d.cutter.feed(data):
                events.append(self._decoded(conn, d, report, seg.time))
        if seg.flags & TCP_FIN:
            d.closed = True
        if seg.flags & TCP_RST:
            conn.reset = True
        return events

    def _decoded(self, conn: _Connection, d: _Direction, report: FrameReport, time: float) -> Decoded:
        msg = Decoded(d.label, report, time, conn.number, d.client)
        if d.client:
            conn.waiting.append(msg)
        elif conn.waiting:
            msg.reply_to = conn.waiting.popleft()
        return msg

    def _finish(self, ends: frozenset) -> list:
        conn = self._open.pop(ends)
        events = []
        for d in conn.directions.values():
            d.give_up()
            for text in (d.hole, d.cutter.close()):
                if text:
                    events.append(Problem(d.label, text))
        return events

    def _sweep(self, now: float) -> list:
        self._since_sweep += 1
        if self._since_sweep < IDLE_SWEEP_EVERY:
            return []
        self._since_sweep = 0
        idle = [ends for ends, c in self._open.items() if now - c.last > IDLE_TIMEOUT]
        return [e for ends in idle for e in self._finish(ends)]

    def close(self) -> list:
        """End of input: every connection still open is finished (holes and cut frames reported)."""
        return [e for ends in list(self._open) for e in self._finish(ends)]

    @property
    def open_connections(self) -> int:
        return len(self._open)
