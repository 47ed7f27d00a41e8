"""Real libslurm 17.11.13 and 18.08.9 client traffic (fixtures/slurm-17.11.13-client, -18.08.9-client).

Each directory holds what an unmodified libslurm of that release sent to 19.05.8
daemons, and what came back, in the client's own protocol version.  For every
recording:

* every frame decodes and re-encodes byte for byte, its header carries the
  client's protocol version, and its credential verifies offline with the
  recordings' key;
* the client, set to that protocol version and answered with the recorded
  response, sends the recorded request exactly (only the MUNGE credential
  text differs: it is minted anew) and returns what libslurm returned;
* the word after the plugin name in the auth envelope is what that release's
  auth plugin packs there (its SLURM_VERSION_NUMBER), not the 0 a 19.05
  daemon packs in its answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from pyslurmrpc import AsyncClient, Client, SlurmError
from pyslurmrpc.auth.slurm_auth import OfflineMungeAuth
from pyslurmrpc.fake import ReplayDaemon
from pyslurmrpc.wire import Message, PingMsg, decode_message, encode_message, version_code

from test_client_replay import _args, _expected, compat_reports_the_manifest, replay

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

#: directory -> (release the client speaks, SLURM_VERSION_NUMBER its auth plugin packs
#: after the plugin name: auth_munge.c plugin_version, built from META's Major/Minor/Micro)
CLIENTS = {
    "slurm-17.11.13-client": ("17.11", 0x110B0D),
    "slurm-18.08.9-client": ("18.08", 0x120809),
}


def _manifest(directory: str) -> list[dict]:
    lines = (FIXTURES / directory / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _bytes(directory: str, name: str, direction: str) -> bytes:
    return (FIXTURES / directory / f"{name}.{direction}.bin").read_bytes()


CASES = [(d, e) for d in CLIENTS for e in _manifest(d)]
IDS = [f"{d.split('-')[1]}-{e['name']}" for d, e in CASES]


def test_every_recording_is_listed_once():
    for directory in CLIENTS:
        names = [e["name"] for e in _manifest(directory)]
        on_disk = sorted(p.name[:-len(".request.bin")] for p in (FIXTURES / directory).glob("*.request.bin"))
        assert sorted(names) == on_disk and len(set(names)) == len(names)
        assert all(e["client"] == f"libslurm {CLIENTS[directory][0]}" for e in _manifest(directory))


@pytest.mark.parametrize("directory,entry", CASES, ids=IDS)
@pytest.mark.parametrize("direction", ["request", "response"])
def test_frames_decode_and_reencode_byte_for_byte(directory, entry, direction):
    raw = _bytes(directory, entry["name"], direction)
    msg = decode_message(raw)
    assert msg.header.version == version_code(CLIENTS[directory][0])
    assert msg.auth.plugin == "auth/munge"
    assert encode_message(msg) == raw


@pytest.mark.parametrize("directory,entry", CASES, ids=IDS)
@pytest.mark.parametrize("direction", ["request", "response"])
def test_credentials_verify_offline(directory, entry, direction):
    msg = decode_message(_bytes(directory, entry["name"], direction))
    auth = OfflineMungeAuth(FIXTURES / directory / "munge.key", ignore_expiry=True)
    who = auth.verify(msg.auth, msg.header.version)
    # the caller's uid in requests; the daemons ran as root (SlurmUser=root)
    assert who.uid == (entry["caller_uid"] if direction == "request" else 0)


@pytest.mark.parametrize("directory", CLIENTS)
def test_plugin_version_word_is_the_release_number(directory):
    """Requests carry the client's SLURM_VERSION_NUMBER; the 19.05 daemon's answers carry 0."""
    release, number = CLIENTS[directory]
    for entry in _manifest(directory):
        assert decode_message(_bytes(directory, entry["name"], "request")).auth.plugin_version == number
        assert decode_message(_bytes(directory, entry["name"], "response")).auth.plugin_version == 0


def _client(cls, directory, entry, peer):
    auth = OfflineMungeAuth(FIXTURES / directory / "munge.key", ignore_expiry=True,
                            uid=entry["caller_uid"])
    return cls(peer.host, peer.port, auth=auth, timeout=5, protocol_version=CLIENTS[directory][0],
               nodes={"localhost": (peer.host, peer.port)})


def _check_request(directory, entry, sent: bytes):
    recorded = decode_message(_bytes(directory, entry["name"], "request"))
    ours = decode_message(sent)
    assert ours.auth.credential != recorded.auth.credential  # minted anew
    # only the credential text may differ: plugin name, the word after it, header and body may not
    swapped = dataclasses.replace(recorded.auth, credential=ours.auth.credential)
    assert encode_message(Message(recorded.header, swapped, recorded.body)) == sent


def _run(directory, entry, call):
    replay(entry, _bytes(directory, entry["name"], "response"), call,
           lambda sent: _check_request(directory, entry, sent))


@pytest.mark.parametrize("directory,entry", CASES, ids=IDS)
def test_sync_client_reproduces_old_libslurm(directory, entry):
    method, args = _args(entry)
    _run(directory, entry, lambda peer: getattr(_client(Client, directory, entry, peer), method)(*args))


@pytest.mark.parametrize("directory,entry", CASES, ids=IDS)
def test_async_client_reproduces_old_libslurm(directory, entry):
    method, args = _args(entry)
    _run(directory, entry,
         lambda peer: asyncio.run(getattr(_client(AsyncClient, directory, entry, peer), method)(*args)))


@pytest.mark.parametrize("release,number", [("17.11", 0x110B0D), ("18.08", 0x120809), ("19.05", None)])
def test_auth_none_envelope_carries_the_release_number(release, number):
    """auth_none.c packs the same plugin_version word as auth_munge.c; 19.05 framing has no such word."""
    from pyslurmrpc.auth.slurm_auth import NoneAuth
    from pyslurmrpc.wire import Header

    code = version_code(release)
    env = NoneAuth(uid=1000, gid=100, hostname="node1").create(code)
    frame = encode_message(Message(Header(version=code, msg_type=1008), env, PingMsg()))
    assert decode_message(frame).auth.plugin_version == (number or 0)
    if number is not None:
        assert b"auth/none\x00" + number.to_bytes(4, "big") in frame


@pytest.mark.parametrize("directory,entry", CASES, ids=IDS)
def test_compat_reports_what_old_libslurm_reported(directory, entry):
    """The C-like layer: errno is the manifest's slurm_errno, outputs as libslurm filled them."""
    compat_reports_the_manifest(entry, _bytes(directory, entry["name"], "response"),
                                lambda peer: _client(Client, directory, entry, peer))


@pytest.mark.parametrize("directory", CLIENTS)
async def test_replay_daemon_serves_old_client_recordings_in_order(directory):
    """The fake's ReplayDaemon answers the client speaking that release, in manifest order."""
    entries = _manifest(directory)
    async with ReplayDaemon(FIXTURES / directory) as daemon:
        host, port = daemon.address
        auth = OfflineMungeAuth(FIXTURES / directory / "munge.key", ignore_expiry=True)
        client = AsyncClient(host, port, auth=auth, timeout=5, protocol_version=CLIENTS[directory][0],
                             nodes={"localhost": (host, port)})
        for entry in entries:
            method, args = _args(entry)
            errno = entry["outcome"]["slurm_errno"]
            if errno:
                with pytest.raises(SlurmError) as info:
                    await getattr(client, method)(*args)
                assert info.value.errno == errno, entry["name"]
            else:
                _expected(entry, await getattr(client, method)(*args))
    assert daemon.served == [e["name"] for e in entries]
