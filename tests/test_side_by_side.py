"""The same malformed inputs to the real slurmctld 22.05 and to our fake 19.05 controller.

Both must treat them the same way: close the connection without sending a
byte, and go on answering pings.  The one input that is not malformed for a
19.05 controller (a checkpoint request in a 19.05 header) is the documented
difference: the fake answers it, 22.05 (no checkpoint RPCs) does not.
"""

from __future__ import annotations

import pytest

from pyslurmrpc.auth.slurm_auth import AsyncMungeAuth, MungeAuth
from pyslurmrpc.fake import FakeSlurmctld, fixture_cluster
from pyslurmrpc.testing.slurmctld import exchange, wire_ping
from pyslurmrpc.wire import Address, Header, Message, MsgType, PingMsg, encode_message

from malformed_cases import CASES

#: cases a 19.05 controller rightly answers (not malformed for it)
ANSWERED_BY_1905 = {"checkpoint_in_1905_header"}
PROMPT = 2.0


@pytest.fixture(scope="module")
def auth(munged):
    return MungeAuth(munged.socket_path)


@pytest.fixture(scope="module")
def fake(munged):
    with FakeSlurmctld(fixture_cluster(), auth=AsyncMungeAuth(munged.socket_path)) as daemon:
        yield daemon


def _ping_1905(auth) -> bytes:
    return encode_message(Message(Header(0x2200, MsgType.REQUEST_PING, orig_addr=Address()),
                                  auth.create(0x2200), PingMsg()))


def _outcome(host, port, case, auth):
    ex = exchange(host, port, case["build"](auth), half_close=case.get("half_close", False))
    return ("silent_close" if ex.silent_close else "reply"), ex


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_same_treatment(slurmctld, fake, auth, case):
    real, real_ex = _outcome(slurmctld.host, slurmctld.port, case, auth)
    ours, our_ex = _outcome(fake.host, fake.port, case, auth)
    assert real == "silent_close", real_ex
    assert our_ex.elapsed < PROMPT and real_ex.elapsed < PROMPT
    if case["name"] in ANSWERED_BY_1905:
        assert ours == "reply"
    else:
        assert ours == real, (case["name"], our_ex)
    # both daemons still answer, each in its own version
    assert wire_ping(slurmctld.host, slurmctld.port, auth).body.return_code == 0
    assert wire_ping(fake.host, fake.port, auth, version="19.05").body.return_code == 0


def _mutations_1905(auth):
    """The same kinds of damage, applied to a 19.05 frame the fake would otherwise answer."""
    good = _ping_1905(auth)
    bad_cred = bytearray(_ping_1905(auth))
    bad_cred[60:70] = b"AAAAAAAAAA"
    longer = bytearray(_ping_1905(auth))
    longer[12:16] = (100).to_bytes(4, "big")
    unknown = bytearray(_ping_1905(auth))
    unknown[10:12] = (65000).to_bytes(2, "big")
    return {"truncated_then_eof": (good[:40], True), "invalid_munge_credential": (bytes(bad_cred), False),
            "body_length_mismatch": (bytes(longer), False), "unknown_msg_type": (bytes(unknown), False),
            "replayed_credential": (good, False)}


def test_same_damage_in_1905_headers_closes_the_fake(fake, auth):
    good = _ping_1905(auth)
    assert exchange(fake.host, fake.port, good, until_frame=True).frames  # first use: answered
    for name, (data, half) in _mutations_1905(auth).items():
        if name == "replayed_credential":
            data = good  # the same credential again: munged refuses the replay
        ex = exchange(fake.host, fake.port, data, half_close=half)
        assert ex.silent_close, (name, ex)
        assert wire_ping(fake.host, fake.port, auth, version="19.05").body.return_code == 0
