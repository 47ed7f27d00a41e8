"""Decode an input as it is read: each message is printed as soon as its last byte is in.

pcap/pcapng go packet by packet through :class:`.flow.FlowTracker`; raw frames
chunk by chunk through a :class:`.flow.FrameCutter`; a hex dump (text, small)
is read whole.  Nothing else of the input is kept, so ``tcpdump -U -w - |
pyslurmrpc decode -`` prints while tcpdump runs, and a capture of any size
decodes in memory bounded by its open connections.
"""

from __future__ import annotations

import json
from typing import BinaryIO, Iterable, Optional, TextIO

from .capture import CaptureError, capture_kind
from .capture_stream import read_exact, stream_packets
from .flow import Decoded, FlowTracker, FrameCutter, Problem
from .frames import MungeOpener, StreamReport
from .inputs import _TEXT_BYTES, _WORTH_WARNING, UTF8_BOM, InputError, dumped_bytes, skip_key
from .packets import NotTcp, parse_packet
from .render import _msg_name, frame_json, frame_lines
from .summary import Summary

#: bytes read at a time from raw-frame input (read1: whatever the pipe has, up to this)
CHUNK = 64 * 1024
#: leading bytes looked at to tell a hex dump from raw frames
SNIFF = 4


class Printer:
    """Prints messages and problems as they come, and keeps the totals."""

    def __init__(self, out: TextIO, as_json: bool, summary_only: bool, warnings: Optional[list] = None):
        self.out, self.as_json, self.summary_only = out, as_json, summary_only
        self.warnings = [] if warnings is None else warnings   # the input's, filled while reading
        self.summary = Summary()
        self.frames = self.bad = self.stopped = 0
        self.unopened = 0         # decoded, but the credential did not open with --munge-key
        self.interrupted = False  # Ctrl-C: what was read so far is reported, then the run ends
        self._heading: Optional[str] = None
        self._last_stopped: Optional[str] = None     # the stream of the last problem

    @property
    def ok(self) -> bool:
        return not self.bad and not self.stopped and not self.unopened

    def emit(self, events: Iterable) -> None:
        for event in events:
            if isinstance(event, Problem):
                self._problem(event)
            else:
                self._message(event)
        self.out.flush()

    def _message(self, msg: Decoded) -> None:
        self.frames += 1
        self.bad += msg.report.error is not None
        self.unopened += msg.report.credential_unopened
        self.summary.add(msg)
        if self.summary_only:
            return
        if self.as_json:
            obj = frame_json(StreamReport(msg.stream), msg.report)
            obj["connection"] = msg.connection or None
            obj["time"] = msg.time or None
            obj["reply_to"] = _reply_json(msg)
            print(json.dumps(obj), file=self.out)
            return
        self._head(msg.stream)
        for line in frame_lines(msg.report):
            print(line, file=self.out)
        if msg.reply_to is not None:
            req = msg.reply_to.report
            print(f"  reply to {_msg_name(req.msg_type, req.version)} (frame {req.index} of the other direction) "
                  f"after {msg.rtt * 1000:.3f} ms", file=self.out)
        print("", file=self.out)

    def _problem(self, problem: Problem) -> None:
        new_stream = problem.stream != self._last_stopped   # a stream's problems come together
        self._last_stopped = problem.stream
        self.stopped += new_stream
        if self.summary_only:
            self.summary.stop(problem.stream, problem.text, new_stream)
            return
        if self.as_json:
            print(json.dumps({"kind": "stream_error", "stream": problem.stream, "reason": problem.text}),
                  file=self.out)
            return
        self._head(problem.stream)
        print(f"!!! {problem.text}", file=self.out)
        print("", file=self.out)

    def _head(self, stream: str) -> None:
        if stream != self._heading:
            print(f"=== {stream} ===", file=self.out)
            self._heading = stream

    def finish(self, streams: int, connections: Optional[int]) -> None:
        if self.summary_only or self.as_json:
            if self.summary_only and self.as_json:   # one JSON document: the warnings go inside
                totals = self.summary.as_json(connections)
                if self.warnings:
                    totals["warnings"] = list(self.warnings)
                print(json.dumps(totals), file=self.out)
            elif self.summary_only:
                for line in self.summary.lines(connections):
                    print(line, file=self.out)
            self.out.flush()
            return
        unopened = f" ({self.unopened} of them with a credential --munge-key did not open)" if self.unopened else ""
        print(f"{self.frames} message(s) in {streams} stream(s): {self.frames - self.bad} decoded{unopened}, "
              f"{self.bad} not decoded, {self.stopped} stream(s) stopped early", file=self.out)
        self.out.flush()


def _reply_json(msg: Decoded) -> Optional[dict]:
    if msg.reply_to is None:
        return None
    req = msg.reply_to.report
    return {"stream": msg.reply_to.stream, "frame": req.index, "msg_type": req.msg_type,
            "msg_type_name": _msg_name(req.msg_type, req.version), "rtt_ms": round(msg.rtt * 1000, 3)}


def run(fh: BinaryIO, name: str, ports: Iterable[int], opener: Optional[MungeOpener], printer: Printer) -> None:
    """Decode everything ``fh`` holds, printing as it goes; raise InputError for unreadable input.
    What of it could not be read is added to ``printer.warnings``."""
    head = read_exact(fh, SNIFF)
    if not head:
        raise InputError(f"{name}: empty input")
    if capture_kind(head):
        _capture(fh, head, name, ports, opener, printer)
        return
    mark = b""
    if head.startswith(UTF8_BOM):   # an editor's mark before a hex dump (no frame starts so: 4 GiB)
        mark, head = UTF8_BOM, head[len(UTF8_BOM):] + read_exact(fh, len(UTF8_BOM))
    if all(b in _TEXT_BYTES for b in head):
        text = head + fh.read()
        if all(b in _TEXT_BYTES for b in text):
            _raw([dumped_bytes(text, name)], f"{name} (hex dump)", opener, printer)
            return
        _raw([mark + text], f"{name} (raw frames)", opener, printer)   # not a dump: the bytes as they came
        return
    head = mark + head
    _raw(_chunks(fh, head), f"{name} (raw frames)", opener, printer)


def _chunks(fh: BinaryIO, head: bytes):
    yield head
    read = getattr(fh, "read1", fh.read)
    while True:
        chunk = read(CHUNK)
        if not chunk:
            return
        yield chunk


def _raw(chunks, label: str, opener, printer: Printer) -> None:
    cutter = FrameCutter(label, opener)
    try:
        for chunk in chunks:
            printer.emit(Decoded(label, r, 0.0) for r in cutter.feed(chunk))
    except KeyboardInterrupt:
        printer.interrupted = True
    problem = cutter.close()
    printer.emit([Problem(label, problem)] if problem else [])
    printer.finish(1, None)


def _capture(fh, head: bytes, name: str, ports, opener, printer: Printer) -> None:
    warnings = printer.warnings
    ports = frozenset(ports)
    tracker = FlowTracker(ports, opener)
    skipped: dict[tuple, int] = {}
    try:
        packets = stream_packets(fh, head, warnings)
        for packet in packets:
            try:
                seg = parse_packet(packet.linktype, packet.data, packet.number)
            except NotTcp as exc:
                key = skip_key(exc, packet)
                skipped[key] = skipped.get(key, 0) + 1
                continue
            seg = _timed(seg, packet.time)
            printer.emit(tracker.add(seg))
    except CaptureError as exc:
        raise InputError(f"{name}: {exc}") from None
    except KeyboardInterrupt:
        printer.interrupted = True
    finally:
        printer.emit(tracker.close())
        warnings += [f"{count} packet(s) skipped: {text}" for (reason, text), count in skipped.items()
                     if reason in _WORTH_WARNING]
    if not tracker.streams and not printer.stopped and not printer.interrupted:
        raise InputError(tracker.other_ports.nothing_followed(name, ports))
    printer.finish(tracker.streams, tracker.connections)


def _timed(seg, time: float):
    object.__setattr__(seg, "time", time)  # Segment is frozen; the time is the packet's, set once here
    return seg
