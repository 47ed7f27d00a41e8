"""Decode a real loopback capture made by tcpdump (skipped locally without tcpdump; fails under CI=true)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from pyslurmrpc.decode.cli import main
from pyslurmrpc.testing.ci import needs_root, skip_or_fail
from pyslurmrpc.testing.netio import free_port
from pyslurmrpc.transport import recv_frame

from fixtures_data import recording

READY_TIMEOUT = 10.0
SETTLE = 0.5
PROBE_INTERVAL = 0.1
#: tcpdump's kernel buffer (-B, KiB): room for a whole session on a loaded machine, so nothing is dropped
CAPTURE_BUFFER_KIB = 32768
PCAP_FILE_HEADER = 24


def _tcpdump() -> str:
    path = shutil.which("tcpdump") or ("/usr/sbin/tcpdump" if os.path.exists("/usr/sbin/tcpdump") else None)
    if path is None:
        skip_or_fail(pytest, "tcpdump not installed (apt-get install -y tcpdump)")
    return path


def _serve_once(server: socket.socket, response: bytes) -> None:
    conn, _ = server.accept()
    with conn:
        if recv_frame(conn) is not None:
            conn.sendall(response)


def _wait_until_capturing(probe_port: int, out) -> bool:
    """tcpdump says "listening" before its filter is live: knock on a closed port until it records."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", probe_port), timeout=1).close()
        except OSError:
            pass  # refused: the SYN and RST are what we want to see in the file
        time.sleep(PROBE_INTERVAL)
        if out.exists() and out.stat().st_size > PCAP_FILE_HEADER:
            return True
    return False


def _wait_for_growth(out, size: int) -> None:
    """Wait until the capture file holds at least ``size`` bytes (tcpdump writes asynchronously)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and out.stat().st_size < size:
        time.sleep(PROBE_INTERVAL)
    time.sleep(SETTLE)


def _probe_packets(out, port: int) -> int:
    """Packets to or from ``port`` in the capture file so far (tcpdump -U writes whole packets)."""
    if not out.exists():
        return 0
    text = subprocess.run([_tcpdump(), "-nr", str(out), f"tcp port {port}"], capture_output=True, text=True,
                          timeout=READY_TIMEOUT).stdout
    return len(text.splitlines())


def _stop_capture(proc: subprocess.Popen, out) -> None:
    """End a capture only once tcpdump has written everything sent before this call: it stops
    at SIGINT without reading what is still queued for it, which a loaded machine leaves there.
    tcpdump writes packets in order, so a final knock on the probe port showing up in the
    file means every earlier packet is in it too."""
    try:
        seen = _probe_packets(out, proc.probe_port)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", proc.probe_port), timeout=1).close()
            except OSError:
                pass  # refused: its SYN and RST are what we wait for
            time.sleep(PROBE_INTERVAL)
            if _probe_packets(out, proc.probe_port) > seen:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def _start_capture(tcpdump: str, port: int, out) -> subprocess.Popen:
    probe = free_port()
    proc = subprocess.Popen([tcpdump, "-i", "lo", "-n", "-U", "--immediate-mode", "-B", str(CAPTURE_BUFFER_KIB),
                             "-w", str(out),
                             f"tcp port {port} or tcp port {probe}"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + READY_TIMEOUT
    line = b""
    while time.monotonic() < deadline and b"listening on" not in line:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
    if b"listening on" not in line:
        proc.kill()
        proc.wait()
        pytest.fail(f"tcpdump did not start: {line.decode(errors='replace')}")
    if not _wait_until_capturing(probe, out):
        proc.kill()
        proc.wait()
        pytest.fail("tcpdump recorded nothing on lo")
    proc.probe_port = probe  # for _stop_capture
    return proc


def test_tcpdump_loopback_capture_decodes(tmp_path, capsys):
    needs_root(pytest, "tcpdump captures on the loopback interface")
    tcpdump = _tcpdump()
    request, response = recording("able_running", "request"), recording("able_running", "response")
    port = free_port()
    pcap = tmp_path / "lo.pcap"
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen(1)
        proc = _start_capture(tcpdump, port, pcap)
        before = pcap.stat().st_size
        try:
            thread = threading.Thread(target=_serve_once, args=(server, response), daemon=True)
            thread.start()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(request)
                got = recv_frame(client)
            thread.join(10)
            assert got == response
            _wait_for_growth(pcap, before + len(request) + len(response))
        finally:
            _stop_capture(proc, pcap)
    assert main([str(pcap)]) == 2  # the port is not one of Slurm's defaults
    capsys.readouterr()
    assert main([str(pcap), "--port", str(port)]) == 0
    out = capsys.readouterr().out
    assert f"-> 127.0.0.1:{port} (client to server)" in out
    assert f"127.0.0.1:{port} -> " in out and "(server to client)" in out
    assert "REQUEST_CHECKPOINT (5009)" in out and "RESPONSE_CHECKPOINT (5010)" in out
    assert "2 message(s) in 2 stream(s): 2 decoded" in out
