"""Decoder-side bodies: protocol_specs/decoder_bodies.md's examples, per-release names, bad bodies."""

from __future__ import annotations

import io
import json
import re
import struct
from pathlib import Path

import pytest

from pyslurmrpc.decode import decode_frame, parse_hex_dump
from pyslurmrpc.decode.cli import main
from pyslurmrpc.decode.render import frame_json, frame_lines
from pyslurmrpc.decode.frames import StreamReport

SPECS = Path(__file__).resolve().parent.parent / "protocol_specs"
SPEC = SPECS / "decoder_bodies.md"
BLOCK = re.compile(r"```([^\n]*)\n(.*?)```", re.S)


def _examples(paths=None):
    for path in paths or sorted(SPECS.glob("*.md")):
        blocks = BLOCK.findall(path.read_text())
        for i, (info, body) in enumerate(blocks):
            if info.strip() == "hex decoder frame":
                assert blocks[i + 1][0].strip() == "decoder text", f"{path.name} example {i} has no decoder text"
                yield pytest.param(parse_hex_dump(body), blocks[i + 1][1].strip("\n").splitlines(),
                                   id=f"{path.stem}-{i}")


EXAMPLES = list(_examples())


def test_spec_has_examples():
    assert len(list(_examples([SPEC]))) >= 7
    assert len(EXAMPLES) >= 9


@pytest.mark.parametrize("frame, expected", EXAMPLES)
def test_spec_example_prints_as_written(frame, expected):
    report = decode_frame(frame)
    assert report.ok
    printed = list(frame_lines(report))
    for line in expected:
        assert line in printed, line


def _example(name: str) -> bytes:
    return next(p.values[0] for p in EXAMPLES if name in p.values[1][0])


def test_errno_names_follow_the_frames_release():
    rc_2411 = bytearray(_example("RESPONSE_SLURM_RC (8001)"))
    rc_2411[-4:] = struct.pack(">i", 2007)
    text = "\n".join(frame_lines(decode_frame(bytes(rc_2411))))
    assert "ESLURM_ERROR_ON_DESC_TO_RECORD_COPY" in text  # 24.11's name for 2007
    rc_2411[4:6] = bytes.fromhex("2d00")  # the same frame from a 26.05 controller
    text = "\n".join(frame_lines(decode_frame(bytes(rc_2411))))
    assert "ESLURM_MAX_JOB_COUNT" in text


def test_job_id_count_above_no_val_is_refused_with_its_field():
    frame = bytearray(_example("REQUEST_JOB_INFO (2003)"))
    frame[49:53] = b"\xff\xff\xff\xff"
    report = decode_frame(bytes(frame))
    assert not report.ok and report.error.field == "body.job_id_count" and report.error.offset == 49


def test_job_id_list_past_the_end_is_truncated_not_allocated():
    frame = bytearray(_example("REQUEST_JOB_INFO (2003)"))
    frame[49:53] = struct.pack(">I", 0x7FFFFFFF)
    report = decode_frame(bytes(frame))
    assert not report.ok and type(report.error).__name__ == "TruncatedError"
    assert report.error.field.startswith("body.job_ids")


def test_body_length_disagreeing_with_the_body_is_reported():
    frame = bytearray(_example("REQUEST_NODE_INFO (2007)"))
    frame += b"\0"
    frame[0:4] = struct.pack(">I", len(frame) - 4)
    report = decode_frame(bytes(frame))
    assert type(report.error).__name__ == "TrailingBytesError"


def test_type_without_schema_shows_its_body_as_bytes():
    frame = bytearray(_example("REQUEST_NODE_INFO (2007)"))
    frame[8:10] = struct.pack(">H", 2008)  # RESPONSE_NODE_INFO: no decoder schema
    report = decode_frame(bytes(frame))
    assert report.ok and not report.body_decoded
    text = "\n".join(frame_lines(report))
    assert "RESPONSE_NODE_INFO (2008), 49 bytes -- body not decoded" in text
    assert "[0039] body: 10 bytes, body not decoded" in text
    obj = frame_json(StreamReport("s"), report)
    assert obj["body_decoded"] is False and obj["undecoded_body"]["length"] == 10


def test_a_number_no_release_knows_stays_an_error():
    frame = bytearray(_example("REQUEST_NODE_INFO (2007)"))
    frame[8:10] = struct.pack(">H", 4242)
    report = decode_frame(bytes(frame))
    assert type(report.error).__name__ == "UnknownMessageTypeError" and report.error.offset == 8


def test_defunct_type_of_a_release_is_named_as_that_release_names_it():
    frame = bytearray(_example("REQUEST_NODE_INFO (2007)"))  # a 26.05 header
    frame[8:10] = struct.pack(">H", 5009)
    assert "RESPONSE_STEP_BY_CONTAINER_ID (5009)" in next(frame_lines(decode_frame(bytes(frame))))


def test_json_caps_a_large_undecoded_body(capsys):
    frame = bytearray(_example("REQUEST_NODE_INFO (2007)"))
    frame[8:10] = struct.pack(">H", 2008)
    body = bytes(range(256)) * 40
    frame[10:14] = struct.pack(">I", len(body))
    frame = frame[:39] + body
    frame[0:4] = struct.pack(">I", len(frame) - 4)
    assert main(["--json", "-"], stdin=_stdin(bytes(frame))) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["undecoded_body"]["length"] == len(body)
    assert obj["undecoded_body"]["truncated"] is True and len(obj["undecoded_body"]["hex"]) == 2 * 512


def _stdin(data: bytes):
    return io.TextIOWrapper(io.BytesIO(data))


def test_header_flags_are_named_as_the_frames_release_names_them():
    frame = bytearray(_example("RESPONSE_SLURM_RC (8001)"))  # 24.11, flags 0x0040
    frame[6:8] = struct.pack(">H", 0x0048)
    assert "= 72 (SLURM_NO_AUTH_CRED | 0x0008)" in "\n".join(frame_lines(decode_frame(bytes(frame))))
    ping = bytearray(_example("REQUEST_PING (1008)"))  # 19.05: bit 3 is SLURM_DROP_PRIV, bit 4 has no name
    ping[6:8] = struct.pack(">H", 0x0018)
    assert "= 24 (SLURM_DROP_PRIV | 0x0010)" in "\n".join(frame_lines(decode_frame(bytes(ping))))


def test_submit_response_layout_follows_the_release():
    from pyslurmrpc.wire.info_bodies import decoder_bodies, submit_response_msg_t, submit_response_msg_t_2511
    from pyslurmrpc.wire.versions import VERSION_CODES

    assert decoder_bodies(VERSION_CODES["25.05"])[4004] is submit_response_msg_t
    assert decoder_bodies(VERSION_CODES["25.11"])[4004] is submit_response_msg_t_2511
    assert decoder_bodies(VERSION_CODES["17.11"])[4004] is submit_response_msg_t


def _frame(release: str, msg_type: int, body: bytes) -> bytes:
    """A frame of ``release`` built by the codec (a REQUEST_PING with auth/none), then retyped."""
    from pyslurmrpc.wire import encode_message
    from pyslurmrpc.wire.bodies import PingMsg
    from pyslurmrpc.wire.types import Address, Header, Message, NoneAuthCred
    from pyslurmrpc.wire.versions import VERSIONS, VERSION_CODES

    code = VERSION_CODES[release]
    addr = Address(family=0, addr=None, port=0) if VERSIONS[code].family_addr else Address()
    frame = bytearray(encode_message(Message(Header(version=code, msg_type=1008, orig_addr=addr),
                                             NoneAuthCred(uid=1000, gid=1000, hostname="n1"), PingMsg())))
    at = VERSIONS[code].msg_type_offset
    frame[at:at + 6] = struct.pack(">HI", msg_type, len(body))
    frame += body
    frame[0:4] = struct.pack(">I", len(frame) - 4)
    return bytes(frame)


RELEASE_NAMES = ["17.11", "18.08", "19.05", "20.02", "20.11", "21.08", "22.05", "23.02", "23.11", "24.05",
                 "24.11", "25.05", "25.11", "26.05"]


@pytest.mark.parametrize("release", RELEASE_NAMES)
def test_info_requests_decode_in_every_release(release):
    bodies = {
        2003: (struct.pack(">qHII", 5, 0x0010, 1, 99), {"body.job_ids.0": 99, "body.show_flags": 16}),
        2007: (struct.pack(">qH", 7, 0x0002), {"body.last_update": 7, "body.show_flags": 2}),
        2009: (struct.pack(">qH", 9, 0x0001), {"body.last_update": 9}),
        2001: (struct.pack(">q", 11), {"body.last_update": 11}),
        8001: (struct.pack(">i", -1), {"body.return_code": -1}),
    }
    for msg_type, (body, expected) in bodies.items():
        report = decode_frame(_frame(release, msg_type, body))
        assert report.ok and report.body_decoded, (msg_type, report.error)
        values = {f.path: f.value for f in report.fields}
        assert all(values[k] == v for k, v in expected.items()), (msg_type, values)
        assert not report.frame[report.decoded_end:]  # the whole body was read


def test_json_caps_the_raw_bytes_of_a_long_field():
    message = b"x" * 5000 + b"\0"
    frame = _frame("22.05", 8002, struct.pack(">iI", 2017, len(message)) + message)  # RESPONSE_SLURM_RC_MSG
    obj = frame_json(StreamReport("s"), decode_frame(frame))
    err_msg = next(f for f in obj["fields"] if f["path"] == "body.err_msg")
    assert err_msg["size"] == 4 + len(message) and err_msg["raw_truncated"] is True
    assert len(err_msg["raw"]) == 2 * 512 and err_msg["value"] == "x" * 5000


def _forwarded_ping_reply(release: str, entry_body: bytes) -> bytes:
    """A slurmd's RESPONSE_PING_SLURMD carrying one other node's answer in ret_list (no credential)."""
    from pyslurmrpc.wire.versions import VERSION_CODES

    own = struct.pack(">IQ", 25, 1 << 30)
    entry = struct.pack(">iHI", 0, 1016, 3) + b"n2\0" + entry_body
    header = struct.pack(">HHHI", VERSION_CODES[release], 0x0040, 1016, len(own))
    # forward.cnt 0 (nothing else of the forward part follows), ret_cnt 1, the entry, orig_addr family 0
    header += struct.pack(">H", 0) + struct.pack(">H", 1) + entry + struct.pack(">H", 0)
    frame = header + own
    return struct.pack(">I", len(frame)) + frame


def test_ret_list_entries_with_a_decoder_body_are_read():
    report = decode_frame(_forwarded_ping_reply("24.11", struct.pack(">IQ", 7, 2048)))
    assert report.ok and report.body_decoded, report.error
    values = {f.path: f.value for f in report.fields}
    assert values["header.ret_list.0.node_name"] == "n2" and values["header.ret_list.0.body.cpu_load"] == 7
    assert values["body.free_mem"] == 1 << 30
    text = "\n".join(frame_lines(report))
    assert "header.ret_list.0.msg_type" in text and "(RESPONSE_PING_SLURMD)" in text


def test_ping_slurmd_reply_names_its_node_from_26_05():
    frame = bytearray(_forwarded_ping_reply("26.05", struct.pack(">IQI", 7, 2048, 3) + b"n2\0"))
    assert not decode_frame(bytes(frame)).ok  # 26.05's own body needs node_name too
    own = struct.pack(">IQI", 25, 1 << 30, 3) + b"n1\0"
    frame = frame[:-12] + own
    frame[10:14] = struct.pack(">I", len(own))
    frame[0:4] = struct.pack(">I", len(frame) - 4)
    report = decode_frame(bytes(frame))
    assert report.ok, report.error
    assert {f.path: f.value for f in report.fields}["body.node_name"] == "n1"


def test_codec_message_with_a_decoder_only_ret_list_entry_is_read():
    frame = bytearray(_forwarded_ping_reply("24.11", struct.pack(">IQ", 7, 2048)))
    frame[8:10] = struct.pack(">H", 8001)  # RESPONSE_SLURM_RC: the codec's own body, an entry it cannot read
    own = struct.pack(">i", 0)
    frame = frame[:-12] + own
    frame[10:14] = struct.pack(">I", len(own))
    frame[0:4] = struct.pack(">I", len(frame) - 4)
    report = decode_frame(bytes(frame))
    assert report.ok and report.body_decoded, report.error
    values = {f.path: f.value for f in report.fields}
    assert values["header.ret_list.0.body.cpu_load"] == 7 and values["body.return_code"] == 0
