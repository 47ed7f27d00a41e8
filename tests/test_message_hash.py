"""The message hash of 22.05+ credentials: what libslurm 22.05 sends, and a controller that demands it."""

from __future__ import annotations

import re

import pytest

from pyslurmrpc import AsyncClient, CheckpointUnsupported, Client
from pyslurmrpc.auth.msg_hash import credential_payload, kangarootwelve
from pyslurmrpc.auth.munge import decode_offline
from pyslurmrpc.auth.slurm_auth import MungeAuth
from pyslurmrpc.testing.slurmctld import SlurmctldHarness, exchange, ping_frame
from pyslurmrpc.wire import MsgType, MungeAuthCred, decode_message

from fixtures_data import FIXTURES

REC = FIXTURES / "slurm-22.05.8"


def test_k12_specification_vectors():
    # KangarooTwelve test vectors (the specification's first two): empty input, 32 bytes
    assert kangarootwelve(b"", b"", 32).hex() == (
        "1ac2d450fc3b4205d19da7bfca1b37513c0803577ac7167f06fe2ce1f0ef39e5")
    ptn17 = bytes(i % 0xFB for i in range(17))
    assert kangarootwelve(ptn17, b"", 32).hex() == (
        "6bf75fa2239198db4772e36478f8e19b0f371205f6a9a93a273f51df37122888")


def test_our_payload_equals_scontrol_2205s():
    """Debian's scontrol ping 22.05 (recorded) puts exactly the payload we compute in its credential."""
    frame = (REC / "ping.request.bin").read_bytes()
    cred = re.search(rb"MUNGE:[^:]+:", frame).group().decode()
    recorded = decode_offline(cred, REC / "munge.key", ignore_expiry=True).payload
    msg = decode_message(frame)
    assert msg.header.version == 0x2600 and msg.msg_type == MsgType.REQUEST_PING
    assert recorded == credential_payload(0x2600, MsgType.REQUEST_PING, b"")
    assert credential_payload(0x2200, MsgType.REQUEST_PING, b"") == b""  # 19.05 sends none


@pytest.fixture(scope="module")
def strict_slurmctld(munged):
    """A slurmctld 22.05 that refuses credentials without the message hash."""
    with SlurmctldHarness(munged.socket_path, extra_conf="CommunicationParameters=block_null_hash\n") as ctld:
        yield ctld


def test_block_null_hash_refuses_a_hashless_credential(strict_slurmctld, munged):
    auth = MungeAuth(munged.socket_path)
    ex = exchange(strict_slurmctld.host, strict_slurmctld.port, ping_frame(auth.create(0x2600), "22.05"))
    assert ex.silent_close


def test_client_pings_and_detects_a_block_null_hash_controller(strict_slurmctld, munged):
    client = Client(strict_slurmctld.host, strict_slurmctld.port, munge_socket=munged.socket_path, timeout=5)
    assert client.ping() is True
    assert client.controller_version() == "22.05"
    with pytest.raises(CheckpointUnsupported):
        client.checkpoint_able(1, 0)


async def test_async_client_against_block_null_hash(strict_slurmctld, munged):
    client = AsyncClient(strict_slurmctld.host, strict_slurmctld.port, munge_socket=munged.socket_path, timeout=5)
    assert await client.ping() is True


def test_each_body_is_hashed_once(monkeypatch):
    """The pure-Python K12 costs ~160 µs: a 22.05+ request of a kind seen before reuses its payload."""
    import pyslurmrpc.auth.msg_hash as msg_hash
    msg_hash._k12_payload.cache_clear()
    hashed = []
    real = msg_hash.kangarootwelve
    monkeypatch.setattr(msg_hash, "kangarootwelve", lambda *a: hashed.append(a) or real(*a))
    first = credential_payload(0x2d00, MsgType.REQUEST_PING, b"")
    for _ in range(5):
        assert credential_payload(0x2d00, MsgType.REQUEST_PING, b"") == first
        assert credential_payload(0x2600, MsgType.REQUEST_PING, bytearray()) == first   # the same hash
    assert len(hashed) == 1
    other = credential_payload(0x2d00, MsgType.REQUEST_PING, b"\x00\x01")
    assert other != first and len(hashed) == 2
    assert first == bytes([2]) + real(b"", int(MsgType.REQUEST_PING).to_bytes(2, "big"), 32)


class _RecordingAuth:
    """Keeps the payload it is asked to sign; signs nothing (the frame is all the test reads)."""

    def create_flow(self, version, payload):
        self.payload = payload
        return MungeAuthCred(credential="MUNGE:x:")
        yield  # noqa: unreachable - makes this a flow


def test_a_message_type_payload_encodes_no_body(monkeypatch):
    """20.11/21.08 payloads are the message type: no body is packed for them (22.05+ pack it once)."""
    from pyslurmrpc.client import calls, rpc
    from pyslurmrpc.runners import run_sync
    packed = []
    real = rpc.encode_body
    monkeypatch.setattr(rpc, "encode_body", lambda *a: packed.append(a[0]) or real(*a))
    state = type("State", (), {"auth": _RecordingAuth()})()
    for version, hashed in ((0x2400, False), (0x2500, False), (0x2600, True), (0x2d00, True)):
        frame, _ = run_sync(rpc._frame(state, calls.ping(), version))
        assert decode_message(frame).header.version == version
        assert state.auth.payload == credential_payload(version, MsgType.REQUEST_PING, b"")
        assert packed.count(version) == (1 if hashed else 0)
