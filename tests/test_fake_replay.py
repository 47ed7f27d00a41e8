"""Record/replay, the CLI entry point, and the fake with a real munged."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path


from pyslurmrpc.auth.munge import MungeClient
from pyslurmrpc.auth.slurm_auth import AsyncMungeAuth, MungeAuth
from pyslurmrpc.fake import FakeSlurmctld, RecordingProxy, ReplayDaemon, fixture_cluster
from pyslurmrpc.fake.replay import Recordings
from pyslurmrpc.fake.transport import exchange
from pyslurmrpc.wire import MsgType, MungeAuthCred, decode_message, version_code

from fixtures_data import FIXTURES, manifest, recording
from test_fake_server import V1905, able, frame, send_raw

TIMEOUT = 5.0
ROOT = Path(__file__).resolve().parent.parent


async def test_replay_serves_recordings_in_order():
    d = ReplayDaemon(FIXTURES)
    async with d:
        for entry in manifest():
            reply = await exchange(*d.address, recording(entry["name"], "request"), TIMEOUT)
            assert reply == recording(entry["name"], "response"), entry["name"]
        # another protocol version: the recorded answer re-encoded in it
        old = decode_message(await exchange(*d.address, frame(version=version_code("17.11")), TIMEOUT))
        assert (old.header.version, old.body.return_code) == (version_code("17.11"), 0)
        assert await send_raw(d.address, frame(MsgType.REQUEST_CHECKPOINT, able(job=12345))) == b""
    assert d.served[:3] == ["able_running", "disable", "able_disabled"]


async def test_proxy_records_in_fixture_format(tmp_path):
    upstream = FakeSlurmctld(fixture_cluster(), plugin="ompi")
    async with upstream:
        proxy = RecordingProxy(upstream.address, tmp_path, prefix="t")
        async with proxy:
            requests = [frame(), frame(MsgType.REQUEST_CHECKPOINT, able()), frame(MsgType.REQUEST_CHECKPOINT, able(job=4))]
            replies = [await exchange(*proxy.address, r, TIMEOUT) for r in requests]
            await asyncio.sleep(0.1)  # let the proxy finish writing
    assert [(c.name, c.request, c.response) for c in proxy.connections] == \
        [(f"t_000{i}", r, a) for i, (r, a) in enumerate(zip(requests, replies), 1)]
    lines = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert [x["name"] for x in lines] == ["t_0001", "t_0002", "t_0003"]
    assert lines[1]["response"]["msg_type"] == "RESPONSE_CHECKPOINT"
    assert (tmp_path / "t_0002.request.bin").read_bytes() == requests[1]
    assert (tmp_path / "t_0003.response.bin").read_bytes() == replies[2]
    # and the recordings replay
    rec = Recordings.load(tmp_path)
    assert [r.name for r in rec.recordings] == ["t_0001", "t_0002", "t_0003"]
    async with ReplayDaemon(rec) as d:
        assert await exchange(*d.address, requests[2], TIMEOUT) == replies[2]


async def test_proxy_without_a_directory_keeps_connections_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with FakeSlurmctld(fixture_cluster(), plugin="ompi") as upstream:
        async with RecordingProxy(upstream.address) as proxy:
            reply = await exchange(*proxy.address, frame(), TIMEOUT)
            await asyncio.sleep(0.1)
    assert [(c.request, c.response) for c in proxy.connections] == [(frame(), reply)]
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_cli_prints_port_and_serves():
    code = "import sys; from pyslurmrpc.fake.cli import main_fake_slurmctld; sys.exit(main_fake_slurmctld(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", "0", "--slurmd", "--plugin", "none"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        second = proc.stdout.readline().strip()
        assert first.startswith("listening on 127.0.0.1:") and second.startswith("slurmd localhost listening on")
        port = int(first.rsplit(":", 1)[1])
        reply = decode_message(asyncio.run(exchange("127.0.0.1", port, frame(MsgType.REQUEST_CHECKPOINT, able()), TIMEOUT)))
        assert reply.body.return_code == 2036  # checkpoint/none
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


async def test_with_real_munged(munged):
    d = FakeSlurmctld(fixture_cluster(), auth=AsyncMungeAuth(munged.socket_path))
    client = MungeAuth(munged.socket_path)
    async with d:
        request = frame(MsgType.REQUEST_CHECKPOINT, able(), auth=client.create(V1905))
        reply = decode_message(await exchange(*d.address, request, TIMEOUT))
        assert reply.header.msg_type == MsgType.RESPONSE_CHECKPOINT or reply.body.return_code == 2002
        assert client.verify(reply.auth, V1905).uid == os.geteuid()  # signed by the daemon
        assert await send_raw(d.address, request) == b""  # munged: replayed
        mc = MungeClient(munged.socket_path)
        for restrict_uid, answered in ((os.geteuid() + 7, False), (os.geteuid(), True)):
            env = MungeAuthCred(credential=mc.encode(b"", uid=restrict_uid))
            assert bool(await send_raw(d.address, frame(auth=env))) is answered
