"""The one errno table: consistent in itself, read by every module, never copied as literals."""

from __future__ import annotations

import ast
import errno as libc
import os
import pathlib
import re

import pytest

import pyslurmrpc
from pyslurmrpc import errors as E
from pyslurmrpc import slurm_errno
from pyslurmrpc.auth import errors as auth_errors
from pyslurmrpc.cli import scontrol
from pyslurmrpc.client import fanout
from pyslurmrpc.fake import codes
from pyslurmrpc.slurm_errno import ERRORS, MISSING_FROM_ERRTAB, SlurmErrno, name_of, row_of, text_of
from pyslurmrpc.slurm_errno_changes import AS_1905, CHANGES

PACKAGE = pathlib.Path(pyslurmrpc.__file__).parent
#: the table itself: the only modules allowed to write Slurm error numbers
TABLE_MODULES = {"slurm_errno.py", "slurm_errno_changes.py"}
#: numbers below 1000 are libc's (and 0 / -1); only Slurm's own range is searched for
SLURM_RANGE = 1000
#: (module, name) pairs whose literal is another kind of number that happens to equal an errno
NOT_ERRNOS = {
    ("wire/constants.py", "MsgType"): "message type numbers (slurm_msg_type_t), their own table",
    ("auth/munge_constants.py", "SOCKET_TIMEOUT_MS"): "munged's socket timeout in milliseconds",
    ("bench/options.py", "CALLS"): "default number of calls per measurement",
    ("bench/__init__.py", "max"): "minimum number of codec calls",
    ("decode/writer.py", "client_isn"): "a TCP initial sequence number",
    ("decode/writer.py", "frac"): "microseconds per millisecond in a pcap timestamp",
}
#: arithmetic with a literal is a unit conversion (ms <-> s), never an error number
_ARITHMETIC = (ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
_DECIMAL = re.compile(r"-?[1-9][0-9]*")
_RELEASE = re.compile(r"\d\d\.\d\d")


def _context_names(node, parents) -> set[str]:
    """Names around a literal: classes and functions it is in, what it is assigned or passed to."""
    names = set()
    child, node = node, parents.get(node)
    while node is not None:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            names.add(node.func.id)
        elif isinstance(node, ast.arguments):
            pairs = zip((node.posonlyargs + node.args)[::-1], node.defaults[::-1])
            names.update(a.arg for a, d in pairs if d is child)
            names.update(a.arg for a, d in zip(node.kwonlyargs, node.kw_defaults) if d is child)
        child, node = node, parents.get(node)
    return names


def errno_literals(source: str, module: str) -> list[tuple[int, int]]:
    """``(line, number)`` of every decimal literal in ``source`` that is a Slurm error number."""
    numbers = {n for n in ERRORS if n >= SLURM_RANGE}
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and type(node.value) is int and node.value in numbers):
            continue
        if not _DECIMAL.fullmatch(ast.get_source_segment(source, node) or ""):
            continue  # 0x0800 is an ethertype, not ESLURM_INVALID_LICENSES
        parent = parents.get(node)
        if isinstance(parent, ast.BinOp) and isinstance(parent.op, _ARITHMETIC):
            continue
        if any((module, name) in NOT_ERRNOS for name in _context_names(node, parents)):
            continue
        found.append((node.lineno, node.value))
    return found


def _package_sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module not in TABLE_MODULES:
            yield module, path.read_text()


def test_no_slurm_error_number_is_written_outside_the_table():
    offenders = [f"pyslurmrpc/{module}:{line}: {number} ({name_of(number)})"
                 for module, source in _package_sources() for line, number in errno_literals(source, module)]
    assert not offenders, "use the name from pyslurmrpc.slurm_errno instead of:\n" + "\n".join(offenders)


def test_no_slurm_error_text_is_copied_outside_the_table():
    texts = {text for _, text in ERRORS.values() if len(text) > 12}
    copies = [f"pyslurmrpc/{module}:{node.lineno}: {text!r}"
              for module, source in _package_sources() for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.Constant) and isinstance(node.value, str)
              for text in texts if text in node.value]
    assert not copies, "read texts with slurm_errno.text_of:\n" + "\n".join(copies)


@pytest.mark.parametrize("snippet, expected", [
    ("raise TransportError('x', slurm_errno=1800)", [(1, 1800)]),
    ("ESLURM_DISABLED = 2037", [(1, 2037)]),
    ("if rc == 5004:\n    pass", [(1, 5004)]),
    ("timeout_ms = seconds * 1000", []),
    ("ETHERTYPE_IPV4 = 0x0800", []),
    ("limit = 1_000_000", []),
])
def test_the_scan_finds_literals_and_only_those(snippet, expected):
    assert errno_literals(snippet, "client/example.py") == expected


def test_the_allowlist_is_tied_to_its_module():
    assert errno_literals("class MsgType:\n    REQUEST_PING = 1008", "wire/constants.py") == []
    assert errno_literals("class MsgType:\n    REQUEST_PING = 1008", "client/sync.py") == [(2, 1008)]


# ---------------------------------------------------------------------------
# the table is consistent in itself
# ---------------------------------------------------------------------------
def test_names_and_numbers_are_one_to_one():
    names = [name for name, _ in ERRORS.values()]
    assert len(set(names)) == len(names)
    assert {m.name: m.value for m in SlurmErrno} == {name: number for number, (name, _) in ERRORS.items()}
    assert all(text for _, text in ERRORS.values())


def test_header_only_numbers_carry_libc_text():
    assert MISSING_FROM_ERRTAB <= set(ERRORS)
    for number in MISSING_FROM_ERRTAB:
        assert ERRORS[number][1] == f"Unknown error {number}" == text_of(number)


def test_release_changes_are_well_formed():
    for number, timeline in CHANGES.items():
        assert number in ERRORS, number
        releases = [release for release, _ in timeline]
        assert all(_RELEASE.fullmatch(r) for r in releases), releases
        assert releases == sorted(releases, key=lambda r: tuple(map(int, r.split(".")))), releases
        rows = [row for _, row in timeline]
        assert all(row is None or row == AS_1905 or (isinstance(row, tuple) and len(row) == 2) for row in rows)
        assert all(a != b for a, b in zip(rows, rows[1:])), f"{number}: a change that changes nothing"
        assert ERRORS[number] not in rows, f"{number}: write AS_1905 for 19.05's own row"


def test_release_rows_are_applied():
    assert row_of(4027) == ERRORS[4027] == ("ESLURMD_JOB_NOTRUNNING", "Job step not running")
    assert name_of(4027, "24.11") == "ESLURMD_JOB_NOTRUNNING"
    assert name_of(4027, "25.05") == name_of(4027, "26.05") == "ESLURMD_STEP_NOTRUNNING"
    assert row_of(SlurmErrno.ESLURM_AUTH_UNPACK, "18.08") is None  # the auth errnos start in 19.05
    assert text_of(SlurmErrno.ESLURM_AUTH_UNPACK, "18.08") == os.strerror(6007)
    assert text_of(2031, "17.11").endswith("all SLURM daemons to take effect")
    assert text_of(2031, "18.08") == ERRORS[2031][1]  # back to 19.05's row
    assert name_of(2031, "20.02") == "ESLURM_ACTIVE_FEATURE_NOT_SUBSET"
    with pytest.raises(ValueError, match="YY.MM"):
        row_of(2037, "nineteen")


def test_the_codes_the_project_uses_are_stable_in_every_release():
    """The numbers the client and the fake act on mean the same thing from 17.11 to 26.05."""
    used = {codes.ESLURM_DISABLED, codes.ESLURM_INVALID_JOB_ID, codes.ESLURM_ALREADY_DONE,
            codes.SLURM_PROTOCOL_AUTHENTICATION_ERROR, E.CONNECT_ERRNO, E.RECEIVE_ERRNO,
            E.ConnectionClosedError.default_errno, E.TimeoutTransportError.default_errno}
    for number in used:
        assert number not in CHANGES, name_of(number)


# ---------------------------------------------------------------------------
# every module reads the table
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("module", [codes, auth_errors, E, scontrol, fanout], ids=lambda m: m.__name__)
def test_named_codes_agree_with_the_table(module):
    named = {name: value for name, value in vars(module).items() if name in SlurmErrno.__members__}
    assert named, f"{module.__name__} names no Slurm errno"
    assert named == {name: SlurmErrno[name].value for name in named}
    assert all(type(value) is int for value in named.values())  # plain ints, never enum members


def test_exceptions_report_the_table_numbers():
    assert E.ConnectionRefusedTransportError("x").slurm_errno == SlurmErrno.SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR
    assert E.TimeoutTransportError("x").slurm_errno == SlurmErrno.SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT
    assert E.NoVersionAnsweredError("x").slurm_errno == SlurmErrno.SLURM_PROTOCOL_SOCKET_ZERO_BYTES_SENT
    assert not isinstance(E.NoVersionAnsweredError("x"), E.ConnectionClosedError)
    err = E.SlurmError(SlurmErrno.ESLURM_DISABLED)
    assert (err.name, str(err)) == ("ESLURM_DISABLED", ERRORS[2037][1])
    assert E.SlurmError(4027).name == "ESLURMD_JOB_NOTRUNNING"
    assert E.SlurmError(4027, release="25.05").name == "ESLURMD_STEP_NOTRUNNING"


def test_auth_errors_read_their_text_from_the_table():
    err = auth_errors.SlurmAuthError("refused", slurm_errno=auth_errors.ESLURM_PROTOCOL_INCOMPLETE_PACKET)
    assert str(err) == f"refused [slurm errno 5003: {ERRORS[5003][1]}]"


def test_libc_codes_of_the_fake_are_the_hosts():
    assert (codes.EPERM, codes.ENOENT, codes.EINVAL) == (libc.EPERM, libc.ENOENT, libc.EINVAL)
    assert slurm_errno.SLURM_SUCCESS == codes.SUCCESS == 0 and slurm_errno.SLURM_ERROR == codes.SLURM_ERROR == -1
