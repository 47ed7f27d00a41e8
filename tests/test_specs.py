"""The worked examples in protocol_specs/ decode with the code, so the specs cannot drift.

Convention (protocol_specs/README.md): a fenced block whose info string is
``hex frame`` holds a whole frame as hex (an optional ``0000:`` offset column
is checked, as in any dump the decoder reads).  A ``decoded`` block right after it lists ``dotted.path = value``
lines that must equal the decoded message.  ``hex error`` blocks hold frames
that must be refused; their ``decoded`` block names ``error``, ``field`` and
``offset``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyslurmrpc import errors
from pyslurmrpc.decode.inputs import parse_hex_dump
from pyslurmrpc.wire import decode_message, encode_message

SPECS = Path(__file__).resolve().parent.parent / "protocol_specs"
BLOCK = re.compile(r"```([^\n]*)\n(.*?)```", re.S)


def examples(kind: str):
    for path in sorted(SPECS.glob("*.md")):
        blocks = BLOCK.findall(path.read_text())
        for i, (info, body) in enumerate(blocks):
            if info.strip() != f"hex {kind}":
                continue
            expect = blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0].strip() == "decoded" else ""
            yield pytest.param(parse_hex_dump(body), _expectations(expect), id=f"{path.stem}-{i}")


def _expectations(text: str) -> dict:
    pairs = (line.split("=", 1) for line in text.strip().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _lookup(obj, dotted: str):
    for part in dotted.split("."):
        obj = obj[int(part)] if part.isdigit() else (obj[part] if isinstance(obj, dict) else getattr(obj, part))
    return obj


def _same(actual, expected: str) -> bool:
    if expected == "None":
        return actual is None
    if isinstance(actual, int) and not isinstance(actual, bool):
        return actual == int(expected, 0)
    return str(actual) == expected.strip('"')


FRAMES = list(examples("frame"))
ERRORS = list(examples("error"))


def test_specs_have_examples():
    assert len(FRAMES) >= 10
    assert len(ERRORS) >= 3
    for path in SPECS.glob("*.md"):
        if path.name != "README.md":
            assert "```hex" in path.read_text(), f"{path.name} has no worked hex example"


@pytest.mark.parametrize("frame, expect", FRAMES)
def test_spec_frame_decodes_as_documented(frame, expect):
    message = decode_message(frame)
    assert expect, "every hex frame is followed by a decoded block"
    for path, value in expect.items():
        assert _same(_lookup(message, path), value), (path, _lookup(message, path), value)
    assert encode_message(message) == frame


@pytest.mark.parametrize("frame, expect", ERRORS)
def test_spec_bad_frame_is_refused_as_documented(frame, expect):
    cls = getattr(errors, expect["error"])
    with pytest.raises(cls) as info:
        decode_message(frame)
    assert info.value.field == expect["field"]
    assert info.value.offset == int(expect["offset"])
