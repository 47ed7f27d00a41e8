"""A frame that fails before its credential field, or a body with no schema, leaves a MUNGE
credential among the bytes the decoder dumps: it is withheld there too (a new user's trial
found the credential of a 0x2e00 probe printed in hex, in text and in JSON)."""

from __future__ import annotations

import json
import re

import pytest

from pyslurmrpc.decode.render import MAX_DUMP
from pyslurmrpc.decode.withheld import LONG_BASE64_RUN, MASK, masked_hex, withheld_spans
from pyslurmrpc.wire import decode_message

from fixtures_data import recording
from test_decode import run

PING = recording("ping", "request")
CREDENTIAL = decode_message(PING).auth.credential.encode()
AT = PING.index(CREDENTIAL)


def _edited(at: int, value: bytes) -> bytes:
    frame = bytearray(PING)
    frame[at:at + len(value)] = value
    return bytes(frame)


def _visible(credential: bytes, text: str) -> bool:
    """Any 12 bytes of the credential, as text, hex or spaced hex."""
    for start in range(0, len(credential) - 12, 6):
        part = credential[start:start + 12]
        if part.decode() in text or part.hex() in text or part.hex(" ") in text:
            return True
    return False


@pytest.mark.parametrize("edit", [
    (4, b"\x2e\x00"),                     # a version from the future (pyslurmrpc's own 26.05 probe)
    (4, b"\x1f\x00"),                     # one older than 17.11
    (18, b"\x00\x05"),                    # ret_cnt: a list that is not there
    (26, (102).to_bytes(4, "big")),       # an auth plugin no release has
], ids=["future-version", "old-version", "ret_cnt", "plugin-id"])
def test_a_frame_failing_before_its_credential_withholds_it(tmp_path, edit):
    path = tmp_path / "frame.bin"
    path.write_bytes(_edited(*edit))
    for argv in ([path], [path, "--json"]):
        code, out, _ = run(*argv)
        assert "NOT DECODED" in out or '"ok": false' in out
        assert not _visible(CREDENTIAL, out), out
    code, out, _ = run(path)
    assert f" {MASK} {MASK} " in out and "they may hold a credential" in out
    code, out, _ = run(path, "--json")
    error = json.loads(out.splitlines()[0])["error"]
    withheld = error["undecoded_withheld"]
    assert [(w["offset"] + error["undecoded_offset"], w["length"]) for w in withheld] == [(AT, len(CREDENTIAL))]


def test_the_bytes_before_and_after_a_credential_are_still_shown(tmp_path):
    """Only the credential is withheld: the header a debugger needs is shown."""
    path = tmp_path / "frame.bin"
    path.write_bytes(_edited(4, b"\x2e\x00"))
    _, out, _ = run(path)
    assert "0004: 2e 00 00 00 00 00 03 f0" in out


def test_a_body_with_no_schema_withholds_a_credential_it_carries(tmp_path):
    """A job credential's signature is a MUNGE credential in a body pyslurmrpc has no schema for."""
    body = b"\x00\x00\x00\x05" + len(CREDENTIAL).to_bytes(4, "big") + CREDENTIAL + b"\x00\x00\x00\x07"
    path = tmp_path / "frame.bin"
    path.write_bytes(_no_schema_frame(body))
    for argv in ([path], [path, "--json"]):
        _, out, _ = run(*argv)
        assert "body not decoded" in out or '"undecoded_body": {' in out
        assert not _visible(CREDENTIAL, out), out
    _, out, _ = run(path, "--json")
    assert json.loads(out.splitlines()[0])["undecoded_body"]["withheld"] == [{"offset": 8, "length": len(CREDENTIAL)}]


@pytest.mark.parametrize("data, spans", [
    (b"/opt/s19/ckpt\x00n[1-4]\x00", []),                          # paths and node lists stay shown
    (b"ab" + b"MUNGE:AbC+/=:" + b"\x00z", [(2, 15)]),               # prefixed: withheld however short
    (b"x\x00" + b"A" * LONG_BASE64_RUN + b":\x00", [(2, 3 + LONG_BASE64_RUN)]),   # its prefix lost
    (b"A" * (LONG_BASE64_RUN - 1) + b"\x00", []),
    (b"MUNGE:AAAA" + b"B" * LONG_BASE64_RUN, [(0, 10 + LONG_BASE64_RUN)]),        # overlapping: one span
])
def test_withheld_spans(data, spans):
    assert withheld_spans(data) == spans


def test_masked_hex_never_writes_a_hex_digit_for_a_withheld_byte():
    assert masked_hex(b"\x01\x02\x03", [(1, 2)], " ") == f"01 {MASK} 03"
    assert re.fullmatch(r"(--)+", masked_hex(CREDENTIAL, withheld_spans(CREDENTIAL)))


def _no_schema_frame(body: bytes) -> bytes:
    frame = bytearray(PING[4:]) + body
    frame[6:8] = (4001).to_bytes(2, "big")                    # REQUEST_LAUNCH_TASKS: no schema here
    frame[8:12] = len(body).to_bytes(4, "big")
    return len(frame).to_bytes(4, "big") + bytes(frame)


def test_a_credential_crossing_the_end_of_the_dump_is_withheld_and_named(tmp_path):
    body = b"\x01" * (MAX_DUMP - 20) + CREDENTIAL
    path = tmp_path / "frame.bin"
    path.write_bytes(_no_schema_frame(body))
    _, out, _ = run(path)
    assert "more bytes" in out and f"({len(CREDENTIAL)} bytes at {len(PING) + MAX_DUMP - 20:04d} not shown" in out
    assert not _visible(CREDENTIAL[:20], out)


def test_what_is_withheld_is_listed_for_the_dumped_bytes_only(tmp_path):
    """A body of 200 base64 runs printed 200 "not shown" lines (and a 9 KB JSON line) for
    bytes of which only 512 are dumped."""
    body = (b"\x00" + b"A" * LONG_BASE64_RUN) * 200
    path = tmp_path / "frame.bin"
    path.write_bytes(_no_schema_frame(body))
    _, out, _ = run(path)
    listed = out.count("they may hold a credential")
    assert listed == -(-MAX_DUMP // (LONG_BASE64_RUN + 1)) and len(out.splitlines()) < 60
    _, out, _ = run(path, "--json")
    withheld = json.loads(out.splitlines()[0])["undecoded_body"]["withheld"]
    assert len(withheld) == listed and all(w["offset"] < MAX_DUMP for w in withheld)


def test_a_decoded_string_holding_a_credentials_text_is_withheld(tmp_path):
    """A peer's misplaced bytes can make a nodelist of a credential: it printed in full."""
    import dataclasses
    from pyslurmrpc.wire import Forward, encode_message
    msg = decode_message(PING)
    text = CREDENTIAL.decode()
    header = dataclasses.replace(msg.header, forward=Forward(1, text, 10000, 50))
    path = tmp_path / "frame.bin"
    path.write_bytes(encode_message(dataclasses.replace(msg, header=header)))
    for argv in ([path], [path, "--json"]):
        _, out, _ = run(*argv)
        assert "REQUEST_PING" in out and not _visible(CREDENTIAL, out), out
    _, out, _ = run(path)
    assert re.search(r"header\.forward\.nodelist .* = <\d+ bytes not shown: they may hold a credential>", out)
    _, out, _ = run(path, "--json")
    field = next(f for f in json.loads(out.splitlines()[0])["fields"] if f["path"] == "header.forward.nodelist")
    assert field["redacted"] and field["value"] is None and field["meaning"] == "may hold a credential"


def test_a_long_run_in_a_decoded_string_is_shown(tmp_path):
    """Only the credential's own prefix withholds a decoded string: a path may end in a digest."""
    import dataclasses
    from pyslurmrpc.wire import encode_message
    frame = recording("create_imagedir", "request")
    msg = decode_message(frame)
    digest = "/ckpt/" + "a" * 64
    path = tmp_path / "frame.bin"
    path.write_bytes(encode_message(dataclasses.replace(msg, body=dataclasses.replace(msg.body, image_dir=digest))))
    _, out, _ = run(path)
    assert digest in out


@pytest.mark.parametrize("text", [
    CREDENTIAL,                                             # a file of credentials taken for a dump
    CREDENTIAL[len(b"MUNGE:"):],                            # one whose prefix was cut
    b"00000000: 0000 00b2 " + CREDENTIAL,                   # a line of xxd's form
    b"0000000 00 00 00 b2 " + CREDENTIAL,                   # a line of od's form
    b"0000000 00 00\n0000002 " + CREDENTIAL,                # a later line
], ids=["credential", "prefix-cut", "xxd-line", "od-line", "second-line"])
def test_a_line_quoted_in_an_error_withholds_a_credential(tmp_path, text):
    """The bad line's first 60 characters were quoted as they were: a credential among them
    was printed (the cut came after the search, so a cut run must still be found)."""
    path = tmp_path / "creds.txt"
    path.write_bytes(text + b"\n")
    code, out, err = run(path)
    assert code == 2 and "not a hex dump" in err, err
    assert "<withheld: a credential?>" in err and not _visible(CREDENTIAL, err), err
    assert not any(CREDENTIAL[i:i + 8].decode() in err for i in range(6, len(CREDENTIAL) - 8)), err


def test_a_quoted_line_without_a_credential_is_shown_as_it_was(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"job 5 step 0: /home/u/ckpt\n")
    code, _, err = run(path)
    assert code == 2 and "'job 5 step 0: /home/u/ckpt'" in err, err


def test_a_long_hex_line_with_a_typo_is_quoted_as_it_was(tmp_path):
    """Hex digits are base64 characters: a dump line of 64+ digits with a typo further on was
    quoted as '<withheld: a credential?>', hiding the typo."""
    line = "00" * 40 + " zz"
    path = tmp_path / "typo.hex"
    path.write_text("00 01 02\n" + line + "\n")
    code, _, err = run(path)
    assert code == 2 and repr(line[:60]) in err and "withheld" not in err, err
