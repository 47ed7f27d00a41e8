"""pyslurmrpc's wire layer against a REAL slurmctld: Debian 12's 22.05.8 on loopback.

The ``slurmctld`` session fixture (tests/conftest.py) runs the daemon with the
same throw-away munged as the ``munged`` fixture.  What is asserted here is
what that daemon was observed to do; protocol_specs/slurmctld_2205.md explains
each behaviour from Slurm's source (tag slurm-22-05-8-1).
"""

from __future__ import annotations

import socket
import sys
import time

import pytest

from malformed_cases import CASES
from pyslurmrpc.auth.munge_cred import decode_offline
from pyslurmrpc.auth.slurm_auth import MungeAuth, short_hostname
from pyslurmrpc.auth.msg_hash import HASH_PLUGIN_K12, HASH_PLUGIN_NONE, kangarootwelve
from pyslurmrpc.testing.netio import exchange, message_hash, ping_frame, wire_ping
from pyslurmrpc.testing.slurmctld import SlurmctldHarness, SlurmctldNotFound, find_slurmctld
from pyslurmrpc.wire import VERSIONS, MsgType, decode_message, encode_message

#: header versions slurmctld 22.05 answers: SLURM_MIN_PROTOCOL_VERSION (20.11) .. 22.05
ANSWERED = {0x2400, 0x2500, 0x2600}
#: a refused connection is closed after slurm_unpack_received_msg's 10 ms
#: anti-brute-force sleep; anything near a second would be a hang
PROMPT = 1.0


@pytest.fixture(scope="module")
def auth(munged):
    return MungeAuth(munged.socket_path)


def _still_answers(slurmctld, auth) -> None:
    reply = wire_ping(slurmctld.host, slurmctld.port, auth)
    assert (reply.header.msg_type, reply.body.return_code) == (MsgType.RESPONSE_SLURM_RC, 0)


# --------------------------------------------------------------------------
# the harness
# --------------------------------------------------------------------------
def test_harness_describes_a_running_2205_controller(slurmctld):
    assert slurmctld.running
    assert slurmctld.version == "22.05"
    assert slurmctld.release.startswith("22.05.")
    assert slurmctld.host == "127.0.0.1" and 0 < slurmctld.port < 65536
    conf = open(slurmctld.conf_path).read()
    assert f"SlurmctldPort={slurmctld.port}\n" in conf
    assert f"AuthInfo=socket={slurmctld.munge_socket}\n" in conf
    assert f"slurmctld version {slurmctld.release} started" in slurmctld.log_text()
    with open(f"/proc/{slurmctld.pid}/cmdline", "rb") as fh:
        assert fh.read().split(b"\0")[0].endswith(b"slurmctld")


def test_harness_start_stop_by_pid_and_cleanup(munged):
    with SlurmctldHarness(munged.socket_path, cluster_name="second") as ctld:
        pid, workdir = ctld.pid, ctld.workdir
        assert wire_ping(ctld.host, ctld.port, MungeAuth(munged.socket_path)).body.return_code == 0
        assert "ClusterName=second\n" in open(ctld.conf_path).read()
    assert not workdir.exists()
    with pytest.raises(ProcessLookupError):
        import os
        os.kill(pid, 0)
    with pytest.raises(OSError):
        socket.create_connection((ctld.host, ctld.port), timeout=1).close()


def test_finder_names_the_package_when_missing(monkeypatch):
    import pyslurmrpc.testing.slurmctld as mod
    monkeypatch.setattr(mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(mod, "SLURMCTLD_CANDIDATES", ("/nonexistent/slurmctld",))
    with pytest.raises(SlurmctldNotFound, match="apt-get install -y slurmctld"):
        find_slurmctld()


# --------------------------------------------------------------------------
# a wire-level ping
# --------------------------------------------------------------------------
def test_wire_ping_2205_gets_slurm_rc_0(slurmctld, auth, munged):
    request = ping_frame(auth, 0x2600)
    ex = exchange(slurmctld.host, slurmctld.port, request)
    assert ex.closed and not ex.reset, "slurmctld closes after its one answer"
    assert len(ex.frames) == 1 and b"".join(ex.frames) == ex.received
    reply = decode_message(ex.frames[0])
    assert encode_message(reply) == ex.frames[0]
    h = reply.header
    assert (h.version, h.msg_type, h.flags, h.body_length) == (0x2600, MsgType.RESPONSE_SLURM_RC, 0, 4)
    assert (h.forward.cnt, h.ret_list, h.orig_addr.family) == (0, (), 0)
    assert reply.body.return_code == 0
    assert (reply.auth.plugin, reply.auth.plugin_id) == ("auth/munge", 101)
    verified = auth.verify(reply.auth)
    assert (verified.uid, verified.gid) == (0, 0)           # SlurmUser=root
    cred = verified.credential
    assert cred.uid_restriction is None                     # a reply is not restricted
    # 22.05 replies carry a message hash: HASH_PLUGIN_K12 + K12(body, custom=msg_type)
    assert cred.payload[0] == HASH_PLUGIN_K12 and len(cred.payload) == 33
    assert cred.payload == message_hash(ex.frames[0])
    assert decode_offline(reply.auth.credential, munged.key_file).payload == cred.payload


def test_a_debian_slurmctld_takes_the_same_credential_twice(slurmctld, auth):
    """Debian builds Slurm with MULTIPLE_SLURMD, whose auth_munge counts munged's
    EMUNGE_CRED_REPLAYED as a success (_decode_cred): the very same request, credential and
    all, is answered twice (protocol_specs/security.md section 4)."""
    request = ping_frame(auth, 0x2600)
    for _ in range(2):
        reply = decode_message(exchange(slurmctld.host, slurmctld.port, request).frames[0])
        assert (reply.header.msg_type, reply.body.return_code) == (MsgType.RESPONSE_SLURM_RC, 0)


@pytest.mark.parametrize("version", sorted(VERSIONS), ids=lambda v: f"{v:#06x}-{VERSIONS[v].name}")
def test_ping_in_every_header_version(slurmctld, auth, version):
    ex = exchange(slurmctld.host, slurmctld.port, ping_frame(auth, version))
    if version in ANSWERED:
        assert len(ex.frames) == 1, ex
        reply = decode_message(ex.frames[0])
        assert encode_message(reply) == ex.frames[0]
        # the answer comes back in the request's header version
        assert (reply.header.version, reply.header.msg_type, reply.body.return_code) == (
            version, MsgType.RESPONSE_SLURM_RC, 0)
        payload = auth.verify(reply.auth).credential.payload
        if version >= 0x2600:
            assert payload == message_hash(ex.frames[0])
        else:
            # 20.11 / 21.08 peers: HASH_PLUGIN_NONE + msg_type in the daemon's byte order
            assert payload == bytes([HASH_PLUGIN_NONE]) + int(MsgType.RESPONSE_SLURM_RC).to_bytes(2, sys.byteorder)
    else:
        assert ex.silent_close, ex
        assert ex.elapsed < PROMPT, f"refused version closed after {ex.elapsed:.3f} s"
    _still_answers(slurmctld, auth)


def test_refused_versions_leave_their_reason_in_the_log(slurmctld, auth):
    before = len(slurmctld.log_text())
    for version in (0x2200, 0x2700):
        exchange(slurmctld.host, slurmctld.port, ping_frame(auth, version))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        log = slurmctld.log_text()[before:]
        if "Invalid Protocol Version 9984" in log:
            break
        time.sleep(0.05)
    # below 20.11: the header itself is refused; above 22.05: the header parses,
    # check_header_version refuses it
    assert "unpack_header: protocol_version 8704 not supported" in log
    assert "Unsupported RPC version 9984 msg type REQUEST_PING(1008)" in log


def test_request_credential_without_payload_is_accepted(slurmctld, auth, munged):
    """A credential without the message hash: 22.05 accepts it unless CommunicationParameters
    has block_null_hash (tests/test_message_hash.py runs a controller that has it)."""
    frame = ping_frame(auth.create(0x2600), 0x2600)
    assert decode_offline(decode_message(frame).auth.credential, munged.key_file).payload == b""
    ex = exchange(slurmctld.host, slurmctld.port, frame, until_frame=True)
    assert decode_message(ex.frames[0]).body.return_code == 0


# --------------------------------------------------------------------------
# malformed input: tests/malformed_cases.py
# --------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_malformed_input(slurmctld, auth, case):
    before = len(slurmctld.log_text())
    ex = exchange(slurmctld.host, slurmctld.port, case["build"](auth),
                  half_close=case.get("half_close", False))
    expect = case["expect"]
    if expect["outcome"] == "silent_close":
        assert ex.silent_close, ex
        assert ex.elapsed < PROMPT, f"closed after {ex.elapsed:.3f} s"
    else:
        assert len(ex.frames) == 1, ex
        reply = decode_message(ex.frames[0])
        assert reply.header.msg_type == expect["msg_type"]
        assert reply.body.return_code == expect["return_code"]
    _still_answers(slurmctld, auth)
    assert case["log"] in slurmctld.log_text()[before:]


# --------------------------------------------------------------------------
# Debian's scontrol
# --------------------------------------------------------------------------
def test_scontrol_ping_prints_up(slurmctld):
    done = slurmctld.scontrol("ping")
    # read_config.c replaces SlurmctldHost "localhost" with the short host name
    assert done.stdout == f"Slurmctld(primary) at {short_hostname()} is UP\n"
    assert (done.returncode, done.stderr) == (0, "")


def test_scontrol_version_is_2205(slurmctld):
    done = slurmctld.scontrol("--version")
    assert done.stdout.strip() == f"slurm-wlm {slurmctld.release}"


# --------------------------------------------------------------------------
# the KangarooTwelve used to check message hashes
# --------------------------------------------------------------------------
def test_kangarootwelve_specification_vectors():
    ptn = lambda n: bytes(i % 251 for i in range(n))  # noqa: E731
    assert kangarootwelve(b"").hex() == "1ac2d450fc3b4205d19da7bfca1b37513c0803577ac7167f06fe2ce1f0ef39e5"
    assert kangarootwelve(ptn(17)).hex() == "6bf75fa2239198db4772e36478f8e19b0f371205f6a9a93a273f51df37122888"
    assert kangarootwelve(b"", b"", 64)[:32] == kangarootwelve(b"")
    with pytest.raises(ValueError):
        kangarootwelve(bytes(9000))


# --------------------------------------------------------------------------
# the project's Client against the real 22.05 controller
# --------------------------------------------------------------------------
def test_client_pings_and_detects_2205(slurmctld, munged):
    from pyslurmrpc import Client

    client = Client(slurmctld.host, slurmctld.port, munge_socket=munged.socket_path)
    assert client.ping() is True
    assert client.controller_version() == "22.05"


def test_fixture_helper_fails_under_ci_and_skips_otherwise(monkeypatch):
    import pyslurmrpc.testing.slurmctld as mod

    class Stop(Exception):
        pass

    class FakePytest:
        @staticmethod
        def fail(msg):
            raise Stop(("fail", msg))

        @staticmethod
        def skip(msg):
            raise Stop(("skip", msg))

    def missing():
        raise SlurmctldNotFound("slurmctld not found (apt-get install -y slurmctld)")

    monkeypatch.setattr(mod, "find_slurmctld", missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Stop) as err:
        mod.slurmctld_or_skip(FakePytest, "/nonexistent.socket")
    assert err.value.args[0][0] == "fail" and "must not be skipped" in err.value.args[0][1]
    monkeypatch.delenv("CI")
    with pytest.raises(Stop) as err:
        mod.slurmctld_or_skip(FakePytest, "/nonexistent.socket")
    assert err.value.args[0][0] == "skip"
