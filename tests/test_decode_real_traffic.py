"""Proof on real traffic: capture each real controller the suite runs while its own
squeue, sinfo, scontrol show config, scontrol ping and sbatch talk to it, then decode.

Runs (never skips) under CI=true: tcpdump, munged and the releases' daemons are required there.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest

from pyslurmrpc.decode.cli import main
from pyslurmrpc.testing.ci import skip_or_fail
from pyslurmrpc.testing.releases import ReleaseUnavailable, client_program, prepare
from pyslurmrpc.testing.slurmctld import release_slurmctld_or_skip, slurmctld_or_skip

from test_decode_tcpdump import _start_capture, _stop_capture, _tcpdump

RELEASES = ("20.11", "22.05", "24.11", "26.05")
RUN_TIMEOUT = 60
#: what each client program asks the controller
EXPECTED_REQUESTS = {"REQUEST_JOB_INFO", "REQUEST_PARTITION_INFO", "REQUEST_NODE_INFO", "REQUEST_BUILD_INFO",
                     "REQUEST_PING", "REQUEST_SUBMIT_BATCH_JOB"}


def _program(rel, name: str) -> str:
    try:
        return client_program(rel, name)
    except ReleaseUnavailable as err:
        skip_or_fail(pytest, str(err))


def _controller(munged, release: str):
    if release == "22.05":
        return slurmctld_or_skip(pytest, munged.socket_path)
    return release_slurmctld_or_skip(pytest, munged.socket_path, release)


def _release(release: str):
    try:
        return prepare(release)
    except ReleaseUnavailable as err:
        skip_or_fail(pytest, str(err))


@pytest.fixture(scope="module", params=RELEASES)
def capture(request, munged, tmp_path_factory):
    """(pcap path, controller port, release name, SYN count) of one release's client session."""
    tcpdump = _tcpdump()
    release = request.param
    ctld = _controller(munged, release)
    rel = _release(release)
    out = tmp_path_factory.mktemp(f"cap{release}") / "slurm.pcap"
    try:
        commands = [[_program(rel, "squeue")], [_program(rel, "sinfo")],
                    [ctld.scontrol_path or "scontrol", "show", "config"], [ctld.scontrol_path or "scontrol", "ping"],
                    [_program(rel, "sbatch"), "--wrap", "true"]]
        proc = _start_capture(tcpdump, ctld.port, out)
        try:
            runs = [subprocess.run(c, env=ctld.env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                                   stdin=subprocess.DEVNULL) for c in commands]
        finally:
            _stop_capture(proc, out)
    finally:
        ctld.stop()
    for cmd, run in zip(commands, runs):
        assert run.returncode == 0, (cmd, run.stdout, run.stderr)
    assert "Submitted batch job" in runs[-1].stdout
    _submitted[release] = int(runs[-1].stdout.split()[-1])
    yield out, ctld.port, release, _connections(out, ctld.port)


#: release -> the job id its sbatch printed
_submitted: dict[str, int] = {}


def _connections(pcap, port: int) -> int:
    """How many TCP connections to ``port`` tcpdump itself saw (SYNs without ACK)."""
    text = subprocess.run([_tcpdump(), "-nr", str(pcap), f"tcp dst port {port} and tcp[tcpflags] == tcp-syn"],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT).stdout
    return len(text.splitlines())


def _decode(capsys, *args) -> tuple[int, str]:
    code = main([*map(str, args)])
    return code, capsys.readouterr().out


def test_every_frame_is_named_and_decoded(capture, capsys, munged):
    pcap, port, release, connections = capture
    code, out = _decode(capsys, pcap, "--port", port, "--munge-key", munged.key_file)
    assert code == 0, out
    assert "unknown message type" not in out and "NOT DECODED" not in out and "did not open" not in out
    heads = re.findall(r"^Frame \d+ at stream offset \d+: (\w+) \(\d+\)", out, re.M)
    assert EXPECTED_REQUESTS <= set(heads), heads
    assert f"Slurm {release})" in out
    assert len(heads) >= 2 * connections - 1


def test_every_credential_opens_and_shows_our_uid(capture, capsys, munged):
    pcap, port, _, _ = capture
    code, out = _decode(capsys, "--json", pcap, "--port", port, "--munge-key", munged.key_file)
    assert code == 0
    messages = [json.loads(line) for line in out.splitlines()]
    with_cred = [m for m in messages if any(f.get("redacted") for f in m["fields"])]
    assert with_cred and all(m["munge"] and m["munge"]["uid"] == os.getuid() for m in with_cred)
    assert all(m["msg_type_name"] and m["ok"] for m in messages)


def test_request_bodies_decode_on_real_traffic(capture, capsys):
    pcap, port, _, _ = capture
    _, out = _decode(capsys, "--json", pcap, "--port", port)
    messages = {}
    for line in out.splitlines():
        m = json.loads(line)
        messages.setdefault(m["msg_type_name"], m)
    job = {f["path"]: f["value"] for f in messages["REQUEST_JOB_INFO"]["fields"]}
    assert job["body.job_id_count"] == 0xFFFFFFFE  # squeue asks for every job
    rc = {f["path"]: f for f in messages["RESPONSE_SLURM_RC"]["fields"]}
    assert rc["body.return_code"]["value"] == 0 and rc["body.return_code"]["meaning"].startswith("SLURM_SUCCESS")
    assert messages["REQUEST_SUBMIT_BATCH_JOB"]["body_decoded"] is False
    assert messages["REQUEST_SUBMIT_BATCH_JOB"]["undecoded_body"]["length"] > 0


def test_summary_counts_match_the_connections_tcpdump_saw(capture, capsys):
    pcap, port, _, connections = capture
    code, out = _decode(capsys, "--summary", "--json", pcap, "--port", port)
    assert code == 0
    summary = json.loads(out)
    assert connections >= 6 and summary["connections"] == connections
    types = {t["msg_type_name"]: t for t in summary["types"]}
    requests = [t for name, t in types.items() if name.startswith("REQUEST_")]
    assert sum(t["count"] for t in requests) == connections  # each client program: one request per connection
    assert all(t["replies"] == t["count"] and t["rtt_p50_ms"] > 0 and not t["errors"] for t in requests)
    assert summary["messages"] == 2 * connections


def test_sbatch_reply_carries_the_job_id_sbatch_printed(capture, capsys):
    pcap, port, release, _ = capture
    _, out = _decode(capsys, "--json", pcap, "--port", port)
    reply = next(json.loads(line) for line in out.splitlines()
                 if json.loads(line)["msg_type_name"] == "RESPONSE_SUBMIT_BATCH_JOB")
    fields = {f["path"]: f for f in reply["fields"]}
    assert reply["body_decoded"] is True and reply["reply_to"]["msg_type_name"] == "REQUEST_SUBMIT_BATCH_JOB"
    assert fields["body.job_id"]["value"] == _submitted[release]
    assert fields["body.step_id"]["meaning"].startswith("SLURM_BATCH_SCRIPT")  # 20.11+ numbering
    assert ("body.sluid" in fields) == (release >= "25.11")


def test_live_pipe_from_tcpdump_prints_while_capturing(slurmctld, munged):
    """``tcpdump -U -w - port N | pyslurmrpc decode -`` against the real 22.05 controller."""
    import select
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    dump = subprocess.Popen([_tcpdump(), "-i", "lo", "-n", "-U", "-w", "-", f"tcp port {slurmctld.port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    decoder = subprocess.Popen([sys.executable, "-m", "pyslurmrpc.decode", "-", "--port", str(slurmctld.port),
                                "--munge-key", str(munged.key_file)], stdin=dump.stdout, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)}, cwd=str(root))
    dump.stdout.close()  # the decoder holds the pipe now
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"reply to REQUEST_PING" not in seen and time.monotonic() < deadline:
            slurmctld.scontrol("ping", timeout=10)  # until tcpdump's filter is live and a ping went through
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                ready, _, _ = select.select([decoder.stdout], [], [], 0.1)
                if ready:
                    seen += os.read(decoder.stdout.fileno(), 65536)
        assert b"reply to REQUEST_PING" in seen and decoder.poll() is None  # printed while still capturing
        assert re.search(rb"munge\.uid = %d\b" % os.getuid(), seen)
    finally:
        dump.send_signal(signal.SIGINT)  # tcpdump ends, the decoder sees end of input
        dump.wait(10)
        rest, err = decoder.communicate(timeout=30)
    out = (seen + rest).decode()
    assert b"Traceback" not in err and "stream(s) stopped early" in out
    assert "NOT DECODED" not in out and "unknown message type" not in out
    # a ping caught while tcpdump's filter went live may be cut at its start; nothing else may stop
    problems = [line for line in out.splitlines() if line.startswith("!!!")]
    assert decoder.returncode == (1 if problems else 0), err
    assert all("stream offset 0" in p or "never captured" in p for p in problems), problems
