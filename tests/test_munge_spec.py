"""Every ``hex munge-*`` example of protocol_specs/munge.md decodes as its ``decoded`` block says."""

import base64
import re
from pathlib import Path

import pytest

from pyslurmrpc.auth.munge_constants import MSG_HDR_SIZE, MsgType
from pyslurmrpc.auth.munge_cred import decode_offline
from pyslurmrpc.auth.munge_proto import (
    parse_decode_request, parse_decode_response, parse_encode_request, parse_encode_response,
    unpack_header,
)
from pyslurmrpc.auth.slurm_auth import AUTH_PLUGIN_MUNGE, OfflineMungeAuth
from pyslurmrpc.decode.inputs import parse_hex_dump
from pyslurmrpc.wire.types import MungeAuthCred

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "protocol_specs" / "munge.md"
KEY = ROOT / "fixtures" / "munge.key"
BLOCK = re.compile(r"```([^\n]*)\n(.*?)```", re.S)


def _examples():
    blocks = BLOCK.findall(SPEC.read_text())
    for i, (info, body) in enumerate(blocks):
        if info.startswith("hex munge-"):
            assert blocks[i + 1][0].strip() == "decoded", f"block {i} has no decoded block"
            expect = dict(l.split(" = ", 1) for l in blocks[i + 1][1].strip().splitlines())
            yield pytest.param(info.split()[1], parse_hex_dump(body), expect, id=f"{info.split()[1]}-{i}")


def _message(data):
    mtype, retry, n = unpack_header(data[:MSG_HDR_SIZE])
    assert n == len(data) - MSG_HDR_SIZE
    parsers = {MsgType.ENC_REQ: parse_encode_request, MsgType.ENC_RSP: parse_encode_response,
               MsgType.DEC_REQ: parse_decode_request, MsgType.DEC_RSP: parse_decode_response}
    out = parsers[mtype](data[MSG_HDR_SIZE:])
    fields = {"type": mtype, "retry": retry}
    fields.update(vars(out) if hasattr(out, "__dict__") else {"credential": out})
    return fields


def _credential(data):
    return vars(decode_offline("MUNGE:" + base64.b64encode(data).decode() + ":", KEY, ignore_expiry=True))


def _envelope(data):
    assert int.from_bytes(data[:4], "big") == AUTH_PLUGIN_MUNGE
    length = int.from_bytes(data[4:8], "big")
    assert len(data) == 8 + length and data[-1] == 0
    auth = MungeAuthCred(credential=data[8:-1].decode())
    return vars(OfflineMungeAuth(KEY, ignore_expiry=True).verify(auth))


DECODERS = {"munge-request": _message, "munge-response": _message, "munge-cred": _credential,
            "munge-envelope": _envelope}
EXAMPLES = list(_examples())


def _same(actual, expected):
    if expected == "None":
        return actual is None
    if isinstance(actual, bytes):
        return repr(actual) == expected
    if isinstance(actual, int):
        return actual == int(expected, 0)
    return str(actual) == expected


def test_spec_has_every_kind():
    assert {kind for kind, _, _ in (p.values for p in EXAMPLES)} == set(DECODERS)


@pytest.mark.parametrize("kind, data, expect", EXAMPLES)
def test_spec_example(kind, data, expect):
    fields = DECODERS[kind](data)
    for name, value in expect.items():
        assert _same(fields[name], value), (name, fields[name], value)
