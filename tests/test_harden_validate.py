"""client/validate.py: every bad Client(...) argument is an InvalidArgumentError naming it (issue 14 item 6)."""

from __future__ import annotations

import math
import pathlib

import pytest

from pyslurmrpc.client import validate
from pyslurmrpc.errors import InvalidArgumentError


@pytest.mark.parametrize("value", [0, -1, 0.0, -0.5, math.nan, math.inf, -math.inf, 65535.5, 1e308, "10", None,
                                   True, [1]])
def test_timeout_refused(value):
    with pytest.raises(InvalidArgumentError, match="timeout"):
        validate.timeout(value)


@pytest.mark.parametrize("value, expected", [(1, 1.0), (0.001, 0.001), (10, 10.0), (65535, 65535.0)])
def test_timeout_accepted(value, expected):
    result = validate.timeout(value)
    assert result == expected and isinstance(result, float)


@pytest.mark.parametrize("value", [0, -1, 65536, 70000, "6817", None, 6817.0, True])
def test_port_refused(value):
    with pytest.raises(InvalidArgumentError, match="port"):
        validate.port(value)


@pytest.mark.parametrize("value", [1, 6817, 65535])
def test_port_accepted(value):
    assert validate.port(value) == value


@pytest.mark.parametrize("value", ["a" * 64, "x." + "a" * 64 + ".org", ".".join(["a" * 60] * 5), "", "a..b", "ho st", "h\0st", 5, None, b"host"])
def test_host_refused(value):
    with pytest.raises(InvalidArgumentError, match="host"):
        validate.host(value)


@pytest.mark.parametrize("value", ["a" * 63, "ctl.example.org", "ctl.example.org.", "127.0.0.1", "::1",
                                   "fe80::1%lo", "bücher.example", "foo_bar.example", "n-01", "10-0-0-1"])
def test_host_accepted(value):
    assert validate.host(value) == value


@pytest.mark.parametrize("value, why", [
    ("h1,h2", "one host only: backup controllers are given apart (backups=, slurm.conf's SlurmctldHost); not ','"),
    ("-h", "a label begins with '-'"),
    ("ctl.-x", "a label begins with '-'"),
    ("a/b", "only letters, digits, '-', '_' and '.'; not '/'"),
    ("ctl(10.0.0.1)", "not '(', ')'"),
])
def test_a_host_that_no_resolver_takes_is_refused_before_the_lookup(value, why):
    """--controller h1,h2 and --controller=-h were taken as names: DOWN after a failed lookup."""
    with pytest.raises(InvalidArgumentError, match="not a host name") as info:
        validate.host(value, "--controller host")
    assert why in str(info.value) and repr(value) in str(info.value)


def test_host_label_limit_is_exactly_63():
    validate.host("a" * 63)
    with pytest.raises(InvalidArgumentError):
        validate.host("a" * 64)


@pytest.mark.parametrize("value", ["/tmp/a\0b", "", "/" + "x" * 107, 5, b"/run/munge"])
def test_socket_path_refused(value):
    with pytest.raises(InvalidArgumentError, match="munge_socket"):
        validate.socket_path(value)


def test_socket_path_accepted():
    assert validate.socket_path(None) is None
    assert validate.socket_path(pathlib.Path("/run/munge/munge.socket.2")) == "/run/munge/munge.socket.2"
    assert validate.socket_path("/" + "x" * 106) == "/" + "x" * 106


@pytest.mark.parametrize("value", ["a\udc80b", "\ud800", "nul\0", 5])
def test_text_refused(value):
    with pytest.raises(InvalidArgumentError, match="image_dir"):
        validate.text(value, "image_dir")


def test_text_accepted():
    assert validate.text(None, "error_msg") is None
    assert validate.text("disk quota exceeded ✓", "error_msg") == "disk quota exceeded ✓"


@pytest.mark.parametrize("value", [5, None, "", "   ", ["n1"], "n\0"])
def test_nodelist_refused(value):
    with pytest.raises(InvalidArgumentError, match="nodelist"):
        validate.nodelist(value)


@pytest.mark.parametrize("value", [0, -1, 65534, 1.5, "50", True])
def test_tree_width_refused(value):
    with pytest.raises(InvalidArgumentError, match="tree_width"):
        validate.tree_width(value)


@pytest.mark.parametrize("value", [1, 50, 65533])
def test_tree_width_accepted(value):
    assert validate.tree_width(value) == value


@pytest.mark.parametrize("text, expected", [("ctl", ("ctl", 6817)), ("ctl:7000", ("ctl", 7000)),
                                            ("[::1]:7000", ("::1", 7000)),
                                            ("[::1]", ("::1", 6817)), ("::1", ("::1", 6817))])
def test_controller_address(text, expected):
    assert validate.controller_address(text, 6817) == expected


@pytest.mark.parametrize("text", ["ctl:abc", "ctl:0", "ctl:65536", "ctl:-1", "ctl:٣", "[::1", "[::1]x", ":1",
                                  "ctl:", "[::1]:", "127.0.0.1:43283:1", "1:2:3"])
def test_controller_address_refused(text):
    with pytest.raises(InvalidArgumentError):
        validate.controller_address(text, 6817)


def test_errors_quote_at_most_80_characters():
    with pytest.raises(InvalidArgumentError) as exc:
        validate.nodelist(["n"] * 10 ** 6)
    assert len(str(exc.value)) < 200
