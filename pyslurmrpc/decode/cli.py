"""``pyslurmrpc decode [FILE|-]``: print every Slurm message of a recording, dump or capture.

Exit codes: 0 everything decoded, 1 some frame (or stream, or credential)
failed, 2 usage or input errors.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence, TextIO

from .frames import MungeOpener, StreamReport, decode_stream
from .inputs import InputError, Source, load
from .render import stream_json, stream_lines
from .tcp import DEFAULT_PORTS

EXIT_OK = 0
EXIT_UNDECODED = 1
EXIT_USAGE = 2

DESCRIPTION = """\
Decode Slurm RPC messages and print them as an annotated tree (every field
with its byte offset, raw bytes and value).  FILE may hold raw frames (like
fixtures/*.bin, one or more concatenated), a hex dump (xxd, "0000: ..." or
plain hex), or a pcap/pcapng capture (Ethernet, Linux cooked SLL/SLL2,
raw IP, BSD loopback); the kind is detected.  TCP streams to and from Slurm's
ports are reassembled in both directions.
"""
EPILOG = "exit status: 0 all decoded, 1 some frame failed, 2 usage or input error"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pyslurmrpc decode``."""
    parser = argparse.ArgumentParser(prog="pyslurmrpc decode", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", default="-", metavar="FILE|-",
                        help="input file, or - for standard input (default)")
    parser.add_argument("--munge-key", metavar="FILE",
                        help="MUNGE key file: open the credentials offline (expiry and replay ignored) "
                             "and show uid, gid, encode time, ttl, origin address; the key is never printed")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per message (fields with offset, raw, value)")
    parser.add_argument("--port", type=_port, action="append", default=[], metavar="N",
                        help=f"also follow TCP port N in captures (default ports: "
                             f"{', '.join(map(str, DEFAULT_PORTS))}); repeatable")
    return parser


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 1 << 16:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port")
    return value


def _read(path: str, stdin: TextIO) -> tuple[bytes, str]:
    if path == "-":
        return stdin.buffer.read(), "<stdin>"
    with open(path, "rb") as fh:
        return fh.read(), path


def decode_source(source: Source, opener: Optional[MungeOpener] = None) -> list[StreamReport]:
    """Decode every stream of a loaded input."""
    reports = []
    for stream in source.streams:
        report = decode_stream(stream.data, stream.label, opener)
        report.problems[:0] = stream.problems
        reports.append(report)
    return reports


def _summary(reports: list[StreamReport]) -> str:
    frames = sum(len(r.frames) for r in reports)
    bad = sum(not f.ok for r in reports for f in r.frames)
    stopped = sum(bool(r.problems) for r in reports)
    return (f"{frames} message(s) in {len(reports)} stream(s): {frames - bad} decoded, {bad} not decoded, "
            f"{stopped} stream(s) stopped early")


def main(argv: Optional[Sequence[str]] = None, stdout: TextIO = None, stderr: TextIO = None,
         stdin: TextIO = None) -> int:
    """Run ``pyslurmrpc decode`` with ``argv`` (without the program name); return the exit code."""
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        data, name = _read(args.file, stdin)
        opener = MungeOpener(args.munge_key) if args.munge_key else None
        source = load(data, name, set(DEFAULT_PORTS) | set(args.port))
    except (OSError, InputError, ValueError) as exc:
        print(f"pyslurmrpc decode: {exc}", file=stderr)
        return EXIT_USAGE
    for warning in source.warnings:
        print(f"pyslurmrpc decode: warning: {warning}", file=stderr)
    reports = decode_source(source, opener)
    code = EXIT_OK if all(r.ok for r in reports) else EXIT_UNDECODED
    try:
        _print(reports, args.json, stdout)
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        _silence(stdout)
    return code


def _print(reports: list[StreamReport], as_json: bool, stdout: TextIO) -> None:
    render = stream_json if as_json else stream_lines
    for report in reports:
        for line in render(report):
            print(line, file=stdout)
    if not as_json:
        print(_summary(reports), file=stdout)


def _silence(stdout: TextIO) -> None:
    """After a broken pipe, point the stream at /dev/null so the interpreter's final flush is quiet."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
