"""The release table (wire/versions.py) against the facts read from Slurm's tags, and
version detection (client/detect.py) against controllers of every release as the table
says they answer."""

from __future__ import annotations

import pytest

from pyslurmrpc.auth.msg_hash import (
    HASH_PLUGIN_K12, HASH_PLUGIN_NONE, HashInputTooLarge, credential_payload, kangarootwelve,
)
from pyslurmrpc.client import detect
from pyslurmrpc.client.detect import FUTURE_PROBE, Outcome, decide, observe, plan_after, relabel
from pyslurmrpc.errors import LocalProtocolError, PyslurmrpcError, UnsupportedVersionError
from pyslurmrpc.wire import Address, Auth, Header, MungeAuthCred, ReturnCodeMsg, Message, MsgType, decode_message, encode_message
from pyslurmrpc.wire.constants import SLURM_NO_AUTH_CRED
from pyslurmrpc.wire.versions import (
    NEWEST, RELEASE_BY_CODE, RELEASES, VERSIONS, Addr, AuthFraming, Payload, Refusal, release_name,
    version_code, version_text,
)

# (name, code, SLURM_MIN_PROTOCOL_VERSION) from src/common/slurm_protocol_common.h at each tag
PROTOCOL = [
    ("17.11", 0x2000, 0x1E00), ("18.08", 0x2100, 0x1F00), ("19.05", 0x2200, 0x2000),
    ("20.02", 0x2300, 0x2100), ("20.11", 0x2400, 0x2200), ("21.08", 0x2500, 0x2300),
    ("22.05", 0x2600, 0x2400), ("23.02", 0x2700, 0x2500), ("23.11", 0x2800, 0x2600),
    ("24.05", 0x2900, 0x2700), ("24.11", 0x2A00, 0x2700), ("25.05", 0x2B00, 0x2800),
    ("25.11", 0x2C00, 0x2900), ("26.05", 0x2D00, 0x2A00),
]
RC = int(MsgType.RESPONSE_SLURM_RC)
PING = int(MsgType.REQUEST_PING)


def _in(name: str, first: str, last: str) -> bool:
    return version_code(first) <= version_code(name) <= version_code(last)


@pytest.mark.parametrize("name, code, min_code", PROTOCOL)
def test_codes_and_oldest_accepted(name, code, min_code):
    row = RELEASE_BY_CODE[code]
    assert (row.name, row.min_code) == (name, min_code)
    assert release_name(code) == name and version_code(name) == code


def test_table_is_every_release_in_order():
    assert [r.name for r in RELEASES] == [p[0] for p in PROTOCOL]
    assert NEWEST == 0x2D00


@pytest.mark.parametrize("name, code, _min", PROTOCOL)
def test_columns_against_the_sources(name, code, _min):
    row, spec = RELEASE_BY_CODE[code], VERSIONS[code]
    # pack_header: msg_index up to 21.08; net_cred from 23.11; tree_depth from 24.11
    assert spec.layout.msg_index == _in(name, "17.11", "21.08")
    assert row.forward_has_net_cred == _in(name, "23.11", "26.05")
    assert row.forward_has_tree_depth == _in(name, "24.11", "26.05")
    assert ("tree_depth" in [sc.name for sc in spec.layout.forward.subcons]) == row.forward_has_tree_depth
    # slurm_pack_slurm_addr up to 20.02, slurm_pack_addr from 20.11
    assert (row.addr is Addr.FAMILY) == _in(name, "20.11", "26.05") == spec.family_addr
    # g_slurm_auth_pack: plugin type string in 17.11 / 18.08, plugin id from 19.05
    assert (row.auth is AuthFraming.BY_TYPE) == _in(name, "17.11", "18.08")
    # slurm_send_node_msg / _compute_hash
    expected = Payload.NONE if _in(name, "17.11", "20.02") else (
        Payload.MSG_TYPE if _in(name, "20.11", "21.08") else Payload.K12)
    assert row.payload is expected
    assert row.checkpoint == spec.has_checkpoint == _in(name, "17.11", "19.05")
    assert row.no_auth_flag == row.reply_without_cred == _in(name, "23.02", "26.05")
    # controller.c _on_msg (24.11 - 25.11) answers; 26.05's conmgr closes before it
    hint = Refusal.RC_HINT if _in(name, "24.11", "25.11") else Refusal.CLOSE
    assert row.version_refusal is hint
    assert (row.auth_refusal is Refusal.RC_SAME_VERSION) == _in(name, "24.11", "26.05")


@pytest.mark.parametrize("code, text", [
    (0x2E00, "newer than 26.05, protocol 0x2e00"),
    (0xFFFF, "newer than 26.05, protocol 0xffff"),
    (0x1F00, "older than 17.11, protocol 0x1f00"),
    (0x0000, "older than 17.11, protocol 0x0000"),
    (0x2A01, "no release, protocol 0x2a01"),
])
def test_unknown_codes_are_named_as_what_they_are(code, text):
    assert release_name(code) == text
    assert not detect.has_checkpoint(code)
    with pytest.raises(ValueError, match=f"0x{code:04x}"):
        version_code(code)


def test_frame_in_unknown_version_is_a_typed_error_naming_it():
    """The code is said once: it read "0x2e00 (newer than 26.05, protocol 0x2e00)"."""
    frame = relabel(_rc_frame(NEWEST, 0), 0x2E00)
    with pytest.raises(UnsupportedVersionError, match=r"^protocol version 0x2e00 \(newer than 26.05\) is not"):
        decode_message(frame)


@pytest.mark.parametrize("code, text", [
    (0x2200, "0x2200 (19.05)"), (0x2D00, "0x2d00 (26.05)"), (0x2E00, "0x2e00 (newer than 26.05)"),
    (0x1F00, "0x1f00 (older than 17.11)"), (0x2A01, "0x2a01 (no release)"),
])
def test_version_text_says_the_code_once(code, text):
    assert version_text(code) == text


# -- the MUNGE payload -----------------------------------------------------------
@pytest.mark.parametrize("code", [0x2400, 0x2500])
def test_2011_2108_payload_is_plugin_none_and_host_order_msg_type(code):
    # slurm_send_node_msg: auth_payload[3] = {1}; memcpy(&msg_type) on a little-endian host
    assert credential_payload(code, PING, b"ignored") == bytes([HASH_PLUGIN_NONE, 0xF0, 0x03])
    assert credential_payload(code, 5009, b"") == bytes([1, 0x91, 0x13])


@pytest.mark.parametrize("code", [r.code for r in RELEASES if r.payload is Payload.NONE])
def test_payload_is_empty_up_to_2002(code):
    assert credential_payload(code, PING, b"") == b""


@pytest.mark.parametrize("code", [r.code for r in RELEASES if r.payload is Payload.K12])
def test_k12_payload_from_2205_to_2605(code):
    body = b"\x00\x00\x00\x05"
    payload = credential_payload(code, RC, body)
    assert payload[0] == HASH_PLUGIN_K12 and len(payload) == 33
    assert payload[1:] == kangarootwelve(body, RC.to_bytes(2, "big"), 32)


def test_payload_of_unknown_version_is_refused():
    with pytest.raises(KeyError):
        credential_payload(0x2E00, PING, b"")


def test_k12_past_its_limit_is_a_typed_library_error():
    with pytest.raises(HashInputTooLarge) as info:
        kangarootwelve(bytes(9000))
    assert isinstance(info.value, PyslurmrpcError) and isinstance(info.value, LocalProtocolError)
    assert "9000" in str(info.value)
    assert len(kangarootwelve(bytes(8000))) == 32  # under the limit still hashes


# -- frames as controllers send them --------------------------------------------
def _rc_frame(version: int, rc: int, *, flags: int = SLURM_NO_AUTH_CRED, auth: Auth | None = None) -> bytes:
    addr = Address(0, None, 0) if VERSIONS[version].family_addr else Address()
    header = Header(version, RC, flags=flags, orig_addr=addr)
    return encode_message(Message(header, auth, ReturnCodeMsg(return_code=rc)))


def _munge(version: int) -> Auth:
    return MungeAuthCred(credential="MUNGE:AAAA:", plugin_version=0)


@pytest.mark.parametrize("name", ["24.11", "25.05", "25.11"])
def test_refusal_of_a_version_is_a_hint(name):
    own = version_code(name)
    frame = _rc_frame(own, detect.AUTH_ERROR)
    # controller.c _on_msg: 0x0040 flags, msg_type 8001, rc 1007, orig_addr family 0, no envelope
    assert frame[4:6] == own.to_bytes(2, "big") and frame[6:8] == b"\x00\x40"
    assert frame[-4:] == (1007).to_bytes(4, "big") and len(frame) == 24
    seen = observe(0x2200, frame)
    assert (seen.outcome, seen.hint) == (Outcome.HINT, own)
    plan = plan_after(seen)
    assert plan.probes == (own,)


def test_refusal_in_the_requests_own_version_is_an_auth_failure():
    seen = observe(0x2B00, _rc_frame(0x2B00, detect.AUTH_ERROR))
    assert seen.outcome is Outcome.AUTH_REFUSED and "credential" in seen.problem
    assert plan_after(seen).probes == ()


@pytest.mark.parametrize("name", ["23.02", "24.05", "26.05"])
def test_refusal_from_a_release_that_closes_is_garbage(name):
    seen = observe(0x2200, _rc_frame(version_code(name), detect.AUTH_ERROR))
    assert seen.outcome is Outcome.GARBAGE and name in seen.problem


def test_refusal_naming_a_version_that_accepts_the_request_is_garbage():
    seen = observe(0x2900, _rc_frame(0x2A00, detect.AUTH_ERROR))  # 24.11 accepts 24.05
    assert seen.outcome is Outcome.GARBAGE and "accepts 0x2900" in seen.problem


@pytest.mark.parametrize("frame, why", [
    (lambda: _rc_frame(0x2A00, 0), "RC 0 in another version"),
    (lambda: _rc_frame(0x2A00, detect.AUTH_ERROR, flags=0, auth=_munge(0x2A00)), "with a credential"),
    (lambda: _rc_frame(0x2A00, 1005), "another return code"),
    (lambda: b"\x00\x00\x00\x02\xff", "truncated"),
    (lambda: b"SSH-2.0-OpenSSH_9.2\r\n", "not Slurm"),   # (HTTP: a refusal, tests/test_detection.py)
    (lambda: relabel(_rc_frame(0x2200, 0, flags=0, auth=_munge(0x2200)), 0x1F00), "older than 17.11"),
])
def test_anything_else_is_garbage_with_a_reason(frame, why):
    seen = observe(0x2200, frame())
    assert seen.outcome is Outcome.GARBAGE and seen.problem, why
    assert plan_after(seen) == detect.Plan((), ())


def test_answer_in_the_requests_version_is_answered():
    seen = observe(0x2600, _rc_frame(0x2600, 0, flags=0, auth=_munge(0x2600)))
    assert seen.outcome is Outcome.ANSWERED and seen.reply.body.return_code == 0


def test_closed_connection():
    assert observe(0x2200, None).outcome is observe(0x2200, b"").outcome is Outcome.CLOSED


def test_hint_from_the_future_is_read_in_the_newest_layout():
    frame = relabel(_rc_frame(NEWEST, detect.AUTH_ERROR), 0x2E00)
    seen = observe(0x2200, frame)
    assert (seen.outcome, seen.hint) == (Outcome.HINT, 0x2E00)
    assert plan_after(seen).probes == (NEWEST,)
    far = observe(0x2200, relabel(_rc_frame(NEWEST, detect.AUTH_ERROR), 0x3400))
    assert plan_after(far).probes == ()  # nothing we speak could reach it
    verdict = decide(far, plan_after(far), {})
    assert verdict.code is None and "0x3400" in verdict.problem and "newer than 26.05" in verdict.problem


# -- detection against every release, simulated as the table says it answers --------
def _controller(code: int):
    """A controller of protocol ``code`` (known or future) answering a ping in ``sent``."""
    row = RELEASE_BY_CODE.get(code)
    low = row.min_code if row else code - 3 * 0x100
    refusal = row.version_refusal if row else Refusal.CLOSE

    def answer(sent: int) -> bytes | None:
        if low <= sent <= code:
            built = detect.wire_version(sent)
            bare = VERSIONS[built].release.reply_without_cred  # 23.02+ replies carry no credential
            frame = _rc_frame(built, 0, flags=SLURM_NO_AUTH_CRED if bare else 0,
                              auth=None if bare else _munge(built))
            return relabel(frame, sent)
        if refusal is Refusal.RC_HINT:
            return _rc_frame(code, detect.AUTH_ERROR)
        return None
    return answer


def _detect(controller, first: int):
    seen = observe(first, controller(first))
    plan = plan_after(seen)
    probes = {v: observe(v, controller(v)) for v in plan.probes}
    return seen, plan, decide(seen, plan, probes)


@pytest.mark.parametrize("first", sorted(RELEASE_BY_CODE) + [FUTURE_PROBE])
@pytest.mark.parametrize("code", sorted(RELEASE_BY_CODE))
def test_detection_names_every_release_exactly_in_one_extra_round(code, first):
    seen, plan, verdict = _detect(_controller(code), first)
    assert verdict.code == code and verdict.exact, (release_name(first), verdict)
    assert verdict.name == RELEASE_BY_CODE[code].name
    assert RELEASE_BY_CODE[code].accepts(verdict.speak)  # an authenticated answer came in it
    assert verdict.has_checkpoint == RELEASE_BY_CODE[code].checkpoint
    assert len(plan.probes) <= 8


@pytest.mark.parametrize("name", ["24.11", "25.05", "25.11"])
def test_hinting_releases_cost_one_request_beyond_the_refusal(name):
    code = version_code(name)
    seen, plan, verdict = _detect(_controller(code), 0x2200)
    assert seen.outcome is Outcome.HINT and plan.probes == (code,)
    assert (verdict.code, verdict.speak) == (code, code)


@pytest.mark.parametrize("code", [0x2E00, 0x2F00, 0x3000])
@pytest.mark.parametrize("first", [0x2200, 0x2600, NEWEST])
def test_controller_from_the_future_is_never_named_as_a_release(code, first):
    _, _, verdict = _detect(_controller(code), first)
    assert verdict.code is None or verdict.code > NEWEST
    assert not verdict.exact and not verdict.has_checkpoint
    if verdict.code is not None:
        assert verdict.name.startswith("newer than 26.05")


def test_hint_that_is_not_confirmed_gives_no_verdict():
    def liar(sent):  # hints 24.11 but never answers
        return _rc_frame(0x2A00, detect.AUTH_ERROR)
    _, plan, verdict = _detect(liar, 0x2200)
    assert plan.probes == (0x2A00,)
    assert verdict.code is None and "no protocol version" in verdict.problem and "24.11" in verdict.problem


def test_answers_that_fit_no_release_give_no_verdict():
    def odd(sent):  # answers 17.11 and 26.05 headers only
        return relabel(_rc_frame(0x2D00, 0), sent) if sent in (0x2D00, 0x2E00) else (
            _rc_frame(0x2000, 0, flags=0, auth=_munge(0x2000)) if sent == 0x2000 else None)
    _, _, verdict = _detect(odd, 0x2600)
    assert verdict.code is None and "fit" in verdict.problem


def test_dead_controller_gives_no_verdict():
    _, _, verdict = _detect(lambda sent: None, NEWEST)
    assert verdict.code is None and "closed without an answer" in verdict.problem


# -- against Debian's slurmctld 22.05 (real daemon, block_null_hash on) --------------
@pytest.fixture(scope="module")
def strict_2205(munged):
    from pyslurmrpc.testing.slurmctld import SlurmctldHarness
    with SlurmctldHarness(munged.socket_path, extra_conf="CommunicationParameters=block_null_hash\n") as ctld:
        yield ctld


def _real(ctld, frame: bytes) -> bytes | None:
    from pyslurmrpc.testing.netio import exchange
    ex = exchange(ctld.host, ctld.port, frame)
    return ex.frames[0] if ex.frames else None


@pytest.mark.parametrize("name", ["20.11", "21.08", "22.05"])
def test_real_2205_takes_our_payload_and_refuses_none(strict_2205, munged, name):
    from pyslurmrpc.auth.slurm_auth import MungeAuth
    from pyslurmrpc.testing.netio import ping_frame
    code, auth = version_code(name), MungeAuth(munged.socket_path)
    seen = observe(code, _real(strict_2205, ping_frame(auth, name)))  # payload as that release sends it
    assert seen.outcome is Outcome.ANSWERED and seen.reply.body.return_code == 0
    bare = observe(code, _real(strict_2205, ping_frame(auth.create(code), name)))  # empty payload
    assert bare.outcome is Outcome.CLOSED


def test_real_2205_detected_in_one_extra_round(strict_2205, munged):
    from pyslurmrpc.auth.slurm_auth import MungeAuth
    from pyslurmrpc.testing.netio import ping_frame
    auth = MungeAuth(munged.socket_path)

    def ask(sent: int) -> bytes | None:
        frame = ping_frame(auth, release_name(detect.wire_version(sent)))
        return _real(strict_2205, relabel(frame, sent))
    seen, plan, verdict = _detect(ask, NEWEST)
    assert seen.outcome is Outcome.CLOSED  # 22.05 closes on 26.05
    assert (verdict.code, verdict.name, verdict.exact) == (0x2600, "22.05", True)
    assert RELEASE_BY_CODE[0x2600].accepts(verdict.speak)


def test_real_2205_with_the_wrong_auth_says_what_to_check(strict_2205):
    """auth/none to a munge controller: every version closes unanswered, so the error points at
    the authentication as well as at the versions (it named only the versions)."""
    from pyslurmrpc import Client
    from pyslurmrpc.errors import NoVersionAnsweredError
    with pytest.raises(NoVersionAnsweredError) as info:
        Client(strict_2205.host, strict_2205.port, auth="none", timeout=5).ping()
    assert "closed without an answer" in str(info.value) and "AuthType, --auth, the munge key" in str(info.value)


def test_first_version_prefers_the_cache_then_the_pinned_version():
    assert detect.first_version() == NEWEST
    assert detect.first_version(None, 0x2200) == 0x2200
    assert detect.first_version(0x2600, 0x2200) == 0x2600


@pytest.mark.parametrize("name, word", [("17.11", 0x110B0D), ("18.08", 0x120809)])
def test_auth_word_is_what_the_recorded_old_clients_write(name, word):
    """The uint32 after "auth/munge" in requests libslurm 17.11.13 / 18.08.9 sent (fixtures)."""
    from pathlib import Path
    import glob
    row = RELEASE_BY_CODE[version_code(name)]
    assert row.auth is AuthFraming.BY_TYPE and row.auth_word == word
    micro = {"17.11": "17.11.13", "18.08": "18.08.9"}[name]
    here = Path(__file__).resolve().parent.parent
    found = sorted(glob.glob(str(here / f"fixtures/slurm-{micro}-client/*.request.bin")))
    assert found, f"no recorded {micro} requests"
    frame = Path(found[0]).read_bytes()
    at = frame.index(b"auth/munge") + len(b"auth/munge") + 1
    assert int.from_bytes(frame[at:at + 4], "big") == word
    assert all(r.auth_word == 0 for r in RELEASES if r.auth is AuthFraming.BY_ID)


def test_credential_refused_after_a_hint_is_reported_as_such():
    def wrong_key(sent):  # a 25.05 controller that cannot verify our credential
        return _rc_frame(0x2B00 if sent != 0x2B00 else sent, detect.AUTH_ERROR)
    seen, plan, verdict = _detect(wrong_key, 0x2200)
    assert seen.outcome is Outcome.HINT and plan.probes == (0x2B00,)
    assert verdict.code is None and verdict.auth_refused and "credential" in verdict.problem
    _, _, dead = _detect(lambda sent: None, 0x2200)
    assert not dead.auth_refused
