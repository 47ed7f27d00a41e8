"""The wire layer stays sans-I/O: no socket, asyncio, thread or process imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pyslurmrpc.wire

FORBIDDEN = {"socket", "asyncio", "threading", "_thread", "selectors", "ssl", "subprocess",
             "multiprocessing", "concurrent"}


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_wire_imports_no_io_modules():
    root = Path(pyslurmrpc.wire.__file__).parent
    files = sorted(root.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        for name in _imports(path):
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_wire_relative_imports_stay_inside_wire_or_errors():
    root = Path(pyslurmrpc.wire.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module == "errors", f"{path.name} reaches outside wire: {node.module}"
