"""One CI rule for the whole suite: CI=1 and CI=true mean the same (issue 14 item 9)."""

from __future__ import annotations

import pytest

from pyslurmrpc.testing import ci


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "on", "github"])
def test_ci_values(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert ci.under_ci()
    with pytest.raises(pytest.fail.Exception, match="must not be skipped"):
        ci.skip_or_fail(pytest, "tool missing")


@pytest.mark.parametrize("value", [None, "", "0", "false", "FALSE", "no", "off"])
def test_not_ci_values(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not ci.under_ci()
    with pytest.raises(pytest.skip.Exception, match="tool missing"):
        ci.skip_or_fail(pytest, "tool missing")


def test_needs_root_says_why(monkeypatch):
    monkeypatch.setattr(ci.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="needs root: runs a child as nobody"):
        ci.needs_root(pytest, "runs a child as nobody")
    monkeypatch.setattr(ci.os, "geteuid", lambda: 0)
    ci.needs_root(pytest, "runs a child as nobody")  # root: nothing happens


def test_harnesses_use_the_rule(monkeypatch):
    """start_or_skip (munged, slurmctld) fails under CI=1 as under CI=true."""
    from pyslurmrpc.testing.process import start_or_skip

    class Missing(Exception):
        pass

    def start():
        raise Missing("munged not found")

    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception):
        start_or_skip(pytest, start, Missing, "MUNGE")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        start_or_skip(pytest, start, Missing, "MUNGE")
