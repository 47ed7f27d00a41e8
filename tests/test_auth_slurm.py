"""Slurm auth envelopes (auth/munge, auth/none): build and verify like libslurm 19.05."""

import json
import os
import re
from pathlib import Path

import pytest

from pyslurmrpc.auth import errors as E
from pyslurmrpc.auth.munge import RetryPolicy, encode_offline
from pyslurmrpc.auth.munge_cred import ReplayCache
from pyslurmrpc.auth.slurm_auth import (
    AUTH_PLUGIN_MUNGE, AUTH_PLUGIN_NONE, SLURM_17_11_PROTOCOL_VERSION, SLURM_18_08_PROTOCOL_VERSION,
    SLURM_19_05_PROTOCOL_VERSION, AsyncMungeAuth, AsyncNoneAuth, MungeAuth, NoneAuth, OfflineMungeAuth,
)
from pyslurmrpc.wire.types import MungeAuthCred

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KEY = FIXTURES / "munge.key"
FAST = RetryPolicy(connect_attempts=2, connect_backoff_ms=1, xfer_attempts=2, xfer_backoff_ms=1)


def _fixture_auth(name, kind):
    raw = (FIXTURES / f"{name}.{kind}.bin").read_bytes()
    m = re.search(rb"MUNGE:[A-Za-z0-9+/=]+:", raw)
    # 19.05 framing: uint32 plugin id, uint32 length (with NUL), text, NUL
    assert int.from_bytes(raw[m.start() - 8:m.start() - 4], "big") == AUTH_PLUGIN_MUNGE
    assert int.from_bytes(raw[m.start() - 4:m.start()], "big") == len(m.group()) + 1
    return MungeAuthCred(credential=m.group().decode())


def test_munge_envelope_round_trip(munged):
    auth = MungeAuth(munged.socket_path, ttl=120)
    env = auth.create(SLURM_19_05_PROTOCOL_VERSION)
    assert (env.plugin, env.plugin_id, env.plugin_version) == ("auth/munge", 101, 0)
    assert env.credential not in repr(env)           # never shown
    ok = auth.verify(env, SLURM_19_05_PROTOCOL_VERSION)
    assert (ok.uid, ok.gid, ok.plugin) == (os.geteuid(), os.getegid(), "auth/munge")
    assert ok.credential.payload == b"" and ok.credential.ttl == 120 and ok.credential.uid_restriction is None


def test_munge_verify_rejects_replay_and_garbage(munged):
    auth = MungeAuth(munged.socket_path)
    env = auth.create()
    auth.verify(env)
    with pytest.raises(E.SlurmAuthError) as info:
        auth.verify(env)
    err = info.value
    assert err.slurm_errno == E.SLURM_PROTOCOL_AUTHENTICATION_ERROR == 1007
    assert err.plugin_errno == E.ESLURM_AUTH_CRED_INVALID == 6000
    assert err.code == 17 and isinstance(err.munge_error, E.MungeCredentialReplayedError)
    with pytest.raises(E.SlurmAuthError) as info:
        auth.verify(MungeAuthCred(credential=encode_offline(b"x" * 40, uid=0, gid=0)))
    assert info.value.code == 14


def test_plugin_mismatch_is_incomplete_packet(munged):
    auth = MungeAuth(munged.socket_path)
    none_env = NoneAuth().create()
    with pytest.raises(E.SlurmAuthError) as info:
        auth.verify(none_env)
    assert info.value.slurm_errno == E.ESLURM_PROTOCOL_INCOMPLETE_PACKET == 5003
    with pytest.raises(E.SlurmAuthError):
        NoneAuth().verify(auth.create())
    with pytest.raises(E.SlurmAuthError) as info:
        auth.verify(MungeAuthCred(credential=None))
    assert info.value.plugin_errno == E.ESLURM_AUTH_UNPACK


def test_munged_down_is_authentication_error(tmp_path):
    auth = MungeAuth(str(tmp_path / "none"), retry=FAST, slurm_retries=2, slurm_retry_delay=0.001)
    with pytest.raises(E.SlurmAuthError) as info:
        auth.create()
    assert info.value.slurm_errno == 1007 and isinstance(info.value.munge_error, E.MungeSocketMissingError)


@pytest.mark.parametrize("entry", [json.loads(l) for l in (FIXTURES / "manifest.jsonl").read_text().splitlines()],
                         ids=lambda e: e["name"])
def test_offline_verify_recordings(entry):
    verifier = OfflineMungeAuth(KEY, ignore_expiry=True)
    assert verifier.verify(_fixture_auth(entry["name"], "request")).uid == entry.get("caller_uid", 0)
    assert verifier.verify(_fixture_auth(entry["name"], "response"), SLURM_19_05_PROTOCOL_VERSION).uid == 0


def test_offline_expiry_and_replay():
    env = _fixture_auth("ping", "response")
    with pytest.raises(E.SlurmAuthError) as info:
        OfflineMungeAuth(KEY).verify(env)
    assert info.value.code == 15
    strict = OfflineMungeAuth(KEY, ignore_expiry=True, replay_cache=ReplayCache())
    strict.verify(env)
    with pytest.raises(E.SlurmAuthError):
        strict.verify(env)


def test_offline_sign_for_fake_daemon(munged):
    signer = OfflineMungeAuth(munged.key_file, uid=0, gid=0)
    env = signer.create()
    assert MungeAuth(munged.socket_path).verify(env).uid == 0   # real munged accepts it
    assert OfflineMungeAuth(munged.key_file).verify(signer.create()).uid == 0
    assert "key" not in repr(signer).lower().replace("offlinemungeauth", "")


def test_none_envelope_versions():
    auth = NoneAuth(uid=1000, gid=100, hostname="node1")
    new = auth.create(SLURM_19_05_PROTOCOL_VERSION)
    assert (new.plugin, new.plugin_id, new.uid, new.gid, new.hostname) == ("auth/none", 100, 1000, 100, "node1")
    for old_version in (SLURM_18_08_PROTOCOL_VERSION, SLURM_17_11_PROTOCOL_VERSION):
        old = auth.create(old_version)
        assert old.hostname is None and old.plugin == "auth/none"
        assert NoneAuth().verify(old, old_version).uid == 1000
    ok = NoneAuth().verify(new)
    assert (ok.uid, ok.gid, ok.hostname) == (1000, 100, "node1")
    with pytest.raises(E.SlurmAuthError):
        auth.create(0x1F00)


def test_pre_1905_matches_by_name(munged):
    auth = MungeAuth(munged.socket_path)
    env = auth.create(SLURM_18_08_PROTOCOL_VERSION)
    legacy = MungeAuthCred(credential=env.credential, plugin_version=0x120800)
    assert auth.verify(legacy, SLURM_18_08_PROTOCOL_VERSION).uid == os.geteuid()


async def test_async_envelopes(munged):
    auth = AsyncMungeAuth(munged.socket_path)
    env = await auth.create()
    assert (await auth.verify(env)).uid == os.geteuid()
    with pytest.raises(E.SlurmAuthError):
        await auth.verify(env)
    none = AsyncNoneAuth(uid=5, gid=6)
    assert (await none.verify(await none.create())).uid == 5
