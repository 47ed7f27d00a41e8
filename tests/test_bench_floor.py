"""bench/floor.py: the hand-written floor under the figures makes the calls it stands for.

A floor that skipped a step (no credential, no reply read, the reply's credential not
decoded) would be a floor too low: each test here fails then.
"""

from __future__ import annotations

import os
import tomllib

import pytest

from pyslurmrpc import Client
from pyslurmrpc.auth.errors import MungeCredentialReplayedError
from pyslurmrpc.auth.munge import MungeClient
from pyslurmrpc.auth.slurm_auth import MungeAuth
from pyslurmrpc.bench import floor
from pyslurmrpc.bench.rpc import BENCH_JOB, CLUSTER_TOML
from pyslurmrpc.fake import Cluster, FakeSlurmctld
from pyslurmrpc.wire import version_code

SLURM_19_05 = 0x2200


def _counted(ctld) -> list:
    """The message types of the requests ``ctld`` handles (their credential verified)."""
    seen, handle = [], ctld.controller.handle

    def counting(uid, msg_type, body):
        seen.append(msg_type)
        return handle(uid, msg_type, body)
    ctld.controller.handle = counting
    return seen


def _checkpoint_floor(ctld, munged, depth=3) -> floor.CallFloor:
    client = Client(ctld.host, ctld.port, auth="munge", munge_socket=munged.socket_path, timeout=10)
    return floor.CallFloor(client, "checkpoint_able", BENCH_JOB, SLURM_19_05, munged.socket_path, depth)


def test_floor_calls_reach_the_controller_each_with_a_fresh_credential(munged):
    cluster = Cluster.from_dict(tomllib.loads(CLUSTER_TOML))
    with FakeSlurmctld(cluster, plugin="simulated", auth=MungeAuth(munged.socket_path)) as ctld:
        seen = _counted(ctld)
        least = _checkpoint_floor(ctld, munged)
        decoded = []
        least._decode = lambda cred, decode=least._decode: decoded.append(decode(cred))
        least.plain()
        least.plain()
        for _ in range(4):     # 3 minted at the first, used up by the third, 3 again at the fourth
            least.premint()
    assert len(seen) == 6, seen            # a credential used twice would be refused (replayed)
    assert len(least._stock) == 2
    assert len(decoded) == 6 and all(cred.uid == os.getuid() for cred in decoded)


def test_a_reply_credential_munged_refuses_fails_the_floor_call(munged):
    """The reply's credential goes to munged: one it refuses (decoded once already) raises."""
    cluster = Cluster.from_dict(tomllib.loads(CLUSTER_TOML))
    with FakeSlurmctld(cluster, plugin="simulated", auth=MungeAuth(munged.socket_path)) as ctld:
        least = _checkpoint_floor(ctld, munged, depth=1)
        replies = []
        least._decode = lambda cred, decode=least._decode: replies.append(cred) or decode(cred)
        least.plain()
        least._decode = lambda cred, decode=least._decode: decode(replies[0])
        with pytest.raises(MungeCredentialReplayedError):
            least.premint()


def test_floor_against_a_real_22_05_decodes_each_reply_credential(munged, slurmctld):
    client = Client(slurmctld.host, slurmctld.port, auth="munge", munge_socket=munged.socket_path, timeout=10)
    least = floor.CallFloor(client, "ping", 0, version_code(client.controller_version()), munged.socket_path, 2)
    decoded = []
    least._decode = lambda cred, decode=least._decode: decoded.append(decode(cred))
    for _ in range(3):
        least.plain()
        least.premint()
    assert len(decoded) == 6       # 22.05 signs its replies (23.02+ send none)


def test_the_munge_floor_mints_and_decodes_as_munged_does(munged):
    mint, decode = floor.munge_encode(munged.socket_path, b"payload"), floor.munge_decode(munged.socket_path)
    cred = mint()
    assert cred.startswith(b"MUNGE:")
    assert decode(cred).payload == b"payload"
    with pytest.raises(MungeCredentialReplayedError):
        decode(cred)
    assert MungeClient(munged.socket_path).decode(mint()).payload == b"payload"
