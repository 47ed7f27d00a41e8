"""The generated fast path (wire/_fastpath.py) against construct's interpreted schemas.

The fast path must accept exactly the frames the interpreted schema accepts, read
the same values from them, and build the same bytes; it must fuse runs of
fixed-width integers and refuse, when compiled, a schema it cannot translate.
"""

from __future__ import annotations

import random

import pytest
from construct import Bytes, Struct, this

from pyslurmrpc.wire import VERSIONS, MsgType
from pyslurmrpc.wire._fastpath import FastPathFailed, compile_schema
from pyslurmrpc.wire.bodies import checkpoint_msg_t
from pyslurmrpc.wire.codec import PARSE_ERRORS, _plain_tree
from pyslurmrpc.wire.constants import NO_VAL
from pyslurmrpc.wire.info_bodies import job_info_request_msg_t
from pyslurmrpc.wire.primitives import SlurmString, u16, u32

from test_fuzz import _built_frames

FRAMES = _built_frames()
MUTATIONS_PER_FRAME = 12


def _interpreted(spec, frame):
    try:
        return _plain_tree(spec.frame.parse(frame))
    except PARSE_ERRORS:
        return None


def _fast(spec, frame):
    try:
        return spec.compiled.parse(frame)
    except Exception:  # any failure: the codec falls back to the interpreted schema
        return None


def _mutants(frame: bytes, rng: random.Random):
    yield frame
    for _ in range(MUTATIONS_PER_FRAME):
        data = bytearray(frame)
        kind = rng.randrange(3)
        if kind == 0:
            data[rng.randrange(6, len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del data[rng.randrange(6, len(data)):]
        else:
            at = rng.randrange(6, len(data))
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        yield bytes(data)


def test_built_frames_cover_every_version():
    assert {int.from_bytes(f[4:6], "big") for f in FRAMES} == set(VERSIONS)


def test_fast_parse_agrees_with_the_interpreted_schema():
    """Same verdict and the same values, on every built frame and mutations of it."""
    rng = random.Random(1905)
    compared = accepted = 0
    for frame in FRAMES:
        spec = VERSIONS[int.from_bytes(frame[4:6], "big")]
        for data in _mutants(frame, rng):
            fast, slow = _fast(spec, data), _interpreted(spec, data)
            assert fast == slow, data.hex()
            compared += 1
            accepted += slow is not None
    assert accepted > len(FRAMES) and compared - accepted > len(FRAMES)


def test_fast_build_agrees_with_the_interpreted_schema():
    for frame in FRAMES:
        spec = VERSIONS[int.from_bytes(frame[4:6], "big")]
        tree = _plain_tree(spec.frame.parse(frame))
        head = {"header": tree["header"], "auth": tree["auth"]}
        assert spec.compiled_head.build(head) == spec.head.build(head)
        msg_type = tree["header"]["msg_type"]
        body = spec.layout.bodies[msg_type]
        assert spec.compiled_bodies[msg_type].build(tree["body"]) == body.build(tree["body"])


def test_fixed_width_runs_are_read_and_written_with_one_struct_call():
    """op, data, job_id, step_id: one unpack_from and one pack; the string is the other read."""
    source = compile_schema(checkpoint_msg_t).source
    parse = source[source.index("def parse"):]
    assert source.count("unpack_from") == 2, source
    assert source.count(".pack(") == 2, source  # the run, and the string's size
    assert "unpack_from" not in parse  # the top level calls the generated reader


def test_one_condition_is_tested_once_for_the_fields_it_guards():
    forward = VERSIONS[0x2200].layout.forward
    source = compile_schema(Struct("flags" / u16, "f" / forward)).source
    assert source.count("> 0)") == 2, source  # once to read, once to write


def test_conditions_read_the_enclosing_struct():
    """23.11+: net_cred is there only when the header's flags (the parent) carry SLURM_PACK_ADDRS."""
    spec = VERSIONS[0x2b00]
    schema = spec.layout.forward
    parent = Struct("flags" / u16, "forward" / schema)
    codec = compile_schema(parent)
    for flags in (0, 0x80):
        value = {"flags": flags, "forward": {"cnt": 1, "nodelist": "n1", "timeout": 5, "tree_width": 2,
                                               "net_cred": "x" if flags else None, "tree_depth": 1}}
        data = codec.build(value)
        assert data == parent.build(value)
        assert codec.parse(data) == _plain_tree(parent.parse(data))
        assert (b"x\0" in data) == bool(flags)


def test_a_list_count_above_no_val_is_refused():
    codec = compile_schema(job_info_request_msg_t)
    good = {"last_update": 0, "show_flags": 0, "job_id_count": 1, "job_ids": [7]}
    assert codec.parse(codec.build(good))["job_ids"] == [7]
    bad = bytearray(codec.build(good))
    bad[10:14] = (NO_VAL + 1).to_bytes(4, "big")
    with pytest.raises(FastPathFailed):
        codec.parse(bytes(bad))
    with pytest.raises(FastPathFailed):
        codec.build({**good, "job_id_count": NO_VAL + 1, "job_ids": None})


@pytest.mark.parametrize("bad", [b"\x00\x00\x00\x03ab\x01", b"\x00\x00\x00\x03a\x00\x00",
                                 b"\x00\x00\x00\x09abc\x00", b"\x40\x00\x00\x01"])
def test_strings_that_are_not_one_c_string_fail(bad):
    codec = compile_schema(Struct("s" / SlurmString()))
    with pytest.raises(Exception):
        codec.parse(bad)
    with pytest.raises(Exception):
        Struct("s" / SlurmString()).parse(bad)


def test_an_unknown_message_type_fails_both_ways():
    spec = VERSIONS[0x2200]
    frame = next(f for f in FRAMES if int.from_bytes(f[4:6], "big") == 0x2200)
    data = bytearray(frame)
    data[spec.msg_type_offset:spec.msg_type_offset + 2] = (0xFFFF).to_bytes(2, "big")
    assert _fast(spec, bytes(data)) is None and _interpreted(spec, bytes(data)) is None
    assert int(MsgType.REQUEST_PING) in spec.compiled_bodies


def test_schemas_it_cannot_translate_are_refused_when_compiled():
    with pytest.raises(TypeError, match="cannot compile"):
        compile_schema(Struct("raw" / Bytes(4)))
    with pytest.raises(TypeError, match="one enclosing level"):
        from construct import If
        compile_schema(Struct("a" / u32, "b" / Struct("c" / Struct("d" / If(this._._.a > 0, u16)))))


def test_runs_continue_across_nested_structs():
    """19.05 frame: length, the header's fixed fields and forward.cnt are one read; orig_addr's
    address and port and the auth envelope's plugin id another."""
    source = VERSIONS[0x2200].compiled.source
    reads = [line for line in source.splitlines() if "unpack_from(buf, pos)" in line and "=" in line]
    first = next(line for line in reads if "['length']" in line)
    assert "['body_length']" in first and "['cnt']" in first, first
    assert any("['port']" in line and "['plugin_id']" in line for line in reads), reads
