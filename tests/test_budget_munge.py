"""A munged path that cannot serve (stale socket, regular file, missing, stalled) costs a call
no more than its credential budget: MessageTimeout (protocol_specs/client_behaviour.md F7a).

libmunge retries a refused connect 10 times, 50 ms x attempt apart (2.25 s), and auth_munge
retries the whole transaction 20 times; every one of those tries and pauses must fit in the
call's budget, and the call must fail with an AuthError naming the socket and the reason.
First on the virtual clock (every call kind, exactly), then on real sockets, sync and async.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
import threading
import time

import pytest

from pyslurmrpc import AsyncClient, Client
from pyslurmrpc.auth.errors import MungeSocketError
from pyslurmrpc.auth.munge_constants import MSG_HDR_SIZE
from pyslurmrpc.auth.munge_proto import unpack_header
from pyslurmrpc.auth.slurm_auth import SLURM_MUNGE_RETRIES, SLURM_MUNGE_RETRY_DELAY
from pyslurmrpc.client import calls, flows
from pyslurmrpc.effects import Connect, Stat
from pyslurmrpc.errors import AuthError

from test_flows_scripted import MUNGE_PATH, Munged, World, answer_rc, ctl, state

#: MessageTimeout values tried (seconds): libmunge's 2.25 s of connect pauses fits in none
#: but the largest, which checks that the retries are still made when there is time for them
TIMEOUTS = (1, 2.5, 7)
#: real sockets on a shared 2-core machine: what a call may take past its bound
SLACK = 0.8
#: what each bad path says, in the AuthError's text
REASONS = {"stale": "Connection refused", "regular": "Invalid file type", "missing": "No such file",
           "stalled": "Timed-out"}
#: auth_munge's retries of a munged that fails at once: 20 pauses of 0.1 s
AUTH_MUNGE_SPAN = SLURM_MUNGE_RETRIES * SLURM_MUNGE_RETRY_DELAY
NODES = {f"n{i}": ctl(7100 + i) for i in (1, 2, 3)}


def _call_kinds():
    """Each public call as a flow on a state: (name, make_flow(state))."""
    return {
        "ping()": lambda st: flows.ping(st),
        "ping(0)": lambda st: flows.ping(st, st.settings.controllers[0]),
        "checkpoint_able": lambda st: flows.checkpoint(st, calls.able(1, 0)),
        "controller_version": lambda st: flows.controller_version(st),
        "checkpoint_tasks": lambda st: flows.tasks(st, 1, 0, 0, None, 0, "n[1-3]"),
    }


CALLS = _call_kinds()


def _bad_munged_world(kind: str) -> World:
    """A scripted world whose munged path is ``kind``; the controller and slurmds accept."""
    daemons = {ctl(7001): answer_rc(), **{addr: answer_rc() for addr in NODES.values()}}
    world = World(daemons, munged=Munged(["stall" if kind == "stalled" else "refused"] * 10_000))
    if kind == "regular":       # connect() to a regular file is refused; stat() tells why
        world.table[Stat] = lambda a: stat.S_IFREG | 0o644
    elif kind == "missing":
        _missing(world)
    return world


def _missing(world: World) -> None:
    connect = world.table[Connect]

    def gone(a):
        if isinstance(a.target, str):
            world.connects.append((world.t, "munged"))
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        return connect(a)

    def no_stat(a):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")
    world.table[Connect], world.table[Stat] = gone, no_stat


@pytest.mark.parametrize("timeout", TIMEOUTS)
@pytest.mark.parametrize("kind", sorted(REASONS))
@pytest.mark.parametrize("call", sorted(CALLS))
def test_bad_munged_path_costs_at_most_message_timeout(call, kind, timeout):
    world = _bad_munged_world(kind)
    st = state(auth="munge", timeout=timeout, nodes={n: a for n, a in NODES.items()}, tree_width=2)
    with pytest.raises(AuthError) as info:
        world.run(CALLS[call](st))
    assert world.t <= timeout
    assert f'"{MUNGE_PATH}"' in str(info.value) and REASONS[kind] in str(info.value)
    # a path that fails at once is tried auth_munge's 21 times, 0.1 s apart (2 s): in a longer
    # budget that ends the call first; otherwise the budget does, and the error says so
    quick = kind in ("regular", "missing") and timeout > AUTH_MUNGE_SPAN
    assert world.t == pytest.approx(AUTH_MUNGE_SPAN) if quick else world.t > timeout - 0.35
    assert ("no time left to try again within the call's time limit" in str(info.value)) is not quick
    assert isinstance(info.value.munge_error, MungeSocketError)


def test_stale_socket_retries_fill_the_budget_and_say_time_ran_out():
    """With 7 s libmunge's whole round of 10 connects (2.25 s) fits twice; the third round is cut."""
    world = _bad_munged_world("stale")
    with pytest.raises(AuthError, match=r"Connection refused \(no time left to try again"):
        world.run(CALLS["ping()"](state(auth="munge", timeout=7)))
    rounds = [t for t, target in world.connects if target == "munged"]
    assert len(rounds) > 20 and 6.5 < world.t <= 7


def test_regular_file_is_not_retried_like_a_refused_socket():
    """libmunge stat()s first: a path that is no socket fails each transaction after one connect."""
    world = _bad_munged_world("regular")
    with pytest.raises(AuthError):
        world.run(CALLS["ping()"](state(auth="munge", timeout=1)))
    munged_connects = [t for t, target in world.connects if target == "munged"]
    assert munged_connects == pytest.approx([0.1 * n for n in range(len(munged_connects))])  # auth_munge's pace


def test_fan_out_stops_at_our_own_munged_failure():
    """Our munged failing is no node's fault: no hop is tried again directly, no SlurmError.
    The first hop is connected to once, as libslurm connects before it asks munged."""
    world = _bad_munged_world("stale")
    st = state(auth="munge", timeout=1, nodes=dict(NODES), tree_width=1)
    with pytest.raises(AuthError):
        world.run(CALLS["checkpoint_tasks"](st))
    nodes = [target for _, target in world.connects if target != "munged"]
    assert nodes == [min(NODES.values())] and len(world.connects) > len(nodes)


# -- real sockets, blocking and asyncio ----------------------------------------------------------
@pytest.fixture
def bad_paths(tmp_path):
    """A stale socket (bound, nobody listening), a regular file and a missing path."""
    stale = str(tmp_path / "stale.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(stale)
    sock.close()
    regular = tmp_path / "regular"
    regular.write_text("")
    yield {"stale": stale, "regular": str(regular), "missing": str(tmp_path / "missing")}


@pytest.fixture
def silent_controller():
    """A TCP listener that accepts and never answers; (host, port)."""
    srv = socket.create_server(("127.0.0.1", 0))
    accepted, stop = [], threading.Event()

    def run():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(srv.accept()[0])
            except OSError:
                continue
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield srv.getsockname()
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    srv.close()


def _client(cls, path, addr, timeout):
    host, port = addr
    return cls(host, port, munge_socket=path, timeout=timeout, tree_width=2,
               nodes={n: (host, port) for n in NODES})


REAL_CALLS = {
    "ping()": lambda c: c.ping(), "ping(0)": lambda c: c.ping(0),
    "checkpoint_able": lambda c: c.checkpoint_able(1, 0),
    "controller_version": lambda c: c.controller_version(),
    "checkpoint_tasks": lambda c: c.checkpoint_tasks(1, 0, 0, None, 0, "n[1-3]"),
}


def _timed_sync(fn):
    start = time.monotonic()
    try:
        fn()
    except Exception as exc:      # the verdict is checked by the caller
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


@pytest.mark.parametrize("timeout", [1, 2.5])
def test_blocking_client_with_a_bad_munged_path_keeps_the_bound(bad_paths, silent_controller, timeout):
    """Every call kind on every bad path, side by side in threads (each timed alone)."""
    cases = [(k, c) for k in bad_paths for c in REAL_CALLS]
    results = {}

    def one(kind, call):
        client = _client(Client, bad_paths[kind], silent_controller, timeout)
        results[kind, call] = _timed_sync(lambda: REAL_CALLS[call](client))
    threads = [threading.Thread(target=one, args=case) for case in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    _check(results, bad_paths, timeout)


@pytest.mark.parametrize("timeout", [1, 2.5])
async def test_async_client_with_a_bad_munged_path_keeps_the_bound(bad_paths, silent_controller, timeout):
    async def one(kind, call):
        client = _client(AsyncClient, bad_paths[kind], silent_controller, timeout)
        start = time.monotonic()
        try:
            await REAL_CALLS[call](client)
        except Exception as exc:
            return (kind, call), (time.monotonic() - start, exc)
        return (kind, call), (time.monotonic() - start, None)
    pairs = await asyncio.gather(*(one(k, c) for k in bad_paths for c in REAL_CALLS))
    _check(dict(pairs), bad_paths, timeout)


def _check(results: dict, paths: dict, timeout: float) -> None:
    assert len(results) == len(paths) * len(REAL_CALLS)
    slow = {case: round(took, 2) for case, (took, _) in results.items() if took > timeout + SLACK}
    assert not slow, f"over {timeout} s + {SLACK} s: {slow}"
    for (kind, call), (_, exc) in results.items():
        assert isinstance(exc, AuthError), f"{kind} {call}: {exc!r}"
        assert paths[kind] in str(exc) and REASONS[kind] in str(exc), f"{kind} {call}: {exc}"


def test_a_good_munged_is_still_retried_when_refused_briefly(tmp_path, munged):
    """The budget cuts retries only when time runs out: a socket that starts listening
    after a few refused connects is reached (libmunge's retries are kept)."""
    path = str(tmp_path / "late.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)                 # refused until listen()

    def relay():
        time.sleep(0.2)
        srv.listen(8)
        conn, _ = srv.accept()
        with conn, socket.socket(socket.AF_UNIX) as real:
            real.connect(munged.socket_path)
            real.sendall(_one_message(conn))
            conn.sendall(_one_message(real))
    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    from pyslurmrpc.client.core import make_auth, settings_from_args
    auth = make_auth(settings_from_args("127.0.0.1", munge_socket=path, timeout=1))
    try:
        assert auth.create(0x2200).credential.startswith("MUNGE:")
    finally:
        thread.join(5)
        srv.close()
        os.unlink(path)


def _one_message(sock: socket.socket) -> bytes:
    """One whole munged message (header, then the body its length names)."""
    header = sock.recv(MSG_HDR_SIZE, socket.MSG_WAITALL)
    _, _, size = unpack_header(header)
    return header + (sock.recv(size, socket.MSG_WAITALL) if size else b"")
