"""``pyslurmrpc bench`` as a user drives it: what a new user's trial found wrong (a traceback, a
daemon left running, a child's traceback on Ctrl-C, a dead controller waited for part after
part, a failed comparison that exited 0, options quietly ignored)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from pyslurmrpc import bench
from pyslurmrpc.bench import codec, fanout

from peers import ReplayPeer

MARK = "PYSLURMRPC_BENCH_TEST_MARK"


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "pyslurmrpc", "bench", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def marked_pids(mark: str) -> list[int]:
    """The processes whose environment carries ``mark`` (the bench's children and the daemons
    its harnesses started inherit it)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if f"{MARK}={mark}".encode() in fh.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


def marked_processes(mark: str) -> list[str]:
    """Command lines of :func:`marked_pids`."""
    found = []
    for pid in marked_pids(mark):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                found.append(fh.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def started(args, mark, tmpdir=None, **kwargs):
    env = {**os.environ, MARK: mark, **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
    return subprocess.Popen([sys.executable, "-m", "pyslurmrpc", "bench", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, **kwargs)


def kill_all(proc, mark: str) -> None:
    """The test's own cleanup: the bench and whatever it left (its children have sessions of
    their own: killing the bench alone would leave them)."""
    proc.kill()
    for pid in marked_pids(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def wait_for_children(mark: str, at_least: int = 0, running: str = "", seconds: float = 60) -> None:
    """Until the bench has ``at_least`` processes under it, one of them running ``running``."""
    deadline = time.monotonic() + seconds
    while True:
        found = marked_processes(mark)
        if len(found) >= 1 + at_least and any(running in cmd for cmd in found):
            return
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


# --- stopping --------------------------------------------------------------------------------
def test_sigterm_stops_the_harness_daemons_and_the_children(tmp_path):
    """It left munged and slurmctld running (parent pid 1) with their directories."""
    mark = uuid.uuid4().hex
    proc = started(["--only", "versus", "-n", "50", "--seconds", "30"], mark, tmp_path)   # its own daemons
    try:
        wait_for_children(mark, at_least=2)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        kill_all(proc, mark)
    assert proc.returncode == -signal.SIGTERM, err    # its cleanup done, it ends as SIGTERM ends it
    assert "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(mark) == []
    assert list(tmp_path.iterdir()) == []          # the daemons' directories were removed too


def test_ctrl_c_at_the_terminal_prints_no_child_s_traceback(munged):
    """A terminal's Ctrl-C signals the whole process group: the stub child printed its own
    KeyboardInterrupt traceback.  The children now have sessions of their own."""
    mark = uuid.uuid4().hex
    proc = started(["--only", "rpc", "-n", "200000", "--munge-socket", munged.socket_path], mark,
                   start_new_session=True)
    try:
        wait_for_children(mark, running="fake-slurmctld")
        children = [pid for pid in marked_pids(mark) if pid != proc.pid]
        assert children and all(os.getsid(pid) != os.getsid(proc.pid) for pid in children)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        kill_all(proc, mark)
    assert proc.returncode == 130 and "Traceback" not in err and "Exception ignored" not in err, err
    deadline = time.monotonic() + 10
    while marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(mark) == []


# --- what cannot be measured is said at once ------------------------------------------------------
def test_a_controller_that_refuses_connections_fails_at_once():
    """It took about 30 s per part (95 s in all) before the error."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    start = time.monotonic()
    result = run("--only", "rpc", "--auth", "none", "--controller", f"127.0.0.1:{port}")
    assert time.monotonic() - start < 20
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"pyslurmrpc bench: --controller 127.0.0.1:{port}: Connection refused\n"


def test_a_munge_socket_munged_does_not_answer_on_fails_before_any_part(tmp_path, monkeypatch, capsys):
    """The parts measured before it (codec: 5 s) were thrown away for the one error."""
    monkeypatch.setattr(codec, "run", lambda n: pytest.fail("codec measured before the munge socket was tried"))
    code = bench.main(["--json", "--only", "codec", "--only", "munge", "--munge-socket", str(tmp_path / "none.sock")])
    out, err = capsys.readouterr()
    assert code == 1 and list(json.loads(out)) == ["error"]
    assert err.startswith("pyslurmrpc bench: ") and "none.sock" in err


def test_versus_named_and_not_made_exits_1(munged):
    """It exited 0 with the reason inside the JSON only: a script could not tell."""
    with ReplayPeer(lambda frame: None) as peer:      # takes the connection, answers nothing
        result = run("--json", "--only", "versus", "-n", "20", "--seconds", "0.2", "--munge-socket",
                     munged.socket_path, "--controller", f"{peer.host}:{peer.port}")
    assert result.returncode == 1, result
    assert "skipped" in json.loads(result.stdout)["versus"]
    assert result.stderr.startswith("pyslurmrpc bench: versus was not measured (")


def test_a_default_run_without_a_harness_controller_measures_the_rest_and_exits_0(monkeypatch, capsys):
    """versus is a default part: a machine without Debian's slurmctld still measures the others."""
    def no_controller(opts, socket_path):
        raise FileNotFoundError("slurmctld not found")
    monkeypatch.setattr(bench.versus, "run", no_controller)
    monkeypatch.setattr(bench, "_rpc", lambda opts, sock, why: [])
    monkeypatch.setattr(bench.munge, "run", lambda *a: [])
    assert bench.main(["-n", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["versus"] == {"skipped": "FileNotFoundError: slurmctld not found"} and report["codec"]


def test_sigterm_in_the_bench_raises_once_and_gives_the_handler_back():
    """A second SIGTERM during the cleanup is ignored; the caller's handler is back after."""
    from pyslurmrpc.bench.children import Terminated, sigterm_raises
    got = []
    previous = signal.signal(signal.SIGTERM, lambda *a: got.append("caller's"))
    raised = []
    try:
        with sigterm_raises():
            try:
                signal.raise_signal(signal.SIGTERM)
            except Terminated:
                raised.append("first")
                signal.raise_signal(signal.SIGTERM)      # during the cleanup: ignored, no second
        signal.raise_signal(signal.SIGTERM)
        assert raised == ["first"] and got == ["caller's"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_reaped_kills_a_child_still_running():
    from pyslurmrpc.bench.children import reaped, spawn
    child = spawn(["sleep", "60"])
    with pytest.raises(RuntimeError):
        with reaped(child):
            raise RuntimeError("the bench stopped")
    assert child.poll() is not None


@pytest.mark.parametrize("args, says", [
    (["--only", "codec", "--release", "26.05"], "--release changes only versus, which this run does not measure"),
    (["--only", "codec", "--controller", "127.0.0.1:6817"], "--controller changes only rpc and versus"),
    (["--only", "fanout", "-n", "5"], "-n changes only codec and munge and rpc and versus"),
    (["--only", "fanout", "--nodes", "1000", "--nodes", "1000"], "--nodes: give each node count once"),
    (["--nodes", "5"], "(the default parts, versus, codec, munge, rpc; fanout runs only with --only fanout)"),
    (["--only", "rpc", "--job", "5"], "--job is for --controller's slurmctld: give --controller too"),
    (["--only", "versus", "--slurm-conf", "/etc/hostname"], "--slurm-conf is for --controller's slurmctld"),
    (["--only", "rpc", "--auth", "none", "--munge-socket", "/x"], "--munge-socket: this run uses no munged"),
])
def test_an_option_the_run_does_not_use_is_a_usage_error(args, says):
    result = run(*args)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr, result.stderr


# --- reports --------------------------------------------------------------------------------------
def test_fanout_ratios_too_small_to_measure_print_as_a_dash(monkeypatch):
    """A first row whose CPU rounded to 0 made the CPU ratio null, and the table a traceback."""
    rows = iter([{"nodes": 1, "seconds": 0.01, "cpu_s_client": 0.0, "cpu_s_farm": 0.0},
                 {"nodes": 2, "seconds": 0.02, "cpu_s_client": 0.01, "cpu_s_farm": 0.01}])
    monkeypatch.setattr(fanout, "one", lambda n, width: {**next(rows), "tree_width": width, "ok": n, "errors": 0,
                                                         "peak_fds": 9})
    report = fanout.run([1, 2], 50)
    assert report[1]["ratios"] == {"time(2)/time(1)": 2.0, "cpu(2)/cpu(1)": None}
    assert bench._render_fanout(report)[-2:] == ["  time(2)/time(1): 2.00", "  cpu(2)/cpu(1): -"]


def test_a_cpu_ratio_needs_a_few_clock_ticks(monkeypatch):
    rows = iter([{"nodes": 1, "seconds": 0.01, "cpu_s_client": 0.01, "cpu_s_farm": 0.02},
                 {"nodes": 2, "seconds": 0.02, "cpu_s_client": 0.03, "cpu_s_farm": 0.03}])
    monkeypatch.setattr(fanout, "one", lambda n, width: next(rows))
    assert fanout.run([1, 2], 50)[1]["ratios"]["cpu(2)/cpu(1)"] is None   # 3 ticks: noise
    rows = iter([{"nodes": 1, "seconds": 0.01, "cpu_s_client": 0.04, "cpu_s_farm": 0.02},
                 {"nodes": 2, "seconds": 0.02, "cpu_s_client": 0.06, "cpu_s_farm": 0.06}])
    assert fanout.run([1, 2], 50)[1]["ratios"]["cpu(2)/cpu(1)"] == 2.0


def test_the_codec_columns_take_turns(monkeypatch):
    """Three separate best-of-3 runs put "both" under "decode" alone when the machine moved."""
    seen = []
    monkeypatch.setattr(codec, "taking_turns", lambda fns, n: seen.append(sorted(fns)) or dict.fromkeys(fns, 1.0))
    monkeypatch.setattr(codec, "per_call_us", lambda fn, n: 2.0)
    rows = codec.run(10)
    assert seen == [["both", "decode", "encode"]] * len(codec.SAMPLES)
    assert {(r["decode_us"], r["encode_us"], r["decode_plus_encode_us"]) for r in rows} == {(1.0, 1.0, 1.0)}


def test_a_run_that_uses_no_munged_starts_none(monkeypatch, capsys):
    """rpc with --auth none alone (or codec, fanout) started a throw-away munged it never asked."""
    from pyslurmrpc.bench import options
    from pyslurmrpc.testing.munged import MungedHarness
    monkeypatch.setattr(MungedHarness, "start", lambda self: pytest.fail("a munged was started"))
    monkeypatch.setattr(codec, "run", lambda n: [{"message": "X"}])
    monkeypatch.setattr(bench, "render", lambda report: [])
    assert bench.main(["--only", "codec", "-n", "20"]) == 0
    for argv in (["--only", "rpc", "--auth", "none"], ["--only", "fanout"]):
        assert not options.uses_munge(options.parser().parse_args(argv))
    assert options.uses_munge(options.parser().parse_args(["--only", "munge"]))


def test_a_run_whose_munged_cannot_start_says_so_and_exits_1(monkeypatch, capsys):
    """It printed an empty table and exited 0 (a missing munged), or a traceback (one that failed)."""
    from pyslurmrpc.testing.munged import MungedHarness, MungedStartError

    def fails(self):
        raise MungedStartError("munged exited with 1\nstderr: ...")
    monkeypatch.setattr(MungedHarness, "start", fails)
    assert bench.main(["--only", "munge", "-n", "20", "--json"]) == 1
    out, err = capsys.readouterr()
    said = "no munged: give --munge-socket or install munge (munged exited with 1)"
    assert json.loads(out)["munge"] == {"skipped": said}
    assert err == f"pyslurmrpc bench: nothing was measured (munge: {said})\n"


def test_a_caller_that_ignores_sigterm_keeps_ignoring_it():
    from pyslurmrpc.bench.children import sigterm_raises
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with sigterm_raises():
            signal.raise_signal(signal.SIGTERM)     # ignored: nothing raised
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
