"""The pyslurmrpc command line: global options, then a subcommand that owns every later word."""

from __future__ import annotations

import pytest

from pyslurmrpc.cli import SUBCOMMANDS, _parser


@pytest.mark.parametrize("argv, command, args", [
    (["checkpoint", "able", "-1"], "checkpoint", ["able", "-1"]),
    (["checkpoint", "--help"], "checkpoint", ["--help"]),
    (["ping", "-h", "--json"], "ping", ["-h", "--json"]),
    (["decode", "--port", "7000", "dump.pcap"], "decode", ["--port", "7000", "dump.pcap"]),
    (["fake-slurmctld", "--", "--port", "0"], "fake-slurmctld", ["--", "--port", "0"]),
    (["checkpoint", "able", "2", "--controller", "x"], "checkpoint", ["able", "2", "--controller", "x"]),
    (["bench"], "bench", []),
    ([], None, []),
])
def test_words_after_the_subcommand_are_handed_on_verbatim(argv, command, args):
    opts = _parser().parse_args(argv)
    assert (opts.command, opts.args, opts.json, opts.controller) == (command, args, False, None)


def test_global_options_before_the_subcommand():
    opts = _parser().parse_args(["--cont", "h:1", "--json", "-vv", "--timeout=2", "--conf", "ping", "ping", "x"])
    assert (opts.controller, opts.json, opts.verbose, opts.timeout, opts.conf) == ("h:1", True, 2, 2.0, "ping")
    assert (opts.command, opts.args) == ("ping", ["x"])


def test_every_subcommand_is_listed_in_the_help(capsys):
    _parser().print_help()
    out = capsys.readouterr().out
    assert "[COMMAND]" in out.split("\n\n")[0]
    assert all(f"{name}: {text}" in " ".join(out.split()) for name, text in SUBCOMMANDS.items())


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["frobnicate"])
    assert info.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err
