"""pyslurmrpc against REAL controllers of four Slurm releases, each compared with its own scontrol.

20.11, 24.11 and 26.05 are Debian's own packages of bullseye, trixie and sid,
fetched and unpacked by :mod:`pyslurmrpc.testing.releases` (the test command
prepares them first; see protocol_specs/real_daemons.md); 22.05 is Debian 12's
installed slurmctld.  Every controller uses the session's real munged.  Under
CI=true nothing here is skipped: a release that cannot be had fails its tests.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import test_decode_tcpdump as capture
from pyslurmrpc import AsyncClient, AuthError, CheckpointUnsupported, Client, NoVersionAnsweredError, SlurmError
from pyslurmrpc.decode.cli import decode_source, main as decode_main
from pyslurmrpc.decode.frames import MungeOpener
from pyslurmrpc.decode.inputs import load
from pyslurmrpc.testing.slurmctld import release_slurmctld_or_skip

RELEASES = ("20.11", "22.05", "24.11", "26.05")
#: SLURM_PROTOCOL_VERSION of each release (src/common/slurm_protocol_common.h at its tag)
PROTOCOL = {"20.11": 0x2400, "22.05": 0x2600, "24.11": 0x2A00, "26.05": 0x2D00}
#: releases whose _check_hash (src/common/slurm_protocol_api.c) reads CommunicationParameters=
#: block_null_hash: 21.08.8/20.11.9 upstream, and Debian's 20.11.4+deb11u1 carries the backport
#: (its libslurmfull holds the string; test_block_null_hash_is_known_to_the_release checks it)
BLOCK_NULL_HASH = frozenset({"20.11", "22.05", "24.11", "26.05"})
MODES = [(r, "") for r in RELEASES] + [(r, "block_null_hash") for r in RELEASES if r in BLOCK_NULL_HASH]
#: what scontrol puts in its MUNGE payload (slurm_send_node_msg / _check_hash at each tag):
#: 20.11 [HASH_PLUGIN_NONE, msg_type in host order]; 22.05+ [HASH_PLUGIN_K12, 32-byte hash]
HASH_PAYLOAD = {"20.11": (1, 3), "22.05": (2, 33), "24.11": (2, 33), "26.05": (2, 33)}
REQUEST_PING, RESPONSE_SLURM_RC = 1008, 8001   # src/common/slurm_protocol_defs.h
MACHINE_LIB_DIRS = ("/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/")
CALL_TIMEOUT = 60.0


@pytest.fixture(scope="module", params=MODES, ids=lambda m: "-".join(filter(None, m)))
def ctld(request, munged):
    """One real controller per (release, CommunicationParameters); the module runs them one at a time."""
    release, comm = request.param
    extra = f"CommunicationParameters={comm}\n" if comm else ""
    harness = release_slurmctld_or_skip(pytest, munged.socket_path, release, extra_conf=extra)
    harness.release_name, harness.comm = release, comm
    yield harness
    harness.stop()


def _run(cmd, env) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CALL_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    print(f"$ {' '.join(cmd[-4:])}  (rc {proc.returncode})\n{proc.stdout}{proc.stderr}")
    return proc


def _pyslurmrpc(ctld, *args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "pyslurmrpc", "--conf", ctld.conf_path, *args], ctld.env)


def _client(ctld, munged, **kw) -> Client:
    return Client(ctld.host, ctld.port, munge_socket=munged.socket_path, **{"timeout": 10, **kw})


# --------------------------------------------------------------------------
# the daemon itself, judged by its own release's tools
# --------------------------------------------------------------------------
def test_daemon_is_up_by_its_own_scontrol(ctld):
    ping = ctld.scontrol("ping")
    print(f"scontrol ping ({ctld.release_info.version}): {ping.stdout!r}")
    assert ping.returncode == 0 and ping.stdout.rstrip().endswith(" is UP")
    version = ctld.scontrol("version").stdout.split()
    assert version[-1] == ctld.release_info.version and version[-1].startswith(ctld.release_name + ".")
    assert f"slurmctld version {ctld.release_info.version} started" in ctld.log_text()
    conf = open(ctld.conf_path).read()
    assert (f"CommunicationParameters={ctld.comm}\n" in conf) == bool(ctld.comm)


def test_daemon_runs_its_own_suites_libraries(ctld):
    """The process is the patched program named slurmctld, and maps the unpacked libc (not Debian 12's)."""
    rel = ctld.release_info
    with open(f"/proc/{ctld.pid}/cmdline", "rb") as fh:
        assert fh.read().split(b"\0")[0] == rel.slurmctld.encode()
    maps = open(f"/proc/{ctld.pid}/maps").read()
    libc = [line.split()[-1] for line in maps.splitlines() if "/libc.so.6" in line or "/libc-2." in line]
    assert libc, "slurmctld maps no libc"
    if rel.suite:
        assert rel.plugin_dir and f"PluginDir={rel.plugin_dir}\n" in open(ctld.conf_path).read()
        assert all(path.startswith(rel.root + "/") for path in libc), libc
    else:
        assert all(path.startswith(MACHINE_LIB_DIRS) for path in libc), libc


def test_block_null_hash_is_known_to_the_release(ctld):
    """The table above is checked against the release's own library, not assumed."""
    lib_dir = ctld.release_info.plugin_dir or "/usr/lib/x86_64-linux-gnu/slurm-wlm"
    with open(f"{lib_dir}/libslurmfull.so", "rb") as fh:
        knows = b"block_null_hash" in fh.read()
    assert knows == (ctld.release_name in BLOCK_NULL_HASH)


# --------------------------------------------------------------------------
# pyslurmrpc against it
# --------------------------------------------------------------------------
def test_pyslurmrpc_ping_prints_what_its_scontrol_ping_prints(ctld):
    theirs = _run([ctld.release_info.scontrol, "ping"], ctld.env)
    ours = _pyslurmrpc(ctld, "ping")
    assert (ours.stdout, ours.returncode) == (theirs.stdout, theirs.returncode)


def test_controller_version_is_exact(ctld, munged):
    got = _client(ctld, munged).controller_version()
    print(f"controller_version() against {ctld.release_info.version}: {got!r}")
    assert got == ctld.release_name


def test_async_client_detects_alike_and_a_cached_ping_is_one_request(ctld, munged, caplog):
    import asyncio
    import logging

    client = AsyncClient(ctld.host, ctld.port, munge_socket=munged.socket_path, timeout=10)

    async def run():
        version = await client.controller_version()
        with caplog.at_level(logging.DEBUG, logger="pyslurmrpc.rpc"):
            caplog.clear()        # only the cached ping's records (the logger may already log)
            up = await client.ping()
        return version, up
    version, up = asyncio.run(run())
    sent = [r for r in caplog.records if r.getMessage().startswith("-> ")]
    assert (version, up, len(sent)) == (ctld.release_name, True, 1)


def _requests(caplog, call) -> tuple[object, int]:
    """``call()``'s result and how many requests it sent (pyslurmrpc's -v log lines "-> ...")."""
    import logging

    with caplog.at_level(logging.DEBUG, logger="pyslurmrpc.rpc"):
        caplog.clear()
        result = call()
    return result, sum(r.getMessage().startswith("-> ") for r in caplog.records)


def test_first_pings_at_once_share_one_detection_round(ctld, munged, caplog):
    """20 first pings at once on one client each ran detection's round after their refused first
    request: 500 error lines in 20.11's log and 580 in 22.05's, against 25 and 29 for one ping.
    The round is one now, for the asyncio client's tasks and the blocking client's threads."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    up, alone = _requests(caplog, lambda: _client(ctld, munged).ping())
    assert up is True and alone >= 1

    async def at_once():
        client = AsyncClient(ctld.host, ctld.port, munge_socket=munged.socket_path, timeout=10)
        return await asyncio.gather(*(client.ping() for _ in range(20)))
    ups, tasks = _requests(caplog, lambda: asyncio.run(at_once()))
    client = _client(ctld, munged)
    with ThreadPoolExecutor(20) as pool:
        ups_threads, threads = _requests(caplog, lambda: list(pool.map(lambda _: client.ping(), range(20))))
    assert ups == ups_threads == [True] * 20
    # each task sends its first request, and the round after it is shared: 20 + alone - 1 when
    # all were refused while it ran (a first reply that comes after it ended runs another; 24.11's
    # one-request rounds gave 21-24). Unshared it was 20 x alone: the bound is halfway. The
    # threads share too (27 requests to 20.11 on a quiet machine), but a thread gives up on a
    # round that takes over twice its own first request, which a busy machine makes common
    # (132 with two other processes spinning): they are held to the right answers only
    halfway = 20 + 10 * (alone - 1)
    assert tasks <= halfway, (tasks, threads, alone)


def test_checkpoint_verdict_names_the_release(ctld, munged):
    with pytest.raises(CheckpointUnsupported) as info:
        _client(ctld, munged).checkpoint_able(1, 0)
    text = str(info.value)
    print(f"verdict against {ctld.release_info.version}: {text}")
    assert info.value.version == ctld.release_name
    assert f"speaks Slurm {ctld.release_name}:" in text and "removed in Slurm 20.02" in text
    cli = _pyslurmrpc(ctld, "checkpoint", "able", "1.0")
    assert cli.returncode == 1 and cli.stdout == ""
    assert f"Slurm {ctld.release_name}" in cli.stderr and "removed in Slurm 20.02" in cli.stderr


def test_checkpoint_tasks_after_the_release_was_found(ctld, munged):
    """Once the controller is known, checkpoint_tasks to its nodes is refused at once when no
    slurmd it takes can checkpoint (21.08 on), as its own checkpoint calls are; 20.11 may still
    have 19.05 slurmds, so there the nodes are asked (here: none listens, each a 1001)."""
    client = _client(ctld, munged, nodes={"n1": ("127.0.0.1", 1)}, timeout=2)   # n1: 1 + 2 connects
    client.controller_version()
    if ctld.release_name == "20.11":
        with pytest.raises(SlurmError) as failed:
            client.checkpoint_tasks(1, 0, 0, None, 1, "n1")
        assert failed.value.details == {"n1": 1001}
        return
    with pytest.raises(CheckpointUnsupported, match=rf"speaks Slurm {ctld.release_name}, whose slurmds are "
                                                    r"2\d\.\d\d or newer: .* no node of n1 can checkpoint"):
        client.checkpoint_tasks(1, 0, 0, None, 1, "n1")


#: what a checkpoint call prints when our munged has another key: 24.11 and later refuse the
#: credential in words (RESPONSE_SLURM_RC 1007, unauthenticated), 20.11 and 22.05 close at once
WRONG_KEY = {"20.11": "Zero Bytes were transmitted or received", "22.05": "Zero Bytes were transmitted or received",
             "24.11": "Protocol authentication error", "26.05": "Protocol authentication error"}


@pytest.fixture(scope="module")
def stranger():
    """A second real munged with a key of its own: another cluster's credentials."""
    from pyslurmrpc.testing.munged import MungedHarness

    with MungedHarness() as other:
        yield other


def test_a_credential_of_another_key_is_named_as_the_release_answers_it(ctld, stranger):
    """With 24.11/26.05 the CLI printed "Unexpected message received" (AuthError had no errno)."""
    cli = _run([sys.executable, "-m", "pyslurmrpc", "--controller", f"{ctld.host}:{ctld.port}", "--munge-socket",
                str(stranger.socket_path), "--timeout", "5", "checkpoint", "able", "1.0"], ctld.env)
    assert cli.returncode == 1 and cli.stdout == ""
    assert cli.stderr.splitlines()[-1] == f"scontrol_checkpoint error: {WRONG_KEY[ctld.release_name]}"
    client = Client(ctld.host, ctld.port, munge_socket=stranger.socket_path, timeout=5)
    with pytest.raises((AuthError, NoVersionAnsweredError)) as info:
        client.ping()
    if WRONG_KEY[ctld.release_name] == "Protocol authentication error":
        assert type(info.value) is AuthError and info.value.slurm_errno == 1007
        assert "the controller refused the credential" in str(info.value)
    else:
        assert type(info.value) is NoVersionAnsweredError and "is the authentication" in str(info.value)


def test_first_pings_at_once_with_another_key_each_fail_as_one_alone(ctld, stranger):
    """A round that failed is never taken by the calls that waited for it (a reset in it may be
    that call's alone): each runs its own and fails as a call alone does."""
    import asyncio

    with pytest.raises((AuthError, NoVersionAnsweredError)) as alone:
        Client(ctld.host, ctld.port, munge_socket=stranger.socket_path, timeout=5).ping()

    async def at_once():
        client = AsyncClient(ctld.host, ctld.port, munge_socket=stranger.socket_path, timeout=5)
        return await asyncio.gather(*(client.ping() for _ in range(20)), return_exceptions=True)
    failures = asyncio.run(at_once())
    assert [type(f) for f in failures] == [type(alone.value)] * 20
    assert all(str(f).split(": ", 1)[1] == str(alone.value).split(": ", 1)[1] for f in failures)


def _error_lines(ctld) -> int:
    """Lines of Slurm's error() ("error: ..."): a debug line may say "Error connecting" of the
    controller's own background connections, which no request of ours caused."""
    return sum(" error: " in line for line in ctld.log_text().splitlines())


def _logged_within(ctld, before: int, seconds: float) -> int:
    """Error lines the controller logged since ``before``, waiting up to ``seconds`` for one."""
    deadline = time.monotonic() + seconds
    while _error_lines(ctld) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    return _error_lines(ctld) - before


def _settled_lines(ctld, quiet: float = 0.5, seconds: float = 10.0) -> int:
    """The log's error lines once none came for ``quiet`` seconds: a refusal's lines are
    written over some milliseconds, and the last ones must not count for the next call."""
    deadline, count, since = time.monotonic() + seconds, _error_lines(ctld), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.05)
        now = _error_lines(ctld)
        if now != count:
            count, since = now, time.monotonic()
    return count


def test_a_pinned_release_is_pinged_with_no_refused_request_in_its_log(ctld):
    """Each fresh pyslurmrpc ping detected the release anew: 25 error lines in 20.11's log, 29
    in 22.05's, 3 in 24.11's. --protocol RELEASE tries that release first: none."""
    if ctld.release_name != "26.05":       # the control: without the pin the refused requests are logged
        before = _settled_lines(ctld)
        assert _pyslurmrpc(ctld, "ping").returncode == 0 and _logged_within(ctld, before, 10.0) > 0
    before = _settled_lines(ctld)
    proc = _pyslurmrpc(ctld, "--protocol", ctld.release_name, "ping")
    assert proc.returncode == 0 and proc.stdout.startswith("Slurmctld(primary) at ")
    assert _logged_within(ctld, before, 1.0) == 0, ctld.log_text()[-2000:]
    proc = _pyslurmrpc(ctld, "--protocol", ctld.release_name, "checkpoint", "able", "1.0")
    assert proc.returncode == 1 and f"the client's protocol_version (--protocol) is {ctld.release_name}, a " \
        "release without checkpoint RPCs" in proc.stderr


def test_auth_none_to_a_munge_controller_says_to_check_the_authentication(ctld):
    """26.05 answers the versions it refuses in HTTP and closes on the credential it cannot
    read: the error listed the HTTP refusals only, never the authentication (a trial found it)."""
    with pytest.raises((AuthError, NoVersionAnsweredError)) as info:
        Client(ctld.host, ctld.port, auth="none", timeout=5).ping()
    said = str(info.value)
    if type(info.value) is AuthError:       # 24.11 refuses the credential in an RC of its own
        assert "refused the credential" in said
    else:
        assert "is the authentication (AuthType, --auth, the munge key) the controller's?" in said, said


# --------------------------------------------------------------------------
# the release's own ping on the wire, captured by tcpdump
# --------------------------------------------------------------------------
def test_tcpdump_capture_of_its_ping_decodes_frame_by_frame(ctld, munged, tmp_path):
    tcpdump = capture._tcpdump()
    pcap = tmp_path / "ping.pcap"
    proc = capture._start_capture(tcpdump, ctld.port, pcap)
    before = pcap.stat().st_size
    try:
        ping = ctld.scontrol("ping")
        assert ping.stdout.rstrip().endswith(" is UP")
        capture._wait_for_growth(pcap, before + 200)
    finally:
        capture._stop_capture(proc, pcap)
    reports = decode_source(load(pcap.read_bytes(), str(pcap), {ctld.port}), MungeOpener(munged.key_file))
    frames = [f for r in reports for f in r.frames]
    for f in frames:
        print(f"frame {f.index}: msg_type {f.msg_type} ok={f.ok} error={f.error} munge={f.munge_error}")
    assert [f.msg_type for f in frames] == [REQUEST_PING, RESPONSE_SLURM_RC]
    assert all(r.ok for r in reports), [(r.label, r.problems) for r in reports]
    versions = [next(x.value for x in f.fields if x.path == "header.version") for f in frames]
    assert versions == [PROTOCOL[ctld.release_name]] * 2
    payload = bytes.fromhex(frames[0].munge["payload"])  # the credential opened with munged's key
    print(f"scontrol {ctld.release_info.version} MUNGE payload: {payload.hex()}")
    assert (payload[0], len(payload)) == HASH_PAYLOAD[ctld.release_name]
    if ctld.release_name == "20.11":
        assert payload[1:] == REQUEST_PING.to_bytes(2, sys.byteorder)
    assert decode_main([str(pcap), "--port", str(ctld.port), "--munge-key", str(munged.key_file)]) == 0
