"""``pyslurmrpc decode``: raw recordings, hex dumps, pcap/pcapng captures, --munge-key, --json, exit codes."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess

import pytest

from pyslurmrpc.decode import (
    InputError, decode_frame, detect_kind, load, parse_hex_dump, pcap_bytes, pcapng_bytes, tcp_conversation, walk_frame,
)
from pyslurmrpc.decode.cli import main
from pyslurmrpc.decode.inputs import HEX_DUMP_MAX_BYTES
from pyslurmrpc.testing.ci import skip_or_fail
from pyslurmrpc.wire import decode_message

from fixtures_data import FIXTURES, all_recordings, manifest, recording

RECORDINGS = all_recordings()
NAMES = sorted({p.name.split(".")[0] for p in RECORDINGS})
KEY = str(FIXTURES / "munge.key")


class _Stdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


def run(*argv, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(map(str, argv)), stdout=out, stderr=err, stdin=_Stdin(stdin))
    return code, out.getvalue(), err.getvalue()


def field_lines(text: str) -> dict[str, tuple[int, str]]:
    """path -> (offset, value text) of every field line (the last occurrence wins)."""
    found = {}
    for m in re.finditer(r"^  \[(\d{4})\] (\S+)\s+.*?= (.*)$", text, re.M):
        found[m.group(2)] = (int(m.group(1)), m.group(3))
    return found


def xxd_dump(data: bytes) -> str:
    """What ``xxd`` prints, made in Python."""
    lines = []
    for at in range(0, len(data), 16):
        row = data[at:at + 16]
        groups = " ".join(row[i:i + 2].hex() for i in range(0, len(row), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{at:08x}: {groups:<39}  {text}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# the field walk agrees with the codec
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_walk_covers_every_byte_and_matches_decode_message(path):
    frame = path.read_bytes()
    fields = walk_frame(frame)
    assert fields[0].offset == 0 and fields[-1].end == len(frame)
    for before, after in zip(fields, fields[1:]):
        assert before.end == after.offset, (before, after)
    message = decode_message(frame)
    for f in fields:
        if f.path.startswith("body."):
            assert getattr(message.body, f.name) == f.value
    assert next(f for f in fields if f.path == "header.msg_type").value == message.header.msg_type


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_every_recording_decodes_from_raw(path):
    code, out, err = run(path)
    assert code == 0, out + err
    assert "NOT DECODED" not in out
    assert "1 message(s) in 1 stream(s): 1 decoded" in out


def test_request_checkpoint_fields_and_offsets():
    code, out, _ = run(FIXTURES / "create_imagedir.request.bin")
    assert code == 0
    f = field_lines(out)
    assert f["header.msg_type"] == (10, "5009 (REQUEST_CHECKPOINT)")
    assert f["header.body_length"] == (12, "30")
    assert f["body.op"] == (178, "3 (CHECK_CREATE)")
    assert f["body.data"] == (180, "10")
    assert f["body.job_id"] == (182, "2")
    assert f["body.step_id"] == (186, "0")
    assert f["body.image_dir"] == (190, '"/opt/s19/ckpt"')
    assert re.search(r"^  \[0012\] header\.body_length +00 00 00 1e += 30$", out, re.M)


def test_error_codes_times_and_no_val_are_named():
    _, out, _ = run(FIXTURES / "able_disabled.response.bin")
    assert field_lines(out)["body.return_code"][1] == \
        "2037 (ESLURM_DISABLED: Requested operation is presently disabled)"
    _, out, _ = run(FIXTURES / "restart_step.request.bin")
    assert "CHECK_RESTART" in out
    frame = recording("able_running", "response")
    report = decode_frame(frame)
    assert report.ok
    _, out, _ = run(FIXTURES / "able_running.response.bin")
    assert field_lines(out)["body.event_time"][1] == "0 (not set)"
    assert field_lines(out)["body.error_code"][1] == "0 (SLURM_SUCCESS: No error)"


def test_batch_step_and_times_in_manifest_requests():
    batch = [e for e in manifest() if e["args"].get("step_id") == 0xFFFFFFFE]
    assert batch, "the recordings include the batch step"
    _, out, _ = run(FIXTURES / f"{batch[0]['name']}.request.bin")
    assert "SLURM_BATCH_SCRIPT" in field_lines(out)["body.step_id"][1]
    _, out, _ = run(FIXTURES / "task_complete.request.bin")
    assert re.search(r"begin_time .*= \d+ \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", out)


# ---------------------------------------------------------------------------
# credentials
# ---------------------------------------------------------------------------
def test_credentials_are_never_printed_without_the_key():
    frame = recording("ping", "request")
    credential = decode_message(frame).auth.credential
    for argv in ([FIXTURES / "ping.request.bin"], [FIXTURES / "ping.request.bin", "--json"]):
        code, out, _ = run(*argv)
        assert code == 0
        assert credential not in out and credential[6:30] not in out
        assert frame[40:60].hex() not in out


@pytest.mark.parametrize("entry", manifest(), ids=lambda e: e["name"])
def test_munge_key_opens_the_credential(entry):
    code, out, _ = run(FIXTURES / f"{entry['name']}.request.bin", "--munge-key", KEY)
    assert code == 0, out
    assert f"munge.uid = {entry.get('caller_uid', 0)}\n" in out
    assert "munge.ttl = 300" in out and "munge.addr = 127.0.0.1" in out
    assert re.search(r"munge\.encode_time = \d+ \(\d{4}-", out)
    key = (FIXTURES / "munge.key").read_bytes()
    assert key.hex() not in out and key[:32].hex() not in out


def test_unprivileged_request_shows_uid_65534_in_json():
    code, out, _ = run(FIXTURES / "able_access_denied.request.bin", "--munge-key", KEY, "--json")
    assert code == 0
    obj = json.loads(out)
    assert obj["munge"]["uid"] == 65534 and obj["munge"]["gid"] == 65534
    assert next(f for f in obj["fields"] if f["path"] == "auth.cred.credential")["redacted"] is True


def test_wrong_munge_key_is_a_failure(tmp_path):
    bad = tmp_path / "other.key"
    bad.write_bytes(b"x" * 1024)
    code, out, _ = run(FIXTURES / "ping.request.bin", "--munge-key", bad)
    assert code == 1
    assert "credential did not open: MUNGE error 14 (Invalid credential): " in out
    assert "(minted with another key than --munge-key's, or damaged)" in out
    # counted apart from frames that did not decode (a trial read "0 decoded, 46 not decoded")
    assert out.rstrip().endswith("1 message(s) in 1 stream(s): 1 decoded (1 of them with a credential "
                                 "--munge-key did not open), 0 not decoded, 0 stream(s) stopped early")
    code, out, _ = run(FIXTURES / "ping.request.bin", "--munge-key", bad, "--summary")
    assert code == 1 and "(+1 credential(s) not opened)" in out and "not decoded" not in out
    code, out, _ = run(FIXTURES / "ping.request.bin", "--munge-key", bad, "--summary", "--json")
    row = json.loads(out)["types"][0]
    assert code == 1 and (row["not_decoded"], row["credential_not_opened"]) == (0, 1)


# ---------------------------------------------------------------------------
# hex dumps
# ---------------------------------------------------------------------------
def _all_frames() -> bytes:
    return b"".join(p.read_bytes() for p in RECORDINGS)


@pytest.mark.parametrize("style", ["xxd", "plain", "spec", "hexdump-C"])
def test_every_recording_decodes_from_hex_dumps(style):
    data = _all_frames()
    text = {
        "xxd": xxd_dump(data),
        "plain": "\n".join(data[i:i + 30].hex(" ") for i in range(0, len(data), 30)),
        "spec": "\n".join(f"{i:04x}: " + " ".join(data[j:j + 2].hex() for j in range(i, min(i + 16, len(data)), 2))
                          for i in range(0, len(data), 16)),
        "hexdump-C": "\n".join(f"{i:08x}  {data[i:i + 8].hex(' ')}  {data[i + 8:i + 16].hex(' ')}  |................|"
                               for i in range(0, len(data), 16)),
    }[style]
    assert detect_kind(text.encode()) == "hex"
    assert parse_hex_dump(text) == data
    code, out, _ = run("-", stdin=text.encode())
    assert code == 0
    assert f"{len(RECORDINGS)} message(s) in 1 stream(s): {len(RECORDINGS)} decoded" in out


def _canonical(data: bytes) -> str:
    """hexdump -C as util-linux prints it: a line the same as the one before is a "*", and a
    last line holds the length alone."""
    lines, previous = [], None
    for i in range(0, len(data), 16):
        row = data[i:i + 16]
        if row == previous and len(row) == 16:
            if lines[-1] != "*":
                lines.append("*")
            continue
        hexes = f"{row[:8].hex(' ')}  {row[8:].hex(' ')}".rstrip()
        lines.append(f"{i:08x}  {hexes:<48}  |{''.join(chr(b) if 32 <= b < 127 else '.' for b in row)}|")
        previous = row
    return "\n".join(lines + [f"{len(data):08x}"]) + "\n"


def _with_a_run_of_zeros() -> bytes:
    return _all_frames() + bytes(100) + RECORDINGS[0].read_bytes()


def test_hexdump_c_with_repeats_and_its_closing_offset():
    """The closing offset was read as 4 more bytes ("stream ended inside a frame"), and "*" failed."""
    data = _with_a_run_of_zeros()
    text = _canonical(data)
    assert "\n*\n" in text
    assert parse_hex_dump(text) == data


def test_real_od_output_with_repeats():
    """od -Ax -tx1 (coreutils): 6-digit offsets were read as data."""
    data = _with_a_run_of_zeros()
    text = subprocess.run(["od", "-Ax", "-tx1"], input=data, capture_output=True, check=True).stdout.decode()
    assert "\n*\n" in text
    assert parse_hex_dump(text) == data
    frames = subprocess.run(["od", "-Ax", "-tx1"], input=_all_frames(), capture_output=True, check=True).stdout
    code, out, _ = run("-", stdin=frames)
    assert code == 0 and f"{len(RECORDINGS)} message(s) in 1 stream(s): {len(RECORDINGS)} decoded" in out


@pytest.mark.parametrize("text, said", [
    ("00000000  00 01\n00000004\n", "line 2: offset 0x4 where 0x2 bytes were read"),
    ("00000000  00 01\n*\n00000005\n", "line 3: offset 0x5 where 0x2 bytes were read"),
    ("000000 00 01\nzz\n", "line 2 is not a hex dump line (offset, then bytes)"),
])
def test_offset_dumps_that_do_not_add_up_are_named(text, said):
    with pytest.raises(InputError, match=re.escape(said)):
        parse_hex_dump(text)


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_real_xxd_output_decodes(path, tmp_path):
    if shutil.which("xxd") is None:
        skip_or_fail(pytest, "xxd not installed (scripts/test installs Debian's xxd)")
    dump = subprocess.run(["xxd", str(path)], capture_output=True, check=True).stdout
    assert dump.decode() == xxd_dump(path.read_bytes())
    plain = subprocess.run(["xxd", "-p", str(path)], capture_output=True, check=True).stdout
    for text in (dump, plain):
        code, out, _ = run("-", stdin=text)
        assert code == 0 and "1 decoded" in out


@pytest.mark.parametrize("argv", [["xxd", "-e"], ["xxd", "-e", "-g", "8"], ["xxd", "-e", "-g", "2"]])
def test_a_dump_of_little_endian_words_is_refused_not_read_backwards(argv):
    """xxd -e prints each word's hex little-endian and its text in memory order: it was read as
    bytes in the wrong order ("length prefix 2919235584 over the limit")."""
    if shutil.which("xxd") is None:
        skip_or_fail(pytest, "xxd not installed (scripts/test installs Debian's xxd)")
    text = subprocess.run(argv, input=recording("ping", "request"), capture_output=True, check=True).stdout
    code, out, err = run("-", stdin=text)
    assert code == 2 and out == ""
    assert re.search(r"the ASCII column matches the hex only with each group's bytes reversed \(\d+ printable "
                     r"characters\): a dump of little-endian words \(xxd -e\) is not read", err), err


@pytest.mark.parametrize("argv", [["xxd"], ["xxd", "-g", "4"], ["xxd", "-g", "8"], ["xxd", "-u"], ["xxd", "-E"],
                                  ["xxd", "-c", "24"]])
def test_dumps_in_byte_order_with_their_text_column_are_read(argv):
    if shutil.which("xxd") is None:
        skip_or_fail(pytest, "xxd not installed (scripts/test installs Debian's xxd)")
    text = subprocess.run(argv, input=_all_frames(), capture_output=True, check=True).stdout
    code, out, _ = run("-", stdin=text)
    assert code == 0 and f"{len(RECORDINGS)} decoded" in out


def test_a_colon_dump_with_a_column_between_bars_is_read():
    """Refused by the first form of the xxd -e check (the bars shifted its column)."""
    data = recording("ping", "request")
    text = "".join(f"{at:08x}: {data[at:at + 16].hex(' '):<47}  |"
                   + "".join(chr(b) if 32 <= b < 127 else "." for b in data[at:at + 16]) + "|\n"
                   for at in range(0, len(data), 16))
    assert parse_hex_dump(text) == data


def test_an_xxd_e_line_whose_text_starts_with_a_space_is_still_compared():
    """The column is aligned from its right when its first character is a space byte."""
    from pyslurmrpc.decode.inputs import _column_counts
    assert _column_counts("00000000: 43424120   ABC") == (3, 0, 3)
    assert _column_counts("00000000: 20414243   ABC") == (0, 3, 3)


def test_a_text_column_edited_by_hand_in_a_few_places_is_still_read():
    lines = xxd_dump(recording("ping", "request")).splitlines()
    lines[2] = lines[2][:-3] + "XYZ"           # three characters that are not their bytes
    assert parse_hex_dump("\n".join(lines) + "\n") == recording("ping", "request")


@pytest.mark.parametrize("argv", [["xxd", "-a"], ["xxd", "-a", "-c", "8"], ["od", "-tx1"], ["od", "-Ax", "-tx1z"],
                                  ["od", "-tx1", "-w32"]])
def test_real_dumps_with_repeats_and_their_offset_styles(argv):
    """xxd -a's "*" was refused, od's own octal offsets read as hex, od -z's ">...<" column refused."""
    if shutil.which(argv[0]) is None:
        skip_or_fail(pytest, f"{argv[0]} not installed (scripts/test installs Debian's xxd)")
    data = _with_a_run_of_zeros()
    text = subprocess.run(argv, input=data, capture_output=True, check=True).stdout.decode()
    assert "\n*\n" in text
    assert parse_hex_dump(text) == data


@pytest.mark.parametrize("argv", [["od", "-tx1"], ["od", "-Ax", "-tx1"]])
def test_a_dump_that_starts_with_a_repeat(argv):
    """od's octal 0000100 after a leading "*" also fits as hex (0x100): 260 bytes were read for 68."""
    if shutil.which(argv[0]) is None:
        skip_or_fail(pytest, f"{argv[0]} not installed")
    data = bytes(64) + b"\x01\x02\x03\x04"
    text = subprocess.run(argv, input=data, capture_output=True, check=True).stdout.decode()
    assert text.splitlines()[1] == "*"
    assert parse_hex_dump(text) == data


@pytest.mark.parametrize("edit, said", [
    (lambda lines: lines[:1] + lines[2:], "line 2: offset 0x20 where 0x10 bytes were read"),
    (lambda lines: [lines[1], lines[0]] + lines[2:], "line 1: offset 0x10 where 0x0 bytes were read"),
    (lambda lines: lines[:2] + lines[4:], "line 3: offset 0x40 where 0x20 bytes were read"),
])
def test_an_xxd_dump_with_lines_lost_or_moved_is_named(edit, said):
    """xxd's offsets were not read: a line deleted or swapped gave wrong frames silently."""
    lines = xxd_dump(_all_frames()).splitlines()
    with pytest.raises(InputError, match=re.escape(said)):
        parse_hex_dump("\n".join(edit(lines)))


@pytest.mark.parametrize("text", [
    "00000000  00 00 00 10 22 00 00 00  00 00 00 00 00 00 00 00  |....|\n*\n80000000  00 00  |..|\n80000010\n",
    "00000000: 0000 0010 2200 0000 0000 0000 0000 0000  ....\n*\nfffffff00: 0000  ..\n",
    "0000000 00 00 00 10 22 00 00 00 00 00 00 00 00 00 00 00\n*\n7777777777 00\n",
])
def test_a_repeat_past_the_largest_dump_is_refused_before_it_is_made(text):
    """A 145-byte dump made the decoder take 4 GB (or raise MemoryError) expanding its "*"."""
    with pytest.raises(InputError, match=f"is past the {HEX_DUMP_MAX_BYTES} bytes a hex dump may stand for"):
        parse_hex_dump(text)
    code, out, err = run("-", stdin=text.encode())
    assert code == 2 and out == "" and "a hex dump may stand for" in err


@pytest.mark.parametrize("stdin", [b"\n\n\n", b"# nothing\n"])
def test_a_hex_dump_of_no_bytes_is_an_input_error_as_an_empty_file_is(stdin):
    code, out, err = run("-", stdin=stdin)
    assert code == 2 and out == "" and "the hex dump holds no bytes" in err


def test_bad_hex_is_an_input_error():
    code, _, err = run("-", stdin=b"0000 00zz\n")
    assert code == 2 and "line 1" in err


# ---------------------------------------------------------------------------
# captures
# ---------------------------------------------------------------------------
def _conversations(ipv6: bool = False) -> list[bytes]:
    packets = []
    for i, name in enumerate(NAMES):
        client = (f"fd00::{i + 10:x}", 40000 + i) if ipv6 else (f"10.0.0.{i + 10}", 40000 + i)
        server = ("fd00::1", 6818) if ipv6 else ("10.0.0.1", 6817)
        packets += tcp_conversation(recording(name, "request"), recording(name, "response"),
                                    client=client, server=server, segment=48 + i)
    return packets


def _check_capture_output(out: str, ipv6: bool):
    headings = re.findall(r"^=== TCP (\S+) -> (\S+) \(([^)]*)\)", out, re.M)
    assert len(headings) == 2 * len(NAMES)
    assert all(h[2] == ("client to server" if i % 2 == 0 else "server to client") for i, h in enumerate(headings))
    if ipv6:
        assert headings[0][0].startswith("[fd00::")
    assert f"{2 * len(NAMES)} message(s) in {2 * len(NAMES)} stream(s): {2 * len(NAMES)} decoded" in out


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("writer", [pcap_bytes, pcapng_bytes], ids=["pcap", "pcapng"])
def test_every_recording_decodes_from_a_capture(tmp_path, writer, ipv6):
    path = tmp_path / "capture"
    path.write_bytes(writer(_conversations(ipv6)))
    code, out, err = run(path)
    assert code == 0, out + err
    _check_capture_output(out, ipv6)
    streams = load(path.read_bytes(), "capture").streams
    for i, name in enumerate(NAMES):
        assert streams[2 * i].data == recording(name, "request")
        assert streams[2 * i + 1].data == recording(name, "response")


def test_capture_byte_orders_and_nanoseconds(tmp_path):
    packets = tcp_conversation(recording("ping", "request"), recording("ping", "response"))
    for data in (pcap_bytes(packets, byteorder=">", nanoseconds=True), pcapng_bytes(packets, byteorder=">")):
        (tmp_path / "c").write_bytes(data)
        assert run(tmp_path / "c")[0] == 0


def test_capture_on_another_port_needs_port(tmp_path):
    packets = tcp_conversation(recording("ping", "request"), recording("ping", "response"),
                               server=("10.0.0.1", 7817))
    (tmp_path / "c.pcap").write_bytes(pcap_bytes(packets))
    code, _, err = run(tmp_path / "c.pcap")
    assert code == 2 and "no TCP payload" in err
    code, out, _ = run(tmp_path / "c.pcap", "--port", 7817)
    assert code == 0 and "REQUEST_PING" in out and "RESPONSE_SLURM_RC" in out


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_a_capture_on_other_ports_names_the_servers_port(tmp_path, stdin):
    """It said only "no TCP payload to or from ports 6817, 6818"; a test controller's random
    port (here above its clients' ports, so the lower port is no guide) had to be guessed."""
    packets = []
    for i in range(3):
        packets += tcp_conversation(recording("ping", "request"), recording("ping", "response"),
                                    client=("10.0.0.9", 40000 + i), server=("10.0.0.1", 60359))
    data = pcap_bytes(packets)
    (tmp_path / "c.pcap").write_bytes(data)
    code, _, err = run("-", stdin=data) if stdin else run(tmp_path / "c.pcap")
    assert code == 2 and err.rstrip().endswith(
        "no TCP payload to or from ports 6817, 6818 (the capture's TCP payload is on port(s) 60359: "
        "name the server's with --port)"), err
    with pytest.raises(InputError, match=r"port\(s\) 60359: name the server's with --port"):
        load(data, "c.pcap")      # the whole-capture reader says the same


def test_a_busy_capture_still_names_a_server_seen_late():
    """64 one-off client ports filled the table, and the controller's port, seen after them,
    was never named."""
    from pyslurmrpc.decode.tcp import OTHER_PORTS_KEPT
    packets = []
    for i in range(OTHER_PORTS_KEPT + 6):
        packets += tcp_conversation(b"SSH-2.0\r\n", b"SSH-2.0\r\n", client=("10.0.0.9", 30000 + i),
                                    server=("10.0.0.1", 22))
    for i in range(3):
        packets += tcp_conversation(recording("ping", "request"), recording("ping", "response"),
                                    client=("10.0.0.9", 40000 + i), server=("10.0.0.1", 60359))
    code, _, err = run("-", stdin=pcap_bytes(packets))
    assert code == 2 and "is on port(s) 22, 60359: name the server's with --port" in err, err


@pytest.mark.parametrize("kept", [1, 14, 20, 34, 53], ids=lambda n: f"{n}-bytes-kept")   # of 54
@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_a_damaged_capture_with_nothing_to_decode_says_what_is_damaged(tmp_path, stdin, kept):
    """The reader's warning (a record whose length is past the end) comes before the error;
    it was dropped, and only "no TCP payload" was said.  It is said once: the cut packet was
    also counted as skipped, "cut short or malformed (... its snap length; tcpdump -s 0 ...)",
    blaming a snap length for a file that was only cut, or not, by where the cut fell."""
    whole = pcap_bytes(tcp_conversation(recording("ping", "request"), recording("ping", "response")))
    cut = whole[:24 + 16 + kept]           # the file header, then the first record cut short
    (tmp_path / "c.pcap").write_bytes(cut)
    code, _, err = run("-", stdin=cut) if stdin else run(tmp_path / "c.pcap")
    first = "pyslurmrpc decode: warning: pcap record 1 cut short by the end of the file"
    assert code == 2 and err.splitlines()[0] == first
    assert len(err.splitlines()) == 2 and "no TCP payload" in err.splitlines()[1], err


@pytest.mark.parametrize("damage", ["length", "cut"])
def test_a_capture_whose_reading_stopped_is_not_all_decoded(tmp_path, damage):
    """A record claiming 4 GB stopped the reading and the decoder still exited 0 ("all decoded"),
    with nothing in the JSON output to say the rest was lost."""
    first = pcap_bytes(tcp_conversation(recording("ping", "request"), recording("ping", "response")))
    more = pcap_bytes(tcp_conversation(recording("able_running", "request"), recording("able_running", "response"),
                                       client=("10.0.0.9", 40009)))[24:]
    if damage == "length":
        more = more[:8] + (0xFD5A370C).to_bytes(4, "little") + more[12:]
        said = f"pcap record at file offset {len(first)} claims "
    else:
        more = more[:-7]
        said = "cut short"
    (tmp_path / "c.pcap").write_bytes(first + more)
    code, out, err = run(tmp_path / "c.pcap")
    assert code == 1 and "REQUEST_PING" in out and said in err, err
    code, out, _ = run(tmp_path / "c.pcap", "--json")
    objs = [json.loads(line) for line in out.splitlines()]
    warned = [o["reason"] for o in objs if o.get("kind") == "input_warning"]
    assert code == 1 and any(said in reason for reason in warned), warned
    code, out, _ = run(tmp_path / "c.pcap", "--json", "--summary")
    summary = json.loads(out)                      # still one document
    assert code == 1 and summary["kind"] == "summary" and any(said in w for w in summary["warnings"])


def test_several_messages_on_one_connection(tmp_path):
    req = recording("able_running", "request") + recording("ping", "request")
    resp = recording("able_running", "response") + recording("ping", "response")
    (tmp_path / "c.pcap").write_bytes(pcap_bytes(tcp_conversation(req, resp, segment=100)))
    code, out, _ = run(tmp_path / "c.pcap", "--json")
    assert code == 0
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["msg_type_name"] for o in objs] == ["REQUEST_CHECKPOINT", "REQUEST_PING",
                                                  "RESPONSE_CHECKPOINT", "RESPONSE_SLURM_RC"]
    assert objs[1]["stream_offset"] == len(recording("able_running", "request"))


def test_missing_segment_is_reported(tmp_path):
    packets = tcp_conversation(recording("ping", "request"), recording("ping", "response"), retransmit=False)
    del packets[4]  # the second request segment
    (tmp_path / "c.pcap").write_bytes(pcap_bytes(packets))
    code, out, _ = run(tmp_path / "c.pcap")
    assert code == 1
    assert "never captured" in out and "RESPONSE_SLURM_RC" in out


def test_a_stream_with_two_problems_counts_once():
    """A gap, then a frame the stream ended inside: "2 stream(s) stopped early" for one."""
    packets = tcp_conversation(recording("ping", "request"), recording("ping", "response"), retransmit=False)
    del packets[4]
    code, out, _ = run("-", stdin=pcap_bytes(packets))
    assert out.count("!!! ") == 2 and out.rstrip().endswith("1 stream(s) stopped early"), out
    code, out, _ = run("--summary", "-", stdin=pcap_bytes(packets))
    assert "1 stream(s) stopped early:" in out and out.count("!!! ") == 2
    code, out, _ = run("--summary", "--json", "-", stdin=pcap_bytes(packets))
    summary = json.loads(out)
    assert summary["stopped_early"] == 1 and len(summary["stream_errors"]) == 2


# ---------------------------------------------------------------------------
# bad frames, bad input
# ---------------------------------------------------------------------------
def test_corrupted_frame_is_reported_and_the_next_one_decodes():
    good = recording("create_imagedir", "request")
    bad = bytearray(good)
    bad[190:194] = (200).to_bytes(4, "big")  # image_dir string size past the end
    code, out, _ = run("-", stdin=bytes(bad) + recording("ping", "request"))
    assert code == 1
    assert "Frame 1 at stream offset 0: REQUEST_CHECKPOINT (5009), 208 bytes -- NOT DECODED" in out
    assert "field body.image_dir, offset 190" in out
    assert "[0190] undecoded: 18 bytes" in out and "0190: 00 00 00 c8 2f 6f 70 74" in out
    assert "Frame 2 at stream offset 208: REQUEST_PING (1008)" in out
    assert "1 decoded, 1 not decoded" in out


def test_corrupted_frame_in_json():
    bad = bytearray(recording("able_running", "response"))
    bad[10:12] = (4242).to_bytes(2, "big")
    code, out, _ = run("--json", "-", stdin=bytes(bad) + recording("ping", "response"))
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["ok"] is False and first["error"]["type"] == "UnknownMessageTypeError"
    assert first["error"]["field"] == "header.msg_type" and first["error"]["offset"] == 10
    assert "4242" in first["error"]["reason"]  # the text (ProtocolError.detail), not the enum
    assert second["ok"] is True and second["msg_type_name"] == "RESPONSE_SLURM_RC"


def test_bad_length_prefix_stops_the_stream():
    code, out, _ = run("-", stdin=recording("ping", "request") + b"\x7f\xff\xff\xff" + b"\0" * 40)
    assert code == 1
    assert "REQUEST_PING" in out
    assert re.search(r"!!! stream offset \d+: length prefix 2147483647 over the limit", out)
    code, out, _ = run("--json", "-", stdin=recording("ping", "request")[:-3])
    assert code == 1
    assert json.loads(out)["kind"] == "stream_error"


def test_usage_and_input_errors(tmp_path):
    assert run(tmp_path / "missing.bin")[0] == 2
    assert run("-", stdin=b"")[0] == 2
    assert run("--port", "99999", "x")[0] == 2
    (tmp_path / "junk.pcap").write_bytes(bytes.fromhex("a1b2c3d4") + b"\0" * 4)
    assert run(tmp_path / "junk.pcap")[0] == 2


def test_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--munge-key" in out and "--json" in out and "--port" in out


class _Terminal(_Stdin):
    def isatty(self) -> bool:
        return True


def test_no_file_on_a_terminal_is_a_usage_error_not_a_wait():
    """decode --munge-key CAPTURE (the key's path forgotten) took the capture as the key and
    then sat waiting for the terminal's input, saying nothing."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["--munge-key", str(FIXTURES / "munge.key")], stdout=out, stderr=err, stdin=_Terminal(b""))
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue() == ("pyslurmrpc decode: no FILE given and standard input is a terminal: name a capture, "
                              "a file of frames or a hex dump, pipe one in, or give - to type or paste one\n")
    code = main(["-"], stdout=out, stderr=err, stdin=_Terminal(recording("ping", "request")))
    assert code == 0 and "REQUEST_PING" in out.getvalue()       # "-" reads the terminal on purpose


def test_a_hex_dump_saved_with_a_byte_order_mark_is_read_as_a_dump():
    """An editor's UTF-8 mark made the dump raw frames (a 4 GiB length prefix)."""
    text = b"\xef\xbb\xbf" + xxd_dump(recording("ping", "request")).encode()
    code, out, _ = run("-", stdin=text)
    assert code == 0 and "(hex dump)" in out and "REQUEST_PING" in out
    assert load(text, "bom.txt").streams[0].data == recording("ping", "request")
    # before bytes that are not a dump, the mark is kept: the stream is read as it came
    code, out, _ = run("-", stdin=b"\xef\xbb\xbf" + recording("ping", "request"))
    prefix = int.from_bytes(b"\xef\xbb\xbf\x00", "big")
    assert code == 1 and f"length prefix {prefix} over the limit" in out


def test_packets_cut_by_the_snap_length_say_so():
    """They were "IPv4 packet cut short or malformed", as if damaged."""
    import struct
    packets = tcp_conversation(recording("ping", "request"), recording("ping", "response"))
    snap = 96
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap, 1)]
    for i, data in enumerate(packets):
        out.append(struct.pack("<IIII", 0, i * 1000, min(len(data), snap), len(data)) + data[:snap])
    code, _, err = run("-", stdin=b"".join(out))
    assert code == 2
    assert "cut short or malformed (the capture kept only part of it: its snap length; tcpdump -s 0 keeps " \
           "whole packets)" in err, err


@pytest.mark.parametrize("argv, said", [
    (["xxd", "-d"], "(read as decimal it adds up: dump with hex offsets, not od -Ad or xxd -d)"),
    (["od", "-Ad", "-tx1"], "(read as decimal it adds up: dump with hex offsets, not od -Ad or xxd -d)"),
    (["xxd", "-o", "4096"], "(the dump does not start at offset 0: dump from the first byte, without xxd -s or -o)"),
])
def test_offsets_that_do_not_add_up_say_the_likely_cause(argv, said):
    """They read as a lost line: "line 2: offset 0x16 where 0x10 bytes were read"."""
    if shutil.which(argv[0]) is None:
        skip_or_fail(pytest, f"{argv[0]} not installed (scripts/test installs Debian's xxd)")
    text = subprocess.run(argv, input=recording("ping", "request"), capture_output=True, check=True).stdout
    code, _, err = run("-", stdin=text)
    assert code == 2 and said in err, err


def test_a_short_xxd_e_dump_is_refused_too():
    """A 24-byte reply shows two or three printable characters: under the first threshold (4)."""
    if shutil.which("xxd") is None:
        skip_or_fail(pytest, "xxd not installed (scripts/test installs Debian's xxd)")
    text = subprocess.run(["xxd", "-e"], input=recording("ping", "response")[:24], capture_output=True,
                          check=True).stdout
    code, _, err = run("-", stdin=text)
    assert code == 2 and "a dump of little-endian words (xxd -e) is not read" in err, err


def test_a_file_holding_an_http_answer_is_named_as_one():
    """It was taken for a broken hex dump: "line 1 is not a hex dump: 'HTTP/1.1 405 NOT ALLOWED'"."""
    code, _, err = run("-", stdin=b"HTTP/1.1 405 NOT ALLOWED\r\nContent-Length: 0\r\n\r\n")
    assert code == 2 and err == ("pyslurmrpc decode: <stdin>: an HTTP message, not Slurm frames nor a hex dump "
                                 "(26.05 answers a request in a version it refuses in HTTP): "
                                 "'HTTP/1.1 405 NOT ALLOWED'\n")


@pytest.mark.parametrize("argv", [["od", "-tx2"], ["od", "-tx4"], ["od", "-Ax", "-tx2"]])
def test_a_dump_of_words_names_the_byte_order_problem(argv):
    """hexdump's default and od -tx2/-tx4 group bytes into words in the machine's order: they
    were refused with "line 1 is not a hex dump" alone."""
    text = subprocess.run(argv, input=recording("ping", "request"), capture_output=True, check=True).stdout
    code, _, err = run("-", stdin=text)
    assert code == 2 and "line 1 is not a hex dump (groups of 2 or 4 bytes, as hexdump and od -tx2 or -tx4 " \
                         "print them, are words in this machine's byte order" in err, err
