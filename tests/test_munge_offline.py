"""decode_offline / encode_offline and the sans-I/O codec, no munged needed."""

import dataclasses
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from pyslurmrpc.auth import errors as E, munge
from pyslurmrpc.auth.munge import MungeClient, decode_offline, encode_offline
from pyslurmrpc.auth.munge_constants import (
    MSG_HDR_SIZE, TTL_DEFAULT, UID_ANY, Cipher, Mac, MsgType, MungeErr, Zip, strerror,
)
from pyslurmrpc.auth.munge_cred import MungeKey, ReplayCache
from pyslurmrpc.auth.munge_proto import (
    Credential, decode_request_body, encode_request_body, pack_decode_response, pack_encode_response, pack_header,
    parse_decode_request, parse_decode_response, parse_encode_request, parse_encode_response, unpack_header,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KEY = FIXTURES / "munge.key"
CRED_RE = re.compile(rb"MUNGE:[A-Za-z0-9+/=]+:")


def _manifest():
    return [json.loads(line) for line in (FIXTURES / "manifest.jsonl").read_text().splitlines() if line.strip()]


def _cred_in(path):
    return CRED_RE.search(path.read_bytes()).group().decode()


@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: e["name"])
def test_fixture_credentials(entry):
    req = decode_offline(_cred_in(FIXTURES / f"{entry['name']}.request.bin"), KEY, ignore_expiry=True)
    rsp = decode_offline(_cred_in(FIXTURES / f"{entry['name']}.response.bin"), KEY, ignore_expiry=True)
    assert req.uid == entry.get("caller_uid", 0)     # ping was run as root
    assert req.gid == req.uid or req.uid == 0
    assert rsp.uid == 0
    for cred in (req, rsp):
        assert (cred.cipher, cred.mac, cred.zip, cred.ttl) == (Cipher.AES128, Mac.SHA256, Zip.NONE, 300)
        assert cred.payload == b"" and cred.uid_restriction is None and cred.addr == "127.0.0.1"


def test_fixture_expired_without_override():
    text = _cred_in(FIXTURES / "ping.request.bin")
    with pytest.raises(E.MungeCredentialExpiredError) as info:
        decode_offline(text, KEY)
    assert info.value.code == 15 and info.value.credential.uid == 0
    cred = info.value.credential
    assert decode_offline(text, KEY, now=cred.encode_time + 10).uid == 0
    with pytest.raises(E.MungeCredentialRewoundError):
        decode_offline(text, KEY, now=cred.encode_time - 301)
    with pytest.raises(E.MungeCredentialRewoundError):
        decode_offline(text, KEY, now=cred.encode_time - 2, clock_skew=False)


def test_wrong_key():
    with pytest.raises(E.MungeCredentialInvalidError) as info:
        decode_offline(_cred_in(FIXTURES / "ping.request.bin"), b"k" * 64, ignore_expiry=True)
    assert info.value.code == MungeErr.CRED_INVALID and info.value.text == "Invalid credential"


def test_tampered_and_malformed():
    text = _cred_in(FIXTURES / "ping.request.bin")
    flipped = text[:40] + ("A" if text[40] != "A" else "B") + text[41:]
    with pytest.raises(E.MungeCredentialInvalidError):
        decode_offline(flipped, KEY, ignore_expiry=True)
    cases = {"garbage": E.MungeCredentialFormatError, "MUNGE:abc": E.MungeCredentialFormatError,
             "MUNGE:!!:": E.MungeCredentialFormatError, "": E.MungeBadArgumentError}
    for bad, cls in cases.items():
        with pytest.raises(cls):
            decode_offline(bad, KEY)


def test_bad_version_and_types():
    import base64
    def forge(head):
        return "MUNGE:" + base64.b64encode(head + b"\0" * 64).decode() + ":"
    expected = {bytes([2, 4, 5, 0, 0]): E.MungeBadVersionError, bytes([3, 9, 5, 0, 0]): E.MungeBadCipherError,
                bytes([3, 4, 9, 0, 0]): E.MungeBadMacError, bytes([3, 4, 5, 7, 0]): E.MungeBadZipError,
                bytes([3, 5, 2, 0, 0]): E.MungeBadMacError}
    for head, cls in expected.items():
        with pytest.raises(cls) as info:
            decode_offline(forge(head), KEY)
        assert info.value.code == cls.default_code


def test_replay_cache():
    cache = ReplayCache()
    text = encode_offline(KEY, uid=1, gid=2)
    decode_offline(text, KEY, replay_cache=cache)
    with pytest.raises(E.MungeCredentialReplayedError):
        decode_offline(text, KEY, replay_cache=cache)


def test_key_is_hidden_and_short_key_refused():
    assert "k" not in repr(MungeKey(b"k" * 32)).replace("Key", "")
    with pytest.raises(E.MungeBadArgumentError):
        MungeKey(b"short")


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(max_size=600), cipher=st.sampled_from([0, 2, 3, 4, 5]),
       mac=st.sampled_from([3, 5, 6]), zip_=st.sampled_from([0, 2, 3]),
       uid=st.integers(0, 2**32 - 2), realm=st.one_of(st.none(), st.text("abc", min_size=1, max_size=20)))
def test_offline_round_trip(payload, cipher, mac, zip_, uid, realm):
    if cipher == Cipher.AES256 and mac == Mac.SHA1:
        return
    text = encode_offline(KEY, uid=uid, gid=7, payload=payload, cipher=cipher, mac=mac, zip=zip_,
                          realm=realm, uid_restriction=uid)
    cred = decode_offline(text, KEY)
    assert (cred.uid, cred.gid, cred.payload, cred.realm, cred.uid_restriction) == (uid, 7, payload, realm, uid)


def test_error_table_complete():
    for code in MungeErr:
        if code:
            err = E.munge_error(code)
            assert err.code == code and err.text == strerror(code)
            assert isinstance(err, E.MungeError)
    assert strerror(99) == "Unknown error"


def test_proto_round_trips():
    body = encode_request_body(b"pay", ttl=5, uid=1, gid=2, realm="r")
    req = parse_encode_request(body)
    assert (req.payload, req.ttl, req.uid_restriction, req.gid_restriction, req.realm) == (b"pay", 5, 1, 2, "r")
    assert parse_decode_request(decode_request_body("MUNGE:x:")) == "MUNGE:x:"
    hdr = pack_header(MsgType.DEC_REQ, 10, retry=2)
    assert unpack_header(hdr) == (MsgType.DEC_REQ, 2, 10)
    with pytest.raises(E.MungeSocketError):
        unpack_header(b"\0" * 11)
    cred = Credential(uid=1, gid=2, payload=b"d", encode_time=10, ttl=3, addr="10.1.2.3", decode_time=11,
                      cipher=Cipher.AES128, mac=Mac.SHA256, zip=Zip.NONE, realm="x", uid_restriction=9)
    assert parse_decode_response(pack_decode_response(cred)) == cred
    with pytest.raises(E.MungeCredentialExpiredError) as info:
        parse_decode_response(pack_decode_response(cred, E.munge_error(15)))
    assert info.value.credential == cred


def test_decode_response_short_or_long_is_a_socket_error_at_every_length():
    """The DEC_RSP reader works by offsets: every cut of a body, the error text and realm
    included, is "truncated" and one byte too many "trailing bytes"; never IndexError.  So is
    munged's usual answer (no error text, no realm), which is read in one unpack."""
    cred = Credential(uid=1, gid=2, payload=b"data", encode_time=10, ttl=3, addr="10.1.2.3", decode_time=11,
                      cipher=Cipher.AES128, mac=Mac.SHA256, zip=Zip.NONE, realm="realm")
    usual = dataclasses.replace(cred, realm=None, gid_restriction=7)
    assert parse_decode_response(pack_decode_response(usual)) == usual
    for body in (pack_decode_response(cred), pack_decode_response(cred, E.munge_error(16, "Replayed")),
                 pack_decode_response(usual)):
        for cut in range(len(body)):
            with pytest.raises(E.MungeSocketError, match="DEC_RSP: truncated"):
                parse_decode_response(body[:cut])
        with pytest.raises(E.MungeSocketError, match="DEC_RSP: trailing bytes"):
            parse_decode_response(body + b"\0")
    addressless = pack_decode_response(cred).replace(b"\x04\x0a\x01\x02\x03", b"\x00", 1)
    assert parse_decode_response(addressless).addr == "0.0.0.0"
    # as long as munged's usual answer (its payload as long as an address), but not laid out as one
    zeros = dataclasses.replace(usual, payload=b"\0" * 4)
    assert parse_decode_response(pack_decode_response(zeros).replace(b"\x04\x0a\x01\x02\x03", b"\x00", 1)) \
        == dataclasses.replace(zeros, addr="0.0.0.0")
    # a realm moves every field: read where they are, even when the usual layout would fit the length
    realm = dataclasses.replace(cred, payload=b"", ttl=0x04000000, gid_restriction=4, realm="abc")
    assert parse_decode_response(pack_decode_response(realm)) == realm
    # so does an error text (with success: munged sends none, but it is read where it is)
    texted = dataclasses.replace(cred, payload=b"p" * 253, ttl=0x00040000, gid_restriction=1, realm=None,
                                 cipher=Cipher.NONE)
    assert parse_decode_response(b"\0\3ab\0" + pack_decode_response(texted)[2:]) == texted
    # an error code with no text still raises, the credential kept where munged keeps it
    with pytest.raises(E.MungeCredentialExpiredError) as info:
        parse_decode_response(bytes([MungeErr.CRED_EXPIRED]) + pack_decode_response(usual)[1:])
    assert info.value.credential == usual
    with pytest.raises(E.MungeError, match="Invalid credential") as info:
        parse_decode_response(pack_decode_response(cred, E.munge_error(MungeErr.CRED_INVALID, "Invalid credential")))
    assert getattr(info.value, "credential", None) is None       # munged keeps none for this error


def test_encode_response_short_or_long_is_a_socket_error_at_every_length():
    """ENC_RSP is read by offsets too: every cut is "truncated", one byte more "trailing bytes"."""
    for body in (pack_encode_response("MUNGE:" + "Q" * 100 + ":"),
                 pack_encode_response(None, E.munge_error(MungeErr.SOCKET, "Failed to open"))):
        for cut in range(len(body)):
            with pytest.raises(E.MungeSocketError, match="ENC_RSP: truncated"):
                parse_encode_response(body[:cut])
        with pytest.raises(E.MungeSocketError, match="ENC_RSP: trailing bytes"):
            parse_encode_response(body + b"\0")
    assert parse_encode_response(pack_encode_response("MUNGE:ok:")) == "MUNGE:ok:"
    with pytest.raises(E.MungeError, match="Failed to open"):
        parse_encode_response(pack_encode_response(None, E.munge_error(MungeErr.SOCKET, "Failed to open")))
    with pytest.raises(E.MungeError, match="invalid data length 0"):
        parse_encode_response(pack_encode_response(""))


def test_a_key_file_that_cannot_be_read_is_a_munge_error_naming_it(tmp_path):
    """decode_offline raised a bare FileNotFoundError; its errors are MungeErrors, as munged's."""
    from pyslurmrpc.auth.errors import MungeError

    missing = tmp_path / "absent.key"
    with pytest.raises(MungeError, match=f'Failed to open keyfile "{missing}": No such file or directory') as info:
        decode_offline("MUNGE:AAAA:", missing)
    assert info.value.os_errno == 2


def test_a_clients_usual_requests_are_built_once_and_stay_each_its_own():
    """encode()'s usual request (a short bytes payload and a TTL, nothing else) is kept per
    (payload, TTL): the same arguments give the same bytes, any other argument its own."""
    client = MungeClient("/nonexistent/munge.socket")

    def request(*args, **kwargs):
        action = next(client.encode_flow(*args, **kwargs))
        return parse_encode_request(action.data[MSG_HDR_SIZE:])
    assert request(b"a").ttl == TTL_DEFAULT and request(b"a", 60).ttl == 60 and request(b"a").ttl == TTL_DEFAULT
    assert request(b"b", 60).payload == b"b" and request(b"a", 60).payload == b"a"
    assert request(b"a", 60, uid=5).uid_restriction == 5 and request(b"a", 60).uid_restriction == UID_ANY
    assert request(b"a", realm="r").realm == "r" and request(b"a").realm is None
    grows = bytearray(b"x")
    assert request(grows).payload == b"x"
    grows += b"y"
    assert request(grows).payload == b"xy"              # a mutable payload is read each time
    assert request(b"a", 1).ttl == 1
    with pytest.raises(TypeError):
        request(b"a", 1.0)             # a TTL munged cannot take is refused, even equal to one kept
    for n in range(100):                                 # bounded: the first ones kept, the rest built
        assert request(n.to_bytes(2, "big")).payload == n.to_bytes(2, "big")
    assert len(client._usual_bodies) == munge._USUAL_BODIES_KEPT
