"""The CLI never prints a traceback, and its defaults are pinned (issue 14, items 6 and "tests that catch bugs")."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

from pyslurmrpc.cli import _parser, main, make_client
from pyslurmrpc.testing.netio import free_port
from pyslurmrpc.wire import decode_message

from peers import ReplayPeer
from test_client_behaviour import reply_rc


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli(*argv, **kw):
    """The real program in a subprocess: a traceback would show on its stderr."""
    return subprocess.run([sys.executable, "-m", "pyslurmrpc", *argv], capture_output=True, text=True,
                          timeout=60, **kw)


@pytest.mark.parametrize("argv, needle", [
    (["--controller", "127.0.0.1:abc", "ping"], "--controller port must be a number"),
    (["--controller", "127.0.0.1:70000", "ping"], "--controller port must be a number from 1 to 65535"),
    (["--controller", "127.0.0.1:0", "ping"], "--controller port must be a number from 1 to 65535"),
    (["--controller", "127.0.0.1:٣", "ping"], "--controller port must be a number"),
    (["--controller", "a" * 64 + ".example:1", "ping"], "over 63 characters"),
    (["--controller", ":6817", "ping"], "--controller host"),
    (["--munge-socket", "", "--controller", "127.0.0.1:1", "ping"], "--munge-socket must be 1 to 107 bytes long"),
    (["--protocol", "21.05", "--controller", "127.0.0.1:1", "ping"],
     "argument --protocol: must be a Slurm release from 17.11 to 26.05 (22.05, or 22.05.8), not '21.05'"),
    (["--timeout", "nan", "--controller", "127.0.0.1:1", "ping"], "argument --timeout"),
    (["--timeout", "inf", "--controller", "127.0.0.1:1", "ping"], "argument --timeout"),
    (["--timeout", "-1", "--controller", "127.0.0.1:1", "ping"], "argument --timeout"),
    (["--timeout", "0", "--controller", "127.0.0.1:1", "ping"], "argument --timeout"),
    (["--timeout", "x", "--controller", "127.0.0.1:1", "ping"], "argument --timeout"),
    (["--timeout", "1e308", "--controller", "127.0.0.1:1", "ping"], "at most 65535"),
    (["--conf", "/nonexistent/slurm.conf", "checkpoint", "able", "2.0"], "cannot read"),
    (["--controller", "127.0.0.1:abc", "checkpoint", "able", "2.0"], "--controller port must be a number"),
])
def test_bad_global_options_are_one_line_not_a_traceback(argv, needle):
    proc = cli(*argv)
    assert proc.returncode in (1, 2), proc
    assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_short_munge_key_for_decode_is_an_error_not_a_traceback(tmp_path):
    key = tmp_path / "short.key"
    key.write_bytes(b"k" * 31)
    proc = cli("decode", "--munge-key", str(key), "/dev/null")
    assert proc.returncode == 2 and "at least 32 bytes" in proc.stderr and "Traceback" not in proc.stderr


def test_checkpoint_without_a_client_says_why(capsys, tmp_path):
    """Not slurm_strerror of a made-up errno ("Unexpected message received"): the config error itself."""
    code, out, err = run(capsys, "--conf", str(tmp_path / "none.conf"), "checkpoint", "able", "2.0")
    assert code == 1 and out == "" and "cannot read" in err and "Unexpected message" not in err


def test_timeout_zero_is_not_silently_dropped():
    """``--timeout 0`` used to be falsy and fall back to MessageTimeout without a word."""
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["--timeout", "0", "ping"])
    assert exc.value.code == 2


def test_timeout_reaches_the_client():
    opts = _parser().parse_args(["--controller", "127.0.0.1", "--timeout", "0.5", "ping"])
    assert make_client(opts).settings.message_timeout == 0.5


def test_controller_defaults_port_6817_auth_munge_protocol_1905_timeout_10():
    """Every default of the global options, against scontrol's (slurm.conf's DEFAULT_* values)."""
    opts = _parser().parse_args(["--controller", "ctl.example", "ping"])
    settings = make_client(opts).settings
    ctl = settings.controllers[0]
    assert (ctl.host, ctl.port) == ("ctl.example", 6817)
    assert settings.auth == "munge"
    assert settings.message_timeout == 10
    assert settings.protocol_version == 0x2200  # SLURM_19_05_PROTOCOL_VERSION (34 << 8)


def test_controller_ipv6_forms():
    opts = _parser().parse_args(["--controller", "[::1]:7000", "ping"])
    ctl = make_client(opts).settings.controllers[0]
    assert (ctl.host, ctl.port) == ("::1", 7000)


@pytest.mark.parametrize("op", ["create", "vacate", "requeue"])
def test_default_max_wait_is_ten_on_the_wire(capsys, op):
    """update_job.c CKPT_WAIT: a MaxWait-less create/vacate/requeue sends 10 seconds."""
    with ReplayPeer(reply_rc) as peer:
        code, _, err = run(capsys, "--controller", f"{peer.host}:{peer.port}", "--auth", "none",
                           "--timeout", "2", "checkpoint", op, "7.0")
    assert code == 0, err
    assert decode_message(peer.received[0]).body.data == 10


def test_explicit_max_wait_is_sent(capsys):
    with ReplayPeer(reply_rc) as peer:
        run(capsys, "--controller", f"{peer.host}:{peer.port}", "--auth", "none", "--timeout", "2",
            "checkpoint", "create", "7.0", "MaxWait=3")
    assert decode_message(peer.received[0]).body.data == 3


def test_checkpoint_step_default_is_all_steps(capsys):
    """A bare JOBID is NO_VAL (0xfffffffe): every step."""
    with ReplayPeer(reply_rc) as peer:
        run(capsys, "--controller", f"{peer.host}:{peer.port}", "--auth", "none", "--timeout", "2",
            "checkpoint", "disable", "7")
    assert decode_message(peer.received[0]).body.step_id == 0xFFFFFFFE


def test_help_texts_are_whole():
    """demo --help was cut mid-sentence; fake-slurmctld --help must show its defaults."""
    demo = cli("demo", "--help")
    assert demo.returncode == 0 and "checkpoint that really works." in " ".join(demo.stdout.split())
    fake = " ".join(cli("fake-slurmctld", "--help").stdout.split())
    for default in ("(default: 127.0.0.1)", "(default: 0;", "(default: none)", "(default: ompi)",
                    "(default: 10)", "owned by the user running the fake"):
        assert default in fake, default
    top = cli("--help")
    assert "above 0" in top.stdout and "MessageTimeout" in top.stdout


@pytest.mark.parametrize("toml, needle", [
    ("jobs = [", "not TOML"),
    ("[[jobs]]\nuid = 1", "bad cluster description: missing key 'job_id'"),
    ("[[jobs]]\njob_id = 1", "bad cluster description: missing key 'uid'"),
    ("[[jobs]]\njob_id = 1\nuid = 1\nstate = \"sleeping\"", "sleeping"),
    ("[nodes]\nn1 = \"127.0.0.1:x\"", "bad cluster description"),
])
def test_fake_with_a_bad_cluster_file_says_so(tmp_path, toml, needle):
    path = tmp_path / "cluster.toml"
    path.write_text(toml)
    proc = cli("fake-slurmctld", "--cluster", str(path))
    assert proc.returncode == 1 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("argv, needle", [
    (["--port", "70000"], "argument --port: must be a port from 0 to 65535, not '70000'"),
    (["--port", "-1"], "argument --port: must be a port from 0 to 65535, not '-1'"),
    (["--port", "+80"], "argument --port: must be a port from 0 to 65535, not '+80'"),
    (["--message-timeout", "0"], "argument --message-timeout: must be a number of seconds above 0 and at most 65535, not '0'"),
    (["--message-timeout", "nan"], "argument --message-timeout: must be a number of seconds above 0 and at most 65535, not 'nan'"),
    (["--message-timeout", "65536"], "argument --message-timeout: must be a number of seconds above 0 and at most 65535, not '65536'"),
    (["--message-timeout", "1_0"], "argument --message-timeout: must be a number of seconds above 0 and at most 65535, not '1_0'"),
    (["--message-timeout", " 5"], "argument --message-timeout: must be a number of seconds above 0 and at most 65535, not ' 5'"),
    (["--clock", "-5"], "argument --clock: must be an integer of at least 0, not '-5'"),
    (["--clock", " 5"], "argument --clock: must be an integer of at least 0, not ' 5'"),
])
def test_fake_bad_options_are_usage_errors(argv, needle):
    proc = cli("fake-slurmctld", *argv)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == f"pyslurmrpc fake-slurmctld: error: {needle}", proc.stderr


@pytest.mark.parametrize("argv, needle", [
    (["--replay", "/nonexistent"], "/nonexistent: --replay: not a directory"),
    (["--replay", "{empty}"], "--replay: no recordings"),
    (["--host", "999.1.1.1"], "cannot listen on '999.1.1.1': "),
])
def test_fake_that_cannot_serve_says_why_before_it_listens(tmp_path, argv, needle):
    """A --replay directory with nothing to answer from once served every request with a close."""
    argv = [a.format(empty=tmp_path) for a in argv]
    proc = cli("fake-slurmctld", "--port", "0", *argv)
    assert proc.returncode == 1 and proc.stdout == "", proc
    assert needle.format(empty=tmp_path) in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("port", ["abc", "٣", "0", "65536"])
def test_decode_port_that_is_not_one_is_named(port):
    proc = cli("decode", "--port", port, "/dev/null")
    assert proc.returncode == 2 and f"argument --port: must be a port from 1 to 65535, not '{port}'" in proc.stderr, proc.stderr


def test_no_munged_gives_a_hint_before_scontrols_line(capsys, tmp_path):
    """auth/munge with no munged: libslurm connects, then logs why before "Protocol
    authentication error" (a controller that takes the connection and is never sent a byte)."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        code, out, err = run(capsys, "--controller", f"127.0.0.1:{listening.getsockname()[1]}",
                             "--munge-socket", str(tmp_path / "none.sock"), "--timeout", "2", "checkpoint", "able",
                             "2.0")
    lines = err.splitlines()
    assert code == 1 and out == ""
    assert lines[0].startswith("pyslurmrpc: error: Munge encode failed: ") and "Did you start munged?" in lines[0]
    assert lines[1] == "scontrol_checkpoint error: Protocol authentication error"


def test_a_ping_down_for_want_of_munged_says_so_on_stderr(capsys, tmp_path):
    """DOWN alone blamed a healthy controller: like scontrol's, the ping logs why our munged
    could not mint the credential (on stderr, with --json too); a controller that is down
    itself is not blamed on munged."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        for json_flag in ([], ["--json"]):
            code, out, err = run(capsys, "--controller", f"127.0.0.1:{listening.getsockname()[1]}",
                                 "--munge-socket", str(tmp_path / "none.sock"), "--timeout", "1", *json_flag, "ping")
            assert code == 1 and ("is DOWN" in out if not json_flag else '"up": false' in out)
            assert err.startswith("pyslurmrpc: error: Munge encode failed: ") and "Did you start munged?" in err
    code, out, err = run(capsys, "--controller", f"127.0.0.1:{free_port()}", "--munge-socket",
                         str(tmp_path / "none.sock"), "ping")
    assert code == 1 and "is DOWN" in out and err == ""


def test_fake_on_ipv6_prints_an_address_controller_takes():
    """It printed "listening on ::1:PORT", which --controller refuses."""
    proc = subprocess.Popen([sys.executable, "-m", "pyslurmrpc", "fake-slurmctld", "--host", "::1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.communicate()
    assert re.fullmatch(r"listening on \[::1\]:\d+", line), line


def test_fake_on_a_port_in_use_names_the_address():
    """It said "[Errno 98] Address already in use", naming no address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = cli("fake-slurmctld", "--port", str(port))
    assert proc.returncode == 1
    assert proc.stderr == f"pyslurmrpc fake-slurmctld: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_decode_of_a_directory_names_it_without_an_errno(tmp_path):
    proc = cli("decode", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr == f"pyslurmrpc decode: {tmp_path}: Is a directory\n"
