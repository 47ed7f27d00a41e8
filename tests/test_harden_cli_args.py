"""A new user's mistakes on the command line: bench counts, --controller, --json with no JSON,
MaxWait, decode --munge-key and cut captures, slurm_strerror of a huge number."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest

from pyslurmrpc import bench
from pyslurmrpc.cli import _parser, main, make_client
from pyslurmrpc.compat import slurm_strerror
from pyslurmrpc.errors import SLURM_PROTOCOL_VERSION_ERROR
from pyslurmrpc.decode import pcapng_bytes, tcp_conversation
from pyslurmrpc.decode.cli import main as decode_main
from pyslurmrpc.wire import decode_message

from fixtures_data import FIXTURES, recording
from peers import ReplayPeer
from test_client_behaviour import reply_rc


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def program(*argv):
    """The real program: a traceback would show on its stderr."""
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=120)


# 1. bench: counts and sizes are usage errors, and --help shows the defaults

@pytest.mark.parametrize("option, value, says", [
    ("-n", "0", "argument -n: must be a positive integer, not '0'"),
    ("-n", "-5", "argument -n: must be a positive integer, not '-5'"),
    ("-n", "x", "argument -n: must be a positive integer, not 'x'"),
    ("-n", "5_0", "argument -n: must be a positive integer, not '5_0'"),
    ("--nodes", "0", "argument --nodes: must be an integer from 1 to "),
    ("--tree-width", "0", "argument --tree-width: must be an integer from 1 to 65533, not '0'"),
    ("--tree-width", "65534", "argument --tree-width: must be an integer from 1 to 65533, not '65534'"),
    ("--seconds", "0", "argument --seconds: must be a number of seconds of at least 0.1, not '0'"),
    ("--seconds", "0.000001", "argument --seconds: must be a number of seconds of at least 0.1, not '0.000001'"),
    ("--seconds", "nan", "argument --seconds: must be a number of seconds of at least 0.1, not 'nan'"),
    ("--job", "-1", "argument --job: must be an integer from 0 to 4294967295, not '-1'"),
])
def test_bench_numbers_out_of_range_are_usage_errors(capsys, option, value, says):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--only", "codec", option, value])
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == "" and says in err


def test_bench_n_zero_is_one_usage_line_not_a_traceback():
    proc = program("pyslurmrpc", "bench", "--only", "codec", "-n", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == "pyslurmrpc bench: error: argument -n: must be a positive integer, not '0'"


def test_bench_help_shows_the_defaults():
    text = " ".join(bench._parser().format_help().split())
    for shown in ("calls per measurement (default: 2000)", "(default: both)", "TreeWidth (default: 50)",
                  "seconds per throughput level (default: 2)", "--json print the report as JSON (default: a table)",
                  "(with --controller; default: 1)"):
        assert shown in text


def test_bench_json_says_why_it_measured_nothing(capsys):
    with ReplayPeer(lambda r: reply_rc(r, 2017)) as peer:  # ESLURM_INVALID_JOB_ID: the warm-up call fails
        code = bench.main(["--only", "rpc", "--auth", "none", "-n", "5", "--json",
                           "--controller", f"{peer.host}:{peer.port}"])
    out, err = capsys.readouterr()
    rows = json.loads(out)["rpc"]
    said = "SlurmError: Invalid job id specified (asking about job 1; --job names another)"
    assert code == 1 and [r["skipped"] for r in rows] == [said]
    assert err == f"pyslurmrpc bench: nothing was measured (rpc: {said})\n"


def test_bench_that_measured_something_exits_0_with_the_refused_rows_in_the_report(capsys):
    with ReplayPeer(lambda r: reply_rc(r, 2017)) as peer:
        code = bench.main(["--only", "rpc", "--only", "codec", "--auth", "none", "-n", "5", "--json",
                           "--controller", f"{peer.host}:{peer.port}"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["codec"] and report["rpc"][0]["skipped"].startswith("SlurmError")


# 2. --controller: two ports or an empty one is refused, brackets keep working

#: (--controller, what its error shows): the whole value, or the empty port
REFUSED = [("127.0.0.1:43283:1", "'127.0.0.1:43283:1'"), ("127.0.0.1:", "port must be a number from 1 to 65535, not ''")]


@pytest.mark.parametrize("bad, shown", REFUSED)
@pytest.mark.parametrize("command", [["ping"], ["checkpoint", "able", "2"]])
def test_controller_with_two_ports_or_none_is_refused(capsys, bad, shown, command):
    code, out, err = run(capsys, "--controller", bad, "--auth", "none", "--timeout", "1", *command)
    assert (code, out) == (1, "")  # no DOWN line: nothing was tried
    assert err.startswith("pyslurmrpc: --controller") and shown in err and err.count("\n") == 1


@pytest.mark.parametrize("bad, shown", REFUSED)
def test_bench_controller_with_two_ports_or_none_is_refused(capsys, bad, shown):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--only", "rpc", "--controller", bad])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "pyslurmrpc bench: error: --controller: controller" in err and shown in err


@pytest.mark.parametrize("given, where", [("[::1]:7000", ("::1", 7000)), ("::1", ("::1", 6817)),
                                          ("[fe80::1]", ("fe80::1", 6817)), ("ctl:7000", ("ctl", 7000))])
def test_controller_forms_that_keep_working(given, where):
    ctl = make_client(_parser().parse_args(["--controller", given, "ping"])).settings.controllers[0]
    assert (ctl.host, ctl.port) == where


# 3. --json: one JSON document on stdout whatever happened; stderr and exit codes unchanged

@pytest.mark.parametrize("words, code, error", [
    (["bogus", "2"], 0, "Invalid checkpoint operation: bogus"),
    (["able", "2x"], 0, "Invalid job step name"),
    (["able"], 1, "too few arguments for keyword:checkpoint"),
    (["able", "1", "a", "b", "c"], 1, "too many arguments for keyword:checkpoint"),
    (["create", "2", "Bad=1"], 1, "Invalid input: Bad=1"),
])
def test_json_checkpoint_refusals_print_an_error_object(capsys, words, code, error):
    plain = run(capsys, "--controller", "127.0.0.1:1", "checkpoint", *words)
    as_json = run(capsys, "--controller", "127.0.0.1:1", "--json", "checkpoint", *words)
    assert plain[:2] == (code, "") and as_json[::2] == plain[::2]
    record = json.loads(as_json[1])
    assert (record["errno"], record["error"]) == (None, error)


def test_json_ping_without_slurm_conf_prints_an_error_object(capsys, tmp_path):
    missing = tmp_path / "slurm.conf"
    code, out, err = run(capsys, "--conf", str(missing), "--json", "ping")
    assert code == 1 and err == f"pyslurmrpc: {missing}: cannot read: No such file or directory\n"
    assert json.loads(out) == {"error": f"{missing}: cannot read: No such file or directory", "up": False}
    assert run(capsys, "--conf", str(missing), "ping") == (1, "", err)


def test_json_checkpoint_without_slurm_conf_prints_an_error_object(capsys, tmp_path):
    code, out, err = run(capsys, "--conf", str(tmp_path / "none.conf"), "--json", "checkpoint", "able", "2.0")
    record = json.loads(out)
    assert code == 1 and "cannot read" in err and "cannot read" in record["error"] and record["job_id"] == 2


def test_global_json_reaches_decode(capsys):
    code, out, _ = run(capsys, "--json", "decode", str(FIXTURES / "ping.request.bin"))
    assert code == 0 and json.loads(out)["msg_type_name"] == "REQUEST_PING"


def test_global_json_before_a_command_without_json_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--json", "demo"])
    assert exc.value.code == 2 and "--json: demo has no JSON output" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--controller", "127.0.0.1:5"], ["--auth", "none"], ["--timeout", "3"],
                                    ["--conf", "/x"], ["--munge-socket", "/x"], ["--protocol", "18.08"]])
@pytest.mark.parametrize("command", ["bench", "decode", "demo", "fake-slurmctld"])
def test_a_client_option_before_a_command_that_makes_no_client_is_a_usage_error(capsys, option, command):
    """They were silently ignored: `pyslurmrpc --controller X bench` measured the harness instead."""
    with pytest.raises(SystemExit) as exc:
        main([*option, command, "--help"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"{option[0]} is not an option of {command}: its own options go after it" in err


def test_decode_json_input_error_is_an_object(tmp_path):
    code, out, err = decode(tmp_path / "none", "--json")
    assert code == 2 and json.loads(out) == {"kind": "input_error", "reason": err.split(": ", 1)[1].strip()}


# 4. MaxWait wraps to 16 bits and a non-number is 0, as scontrol 19.05 (notes/scontrol.md 2.4)

@pytest.mark.parametrize("text, sent", [("99999999999", 59391), ("-5", 65531), ("abc", 0)])
def test_max_wait_is_read_as_scontrol_reads_it(capsys, text, sent):
    with ReplayPeer(reply_rc) as peer:
        code = main(["--controller", f"{peer.host}:{peer.port}", "--auth", "none", "--timeout", "2",
                     "checkpoint", "create", "7.0", f"MaxWait={text}"])
    assert code == 0 and decode_message(peer.received[0]).body.data == sent


# 5. decode: the MUNGE key file is named, a bad one exits 2; a cut pcapng is worded right

def decode(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = decode_main(list(map(str, argv)), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_missing_munge_key_names_the_option(tmp_path):
    key = tmp_path / "nonexistent"
    code, out, err = decode("--munge-key", key, FIXTURES / "ping.request.bin")
    assert (code, out) == (2, "")
    assert err == f"pyslurmrpc decode: cannot read --munge-key '{key}': No such file or directory\n"


@pytest.mark.parametrize("size", [0, 31])
def test_short_munge_key_is_an_input_error(tmp_path, size):
    key = tmp_path / "short.key"
    key.write_bytes(b"k" * size)
    proc = program("pyslurmrpc.decode", "--munge-key", str(key), str(FIXTURES / "ping.request.bin"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == (f"pyslurmrpc decode: --munge-key '{key}' is not a MUNGE key: "
                           "MUNGE error 2 (Invalid argument): Keyfile must be at least 32 bytes\n")


@pytest.mark.parametrize("whole_blocks", [False, True])
def test_pcapng_tail_that_makes_no_block_is_worded_right(tmp_path, whole_blocks):
    capture = pcapng_bytes(tcp_conversation(recording("ping", "request"), recording("ping", "response")))
    path = tmp_path / "cut.pcapng"
    path.write_bytes((capture if whole_blocks else b"") + capture[:6])
    code, _, err = decode(path)
    assert code == (1 if whole_blocks else 2)       # bytes not read: not "all decoded" (0)
    assert "warning: ignored 6 bytes at the end that make no whole pcapng block\n" in err
    assert "after the last" not in err


# 6. slurm_strerror takes any int

@pytest.mark.parametrize("number", [10**20, 2**31, 2**64 + 2017])
def test_slurm_strerror_of_a_number_past_a_c_int(number):
    assert re.fullmatch(r"Unknown error \d+", slurm_strerror(99999))  # what an unknown number gets
    assert slurm_strerror(number) == f"Unknown error {number}"


@pytest.mark.parametrize("number", [-2**31 - 1, -10**20])
def test_slurm_strerror_of_a_negative_number_past_a_c_int(number):
    assert slurm_strerror(number) == slurm_strerror(-99999) == "Unknown negative error number"


@pytest.mark.parametrize("command", ["ping", "checkpoint"])
def test_conf_and_controller_together_is_a_usage_error(capsys, tmp_path, command):
    """--controller won and the --conf file (its AuthInfo socket, MessageTimeout) was dropped unsaid."""
    with pytest.raises(SystemExit) as exc:
        main(["--conf", str(tmp_path / "slurm.conf"), "--controller", "127.0.0.1:1", command, "able", "1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "pyslurmrpc: error: --conf and --controller: give one" in err


def test_an_empty_controller_is_named_not_taken_for_none(capsys, monkeypatch, tmp_path):
    """--controller '' fell back to slurm.conf (and said "/etc/slurm/slurm.conf: cannot read")."""
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "absent.conf"))
    code = main(["--controller", "", "ping"])
    err = capsys.readouterr().err
    assert code == 1 and err == "pyslurmrpc: --controller host must be a non-empty host name, not ''\n"


def test_json_checkpoint_to_a_release_without_checkpoint_gives_compats_errno(capsys):
    """It gave "errno": null, as for a call that could not be made; compat leaves
    SLURM_PROTOCOL_VERSION_ERROR for the same refusal (errors.slurm_errno_of)."""
    code, out, err = run(capsys, "--controller", "127.0.0.1:1", "--protocol", "24.11", "--json", "checkpoint",
                         "able", "1", "0")
    record = json.loads(out)
    assert code == 1 and record["errno"] == SLURM_PROTOCOL_VERSION_ERROR == 1005
    assert "without checkpoint RPCs" in record["error"] and record["error"] in err
