"""The public surface is what the packages' ``__all__`` lists, and the README's API table says exactly that."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
ROW = re.compile(r"^\| `(pyslurmrpc[\w.]*)` \| (.*) \|$")


def _api_table() -> dict[str, set[str]]:
    text = README.read_text()
    section = text[text.index("\n## API\n"):]
    section = section[:section.index("\n## ", 1)]
    rows = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = set(re.findall(r"`([^`]+)`", m.group(2)))
    return rows


def test_readme_lists_every_public_package():
    packages = {"pyslurmrpc", "pyslurmrpc.client", "pyslurmrpc.wire", "pyslurmrpc.auth", "pyslurmrpc.fake",
                "pyslurmrpc.decode", "pyslurmrpc.testing", "pyslurmrpc.compat"}
    assert set(_api_table()) == packages


@pytest.mark.parametrize("module", sorted(_api_table()))
def test_readme_api_row_equals_all(module):
    mod = importlib.import_module(module)
    assert set(mod.__all__) == _api_table()[module]
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing, f"{module}.__all__ names what it does not define: {missing}"


def test_async_client_methods_are_annotated_coroutine_functions():
    from pyslurmrpc import AsyncClient, Client
    public = [n for n, f in inspect.getmembers(Client, inspect.isfunction)
              if not n.startswith("_") and n != "from_slurm_conf"]
    assert {"checkpoint_able", "checkpoint_tasks", "ping", "controller_version"} <= set(public)
    for name in public:
        method = getattr(AsyncClient, name)
        assert inspect.iscoroutinefunction(method), name
        assert "return" in inspect.get_annotations(getattr(Client, name)), name
        assert inspect.signature(method).parameters == inspect.signature(getattr(Client, name)).parameters, name
