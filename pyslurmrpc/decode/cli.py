"""``pyslurmrpc decode [FILE|-]``: print every Slurm message of a recording, dump or capture.

Exit codes: 0 everything decoded, 1 some frame (or stream, or credential)
failed or the output was cut (a reader that stopped early), 2 usage or input errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence, TextIO

from .. import _argtypes
from ..cli._output import EXIT_INTERRUPTED, error_text, silence
from ..errors import PyslurmrpcError
from .stdin import interruptible
from .frames import MungeOpener, StreamReport, decode_stream
from .inputs import InputError, Source
from .live import Printer, run
from .tcp import DEFAULT_PORTS

EXIT_OK = 0
EXIT_UNDECODED = 1
EXIT_USAGE = 2
# EXIT_INTERRUPTED (130): stopped by Ctrl-C, after reporting what was read

DESCRIPTION = """\
Decode Slurm RPC messages and print them as an annotated tree (every field
with its byte offset, raw bytes and value).  FILE may hold raw frames (like
fixtures/*.bin, one or more concatenated), a hex dump (xxd, "0000: ..." or
plain hex), or a pcap/pcapng capture (Ethernet, Linux cooked SLL/SLL2,
raw IP, BSD loopback); the kind is detected.  TCP streams to and from Slurm's
ports are reassembled in both directions.  Messages are printed as they are
read, so a live capture can be piped in:

    tcpdump -i any -U -w - port 6817 | pyslurmrpc decode -

Every message type of every release 17.11 - 26.05 is named; bodies without a
schema are shown as hex ("body not decoded").  Replies are paired with their
requests on the same TCP connection, with the round trip.
"""
EPILOG = ("exit status: 0 all decoded, 1 some frame failed or the output was cut, 2 usage or input error, "
          "130 stopped by Ctrl-C")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pyslurmrpc decode``."""
    parser = argparse.ArgumentParser(prog="pyslurmrpc decode", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", default=None, metavar="FILE|-",
                        help="input file, or - for standard input (the default when it is not a terminal)")
    parser.add_argument("--munge-key", metavar="FILE",
                        help="MUNGE key file: open the credentials offline (expiry and replay ignored) "
                             "and show uid, gid, encode time, ttl, origin address; the key is never printed")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per message (fields with offset, raw, value)")
    parser.add_argument("--summary", action="store_true",
                        help="print only a table per message type (count, bytes, replies, p50/p99 round "
                             "trip, errors by return code) instead of every message")
    parser.add_argument("--port", type=_argtypes.port(), action="append", default=[], metavar="N",
                        help=f"also follow TCP port N in captures (default ports: "
                             f"{', '.join(map(str, DEFAULT_PORTS))}); repeatable")
    return parser


def _munge_opener(path: str) -> MungeOpener:
    """The key file's own problems are input errors (exit 2) that name --munge-key: a bare
    "[Errno 2] ... '/x'" did not say which file, and a short key used to exit 1."""
    try:
        return MungeOpener(path)
    except PyslurmrpcError as exc:
        if getattr(exc, "os_errno", None):       # the file itself (MungeKey.from_file)
            raise InputError(f"cannot read --munge-key {path!r}: {os.strerror(exc.os_errno)}") from None
        raise InputError(f"--munge-key {path!r} is not a MUNGE key: {exc}") from None


def _input_name(given: Optional[str], stdin: TextIO) -> str:
    """FILE, else standard input when something is piped in.  No FILE on a terminal is a
    mistake (say, --munge-key's path forgotten, so the capture was taken as the key), not
    a wait for typed input; "-" asks for the terminal on purpose (a pasted hex dump)."""
    if given is not None:
        return given
    isatty = getattr(stdin, "isatty", None)
    if isatty is not None and isatty():
        raise InputError("no FILE given and standard input is a terminal: name a capture, a file of "
                         "frames or a hex dump, pipe one in, or give - to type or paste one")
    return "-"


def _open(path: str, stdin: TextIO):
    if path == "-":
        return interruptible(stdin.buffer), "<stdin>"
    return open(path, "rb"), path


def decode_source(source: Source, opener: Optional[MungeOpener] = None) -> list[StreamReport]:
    """Decode every stream of a loaded input."""
    reports = []
    for stream in source.streams:
        report = decode_stream(stream.data, stream.label, opener)
        report.problems[:0] = stream.problems
        reports.append(report)
    return reports


def main(argv: Optional[Sequence[str]] = None, stdout: TextIO = None, stderr: TextIO = None,
         stdin: TextIO = None) -> int:
    """Run ``pyslurmrpc decode`` with ``argv`` (without the program name); return the exit code."""
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    warnings: list[str] = []
    printer = Printer(stdout, args.json, args.summary, warnings)
    try:
        opener = _munge_opener(args.munge_key) if args.munge_key else None
        fh, name = _open(_input_name(args.file, stdin), stdin)
        try:
            run(fh, name, set(DEFAULT_PORTS) | set(args.port), opener, printer)
        finally:
            if fh is not stdin.buffer:
                fh.close()  # a file, or the wrapper of stdin (which leaves stdin open)
    except (OSError, InputError, ValueError) as exc:
        if isinstance(exc, BrokenPipeError):  # e.g. piped into head: stop quietly, and say by the
            silence(stdout)                    # status (as the other commands do) that not all came out
            return EXIT_UNDECODED
        _warn(warnings, stderr)     # what was wrong with the capture, e.g. a damaged record
        print(f"pyslurmrpc decode: {error_text(exc)}", file=stderr)
        if args.json:  # a script reading stdout learns why nothing (more) came
            print(json.dumps({"kind": "input_error", "reason": error_text(exc)}), file=stdout)
        return EXIT_USAGE
    except KeyboardInterrupt:  # between reads: what was printed stands
        printer.interrupted = True
    _warn(warnings, stderr)
    if args.json and not args.summary:  # a damaged capture: what a script reading stdout would not
        for warning in warnings:        # learn otherwise (--summary --json: inside the summary)
            print(json.dumps({"kind": "input_warning", "reason": warning}), file=stdout)
    if printer.interrupted:
        return EXIT_INTERRUPTED
    # every warning is input that could not be read (a damaged or cut record, packets cut short):
    # what it held was not decoded, so "all decoded" (0) would not be true
    return EXIT_OK if printer.ok and not warnings else EXIT_UNDECODED


def _warn(warnings: list[str], stderr: TextIO) -> None:
    for warning in warnings:
        print(f"pyslurmrpc decode: warning: {warning}", file=stderr)


if __name__ == "__main__":
    sys.exit(main())
