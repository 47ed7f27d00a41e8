"""Replies decoded by their credential alone when the rest repeats (wire.repeats.decode_reply_frame,
repeat_decoder): for recorded and built frames, any other credential and any mutation, the same
Message or the same error as decode_message."""

import random
from pathlib import Path

import pytest

from pyslurmrpc.errors import ProtocolError
from pyslurmrpc.wire import MungeAuthCred, decode_message, encode_message
from pyslurmrpc.wire import codec, repeats
from pyslurmrpc.wire.repeats import decode_reply_frame, repeat_decoder
from pyslurmrpc.wire.primitives import pack_string
from test_fuzz import _built_frames

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _munge_frames() -> list[bytes]:
    frames = [p.read_bytes() for p in sorted(FIXTURES.glob("*.bin"))] + _built_frames()
    kept = []
    for frame in frames:
        try:
            message = decode_message(frame)
        except ProtocolError:
            continue
        if type(message.auth) is MungeAuthCred and message.auth.credential:
            kept.append(frame)
    return kept


FRAMES = _munge_frames()
OTHER_CREDENTIALS = ["M", "MUNGE:" + "Q" * 140 + ":", "MUNGE:\udcff\x7f:"]


def with_credential(frame: bytes, credential: str) -> bytes:
    message = decode_message(frame)
    return encode_message(type(message)(message.header, MungeAuthCred(
        credential=credential, plugin_version=message.auth.plugin_version), message.body))


def outcome(decode, frame: bytes):
    try:
        return decode(frame)
    except ProtocolError as exc:
        return (type(exc), str(exc), exc.field, exc.offset)


@pytest.fixture(autouse=True)
def fresh_cache():
    repeats._REPEATED.clear()
    yield
    repeats._REPEATED.clear()


def test_there_are_recorded_and_built_seeds():
    assert len(FRAMES) > 100
    assert sum(1 for p in FIXTURES.glob("*.response.bin")) >= 20


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f"{len(f)}b-{f[4:6].hex()}-{f.hex()[-8:]}")
def test_another_credential_is_read_alone_and_decodes_the_same(frame):
    known = repeat_decoder(decode_message(frame), frame)
    assert known is not None
    for credential in OTHER_CREDENTIALS:
        other = with_credential(frame, credential)
        assert known.decode(other) == decode_message(other)
        assert known.decode(other).auth.credential == credential
    assert known.decode(frame) == decode_message(frame)


def test_repeats_are_decoded_without_the_decoder(monkeypatch):
    frame = FRAMES[0]
    assert decode_reply_frame(frame) == decode_message(frame)
    monkeypatch.setattr(repeats, "decode_message", lambda f: pytest.fail("decoded whole"))
    for credential in OTHER_CREDENTIALS:
        assert decode_reply_frame(with_credential(frame, credential)).auth.credential == credential


@pytest.mark.parametrize("seed", range(0, len(FRAMES), 7))
def test_every_mutation_gives_what_the_decoder_gives(seed):
    frame = FRAMES[seed]
    known = repeat_decoder(decode_message(frame), frame)
    rng = random.Random(seed)
    for at in range(len(frame)):
        for value in (frame[at] ^ 0xFF, frame[at] ^ 0x01, 0, rng.randrange(256)):
            mutated = frame[:at] + bytes([value]) + frame[at + 1:]
            expected = outcome(decode_message, mutated)
            got = known.decode(mutated)
            if got is not None:
                assert got == expected
            repeats._REPEATED[:] = [known]
            assert outcome(decode_reply_frame, mutated) == expected


@pytest.mark.parametrize("seed", range(0, len(FRAMES), 11))
def test_cut_grown_and_resized_frames_give_what_the_decoder_gives(seed):
    frame = FRAMES[seed]
    credential = decode_message(frame).auth.credential
    packed = pack_string(credential)
    at = frame.index(packed)
    size_at = at
    variants = [frame[:n] for n in range(len(frame))] + [frame + b"\0", frame + frame[-3:]]
    for size in (0, 1, len(packed) - 5, len(packed) - 3, len(packed), 0xFFFFFFFF):   # the credential's size field
        variants.append(frame[:size_at] + size.to_bytes(4, "big") + frame[size_at + 4:])
    nul = frame[:at + 6] + b"\0" + frame[at + 7:]                                    # a NUL inside it
    variants += [nul, frame[:at + len(packed) - 1] + b"x" + frame[at + len(packed):]]  # no NUL at its end
    for extra in (1, 7):                                                             # prefix rewritten to match
        longer = frame[4:at] + pack_string(credential + "A" * extra)[:-1] + frame[at + len(packed):]
        variants.append((len(longer)).to_bytes(4, "big") + longer)
    for variant in variants:
        repeats._REPEATED[:] = [repeat_decoder(decode_message(frame), frame)]
        assert outcome(decode_reply_frame, variant) == outcome(decode_message, variant)


def test_no_split_without_a_single_credential():
    frame = FRAMES[0]
    message = decode_message(frame)
    none = type(message)(message.header, MungeAuthCred(credential=None), message.body)   # an empty one
    assert repeat_decoder(none, encode_message(none)) is None
    # the credential's bytes found twice (here: a copy appended to the body's place): no split
    doubled = frame + pack_string(message.auth.credential)
    assert repeat_decoder(message, doubled) is None


def test_the_kept_replies_are_bounded(monkeypatch):
    monkeypatch.setattr(repeats, "MAX_REPEATED_REPLIES", 4)
    for frame in FRAMES[:20]:
        assert decode_reply_frame(frame) == decode_message(frame)
        assert len(repeats._REPEATED) <= 4
    assert decode_reply_frame(FRAMES[19]) == decode_message(FRAMES[19])


def test_a_repeat_past_the_largest_message_is_refused_as_the_decoder_refuses_it(monkeypatch):
    frame = FRAMES[0]
    repeats._REPEATED[:] = [repeat_decoder(decode_message(frame), frame)]
    longer = with_credential(frame, decode_message(frame).auth.credential + "AAAA")
    monkeypatch.setattr(codec, "MAX_MSG_SIZE", len(longer) - 5)
    monkeypatch.setattr(repeats, "MAX_MSG_SIZE", len(longer) - 5)
    expected = outcome(decode_message, longer)
    assert expected[0].__name__ == "FrameTooLargeError"
    assert outcome(decode_reply_frame, longer) == expected


def test_threads_sharing_the_kept_replies_stay_within_the_bound(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor
    monkeypatch.setattr(repeats, "MAX_REPEATED_REPLIES", 4)
    frames = FRAMES[:24] * 20

    def check(frame):
        assert decode_reply_frame(frame) == decode_message(frame)
        assert len(repeats._REPEATED) <= 4 + 8    # at most one append per thread in flight
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(check, frames))
    assert len(repeats._REPEATED) <= 4



def _no_credential_frames() -> list[bytes]:
    """23.02+ replies: SLURM_NO_AUTH_CRED and no envelope at all, in every release that has them."""
    from pyslurmrpc.wire import VERSIONS, Address, Header, Message, MsgType, ReturnCodeMsg
    from pyslurmrpc.wire.constants import SLURM_NO_AUTH_CRED
    return [encode_message(Message(Header(version=v, msg_type=MsgType.RESPONSE_SLURM_RC, flags=SLURM_NO_AUTH_CRED,
                                          orig_addr=Address(0, None, 0)), None, ReturnCodeMsg(return_code=rc)))
            for v in sorted(VERSIONS) if VERSIONS[v].layout.no_auth_flag for rc in (0, 2017)]


NO_CREDENTIAL = _no_credential_frames()


def test_a_reply_without_a_credential_repeats_whole(monkeypatch):
    assert len(NO_CREDENTIAL) >= 14
    for frame in NO_CREDENTIAL:
        assert decode_reply_frame(frame) == decode_message(frame) and decode_message(frame).auth is None
    monkeypatch.setattr(repeats, "decode_message", lambda f: pytest.fail("decoded whole"))
    for frame in NO_CREDENTIAL[-8:]:
        assert decode_reply_frame(frame).auth is None


@pytest.mark.parametrize("frame", NO_CREDENTIAL, ids=lambda f: f"{f[4:6].hex()}-{f.hex()[-8:]}")
def test_every_change_to_a_reply_without_a_credential_gives_what_the_decoder_gives(frame):
    known = repeat_decoder(decode_message(frame), frame)
    for at in range(len(frame)):
        for value in (frame[at] ^ 0xFF, frame[at] ^ 0x01, 0):
            mutated = frame[:at] + bytes([value]) + frame[at + 1:]
            repeats._REPEATED[:] = [known]
            assert outcome(decode_reply_frame, mutated) == outcome(decode_message, mutated)
    for variant in [frame[:n] for n in range(len(frame))] + [frame + b"\0"]:
        repeats._REPEATED[:] = [known]
        assert outcome(decode_reply_frame, variant) == outcome(decode_message, variant)


def test_a_reply_past_the_size_kept_is_not_kept(monkeypatch):
    frame = FRAMES[0]
    monkeypatch.setattr(repeats, "MAX_REPEATED_REPLY_BYTES", len(frame) - 1)
    assert decode_reply_frame(frame) == decode_message(frame)
    assert repeats._REPEATED == []
    monkeypatch.setattr(repeats, "MAX_REPEATED_REPLY_BYTES", len(frame))
    assert decode_reply_frame(frame) == decode_message(frame)
    assert len(repeats._REPEATED) == 1


def test_what_is_kept_shows_no_credential():
    frame = FRAMES[0]
    message = decode_message(frame)
    secret = message.auth.credential
    kept = repeat_decoder(message, frame)
    from pyslurmrpc.wire.repeats import CredentialTemplate
    template = CredentialTemplate(message)
    for obj in (kept, template):
        assert secret[6:40] not in repr(obj) and secret[6:40] not in str(obj)
    assert secret.encode() not in template.fill("MUNGE:other:")
