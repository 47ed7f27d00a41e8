"""Recognise the input (raw frames, hex dump, pcap, pcapng) and turn it into byte streams."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Iterable

from .capture import CaptureError, capture_kind, read_capture
from .packets import NotTcp, SkipReason, parse_packet
from ..wire.constants import HTTP_PREFIX
from .tcp import DEFAULT_PORTS, OtherPorts, reassemble
from .withheld import masked_text

#: Bytes a hex dump may consist of.
_TEXT_BYTES = frozenset((string.printable).encode())
#: "0000: 0000 00cc ..." (the specs, xxd): an offset and a colon, the hex, perhaps an ASCII column
_COLON_LINE = re.compile(r"^\s*(?:0x)?([0-9a-fA-F]+):\s?(.*)$")
#: "00000000  00 00 00 cc ...  |....|" (hexdump -C) or "000000 00 00 00 cc ..." (od -tx1, with
#: -Ax or od's own octal offsets, -z's ">...<" column): an offset of 6-16 digits, then bytes
#: as two-digit groups, then perhaps an ASCII column
_OFFSET_LINE = re.compile(r"^([0-9a-fA-F]{6,16})((?:\s+[0-9a-fA-F]{2})+)\s*(?:\|.*\||>.*<)?\s*$")
#: the line that closes such a dump: the offset past the last byte, alone
_OFFSET_ALONE = re.compile(r"^([0-9a-fA-F]{6,16})\s*$")
#: an offset, then groups of 2 or 4 bytes: hexdump's default, hexdump -x, od -tx2, od -tx4
_WORD_LINE = re.compile(r"^[0-9a-fA-F]{6,16}(?:\s+(?:[0-9a-fA-F]{4}|[0-9a-fA-F]{8}))+\s*$")
_WORDS_HINT = (" (groups of 2 or 4 bytes, as hexdump and od -tx2 or -tx4 print them, are words in this "
               "machine's byte order: dump with hexdump -C, od -tx1 or xxd)")
#: how much of a line that is not a dump line its error quotes
_QUOTED_MAX = 60
#: the widest line of a dump with offsets taken (xxd, hexdump -C and od print 16 bytes; -c, -w ask for more)
_OFFSET_DUMP_WIDTH_MAX = 4096
#: the most bytes a hex dump may stand for: an offset past it (as a "*" repeat claims) is refused
#: before a byte is made.  A 145-byte dump claiming 0x80000000 bytes took 4 GB of memory
HEX_DUMP_MAX_BYTES = 64 << 20
#: Two spaces end the hex part of an xxd line (the ASCII column follows).
_COLUMN_GAP = "  "
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
#: the byte order mark some editors write before UTF-8 text: read as a length prefix it would
#: claim 4 GiB, so no stream of frames starts with it
UTF8_BOM = b"\xef\xbb\xbf"
#: printable characters of an xxd ASCII column that must disagree with their bytes (and agree
#: with them reversed group by group) before a dump is refused as xxd -e's: one is enough, as a
#: 24-byte reply may show three (a hand edit that happens to match the reversed bytes is not
#: a worry); most of the column must disagree
_COLUMN_DISAGREES_MIN = 1
_OCTAL_DIGITS = frozenset("01234567")
#: the width of od's own (octal) offsets; od -Ax prints 6 hex digits, hexdump -C 8
_OD_OCTAL_WIDTH = 7
#: Packet-level reasons worth a warning (others are just traffic that is not TCP).
_WORTH_WARNING = frozenset({SkipReason.CUT_SHORT, SkipReason.FRAGMENT, SkipReason.UNSUPPORTED_LINK})


class InputError(ValueError):
    """The input is not something the decoder can read (exit code 2)."""


@dataclass
class ByteStream:
    """Bytes to be framed, with a heading and any problem found while collecting them."""

    label: str
    data: bytes
    problems: list[str] = field(default_factory=list)


@dataclass
class Source:
    """What was read: its kind, its streams and warnings about the input itself."""

    kind: str
    streams: list
    warnings: list[str] = field(default_factory=list)


def detect_kind(data: bytes) -> str:
    """``"pcap"``, ``"pcapng"``, ``"hex"`` or ``"raw"``."""
    kind = capture_kind(data)
    if kind:
        return kind
    return "hex" if data and all(b in _TEXT_BYTES for b in data) else "raw"


def parse_hex_dump(text: str) -> bytes:
    """Bytes from a dump with offsets (xxd, xxd -a, ``0000: ...`` as in the specs, ``hexdump -C``,
    ``od -tx1`` with hex or octal offsets) or plain hex (``xxd -p``).

    Offsets are checked against the bytes read so far, ``*`` repeats the line before up to
    the next offset, and a last line of an offset alone is the length.  Blank lines and
    lines starting with ``#`` are ignored.  Raises :class:`InputError` naming the first
    line that is not hex or whose offset does not add up, or a dump standing for more than
    :data:`HEX_DUMP_MAX_BYTES`.
    """
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if lines and _OFFSET_LINE.match(lines[0][1]):
        return _offset_dump(lines, _spaced_line, octal=True)
    if lines and _COLON_LINE.match(lines[0][1]):
        _check_text_column(lines)      # first: xxd -e's last line is not a dump line of ours either
        return _offset_dump(lines, _colon_line, octal=False)
    if _offsets_before_words(lines):
        raise InputError(f"line 1 is not a hex dump{_WORDS_HINT}: {_quoted(lines[0][1])}")
    out = []
    for number, line in lines:
        digits = re.sub(r"\s+", "", line)
        if not _HEX.match(digits):
            hint = _WORDS_HINT if _WORD_LINE.match(line) else ""
            raise InputError(f"line {number} is not a hex dump{hint}: {_quoted(line)}")
        out.append(digits)
    return bytes.fromhex("".join(out))


def _quoted(line: str) -> str:
    """The start of a line that is not a dump line, for its error: a file of credentials taken
    for a dump shows none of one (masked before the cut, so a cut one is still found whole)."""
    return repr(masked_text(line.strip())[:_QUOTED_MAX])


def _offsets_before_words(lines: list[tuple[int, str]]) -> bool:
    """A dump of words with offsets (od -Ax -tx2): its first offset, all zeros, and the second
    line's, which counts the first line's bytes, would be read as plain hex bytes."""
    if len(lines) < 2 or not (_WORD_LINE.match(lines[0][1]) and _WORD_LINE.match(lines[1][1])):
        return False
    first, *groups = lines[0][1].split()
    second = lines[1][1].split()[0]
    size = sum(len(g) for g in groups) // 2
    return set(first) == {"0"} and size in {int(second, 16), int(second, 8) if set(second) <= _OCTAL_DIGITS else -1,
                                            int(second) if second.isdigit() else -1}


def dumped_bytes(text: bytes, name: str) -> bytes:
    """The bytes of the hex dump ``text`` read from ``name``; a dump of none is an input error,
    as an empty file is."""
    try:
        data = parse_hex_dump(text.decode("ascii"))
    except InputError as exc:
        if text.startswith(HTTP_PREFIX):   # text, but neither frames nor a dump: say what it is
            first = text.splitlines()[0].decode("ascii", "replace")
            raise InputError(f"{name}: an HTTP message, not Slurm frames nor a hex dump (26.05 answers "
                             f"a request in a version it refuses in HTTP): {_quoted(first)}") from None
        raise InputError(f"{name}: {exc}") from None
    if not data:
        raise InputError(f"{name}: the hex dump holds no bytes")
    return data


def _spaced_line(number: int, line: str) -> tuple[str, bytes | None]:
    """hexdump -C / od: (offset digits, bytes), bytes None on the closing offset line."""
    match = _OFFSET_LINE.match(line) or _OFFSET_ALONE.match(line)
    if not match:
        raise InputError(f"line {number} is not a hex dump line (offset, then bytes): {_quoted(line)}")
    return match.group(1), bytes.fromhex(match.group(2)) if match.re is _OFFSET_LINE else None


def _colon_line(number: int, line: str) -> tuple[str, bytes]:
    """xxd / the specs: (offset digits, bytes) of ``OFFSET: hex  ascii``."""
    match = _COLON_LINE.match(line)
    digits = re.sub(r"\s+", "", match.group(2).split(_COLUMN_GAP)[0]) if match else ""
    if not digits or not _HEX.match(digits):
        raise InputError(f"line {number} is not a hex dump line (offset:, then bytes): {_quoted(line)}")
    return match.group(1), bytes.fromhex(digits)


def _check_text_column(lines: list[tuple[int, str]]) -> None:
    """Refuse an xxd -e dump: its hex gives each group's bytes last first while its ASCII column
    keeps memory order, so read as written the bytes come out in the wrong order without a
    word of warning.  It is told by its column: matching the hex with each group reversed,
    not as written (a column of another code, as xxd -E's EBCDIC, matches neither and passes)."""
    as_written = reversed_ = shown = 0
    for _, line in lines:
        counts = _column_counts(line)
        if counts:
            as_written, reversed_, shown = as_written + counts[0], reversed_ + counts[1], shown + counts[2]
    if as_written >= _COLUMN_DISAGREES_MIN and 2 * as_written > shown and 10 * reversed_ <= shown:
        raise InputError(f"the ASCII column matches the hex only with each group's bytes reversed ({shown} "
                         f"printable characters): a dump of little-endian words (xxd -e) is not read; dump "
                         f"the bytes in order (xxd, xxd -p, hexdump -C)")


def _column_counts(line: str) -> tuple[int, int, int] | None:
    """(printable characters of the line's text column that are not their byte as written, not
    their byte with each hex group reversed, printable characters); None without such a column."""
    match = _COLON_LINE.match(line)
    hex_part, gap, column = match.group(2).partition(_COLUMN_GAP) if match else ("", "", "")
    groups = hex_part.split()
    if not gap or not groups or not all(_HEX.match(g) for g in groups):
        return None
    data = bytes.fromhex("".join(groups))
    swapped = b"".join(bytes.fromhex(g)[::-1] for g in groups)
    column = column.rstrip("\r\n")
    if len(column) >= 2 and column[0] + column[-1] in ("||", "><"):
        column = column[1:-1]                  # hexdump -C's |...|, od -z's >...<
    for text in (column.lstrip(" "), column[-len(data):]):
        if len(text) == len(data):
            written, shown = _disagreeing(data, text)
            return written, _disagreeing(swapped, text)[0], shown
    return None


def _disagreeing(data: bytes, column: str) -> tuple[int, int]:
    """(printable characters of ``column`` that are not their byte, printable characters)."""
    shown = [(b, c) for b, c in zip(data, column) if c != "." and " " < c <= "~"]
    return sum(b != ord(c) for b, c in shown), len(shown)


def _offset_dump(lines: list[tuple[int, str]], read_line, octal: bool) -> bytes:
    """Each line's offset must be where the bytes so far end; after a ``*`` the line before
    repeats up to it.  With ``octal``, the first offset past 0 says whether offsets are hex or
    od's own octal ones (od -tx1 without -Ax prints them as 7 digits, "%07o")."""
    out, previous, repeating, base = bytearray(), b"", False, None
    for number, line in lines:
        if line.strip() == "*":
            repeating = True
            continue
        digits, data = read_line(number, line)
        step = len(previous) if repeating else 0
        if base is None and int(digits, 16):
            base = _offset_base(digits, len(out), step) if octal and len(digits) == _OD_OCTAL_WIDTH else 16
        offset = int(digits, base or 16)
        if offset > HEX_DUMP_MAX_BYTES:
            raise InputError(f"line {number}: offset 0x{offset:x} is past the {HEX_DUMP_MAX_BYTES} bytes "
                             f"a hex dump may stand for")
        if step and offset > len(out) and (offset - len(out)) % step == 0:
            out += previous * ((offset - len(out)) // step)
        repeating = False
        if offset != len(out):
            shown = f"0x{offset:x}" if base != 8 else f"{digits} (octal, 0x{offset:x})"
            raise InputError(f"line {number}: offset {shown} where 0x{len(out):x} bytes were read"
                             f"{_offset_hint(digits, len(out), step)}")
        previous = data or b""
        if len(previous) > _OFFSET_DUMP_WIDTH_MAX:
            raise InputError(f"line {number}: more than {_OFFSET_DUMP_WIDTH_MAX} bytes on one line")
        out += previous
    return bytes(out)


def _offset_hint(digits: str, have: int, step: int) -> str:
    """Why an offset may not add up other than a lost line: offsets in decimal (od -Ad, xxd -d),
    or a dump that does not start at the file's first byte (xxd -s, xxd -o)."""
    decimal = int(digits) if digits.isdigit() else -1
    if decimal == have or (step and decimal > have and (decimal - have) % step == 0):
        return " (read as decimal it adds up: dump with hex offsets, not od -Ad or xxd -d)"
    if not have:
        return " (the dump does not start at offset 0: dump from the first byte, without xxd -s or -o)"
    return ""


def _offset_base(digits: str, have: int, step: int) -> int:
    """8 when the octal reading of ``digits`` follows the bytes read (od's own 7-digit offsets:
    after a leading ``*`` the hex reading may fit too, and would be wrong), else 16."""
    def fits(offset: int) -> bool:
        return offset == have or (step > 0 and offset > have and (offset - have) % step == 0)
    return 8 if set(digits) <= _OCTAL_DIGITS and fits(int(digits, 8)) else 16


def load(data: bytes, name: str, ports: Iterable[int] = DEFAULT_PORTS) -> Source:
    """Read ``data`` (from the file ``name``) into byte streams, detecting its kind."""
    if data.startswith(UTF8_BOM) and detect_kind(data[len(UTF8_BOM):]) == "hex":
        data = data[len(UTF8_BOM):]      # a hex dump saved by an editor that marks UTF-8
    kind = detect_kind(data)
    if not data:
        raise InputError(f"{name}: empty input")
    if kind == "hex":
        return Source(kind, [ByteStream(f"{name} (hex dump)", dumped_bytes(data, name))])
    if kind == "raw":
        return Source(kind, [ByteStream(f"{name} (raw frames)", data)])
    return _load_capture(data, name, kind, ports)


def _load_capture(data: bytes, name: str, kind: str, ports: Iterable[int]) -> Source:
    warnings: list[str] = []
    skipped: dict[tuple[SkipReason, str], int] = {}
    try:
        segments = list(_segments(read_capture(data, warnings), skipped))
    except CaptureError as exc:
        raise InputError(f"{name}: {exc}") from None
    warnings += [f"{count} packet(s) skipped: {text}" for (reason, text), count in skipped.items()
                 if reason in _WORTH_WARNING]
    streams = [s for s in reassemble(segments, ports) if s.data or s.problems]
    if not streams:
        others = OtherPorts()
        for seg in segments:
            if seg.sport not in ports and seg.dport not in ports:
                others.add(seg)
        raise InputError(others.nothing_followed(name, ports))
    return Source(kind, streams, warnings)


def skip_key(exc: NotTcp, packet) -> tuple[SkipReason, str]:
    """How a packet that is not a TCP segment is counted and said: one the capture kept only
    part of (its snaplen) says so, as the reason it could not be read."""
    text = str(exc)
    if packet.truncated and exc.reason is SkipReason.CUT_SHORT:
        text += " (the capture kept only part of it: its snap length; tcpdump -s 0 keeps whole packets)"
    return exc.reason, text


def _segments(packets, skipped: dict[tuple[SkipReason, str], int]):
    for packet in packets:
        try:
            yield parse_packet(packet.linktype, packet.data, packet.number)
        except NotTcp as exc:
            key = skip_key(exc, packet)
            skipped[key] = skipped.get(key, 0) + 1
