"""The pyslurmrpc command: scontrol-compatible checkpoint and ping, global options."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
from pathlib import Path
import sys
import time

import pytest

from pyslurmrpc.cli import main
from pyslurmrpc.cli.scontrol import match_operation, parse_id
from pyslurmrpc.testing.netio import free_port
from pyslurmrpc.wire import decode_message

from peers import STALL, ReplayPeer
from test_client_behaviour import reply_ckpt, reply_rc


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ctl(peer):
    return ["--controller", f"{peer.host}:{peer.port}", "--auth", "none", "--timeout", "2"]


@pytest.mark.parametrize("word, op", [("a", "able"), ("ABLE", "able"), ("d", "disable"), ("en", "enable"),
                                      ("cr", "create"), ("re", "requeue"), ("res", "restart"),
                                      ("va", "vacate"), ("er", "error"), ("co", "complete"),
                                      ("e", None), ("c", None), ("ablex", None)])
def test_operation_matching_like_scontrol(word, op):
    assert match_operation(word) == op


@pytest.mark.parametrize("text, ids", [("12", (12, 0xFFFFFFFE)), ("12.3", (12, 3)), ("2.", (2, 0)),
                                       ("-1", (0xFFFFFFFF, 0xFFFFFFFE)), ("2x", None), ("0x10", None),
                                       ("2.batch", None)])
def test_job_step_parsing_like_scontrol(text, ids):
    assert parse_id(text) == ids


def test_able_yes_began_no(capsys, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    with ReplayPeer(lambda r: reply_ckpt(r, event_time=0)) as peer:
        assert run(capsys, *ctl(peer), "checkpoint", "able", "2.0") == (0, "Yes\n", "")
    with ReplayPeer(lambda r: reply_ckpt(r, event_time=1795462038)) as peer:
        assert run(capsys, *ctl(peer), "checkpoint", "able", "2.0") == (0, "Began at 2026-11-23T19:27:18\n", "")
    with ReplayPeer(lambda r: reply_rc(r, 2037)) as peer:
        assert run(capsys, *ctl(peer), "checkpoint", "a", "2") == (0, "No\n", "")
        assert decode_message(peer.received[0]).body.step_id == 0xFFFFFFFE


def test_error_and_failures(capsys):
    with ReplayPeer(lambda r: reply_ckpt(r, error_code=0, error_msg="14906")) as peer:
        assert run(capsys, *ctl(peer), "checkpoint", "error", "2.0") == (0, "error(0): 14906\n", "")
    with ReplayPeer(lambda r: reply_rc(r, 2017)) as peer:
        code, out, err = run(capsys, *ctl(peer), "checkpoint", "create", "999999.0", "MaxWait=70000",
                             "ImageDir=/ck")
        assert (code, out, err) == (1, "", "scontrol_checkpoint error: Invalid job id specified\n")
        body = decode_message(peer.received[0]).body
        assert (body.op, body.data, body.image_dir) == (3, 70000 & 0xFFFF, "/ck")


def test_restart_stick_and_bad_arguments(capsys):
    with ReplayPeer(reply_rc) as peer:
        assert run(capsys, *ctl(peer), "checkpoint", "restart", "4.1", "StickToNodes")[0] == 0
        assert decode_message(peer.received[0]).body.data == 1
        code, out, err = run(capsys, *ctl(peer), "checkpoint", "restart", "4.1", "MaxWait=3")
        assert code == 1 and "Invalid input: MaxWait=3" in err and "Request aborted" in err
        assert len(peer.received) == 1


@pytest.mark.parametrize("words, code, err", [
    (["able"], 1, "too few arguments for keyword:checkpoint\n"),
    (["able", "1", "a", "b", "c"], 1, "too many arguments for keyword:checkpoint\n"),
    (["able", "1x"], 0, "Invalid job step name\n"),
    (["frobnicate", "1"], 0, "Invalid checkpoint operation: frobnicate\n"),
])
def test_usage_errors_match_scontrol_exit_codes(capsys, words, code, err):
    assert run(capsys, "--controller", "127.0.0.1:1", "checkpoint", *words) == (code, "", err)


def test_unreachable_controller(capsys):
    code, out, err = run(capsys, "--controller", f"127.0.0.1:{free_port()}", "--auth", "none",
                         "--timeout", "1", "checkpoint", "disable", "2.0")
    assert code == 1 and err == "scontrol_checkpoint error: Unable to contact slurm controller (connect failure)\n"


def test_json_output(capsys):
    with ReplayPeer(lambda r: reply_ckpt(r, event_time=5)) as peer:
        code, out, _ = run(capsys, *ctl(peer), "--json", "checkpoint", "able", "2.0")
    assert code == 0
    assert json.loads(out) == {"operation": "able", "job_id": 2, "step_id": 0, "errno": 0, "start_time": 5}


def test_verbose_logs_rpcs_without_credentials(capsys):
    import logging

    with ReplayPeer(lambda r: reply_ckpt(r, event_time=5)) as peer:
        code = main([*ctl(peer), "-v", "checkpoint", "able", "2.0"])
        logging.getLogger().handlers.clear()
    out, err = capsys.readouterr()
    assert code == 0
    assert "-> 127.0.0.1" in err and "REQUEST_CHECKPOINT v19.05" in err and "job_id=2" in err
    assert "<- 127.0.0.1" in err and "RESPONSE_CHECKPOINT" in err and "credential redacted" in err
    assert not any(line.endswith(" ") for line in err.splitlines())


def test_verbose_request_line_of_a_ping_ends_with_its_version(capsys):
    """A ping has no body fields: its line ended with a stray space."""
    import logging

    with ReplayPeer(reply_rc) as peer:
        main([*ctl(peer), "-v", "ping"])
        logging.getLogger().handlers.clear()
    requests = [line for line in capsys.readouterr().err.splitlines() if " -> " in line]
    assert requests and all(re.search(r"REQUEST_PING (v\d\d\.\d\d|\(newer than 26\.05, protocol "
                                                r"0x2e00\))$", line) for line in requests), requests


def test_ping_primary_and_backup(capsys, tmp_path):
    with ReplayPeer(reply_rc) as peer:
        conf = tmp_path / "slurm.conf"
        conf.write_text(f"SlurmctldHost=ctl1({peer.host})\nSlurmctldHost=ctl2(127.0.0.1)\n"
                        f"SlurmctldPort={peer.port}\nAuthType=auth/none\nMessageTimeout=1\n")
        # ctl2 shares the port here, so make it a dead one via a second conf line set
        conf.write_text(conf.read_text().replace("ctl2(127.0.0.1)", "ctl2(127.0.0.2)"))
        code, out, err = run(capsys, "--conf", str(conf), "ping")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Slurmctld(primary) at ctl1 is UP"
    assert lines[1] == "Slurmctld(backup) at ctl2 is DOWN"
    if os.getuid() == 0:
        assert lines[3] == "** RESTORE SLURMCTLD DAEMON TO SERVICE **"


def test_python_dash_m_is_the_same_program():
    out = subprocess.run([sys.executable, "-m", "pyslurmrpc", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "checkpoint" in out.stdout and "decode" in out.stdout
    for sub in ("checkpoint", "ping"):
        res = subprocess.run([sys.executable, "-m", "pyslurmrpc", sub, "--help"], capture_output=True, text=True)
        assert res.returncode == 0 and "usage" in res.stdout


def test_ping_exits_1_when_no_controller_answers(capsys):
    """As scontrol 22.05+ (scontrol.c _ping_slurmctld): 1 when none is UP, 0 when one is."""
    code, out, _ = run(capsys, "--controller", f"127.0.0.1:{free_port()}", "--auth", "none", "--timeout", "1", "ping")
    assert code == 1 and out.splitlines()[0].endswith(" is DOWN")


def test_ping_with_extra_words_says_so_as_scontrol_does(capsys):
    """scontrol.c _process_command (19.05): "too many arguments", the controllers still pinged, exit 1."""
    with ReplayPeer(reply_rc) as peer:
        code, out, err = run(capsys, *ctl(peer), "ping", "--json")
    assert (code, out, err) == (1, "Slurmctld(primary) at 127.0.0.1 is UP\n", "too many arguments for keyword:ping\n")


def test_verbose_says_why_a_controller_is_down(capsys):
    """-v logged nothing for a call that never reached a daemon: only "is DOWN" came out."""
    import logging

    port = free_port()
    try:
        code = main(["-v", "--controller", f"127.0.0.1:{port}", "--auth", "none", "--timeout", "1", "ping"])
    finally:
        logging.getLogger().handlers.clear()
    _, err = capsys.readouterr()
    assert code == 1
    assert f"pyslurmrpc.rpc: x 127.0.0.1:{port}: connection refused" in err.splitlines()
    assert f"pyslurmrpc.cli: Slurmctld(primary) is DOWN: 127.0.0.1:{port}: connection refused" in err.splitlines()


class _Asked:
    """What ping_all asks of a client (the requests themselves are counted in test_detection.py)."""

    def __init__(self):
        from pyslurmrpc.client.core import settings_from_args

        self.settings, self.asked = settings_from_args("127.0.0.1", 1, auth="none"), []

    def ping(self, i):
        self.asked.append(("ping", i))
        return True

    def controller_version(self, i):
        self.asked.append(("controller_version", i))
        return "26.05"


def test_plain_ping_only_pings_and_json_asks_the_release_instead():
    """Plain `ping` also asked controller_version, a second detection whose release it never showed."""
    from pyslurmrpc.cli.ping import ping_all

    plain, as_json = _Asked(), _Asked()
    assert ping_all(plain)[1][0]["up"] is True and plain.asked == [("ping", 0)]
    records = ping_all(as_json, with_version=True)[1]
    assert as_json.asked == [("controller_version", 0)] and records[0]["version"] == "26.05" and records[0]["up"]


class _Undetermined(_Asked):
    """A controller that answered, but whose release detection could not tell (``answered``),
    or that answered nothing."""

    def __init__(self, answered: bool):
        super().__init__()
        self.answered = answered

    def ping(self, i):
        super().ping(i)
        if not self.answered:
            raise AssertionError("a controller that answered nothing is not pinged again")
        return True

    def controller_version(self, i):
        from pyslurmrpc.errors import NoVersionAnsweredError

        super().controller_version(i)
        raise NoVersionAnsweredError("answers fit several releases", answered=self.answered)


def test_json_ping_of_a_controller_whose_release_was_not_told_says_up():
    """A round that lost a probe names no release: --json said DOWN where plain ping said UP."""
    from pyslurmrpc.cli.ping import ping_all

    told = _Undetermined(answered=True)
    record = ping_all(told, with_version=True)[1][0]
    assert (record["up"], record["version"]) == (True, None) and "error" not in record
    assert told.asked == [("controller_version", 0), ("ping", 0)]
    silent = _Undetermined(answered=False)
    record = ping_all(silent, with_version=True)[1][0]
    assert record["up"] is False and "several" in record["error"] and silent.asked == [("controller_version", 0)]


def test_json_ping_names_the_release_the_controller_speaks(capsys):
    from pyslurmrpc.fake import FakeSlurmctld, fixture_cluster

    with FakeSlurmctld(fixture_cluster()) as ctld:
        code, out, _ = run(capsys, "--controller", f"{ctld.host}:{ctld.port}", "--auth", "none", "--json", "ping")
    record = json.loads(out)
    assert code == 0 and record["up"] is True and record["version"] == "19.05", record


def _program(*argv, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pyslurmrpc", *argv], stderr=subprocess.PIPE, text=True,
                            **kwargs)


def test_ctrl_c_during_a_call_stops_without_a_traceback():
    with ReplayPeer(lambda r: STALL) as peer:
        proc = _program(*ctl(peer)[:4], "--timeout", "30", "checkpoint", "able", "2.0", stdout=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not peer.requests and time.monotonic() < deadline:   # the call is waiting for its reply
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert peer.requests == 1
    assert (proc.returncode, out, err) == (130, "", "")


def test_a_reader_that_goes_away_ends_the_output_quietly():
    """pyslurmrpc demo | head -1: the first line read, then no BrokenPipeError printed."""
    proc = _program("demo", "--munge-socket", "/nonexistent", stdout=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert first.startswith("fake slurmctld 19.05 on ") and err == "", err


def test_decode_into_a_reader_that_goes_away_says_so_by_its_status(tmp_path):
    """decode | head -1 ended 0 ("all decoded") while demo | head -1 ended 1: now both 1."""
    frames = tmp_path / "frames.bin"
    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    frames.write_bytes(b"".join(p.read_bytes() for p in sorted(fixtures.glob("*.bin"))) * 200)
    proc = _program("decode", str(frames), stdout=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert first and err == "", err


def test_output_that_cannot_be_written_is_one_line_on_stderr():
    with ReplayPeer(reply_rc) as peer, open("/dev/full", "w") as full:
        proc = _program(*ctl(peer), "ping", stdout=full)
        _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (1, "pyslurmrpc: No space left on device\n")
