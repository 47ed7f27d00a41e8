"""pyslurmrpc.testing as a user of it drives it: no root daemon or key file outlives a mistake,
a second start, an interrupted start, or the death of the process holding it; mistakes are said
at once and by name (a new user's trial found each of these wrong)."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyslurmrpc.testing import (
    MungedHarness, MungedNotFound, MungedStartError, ReleaseUnavailable, SlurmctldHarness, SlurmctldNotFound,
    SlurmctldStartError, prepare,
)
from pyslurmrpc.testing import releases
from pyslurmrpc.testing.ci import needs_root
from pyslurmrpc.testing.munged import find_munged

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """The harnesses' temporary directories go here: what is left can be seen."""
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gone_within(pids, seconds=10.0) -> bool:
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --- munged -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{"key": b"short"}, {"extra_args": ["--bogus"]}])
def test_a_munged_that_does_not_start_leaves_no_directory(own_tmp, kwargs):
    """The directory, key file included, stayed behind."""
    find_munged()
    with pytest.raises(MungedStartError, match="munged exited"):
        MungedHarness(**kwargs).start()
    assert list(own_tmp.iterdir()) == []


@pytest.mark.parametrize("kwargs, error, says", [
    ({"key": "x" * 64}, TypeError, "key must be bytes"),
    ({"munged": "/nonexistent/munged"}, MungedNotFound, "'/nonexistent/munged' is not an executable file"),
    ({"num_threads": 0}, ValueError, "num_threads must be a positive int"),
])
def test_munged_mistakes_are_said_before_anything_is_made(own_tmp, kwargs, error, says):
    with pytest.raises(error, match=says):
        MungedHarness(**kwargs)
    assert list(own_tmp.iterdir()) == []


def test_a_started_harness_in_a_with_block_is_one_daemon_stopped_once(own_tmp):
    """start() then with: the with started a second munged and orphaned the first."""
    h = MungedHarness().start()
    first = h.pid
    with h:
        assert h.pid == first
        with pytest.raises(RuntimeError, match=f"MungedHarness already started \\(pid {first}\\)"):
            h.start()
    assert not h.running and gone_within([first]) and list(own_tmp.iterdir()) == []


def test_an_interrupted_start_stops_what_it_started(own_tmp, monkeypatch):
    """A Ctrl-C while munged was starting left it running: __exit__ never came."""
    started = []

    def interrupted(self):
        started.append(self.pid)
        raise KeyboardInterrupt
    monkeypatch.setattr(MungedHarness, "_wait_for_socket", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with MungedHarness():
            pass
    assert started and gone_within(started) and list(own_tmp.iterdir()) == []


SCRIPT = """
import os, sys, threading, time
from pyslurmrpc.testing import MungedHarness, SlurmctldHarness
def start():
    m = MungedHarness().start()         # kept by no one: the exit still stops it
    print(m.pid, SlurmctldHarness(m.socket_path).start().pid, flush=True)
if sys.argv[1] == "thread":             # no PR_SET_PDEATHSIG from another thread: atexit alone
    worker = threading.Thread(target=start)
    worker.start()
    worker.join()
else:
    start()
if sys.argv[1] == "wait":
    time.sleep(60)
"""


@pytest.mark.parametrize("how", ["sigterm", "exit", "thread"])
def test_the_daemons_die_with_the_process_that_holds_them(how, tmp_path):
    """SIGTERM of a script holding a munged and a slurmctld (or its end without stop()) left
    both running for good: root daemons, the controller on every address.  At an exit the
    directories go too; a SIGTERM runs no Python, and they stay."""
    needs_root(pytest, "slurmctld runs with SlurmUser=root (it sets gid 0)")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "wait" if how == "sigterm" else how],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp_path)})
    pids = [int(p) for p in proc.stdout.readline().split()]
    try:
        assert len(pids) == 2 and all(alive(p) for p in pids)
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        assert gone_within(pids, 15), [p for p in pids if alive(p)]
        if how != "sigterm":
            assert list(tmp_path.iterdir()) == []
    finally:
        proc.kill()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_forked_child_s_exit_leaves_the_parent_s_harness(own_tmp):
    """The exit hook ran in a forked child too, and removed the parent's munged directory."""
    with MungedHarness() as m:
        pid = os.fork()
        if pid == 0:
            atexit._run_exitfuncs()          # what a normal exit of the child runs
            os._exit(0)
        os.waitpid(pid, 0)
        assert m.running and os.path.exists(m.socket_path)


def test_a_restart_after_the_daemon_died_removes_the_old_directory(own_tmp):
    m = MungedHarness().start()
    try:
        first = m.workdir
        os.kill(m.pid, signal.SIGKILL)
        m._proc.wait(10)          # (its main thread shows Z in /proc before the others are gone)
        with m:                                   # not running: a new daemon, the old files gone
            assert m.running and m.workdir != first and not first.exists()
    finally:
        m.stop()
    assert list(own_tmp.iterdir()) == []


# --- slurmctld ------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", ["0.0.0.0", "127.0.0.1"])
def test_a_port_taken_on_any_address_is_in_use(address):
    """slurmctld binds every address: a listener on loopback alone takes the port from it."""
    from pyslurmrpc.testing.netio import port_free
    with socket.socket() as taken:
        taken.bind((address, 0))
        taken.listen()
        assert not port_free(taken.getsockname()[1])


def test_slurmctld_mistakes_are_said_at_once(munged, own_tmp):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SlurmctldStartError, match=f"^port {port} is in use$"):
            SlurmctldHarness(munged.socket_path, port=port).start()
    with pytest.raises(SlurmctldStartError, match="is not a socket \\(is munged running\\?\\)"):
        SlurmctldHarness(str(own_tmp / "munge.socket")).start()     # waited 30 s for a ping
    assert list(own_tmp.iterdir()) == []
    for kwargs, error, says in [({"port": 99999}, ValueError, "port must be an int from 1 to 65535"),
                                ({"port": "6817"}, ValueError, "port must be an int"),
                                ({"start_timeout": 0}, ValueError, "start_timeout must be a number of seconds"),
                                ({"slurmctld": "/nonexistent/slurmctld"}, SlurmctldNotFound, "not an executable"),
                                ({"release": 24.11}, TypeError, "release must be a Release from prepare()")]:
        with pytest.raises(error, match=says):
            SlurmctldHarness(munged.socket_path, **kwargs)
    with pytest.raises(TypeError, match="munge_socket must be the path of munged's socket, not None"):
        SlurmctldHarness(None)       # was written as AuthInfo=socket=None


def test_a_harness_not_running_says_so(munged):
    ctld = SlurmctldHarness(munged.socket_path)
    for use in (lambda: ctld.scontrol("ping"), lambda: ctld.env):
        with pytest.raises(RuntimeError, match="SlurmctldHarness is not running: start\\(\\) it"):
            use()


def test_a_failed_start_names_slurmctld_s_fatal_line_first(munged, own_tmp):
    needs_root(pytest, "slurmctld runs with SlurmUser=root (it sets gid 0)")
    with pytest.raises(SlurmctldStartError) as info:
        SlurmctldHarness(munged.socket_path, extra_conf="PluginDir=/nonexistent\n").start()
    first = str(info.value).splitlines()[0]
    assert first.startswith("slurmctld exited with") and "fatal" in first, first
    assert list(own_tmp.iterdir()) == []


def test_a_release_s_scontrol_ping_that_hangs_is_one_more_wait(munged, monkeypatch):
    """It was a raw subprocess.TimeoutExpired from inside start(), past start_timeout."""
    ctld = SlurmctldHarness(munged.socket_path, release=prepare("22.05"))
    ctld.release_info = releases.Release("24.11", "24.11.5", "/x/slurmctld", "/x/scontrol", "/x/plugins")

    def hangs(*args, timeout):
        raise subprocess.TimeoutExpired(["scontrol", "ping"], timeout)
    monkeypatch.setattr(ctld, "scontrol", hangs)
    assert ctld._answers(None, time.monotonic() + 5) == "scontrol ping did not answer"


def test_a_release_may_be_named():
    """release="24.11" was an AttributeError from inside __init__ (it wants a Release)."""
    assert releases.as_release("22.05") == prepare("22.05")
    assert releases.libslurm_of("22.05") == (None, None)
    with pytest.raises(TypeError, match="release must be a Release from prepare"):
        releases.client_program(5, "sinfo")


def test_release_names_are_checked_as_names(monkeypatch, tmp_path):
    with pytest.raises(TypeError, match="name must be a release name such as '24.11', not 24.11"):
        prepare(24.11)
    assert releases.unknown_releases("24.11") is None
    assert releases.unknown_releases("99.1") == "unknown release '99.1' (known: 20.11, 22.05, 24.11, 26.05)"
    a_file = tmp_path / "cache"
    a_file.write_text("")
    monkeypatch.setenv("PYSLURMRPC_CACHE", str(a_file))
    monkeypatch.setattr(releases, "_cached", lambda marker: None)
    with pytest.raises(ReleaseUnavailable, match="cannot make its cache"):
        prepare("24.11")


def test_a_tree_s_glibc_is_read_from_its_banner_inside_the_tree(tmp_path):
    lib = tmp_path / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libc-2.31.so").write_bytes(b"\x7fELF...GNU C Library (Debian GLIBC 2.31-13) stable release version 2.31.\n")
    (lib / "libc.so.6").symlink_to("/usr/lib/x86_64-linux-gnu/libc-2.31.so")    # absolute: re-rooted
    loader = lib / "ld-linux-x86-64.so.2"
    assert releases.tree_glibc(tmp_path, loader) == (2, 31)
    (lib / "libc-2.31.so").write_bytes(b"no banner")
    with pytest.raises(ReleaseUnavailable, match="cannot tell the glibc version"):
        releases.tree_glibc(tmp_path, loader)
    (lib / "libc-2.31.so").unlink()
    with pytest.raises(ReleaseUnavailable, match="cannot read the tree's C library"):
        releases.tree_glibc(tmp_path, loader)


@pytest.mark.parametrize("said, seen", [("glibc 2.36", (2, 36)), ("glibc 2.41.9000", (2, 41)), ("", None)])
def test_the_machine_s_glibc(monkeypatch, said, seen):
    """None (musl, or nothing said): the tree's own loader is kept, as for a newer glibc."""
    monkeypatch.setattr(releases.os, "confstr", lambda name: said)
    assert releases.host_glibc() == seen
