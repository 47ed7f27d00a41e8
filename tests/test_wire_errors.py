"""Bad input gets a ProtocolError subclass naming the field and offset."""

from __future__ import annotations

import dataclasses

import pytest

from pyslurmrpc.errors import (
    FailureReason, FrameTooLargeError, InvalidFieldError, LocalProtocolError, ProtocolError,
    RemoteProtocolError, TrailingBytesError, TruncatedError, UnknownMessageTypeError,
    UnsupportedVersionError,
)
from pyslurmrpc.wire import (
    Framer, MsgType, NoneAuthCred, PingMsg, RetDataInfo, ReturnCodeMsg, decode_message, encode_message,
)
from pyslurmrpc.wire.codec import encode_body
from pyslurmrpc.wire.constants import MAX_MSG_SIZE

from fixtures_data import recording

REQ = recording("create_imagedir", "request")  # REQUEST_CHECKPOINT with image_dir
PING = recording("ping", "request")
BODY = len(REQ) - 30  # the body is the last 30 bytes: 2+2+4+4 + (4 + 14)


def _prefixed(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def _raises(frame, cls, field, offset):
    with pytest.raises(cls) as info:
        decode_message(frame)
    assert isinstance(info.value, RemoteProtocolError)  # the peer's fault, never ours
    assert not isinstance(info.value, LocalProtocolError)
    assert info.value.reason is cls.default_reason
    assert info.value.field == field
    assert info.value.offset == offset
    assert field in str(info.value) and f"offset {offset}" in str(info.value)
    return info.value


def test_body_layout_assumption():
    assert decode_message(REQ).body.image_dir == "/opt/s19/ckpt"
    assert REQ[BODY + 12:BODY + 16] == (14).to_bytes(4, "big")


@pytest.mark.parametrize("cut", [1, 5, 13, 17, len(REQ) - 1])
def test_truncated_frame_is_refused_by_prefix(cut):
    _raises(REQ[:-cut], TruncatedError, "length", 0)


def test_truncated_inside_a_field_names_it():
    # shorten the whole frame consistently: prefix and body_length agree, string does not
    payload = REQ[4:-5]
    frame = _prefixed(payload)
    _raises(frame, TruncatedError, "body.image_dir", BODY + 12)


def test_too_short_for_a_prefix():
    _raises(b"\x00\x00", TruncatedError, "length", 0)


def test_length_prefix_over_slurm_maximum():
    frame = (MAX_MSG_SIZE + 1).to_bytes(4, "big") + REQ[4:]
    _raises(frame, FrameTooLargeError, "length", 0)


def test_framer_refuses_huge_prefix_before_buffering():
    framer = Framer()
    with pytest.raises(FrameTooLargeError):
        framer.feed(b"\xff\xff\xff\xff")


def test_string_length_past_end_of_buffer():
    frame = bytearray(REQ)
    frame[BODY + 12:BODY + 16] = (0x7FFFFFF0).to_bytes(4, "big")
    err = _raises(bytes(frame), FrameTooLargeError, "body.image_dir", BODY + 12)
    assert "limit" in err.detail or "past the end" in err.detail


def test_string_length_just_past_end():
    frame = bytearray(REQ)
    frame[BODY + 12:BODY + 16] = (15).to_bytes(4, "big")
    _raises(bytes(frame), TruncatedError, "body.image_dir", BODY + 12)


def test_string_without_nul():
    frame = bytearray(REQ)
    frame[-1] = ord("x")
    _raises(bytes(frame), InvalidFieldError, "body.image_dir", BODY + 12)


def test_credential_length_past_end():
    frame = bytearray(PING)
    frame[30:34] = (5000).to_bytes(4, "big")
    _raises(bytes(frame), TruncatedError, "auth.cred.credential", 30)


def test_unknown_message_type():
    frame = bytearray(REQ)
    frame[10:12] = (4242).to_bytes(2, "big")
    err = _raises(bytes(frame), UnknownMessageTypeError, "header.msg_type", 10)
    assert "4242" in str(err)


def test_unknown_auth_plugin():
    frame = bytearray(PING)
    frame[26:30] = (177).to_bytes(4, "big")
    err = _raises(bytes(frame), UnknownMessageTypeError, "auth.cred", 30)
    assert "auth plugin id 177" in str(err)


def test_checkpoint_message_in_modern_version_is_unknown():
    frame = bytearray(REQ)
    frame[4:6] = (0x2400).to_bytes(2, "big")
    with pytest.raises(ProtocolError):
        decode_message(bytes(frame))


@pytest.mark.parametrize("version", [0x0000, 0x1F00, 0x2E00, 0xFFFF])
def test_unsupported_protocol_version(version):
    frame = bytearray(PING)
    frame[4:6] = version.to_bytes(2, "big")
    err = _raises(bytes(frame), UnsupportedVersionError, "header.version", 4)
    assert f"0x{version:04x}" in str(err)


def test_trailing_bytes_after_frame():
    _raises(REQ + b"\x00", TrailingBytesError, "length", len(REQ))


def test_trailing_bytes_after_body():
    frame = _prefixed(REQ[4:] + b"\x00\x00")
    _raises(frame, TrailingBytesError, "body", len(REQ))


def test_body_length_disagrees():
    frame = bytearray(REQ)
    frame[15] += 1
    _raises(bytes(frame), InvalidFieldError, "header.body_length", 12)


def test_encode_rejects_bad_values():
    """What we were asked to build is our fault: LocalProtocolError, not a Remote one."""
    message = decode_message(REQ)
    bad = type(message)(message.header, message.auth, dataclasses.replace(message.body, job_id=2**32))
    with pytest.raises(LocalProtocolError) as info:
        encode_message(bad)
    assert info.value.field.startswith("body")
    assert info.value.reason is FailureReason.INVALID_FIELD
    assert not isinstance(info.value, RemoteProtocolError)
    nul = type(message)(message.header, message.auth, dataclasses.replace(message.body, image_dir="a\0b"))
    with pytest.raises(LocalProtocolError) as info:
        encode_message(nul)
    assert info.value.reason is FailureReason.INVALID_FIELD


@pytest.mark.parametrize("value, said", [(5, "not int"), (1.5, "not float"), (["x"], "not list")])
def test_encode_names_a_string_field_of_the_wrong_type(value, said):
    """bytes(5) would be five NULs: the type is named, not a NUL that the caller never wrote."""
    message = decode_message(REQ)
    bad = type(message)(message.header, message.auth, dataclasses.replace(message.body, image_dir=value))
    with pytest.raises(LocalProtocolError, match="a Slurm string must be str, bytes or None, " + said) as info:
        encode_message(bad)
    assert info.value.field == "body.image_dir"


def test_encode_blames_us_for_version_and_type():
    message = decode_message(REQ)
    header = message.header
    old = dataclasses.replace(header, version=0x1F00)
    with pytest.raises(LocalProtocolError) as info:
        encode_message(type(message)(old, message.auth, message.body))
    assert (info.value.reason, info.value.field) == (FailureReason.UNSUPPORTED_VERSION, "header.version")
    odd = dataclasses.replace(header, msg_type=4242)
    with pytest.raises(LocalProtocolError) as info:
        encode_message(type(message)(odd, message.auth, message.body))
    assert (info.value.reason, info.value.field) == (FailureReason.UNKNOWN_MESSAGE_TYPE, "header.msg_type")


def test_every_reason_has_one_class_and_both_sides_share_the_base():
    remote = [TruncatedError, FrameTooLargeError, UnknownMessageTypeError, UnsupportedVersionError,
              TrailingBytesError, InvalidFieldError]
    assert all(issubclass(cls, RemoteProtocolError) for cls in remote)
    assert issubclass(LocalProtocolError, ProtocolError) and issubclass(RemoteProtocolError, ProtocolError)
    assert len({cls.default_reason for cls in remote}) == len(remote)
    err = LocalProtocolError("x", field="body.job_id", reason=FailureReason.INVALID_FIELD)
    assert str(err) == "x (field body.job_id)" and err.detail == "x"


def test_encode_takes_only_the_body_tables_dataclass():
    """A body of another type (or a plain mapping) is refused by name, not packed by field names."""
    message = decode_message(REQ)  # REQUEST_CHECKPOINT
    for wrong in (PingMsg(), vars(message.body), ReturnCodeMsg(return_code=0)):
        with pytest.raises(LocalProtocolError, match="CheckpointMsg") as info:
            encode_message(dataclasses.replace(message, body=wrong))
        assert info.value.field == "body"
        with pytest.raises(LocalProtocolError, match="CheckpointMsg"):
            encode_body(message.version, message.msg_type, wrong)
    entry = RetDataInfo("n1", 0, int(MsgType.RESPONSE_SLURM_RC), PingMsg())
    header = dataclasses.replace(message.header, ret_list=(entry,))
    with pytest.raises(LocalProtocolError, match="ReturnCodeMsg") as info:
        encode_message(dataclasses.replace(message, header=header))
    assert info.value.field == "header.ret_list.0.body"


def test_encode_takes_only_an_auth_envelope_class():
    message = decode_message(REQ)
    with pytest.raises(LocalProtocolError, match="MungeAuthCred or NoneAuthCred") as info:
        encode_message(dataclasses.replace(message, auth={"credential": message.auth.credential}))
    assert info.value.field == "auth"
    none = NoneAuthCred(uid=1, gid=2, hostname="h")
    assert decode_message(encode_message(dataclasses.replace(message, auth=none))).auth == none


def test_encode_names_the_header_and_auth_fault_before_the_body_s():
    """With two faults, the one met first in the frame's order is named, as before the encoder
    built the body first (a bad auth was reported as the body's fault)."""
    message = decode_message(REQ)
    bad_body = dataclasses.replace(message, body=PingMsg())
    with pytest.raises(LocalProtocolError, match="MungeAuthCred or NoneAuthCred") as info:
        encode_message(dataclasses.replace(bad_body, auth={"credential": "x"}))
    assert info.value.field == "auth"
    entry = RetDataInfo("n1", 0, int(MsgType.RESPONSE_SLURM_RC), PingMsg())
    with pytest.raises(LocalProtocolError, match="ReturnCodeMsg") as info:
        encode_message(dataclasses.replace(bad_body, header=dataclasses.replace(message.header, ret_list=(entry,))))
    assert info.value.field == "header.ret_list.0.body"
