"""pyslurmrpc/wire/_construct_internals.py relies on construct internals: pin the release.

An upgrade of construct must fail here first, loudly, so that the fast path's
translation of the schemas (wire/_fastpath.py, tested in tests/test_fastpath.py)
and the recording parse are checked against the new release before the pin is moved.
"""

from __future__ import annotations

import construct
from construct import Struct
import pytest

from pyslurmrpc.wire import Address, Header, Message, MsgType, decode_message, encode_message
from pyslurmrpc.wire import NoneAuthCred, ReturnCodeMsg

from pyslurmrpc.wire._construct_internals import CONSTRUCT_VERSION, recording_parse
from pyslurmrpc.wire.codec import PARSE_ERRORS
from pyslurmrpc.wire.primitives import SlurmString, TruncatedField, u16, u32
from pyslurmrpc.wire.types import RetEntry
from pyslurmrpc.wire.versions import VERSIONS


def test_construct_is_the_pinned_release():
    assert construct.__version__ == CONSTRUCT_VERSION, (
        f"construct {construct.__version__} is installed, pyslurmrpc/wire/_construct_internals.py was "
        f"written against {CONSTRUCT_VERSION}: re-check wire/_fastpath.py (the attributes "
        "it reads and the repr of this-expressions) and recording_parse (Struct.subcons, Renamed, "
        "IfThenElse, Switch.cases, Array and context._index) against the new release, then move the pin")


SCHEMA = Struct("a" / u16, "s" / SlurmString(), "b" / u32)


def test_recording_parse_records_paths_offsets_and_array_indices():
    entries = tuple(RetEntry(f"n{i}", i, int(MsgType.RESPONSE_SLURM_RC), ReturnCodeMsg(return_code=i)) for i in (1, 2))
    header = Header(0x2600, MsgType.RESPONSE_SLURM_RC, ret_list=entries, orig_addr=Address(0, None, 0))
    frame = encode_message(Message(header, NoneAuthCred(uid=0, gid=0, hostname="h"),
                                   ReturnCodeMsg(return_code=0)))
    parsed, fields, error = recording_parse(VERSIONS[0x2600].frame, frame, PARSE_ERRORS)
    assert error is None and parsed["body"]["return_code"] == 0
    by_path = {f.path: f for f in fields}
    assert by_path["length"].start == 0 and by_path["length"].end == 4
    assert by_path["header.ret_list.1.node_name"].value == "n2"
    assert by_path["header.ret_list.0.body.return_code"].value == 1
    assert "header.orig_addr.family" in by_path  # no stale array index after the array
    assert fields[-1].path == "body.return_code" and fields[-1].end == len(frame)
    assert [f.start for f in fields] == sorted(f.start for f in fields)
    assert decode_message(frame).header.ret_list == entries


def test_recording_parse_stops_with_the_interpreters_error():
    parsed, fields, error = recording_parse(SCHEMA, b"\x00\x07\x00\x00", PARSE_ERRORS)
    assert parsed is None and [f.path for f in fields] == ["a"]
    assert isinstance(error, TruncatedField) and error.offset == 2
    with pytest.raises(TruncatedField) as plain:
        SCHEMA.parse(b"\x00\x07\x00\x00")
    assert str(plain.value) == str(error)
