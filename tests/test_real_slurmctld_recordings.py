"""Recorded Slurm 22.05.8 traffic (fixtures/slurm-22.05.8/) decodes, re-encodes and verifies offline.

These tests need no daemon.  The recordings were made once with
:func:`record` below (``python tests/test_real_slurmctld_recordings.py
--record``), which runs Debian's ``scontrol ping`` (libslurm 22.05.8) and
pyslurmrpc's own pings through a recording proxy in front of a real
slurmctld 22.05.8; it is a helper, not a test, so the files stay as recorded.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from pyslurmrpc.auth.munge_cred import decode_offline
from pyslurmrpc.auth.slurm_auth import OfflineMungeAuth
from pyslurmrpc.auth.msg_hash import HASH_PLUGIN_K12, HASH_PLUGIN_NONE, kangarootwelve
from pyslurmrpc.testing.netio import message_hash
from pyslurmrpc.wire import MsgType, PingMsg, decode_message, encode_message

DIR = Path(__file__).resolve().parent.parent / "fixtures" / "slurm-22.05.8"
KEY = DIR / "munge.key"


def manifest() -> list[dict]:
    return [json.loads(line) for line in (DIR / "manifest.jsonl").read_text().splitlines() if line.strip()]


def frames(name: str):
    return (DIR / f"{name}.request.bin").read_bytes(), (DIR / f"{name}.response.bin").read_bytes()


NAMES = [entry["name"] for entry in manifest()] if (DIR / "manifest.jsonl").exists() else []


def test_the_recordings_are_there():
    assert {"ping", "wire_ping_2205", "wire_ping_2011"} <= set(NAMES)
    assert KEY.stat().st_size == 1024
    for name in NAMES:
        request, response = frames(name)
        assert request and response


@pytest.mark.parametrize("name", NAMES)
def test_recording_round_trips_byte_exactly(name):
    for frame in frames(name):
        message = decode_message(frame)
        assert encode_message(message) == frame


@pytest.mark.parametrize("name", NAMES)
def test_recording_matches_its_manifest(name):
    entry = next(e for e in manifest() if e["name"] == name)
    request, response = (decode_message(f) for f in frames(name))
    version = int(entry["header_version"], 16)
    assert (request.header.version, response.header.version) == (version, version)
    assert (request.header.msg_type, response.header.msg_type) == (MsgType.REQUEST_PING, MsgType.RESPONSE_SLURM_RC)
    assert request.header.body_length == 0 and request.body == PingMsg()
    assert response.header.body_length == 4 and response.body.return_code == entry["return_code"] == 0
    for m in (request, response):
        assert (m.header.flags, m.header.forward.cnt, m.header.ret_list) == (0, 0, ())
        assert (m.header.orig_addr.family, m.header.orig_addr.addr, m.header.orig_addr.port) == (0, None, 0)
        assert (m.auth.plugin, m.auth.plugin_id) == ("auth/munge", 101)
    request_cred = decode_offline(request.auth.credential, KEY, ignore_expiry=True)
    response_cred = decode_offline(response.auth.credential, KEY, ignore_expiry=True)
    assert request_cred.payload.hex() == entry["request_payload"]
    assert response_cred.payload.hex() == entry["response_payload"]
    assert (response_cred.uid, response_cred.gid, entry["caller_uid"]) == (0, 0, 0)


def test_scontrol_ping_recording():
    """libslurm 22.05.8's ping: what scontrol printed, and the credential's payload and restriction."""
    entry = next(e for e in manifest() if e["name"] == "ping")
    assert entry["client"].startswith("scontrol 22.05.8")
    assert entry["exit_code"] == 0 and entry["stdout"].endswith(" is UP\n")
    assert entry["stdout"].startswith("Slurmctld(primary) at ")
    request_frame, response_frame = frames("ping")
    request, response = decode_message(request_frame), decode_message(response_frame)
    cred = decode_offline(request.auth.credential, KEY, ignore_expiry=True)
    # the request's payload: HASH_PLUGIN_K12 + KangarooTwelve(empty body, custom = 1008 big-endian)
    assert cred.payload == bytes([HASH_PLUGIN_K12]) + kangarootwelve(b"", b"\x03\xf0")
    assert cred.payload == message_hash(request_frame)
    # scontrol restricts decoding to SlurmUser (root here): msg->restrict_uid
    assert (cred.uid, cred.gid, cred.uid_restriction, cred.gid_restriction) == (0, 0, 0, None)
    reply = decode_offline(response.auth.credential, KEY, ignore_expiry=True)
    assert reply.payload == bytes([HASH_PLUGIN_K12]) + kangarootwelve(b"\x00" * 4, b"\x1f\x41")
    assert reply.uid_restriction is None
    assert len(request.auth.credential) == len(response.auth.credential) == 187
    # the offline verifier of the auth layer accepts both envelopes
    verifier = OfflineMungeAuth(KEY, ignore_expiry=True)
    assert verifier.verify(request.auth).uid == verifier.verify(response.auth).uid == 0


def test_2011_reply_carries_the_old_msg_type_hash():
    """A 20.11-header request gets HASH_PLUGIN_NONE + msg_type in host (x86: little-endian) order."""
    _, response_frame = frames("wire_ping_2011")
    reply = decode_offline(decode_message(response_frame).auth.credential, KEY, ignore_expiry=True)
    assert reply.payload == bytes([HASH_PLUGIN_NONE]) + (8001).to_bytes(2, "little")


# --------------------------------------------------------------------------
# the script that made the recordings (not a test)
# --------------------------------------------------------------------------
def record(outdir: Path = DIR) -> list[dict]:
    """Record fresh fixtures into ``outdir``: needs munged, slurmctld and scontrol (Debian 12).

    Starts a throw-away munged and slurmctld, puts a RecordingProxy in front
    of the controller, and records (1) Debian's ``scontrol ping`` pointed at
    the proxy, (2) pyslurmrpc's wire-level ping in a 22.05 header and (3) in
    a 20.11 header.  Writes NAME.request.bin / NAME.response.bin,
    manifest.jsonl, munge.key and slurm.conf.
    """
    import asyncio

    from pyslurmrpc.auth.slurm_auth import MungeAuth
    from pyslurmrpc.fake import RecordingProxy
    from pyslurmrpc.testing.munged import MungedHarness
    from pyslurmrpc.testing.netio import exchange, ping_frame
    from pyslurmrpc.testing.slurmctld import SlurmctldHarness

    async def through_proxy(ctld, auth):
        async with RecordingProxy((ctld.host, ctld.port)) as proxy:
            done = await asyncio.to_thread(ctld.scontrol, "ping", port=proxy.port)
            await asyncio.sleep(0.5)
            for version in (0x2600, 0x2400):
                await asyncio.to_thread(exchange, ctld.host, proxy.port, ping_frame(auth, version))
            await asyncio.sleep(0.5)
        return done, proxy.connections

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    entries = []
    with MungedHarness() as munged, SlurmctldHarness(munged.socket_path, cluster_name="recorded") as ctld:
        auth = MungeAuth(munged.socket_path)
        done, recordings = asyncio.run(through_proxy(ctld, auth))
        scontrol_version = ctld.scontrol("--version").stdout.split()[-1]
        names = [("ping", "0x2600", {"client": f"scontrol {scontrol_version} (Debian slurm-client)",
                                     "command": "scontrol ping", "stdout": done.stdout,
                                     "stderr": done.stderr, "exit_code": done.returncode}),
                 ("wire_ping_2205", "0x2600", {"client": "pyslurmrpc wire-level ping (MungeAuth, no payload)"}),
                 ("wire_ping_2011", "0x2400", {"client": "pyslurmrpc wire-level ping (MungeAuth, no payload)"})]
        assert len(recordings) == len(names), recordings
        for (name, version, extra), rec in zip(names, recordings):
            request, response = rec.request, rec.response
            (outdir / f"{name}.request.bin").write_bytes(request)
            (outdir / f"{name}.response.bin").write_bytes(response)
            req_cred = decode_offline(decode_message(request).auth.credential, munged.key_file, True)
            resp_cred = decode_offline(decode_message(response).auth.credential, munged.key_file, True)
            entries.append({"name": name, "target": "slurmctld", "slurmctld": ctld.release,
                            "header_version": version, **extra,
                            "return_code": decode_message(response).body.return_code,
                            "caller_uid": 0, "request_payload": req_cred.payload.hex(),
                            "response_payload": resp_cred.payload.hex()})
        shutil.copyfile(munged.key_file, outdir / "munge.key")
        conf = Path(ctld.conf_path).read_text().replace(str(ctld.workdir), "/tmp/WORKDIR")
        (outdir / "slurm.conf").write_text(conf.replace(munged.socket_path, "/tmp/MUNGED/munge.socket"))
    with open(outdir / "manifest.jsonl", "w") as fh:
        for entry in entries:
            fh.write(json.dumps(entry) + "\n")
    return entries


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        for entry in record():
            print(json.dumps(entry))
    else:
        print(f"usage: python {sys.argv[0]} --record   (rewrites {DIR})")
