"""Coverage-guided fuzzing of every decoder that reads untrusted bytes (issue 8).

One fuzz target, :func:`check_input`, exercises on each input:

* ``pyslurmrpc.wire.decode_message``: only :class:`ProtocolError` may escape,
  and a frame it accepts must re-encode byte for byte (``encode_message``);
* ``pyslurmrpc.wire.Framer``: fed the same bytes in a random chunking, it must
  return exactly the frames an independent reference splitter finds, raise
  only ``FrameTooLargeError`` (a prefix over the limit) and report the same
  leftover;
* the capture decoder ``pyslurmrpc.decode``: ``load`` (raw, hex dump, pcap,
  pcapng detection and TCP reassembly) raises only ``InputError``;
  ``decode_stream``/``decode_frame`` with a MUNGE opener (credentials opened
  offline with fixtures/munge.key) never raise; the text and JSON renderings
  never raise and never print a credential.

The first input byte selects variants (bit 0: rewrite the length prefix to
match, so mutations reach the inner fields; bits 1-7: the chunking seed), the
rest is the data.  Regression inputs live in ``fixtures/fuzz/`` in that same
format and are replayed by :func:`test_fuzz_regression_inputs`.

Engines:

* ``atheris`` (libFuzzer, coverage-guided) when it is installed: this file is
  also the atheris driver (``python tests/test_fuzz.py [libFuzzer flags]``),
  which :func:`test_fuzz_coverage_guided` runs in a child process for a
  bounded time, seeded with every recorded frame and one built frame per
  (version, message type); pyslurmrpc and construct are instrumented
  as they are imported, and so are the parsers construct compiles at run time;
* otherwise the same test runs hypothesis with a mutation strategy over the
  same seeds, repeatedly until the time budget is spent (never a skip).

``PYSLURMRPC_FUZZ_SECONDS`` sets the budget of the coverage-guided run
(default 50); :func:`test_fuzz_mutations_hypothesis` always adds a fixed
budget of hypothesis examples (``PYSLURMRPC_FUZZ_EXAMPLES``, default 1500).
A crash fails the test with the input in hex (and the file, copied to
``$PYSLURMRPC_FUZZ_ARTIFACTS`` when set); add it as
``fixtures/fuzz/<what-it-exercised>.bin`` with a line in the README there.
"""

from __future__ import annotations

import contextlib
import json
import re
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":  # the atheris driver: instrument the code under test as it loads
    import atheris

    _instrumented = atheris.instrument_imports(include=["pyslurmrpc", "construct"])
else:
    _instrumented = contextlib.nullcontext()

with _instrumented:
    from pyslurmrpc.decode import MungeOpener, decode_stream, load
    from pyslurmrpc.decode.inputs import InputError
    from pyslurmrpc.decode.render import stream_json, stream_lines
    from pyslurmrpc.decode.withheld import LONG_BASE64_RUN
    from pyslurmrpc.decode.writer import pcap_bytes, pcapng_bytes, tcp_conversation
    from pyslurmrpc.errors import FrameTooLargeError, ProtocolError
    from pyslurmrpc.wire import (
        BODY_TABLE, MAX_MSG_SIZE, VERSIONS, Address, Forward, Framer, Header, Message, MungeAuthCred,
        NoneAuthCred, RetDataInfo, ReturnCodeMsg, decode_message, encode_message,
    )

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
REGRESSIONS = FIXTURES / "fuzz"
MUNGE_KEY = FIXTURES / "munge.key"
FUZZ_SECONDS = float(os.environ.get("PYSLURMRPC_FUZZ_SECONDS", "50"))
#: the longest input the coverage-guided engine generates
MAX_LEN = 2048
#: a child process that overruns its budget by this much has hung
CHILD_MARGIN = 60.0

_OPENER = MungeOpener(MUNGE_KEY)


# ---------------------------------------------------------------------------
# the target
# ---------------------------------------------------------------------------
def split_input(data: bytes) -> tuple[bytes, int]:
    """(payload, chunking seed) from a fuzz input; bit 0 of byte 0 fixes the length prefix."""
    if not data:
        return b"", 0
    mode, payload = data[0], data[1:]
    if mode & 1 and len(payload) >= 4:
        payload = (len(payload) - 4).to_bytes(4, "big") + payload[4:]
    return payload, mode >> 1


def check_input(data: bytes) -> None:
    """The fuzz target: raise (AssertionError or whatever escaped) when a decoder misbehaves."""
    payload, seed = split_input(data)
    check_decoder(payload)
    check_framer(payload, seed)
    check_capture_decoder(payload)


def check_decoder(frame: bytes) -> None:
    try:
        message = decode_message(frame)
    except ProtocolError as exc:
        assert exc.offset is None or 0 <= exc.offset <= len(frame), (exc, exc.offset)
        return
    again = encode_message(message)
    assert again == frame, f"re-encoding differs: {again.hex()} != {frame.hex()}"


def reference_split(data: bytes, limit: int = MAX_MSG_SIZE):
    """(frames, leftover, refused) by the length prefix, written independently of the Framer."""
    frames, pos = [], 0
    while len(data) - pos >= 4:
        need = int.from_bytes(data[pos:pos + 4], "big")
        if need > limit:
            return frames, data[pos:], True
        if len(data) - pos - 4 < need:
            break
        frames.append(data[pos:pos + 4 + need])
        pos += 4 + need
    return frames, data[pos:], False


def chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, pos = [], 0
    while pos < len(data):
        size = rng.choice((0, 1, 1, 2, 3, 4, 5, 7, 64, len(data)))
        out.append(data[pos:pos + size])
        pos += size
    return out + [b""]


def check_framer(data: bytes, seed: int) -> None:
    frames, leftover, refused = reference_split(data)
    framer, got = Framer(), []
    try:
        for piece in chunks(data, seed):
            got += framer.feed(piece)
    except FrameTooLargeError:
        assert refused, "Framer refused a stream whose prefixes are all within the limit"
        assert got == frames, "Framer lost or changed frames before the refused prefix"
        return
    assert not refused, "Framer accepted a length prefix over MAX_MSG_SIZE"
    assert got == frames, "Framer cut the stream differently from the length prefixes"
    assert framer.pending == len(leftover)
    try:
        framer.close()
    except ProtocolError:
        assert leftover
    else:
        assert not leftover


def check_capture_decoder(data: bytes) -> None:
    try:
        source = load(data, "fuzz")
    except InputError:
        streams = [data]  # decode the bytes as raw frames anyway
    else:
        streams = [s.data for s in source.streams]
    for raw in streams:
        report = decode_stream(raw, "fuzz", _OPENER)
        credentials = [f.value for fr in report.frames for f in fr.fields
                       if f.name == "credential" and isinstance(f.value, str) and len(f.value) >= 8
                       and not _shown_elsewhere(report, f.value)]
        text = "\n".join(stream_lines(report))
        lines = list(stream_json(report))
        for line in lines:
            json.loads(line)
        for cred in credentials:
            assert cred not in text and cred not in "".join(lines), "a credential was rendered"
        for part in _credential_like(raw) + _long_runs(report, raw):   # also where no field was read as one
            if _HEX_DIGITS.fullmatch(part):     # its text is also the hex of other bytes ("0000...")
                continue
            if not any(part in bytes(f.raw) for fr in report.frames for f in fr.fields if f.name != "credential"):
                shown = (part.hex(" "), part.decode("ascii"))
                everything = text + "".join(lines)
                assert not any(p in everything for p in shown), "undecoded credential dumped"
                assert not _hex_holds(everything, part), "undecoded credential dumped in JSON hex"


def _credential_like(raw: bytes) -> list[bytes]:
    """12 bytes from inside each MUNGE credential's text in ``raw``, decoded or not, unless the
    same bytes occur in ``raw`` outside a credential too (a seed's "MUNGE:AAAA..." beside a
    nodelist of A's: a real credential is random)."""
    parts = [m.group(1) for m in re.finditer(rb"MUNGE:([A-Za-z0-9+/=]{12})", raw)]
    return [p for p in set(parts) if raw.count(p) == raw.count(b"MUNGE:" + p)]


#: text that a hex dump of any bytes may hold
_HEX_DIGITS = re.compile(rb"[0-9a-f]+")
#: a base64 run the decoder withholds without the MUNGE: prefix (decode/withheld.py LONG_BASE64_RUN)
_LONG_RUN = re.compile(rb"[A-Za-z0-9+/=]{%d,}" % LONG_BASE64_RUN)


def _long_runs(report, raw: bytes) -> list[bytes]:
    """12 bytes from the middle of each base64 run long enough to be a credential whose prefix
    was lost, within one frame (the decoder looks frame by frame), unless they occur elsewhere
    in the stream too."""
    parts = []
    for fr in report.frames:
        for m in _LONG_RUN.finditer(fr.frame):
            middle = (m.start() + m.end()) // 2
            parts.append(fr.frame[middle - 6:middle + 6])
    return [p for p in set(parts) if raw.count(p) == 1]


def _hex_holds(text: str, part: bytes) -> bool:
    """Whether a hex string in ``text`` holds ``part`` at a byte boundary ("14141414" holds
    "4141" only half a byte off, which is not those bytes)."""
    return any(m.start(1) % 2 == 0 for h in re.findall(r'"([0-9a-f-]+)"', text)
               for m in re.finditer(f"(?=({part.hex()}))", h))


def _shown_elsewhere(report, value: str) -> bool:
    """True when a non-secret field of any frame of the stream legitimately holds the same text
    (a peer may put any text in, say, a nodelist; the renderer cannot know it was a credential)."""
    return any(value in str(f.value) for fr in report.frames for f in fr.fields if f.name != "credential")


# ---------------------------------------------------------------------------
# seeds
# ---------------------------------------------------------------------------
def _built_frames() -> list[bytes]:
    """One frame per (version, message type), with forwarding, ret_list and both auth kinds."""
    values = {"op": 2, "data": 1, "job_id": 2, "step_id": 0, "job_step_id": 0, "task_id": 1,
              "image_dir": "/ckpt", "error_msg": "disk full", "error_code": 5, "begin_time": 1600000000,
              "event_time": 1600000001, "timestamp": 1600000002, "return_code": 2037}
    frames = []
    for code, spec in sorted(VERSIONS.items()):
        family = "family" in [sc.name for sc in spec.layout.addr.subcons]
        addr = Address(2, 0x7F000001, 6817) if family else Address(None, 0x7F000001, 6817)
        for msg_type, schema in sorted(spec.layout.bodies.items()):
            body = BODY_TABLE[msg_type].cls(**{sc.name: values[sc.name] for sc in schema.subcons})
            names = [sc.name for sc in spec.layout.forward.subcons]
            forward = Forward(2, "n[1-2]", 10000, 50, None, 1 if "tree_depth" in names else None)
            rets = (RetDataInfo("n1", 0, 8001, ReturnCodeMsg(return_code=0)),)
            auth = MungeAuthCred(credential="MUNGE:AAAAAAAAAAAA:")
            header = Header(version=code, msg_type=int(msg_type), forward=forward, ret_list=rets,
                            orig_addr=addr)
            for message in (Message(header, auth, body),
                            Message(Header(version=code, msg_type=int(msg_type), orig_addr=addr),
                                    NoneAuthCred(uid=0, gid=0, hostname="n1"), body)):
                try:
                    frames.append(encode_message(message))
                except ProtocolError:
                    pass  # e.g. auth/none has no layout in this version
    return frames


def seed_inputs() -> list[bytes]:
    """Every recorded frame, the built frames, two captures, and the regression inputs."""
    recorded = sorted(FIXTURES.glob("*.bin")) + sorted(FIXTURES.glob("*/*.bin"))
    frames = [p.read_bytes() for p in recorded if p.parent != REGRESSIONS]
    frames += _built_frames()
    request = (FIXTURES / "able_running.request.bin").read_bytes()
    response = (FIXTURES / "able_running.response.bin").read_bytes()
    packets = tcp_conversation(request, response, server=("10.0.0.2", 6817))
    seeds = [b"\x01" + f for f in frames] + [b"\x00" + pcap_bytes(packets), b"\x00" + pcapng_bytes(packets)]
    seeds += [b"\x00" + (request + response).hex().encode()]
    seeds += [p.read_bytes() for p in sorted(REGRESSIONS.glob("*.bin"))]
    return seeds


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------
def regression_files() -> list[Path]:
    return sorted(REGRESSIONS.glob("*.bin"))


def test_regression_inputs_exist():
    """Every crash the fuzzers found is kept as an input file (see fixtures/fuzz/README.md)."""
    assert regression_files(), "fixtures/fuzz/ holds no regression inputs"


def test_fuzz_regression_inputs():
    """Replay every saved input through the whole target."""
    for path in regression_files():
        try:
            check_input(path.read_bytes())
        except Exception as exc:  # name the file
            raise AssertionError(f"{path.name}: {type(exc).__name__}: {exc}") from exc


def test_seeds_pass_the_target():
    """The seeds themselves are good inputs (accepted frames round-trip, captures decode)."""
    seeds = seed_inputs()
    assert len(seeds) > 100
    accepted = 0
    for data in seeds:
        check_input(data)
        payload, _ = split_input(data)
        with contextlib.suppress(ProtocolError):
            decode_message(payload)
            accepted += 1
    assert accepted > 100


def _atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def test_fuzz_coverage_guided(tmp_path):
    """libFuzzer (atheris) for PYSLURMRPC_FUZZ_SECONDS; without atheris, hypothesis for as long."""
    if not _atheris_available():
        deadline = time.monotonic() + FUZZ_SECONDS
        runs = 0
        while time.monotonic() < deadline:
            _hypothesis_mutations()
            runs += 1
        assert runs
        return
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(seed_inputs()):
        (corpus / f"seed-{i:04d}").write_bytes(seed)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    cmd = [sys.executable, str(Path(__file__).resolve()), f"-max_total_time={int(FUZZ_SECONDS)}",
           f"-max_len={MAX_LEN}", "-timeout=20", "-rss_limit_mb=2048", "-print_final_stats=1",
           f"-artifact_prefix={artifacts}/", str(corpus)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=FUZZ_SECONDS + CHILD_MARGIN)
    crashes = sorted(artifacts.iterdir())
    if proc.returncode != 0 or crashes:
        saved = []
        for crash in crashes:
            keep = Path(os.environ.get("PYSLURMRPC_FUZZ_ARTIFACTS", tmp_path)) / crash.name
            if keep != crash:
                shutil.copy(crash, keep)
            saved.append(f"{keep} = {crash.read_bytes().hex()}")
        raise AssertionError(
            f"fuzzer exit {proc.returncode}; crash inputs (add them to fixtures/fuzz/):\n"
            + "\n".join(saved) + "\n--- stderr tail ---\n" + proc.stderr[-4000:])
    stats = [line for line in proc.stderr.splitlines() if line.startswith("stat::number_of_executed_units")]
    assert stats and int(stats[0].split()[-1]) > 0, proc.stderr[-2000:]


# hypothesis mutations: always run, also the fallback engine ----------------------------------
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_SEEDS = None


def _seeds():
    global _SEEDS
    if _SEEDS is None:
        _SEEDS = seed_inputs()
    return _SEEDS


@st.composite
def mutated(draw):
    seeds = _seeds()
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(("flip", "set", "insert", "delete", "splice", "u32", "cut")))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif kind == "splice":
            other = draw(st.sampled_from(seeds))
            data[pos:] = other[draw(st.integers(0, len(other))):]
        elif kind == "u32":  # interesting 32-bit values where string sizes and counts live
            value = draw(st.sampled_from((0, 1, 0xFFFFFFFF, 0xFFFFFFFE, MAX_MSG_SIZE, MAX_MSG_SIZE + 1,
                                          0x7FFFFFFF, 0x80000000, 0xFFFF, 0x10000)))
            data[pos:pos + 4] = value.to_bytes(4, "big")
        elif kind == "cut":
            del data[pos:]
    return bytes(data)


@settings(max_examples=int(os.environ.get("PYSLURMRPC_FUZZ_EXAMPLES", "1500")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(mutated())
def _hypothesis_mutations(data):
    check_input(data)


def test_fuzz_mutations_hypothesis():
    """Structure-aware mutations of the seeds (random each run: not derandomized)."""
    _hypothesis_mutations()


# ---------------------------------------------------------------------------
# atheris driver
# ---------------------------------------------------------------------------
def _instrument_compiled_parsers() -> int:
    """Instrument the parsers wire/_fastpath.py generated at import (exec'd code that
    ``instrument_imports`` never sees); much cheaper than ``atheris.instrument_all``."""
    import types

    done = set()
    for spec in VERSIONS.values():
        for compiled in (spec.compiled, spec.compiled_head, *spec.compiled_bodies.values()):
            filename = compiled.parse.__code__.co_filename
            for fn in list(compiled.parse.__globals__.values()):
                if (isinstance(fn, types.FunctionType) and id(fn) not in done
                        and fn.__code__.co_filename == filename):
                    atheris.instrument_func(fn)
                    done.add(id(fn))
    return len(done)


def _atheris_main() -> None:
    def target(data: bytes) -> None:
        check_input(data)

    _instrument_compiled_parsers()
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    _atheris_main()
