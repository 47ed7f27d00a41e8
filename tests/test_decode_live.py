"""Live decoding: pairing and round trips, --summary, streaming from a pipe, Ctrl-C, bounded memory."""

from __future__ import annotations

import io
import json
import re
import os
import select
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from pyslurmrpc.decode import pcap_bytes, pcapng_bytes, tcp_conversation
from pyslurmrpc.decode.cli import EXIT_INTERRUPTED, main
from pyslurmrpc.decode.flow import FlowTracker
from pyslurmrpc.decode.live import Printer, run as run_live
from pyslurmrpc.decode.packets import parse_packet

from fixtures_data import recording

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0
SEGMENT = 64


def _decode(*args, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in args], stdout=out, stderr=err, stdin=io.TextIOWrapper(io.BytesIO(stdin)))
    return code, out.getvalue(), err.getvalue()


def _rc_reply(code: int) -> bytes:
    """The recorded 19.05 RESPONSE_SLURM_RC with another return code."""
    reply = bytearray(recording("ping", "response"))
    reply[-4:] = struct.pack(">i", code)
    return bytes(reply)


def _pings(codes) -> list[bytes]:
    packets = []
    for i, code in enumerate(codes):
        packets += tcp_conversation(recording("ping", "request"), _rc_reply(code), client=("10.0.0.9", 41000 + i),
                                    segment=SEGMENT)
    return packets


def test_reply_is_paired_with_its_request_and_timed():
    request, reply = recording("ping", "request"), _rc_reply(0)
    code, out, _ = _decode("--json", "-", stdin=pcap_bytes(_pings([0])))
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["reply_to"] is None and first["msg_type_name"] == "REQUEST_PING"
    assert second["reply_to"]["msg_type_name"] == "REQUEST_PING" and second["reply_to"]["frame"] == 1
    assert first["connection"] == second["connection"] == 1
    # one packet per millisecond: the reply completes with its last segment, after the whole answer
    answer_packets = -(-len(reply) // SEGMENT)
    assert second["reply_to"]["rtt_ms"] == pytest.approx(answer_packets, abs=1e-6)
    assert second["time"] - first["time"] == pytest.approx(answer_packets / 1000)
    assert len(request) > SEGMENT  # the request really was cut (and retransmitted) on the way


def test_text_output_names_the_request_and_round_trip():
    code, out, _ = _decode("-", stdin=pcapng_bytes(_pings([0])))
    assert code == 0
    assert re.search(r"reply to REQUEST_PING \(frame 1 of the other direction\) after \d+\.\d{3} ms", out)


def test_summary_counts_types_connections_errors_and_percentiles():
    codes = [0, 2017, 2017, 0, -1]
    code, out, _ = _decode("--summary", "-", stdin=pcap_bytes(_pings(codes)))
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("REQUEST", "RESPONSE"))}
    ping = rows["REQUEST_PING"].split()
    assert ping[1:4] == ["5", str(5 * len(recording("ping", "request"))), "5"]
    assert "ESLURM_INVALID_JOB_ID x2" in rows["REQUEST_PING"] and "SLURM_ERROR x1" in rows["REQUEST_PING"]
    assert rows["RESPONSE_SLURM_RC"].split()[1] == "5"
    assert out.rstrip().endswith("10 message(s) on 5 TCP connection(s)")
    code, out, _ = _decode("--summary", "--json", "-", stdin=pcap_bytes(_pings(codes)))
    summary = json.loads(out)
    assert summary["kind"] == "summary" and summary["connections"] == 5 and summary["messages"] == 10
    ping = next(t for t in summary["types"] if t["msg_type_name"] == "REQUEST_PING")
    assert ping["errors"] == {"ESLURM_INVALID_JOB_ID": 2, "SLURM_ERROR": 1}
    answer_packets = -(-len(_rc_reply(0)) // SEGMENT)
    assert ping["rtt_p50_ms"] == pytest.approx(answer_packets) and ping["rtt_p99_ms"] == pytest.approx(answer_packets)


def test_summary_counts_the_codes_of_replies_without_their_requests():
    """Frames alone (no capture, so no pairing): a reply's code counts on its own row; it was
    counted only against a paired request, and raw recordings showed no error at all."""
    frames = _rc_reply(2017) + _rc_reply(0) + _rc_reply(2017)
    code, out, _ = _decode("--summary", "--json", "-", stdin=frames)
    rc = next(t for t in json.loads(out)["types"] if t["msg_type_name"] == "RESPONSE_SLURM_RC")
    assert code == 0 and rc["count"] == 3 and rc["replies"] == 0 and rc["errors"] == {"ESLURM_INVALID_JOB_ID": 2}
    # paired, it stays the request's (the capture test above): never counted twice
    code, out, _ = _decode("--summary", "--json", "-", stdin=pcap_bytes(_pings([2017])))
    rows = {t["msg_type_name"]: t for t in json.loads(out)["types"]}
    assert rows["REQUEST_PING"]["errors"] == {"ESLURM_INVALID_JOB_ID": 1} and rows["RESPONSE_SLURM_RC"]["errors"] == {}


def test_summary_names_the_streams_that_stopped_early():
    """An HTTP answer (26.05 answers a version it refuses so) stops its stream: the summary
    showed an empty table and "0 message(s)", exit 1, and never said why."""
    packets = tcp_conversation(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 405 Method Not Allowed\r\n\r\n",
                               client=("10.0.0.9", 41000))
    for args in (["--summary"], ["--summary", "--json"]):
        code, out, _ = _decode(*args, "-", stdin=pcap_bytes(packets))
        assert code == 1
        if "--json" in args:
            summary = json.loads(out)
            assert summary["stopped_early"] == 2 and len(summary["stream_errors"]) == 2
            reasons = sorted(e["reason"] for e in summary["stream_errors"])
            assert 'over the limit 1073741824 (field length, offset 0) (the text "GET ": not a Slurm frame)' \
                in reasons[0]
            assert '(the text "HTTP": an HTTP answer, as 26.05 gives to a version it refuses)' in reasons[1]
        else:
            assert "2 stream(s) stopped early:" in out and out.count("!!! ") == 2 and "over the limit" in out


def test_summary_names_at_most_ten_stopped_streams_and_counts_the_rest():
    packets = []
    for i in range(12):
        packets += tcp_conversation(b"HTTP/1.1 200\r\n\r\n", b"", client=("10.0.0.9", 41000 + i))
    code, out, _ = _decode("--summary", "-", stdin=pcap_bytes(packets))
    assert code == 1 and "12 stream(s) stopped early:" in out and out.count("!!! ") == 10
    assert out.rstrip().endswith("… 2 more")


def test_a_reply_to_an_unreadable_request_counts_on_the_unreadable_row():
    """It had a row of its own, "type None", with a count of 0."""
    request = bytearray(recording("ping", "request"))
    request[4:6] = b"\x41\x41"                 # a protocol version no release has: no header read
    packets = tcp_conversation(bytes(request), _rc_reply(0), client=("10.0.0.9", 41000), segment=SEGMENT)
    code, out, _ = _decode("--summary", "--json", "-", stdin=pcap_bytes(packets))
    rows = {t["msg_type_name"]: t for t in json.loads(out)["types"]}
    assert code == 1 and set(rows) == {"unreadable", "RESPONSE_SLURM_RC"}, rows
    assert (rows["unreadable"]["count"], rows["unreadable"]["not_decoded"], rows["unreadable"]["replies"]) == (1, 1, 1)


def _spawn() -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "pyslurmrpc.decode", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))


def _read_until(proc: subprocess.Popen, needle: bytes) -> bytes:
    seen = b""
    deadline = time.monotonic() + WAIT
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    return seen


def test_pipe_prints_each_message_before_the_input_ends():
    capture = pcap_bytes(_pings([0, 2017]))
    first_conversation = len(pcap_bytes(_pings([0])))
    proc = _spawn()
    try:
        proc.stdin.write(capture[:first_conversation])
        proc.stdin.flush()
        seen = _read_until(proc, b"reply to REQUEST_PING")
        assert b"RESPONSE_SLURM_RC (8001)" in seen and b"reply to REQUEST_PING" in seen  # input still open
        assert proc.poll() is None
        proc.stdin.write(capture[first_conversation:])
        proc.stdin.close()  # end of input: a clean stop
        rest = proc.stdout.read()
        assert proc.wait(WAIT) == 0
        assert b"ESLURM_INVALID_JOB_ID" in rest and b"4 message(s) in 4 stream(s): 4 decoded" in rest
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_stops_cleanly_without_a_traceback():
    proc = _spawn()
    try:
        proc.stdin.write(pcap_bytes(_pings([0])))
        proc.stdin.flush()
        assert b"reply to REQUEST_PING" in _read_until(proc, b"reply to REQUEST_PING")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(WAIT) == EXIT_INTERRUPTED
        err = proc.stderr.read()
        assert b"Traceback" not in err and b"KeyboardInterrupt" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class _Sink(io.TextIOBase):
    def write(self, text):
        return len(text)


def _big_reply(size: int) -> bytes:
    """A 19.05 RESPONSE_JOB_INFO (no body schema) whose body is ``size`` bytes."""
    frame = bytearray(recording("ping", "response")[:-4])
    frame[10:12] = struct.pack(">H", 2004)
    frame[12:16] = struct.pack(">I", size)
    frame += bytes(size)
    frame[0:4] = struct.pack(">I", len(frame) - 4)
    return bytes(frame)


def _peak(data: bytes) -> int:
    printer = Printer(_Sink(), False, False)
    tracemalloc.start()
    try:
        run_live(io.BufferedReader(io.BytesIO(data)), "big", {6817}, None, printer)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_follows_the_open_connections_not_the_capture():
    reply = _big_reply(256 * 1024)
    packets = []
    for i in range(60):
        packets += tcp_conversation(recording("ping", "request"), reply, client=("10.0.0.9", 42000 + i),
                                    segment=16384, retransmit=False, reorder=False)
    capture = pcap_bytes(packets)
    assert len(capture) > 15_000_000
    assert _peak(capture) < 2_000_000  # a few frames and packets, not the 15 MB capture


def test_raw_frames_stream_in_bounded_memory():
    data = _big_reply(256 * 1024) * 60
    assert _peak(data) < 2_000_000


def test_tracker_forgets_closed_connections():
    tracker = FlowTracker({6817})
    most = 0
    for packet in _pings([0] * 50):
        tracker.add(parse_packet(1, packet))
        most = max(most, tracker.open_connections)
    assert tracker.connections == 50 and most == 1 and tracker.open_connections == 0




def test_replies_on_one_connection_pair_first_in_first_out():
    req = recording("able_running", "request") + recording("ping", "request")
    resp = recording("able_running", "response") + recording("ping", "response")
    code, out, _ = _decode("--json", "-", stdin=pcap_bytes(tcp_conversation(req, resp, segment=100)))
    assert code == 0
    replies = [json.loads(line)["reply_to"] for line in out.splitlines()][2:]
    assert [(r["frame"], r["msg_type_name"]) for r in replies] == [(1, "REQUEST_CHECKPOINT"), (2, "REQUEST_PING")]


def test_capture_starting_mid_connection_still_decodes_and_pairs():
    packets = tcp_conversation(recording("ping", "request"), recording("ping", "response"), retransmit=False)
    code, out, _ = _decode("--json", "-", stdin=pcap_bytes(packets[3:]))  # no handshake captured
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert "(client to server)" in first["stream"] and second["reply_to"]["msg_type_name"] == "REQUEST_PING"


@pytest.mark.parametrize("writer", [pcap_bytes, pcapng_bytes], ids=["pcap", "pcapng"])
def test_mutated_captures_never_crash_the_live_decoder(writer):
    import random

    rng = random.Random(15)
    base = writer(_pings([0, 2017]) + tcp_conversation(recording("able_running", "request"),
                                                        recording("able_running", "response"), segment=40))
    for _ in range(150):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(data))
            data[at] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[:rng.randrange(len(data))]
        code, out, err = _decode("--json", "-", stdin=bytes(data))
        assert code in (0, 1, 2), err
        assert "Traceback" not in err
        for line in out.splitlines():
            json.loads(line)


def test_idle_connection_is_forgotten_and_its_cut_frame_reported(monkeypatch):
    from dataclasses import replace

    import pyslurmrpc.decode.flow as flow

    monkeypatch.setattr(flow, "IDLE_SWEEP_EVERY", 1)
    tracker = FlowTracker({6817})
    stalled = tcp_conversation(recording("ping", "request"), recording("ping", "response"),
                               client=("10.0.0.7", 40007), retransmit=False)[:5]  # part of the request, no FIN
    events = [e for p in stalled for e in tracker.add(replace(parse_packet(1, p), time=1.0))]
    assert events == [] and tracker.open_connections == 1
    later = tcp_conversation(recording("ping", "request"), recording("ping", "response"), client=("10.0.0.8", 40008))
    events = tracker.add(replace(parse_packet(1, later[0]), time=1.0 + flow.IDLE_TIMEOUT + 1))
    problems = [e for e in events if isinstance(e, flow.Problem)]
    assert len(problems) == 1 and "10.0.0.7:40007" in problems[0].stream
    assert "stream ended inside a frame" in problems[0].text
    assert tracker.open_connections == 1  # only the new one


#: a SIGINT the main thread's read() does not see: raised in another thread of the decoder
_SIGINT_ELSEWHERE = """
import signal, sys, threading
from pyslurmrpc.decode.cli import main
threading.Timer(0.5, signal.raise_signal, (signal.SIGINT,)).start()
sys.exit(main(["-"]))
"""


def test_ctrl_c_ends_a_read_that_did_not_see_it():
    """A SIGINT handled while the read() system call is not running (just before it starts, or
    taken by another thread) used to leave the decoder waiting for input forever: nothing woke
    the read.  Here the signal goes to another thread while stdin stays open and silent, which
    is that race made certain; the decoder must stop at once (decode/stdin.py)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _SIGINT_ELSEWHERE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
    try:
        try:
            code = proc.wait(5)
        except subprocess.TimeoutExpired:
            pytest.fail("still waiting for input 4.5 s after Ctrl-C")
        assert code == EXIT_INTERRUPTED, proc.stderr.read()
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
