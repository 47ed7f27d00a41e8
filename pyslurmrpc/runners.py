"""The two runners of every flow: blocking (:func:`run_sync`) and asyncio (:func:`run_async`).

A runner performs the actions of :mod:`pyslurmrpc.effects` a flow yields and
throws a failed action's exception back into it.  It speaks to two kinds of
stream: munged's UNIX socket (exact-size reads, see :class:`UnixStream`) and
a daemon's TCP port (whole Slurm frames).  Whatever a flow leaves open - for
instance when a call is cancelled - is closed when its run ends.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import errno
import inspect
import os
import socket
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout

from .effects import (
    NOW, Background, Close, Connect, Exchange, ExchangeFailed, Invoke, Now, Parallel, Post, RecvFrame, Send,
    Shared, Sleep, Stat, Transact, WallClock, steps_apart,
)
from .sync_sockets import (
    NONBLOCKING_STREAM, POLLIN, TCP_RECV_CHUNK, TcpStream, ipv4_literal, send_within, tcp_connect, tcp_recv_frame,
    wait_ready,
)
from .transport import next_frame, seconds_left
from .wire import Framer

_RECV_CHUNK = 4096          # a whole munged response almost always fits in one read
_MAX_THREADS = 64           # name lookups in flight at most
#: Parallel in the blocking runner: one thread per flow (libslurm's forward.c has one per hop), so a
#: fan-out round takes one hop's time (client_behaviour.md F7a); more flows than this run in turns
_MAX_PARALLEL = 1024
#: name lookups of the blocking runner run here, so a call waits for one no longer than its connect
#: timeout (getaddrinfo cannot be interrupted: a late answer is dropped when it comes)
_RESOLVER = ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="pyslurmrpc-resolve")
class UnixStream:
    """A UNIX stream socket, the bytes of the answer read so far, and how much of the request
    went out (an Exchange taken up again - by the asyncio runner after a fast step, by the
    blocking one after a Background turn - neither sends twice nor loses what was read)."""

    __slots__ = ("sock", "pending", "sent")

    def __init__(self, sock):
        self.sock = sock
        self.pending = b""
        self.sent = 0

    def close(self) -> None:
        self.sock.close()


def _sync_table_base() -> dict:
    return {Stat: lambda a: os.stat(a.path).st_mode, Sleep: lambda a: time.sleep(a.seconds),
            Now: lambda a: time.monotonic(), WallClock: lambda a: time.time(),
            Close: _sync_close, Invoke: lambda a: a.fn(*a.args)}


# ---------------------------------------------------------------------------
# blocking
# ---------------------------------------------------------------------------
class SyncRunner:
    """Runs flows to completion, blocking; ``table`` maps action types to handlers.

    A ``table`` with no :class:`~pyslurmrpc.effects.Transact` handler is given one (in place)
    that takes it apart with the table's Connect, Exchange and Close handlers."""

    def __init__(self, table: dict | None = None):
        self.table = table if table is not None else _sync_handlers(self)
        # a table with no Transact handler takes its steps apart with the table's own handlers
        # (looked up then, so that a handler changed later is the one used)
        self.table.setdefault(Transact, lambda action: _apart(self.table, (), action))
        self._shared = _SharedRuns()
        self.table.setdefault(Shared, lambda action: self._shared.run(action, self.run, self.table[Now]))

    def run(self, flow):
        table, send, throw, opened, aside = self.table, flow.send, flow.throw, [], []
        ended = False
        try:
            action = send(None)
            while True:
                kind = type(action)
                try:
                    if not aside or kind not in _WAITS:
                        value = table[kind](action)
                    elif kind is Transact:  # apart: the Background turn follows its request's send
                        value = _apart(table, aside, action)
                    else:
                        _turn(aside, action)  # a Background flow's answer may have come meanwhile
                        value = table[kind](action)
                except Exception as exc:  # handed back into the flow, which decides
                    action = throw(exc)
                    continue
                if kind is Connect:
                    opened.append(value)
                elif value is not None and (kind is Background or kind is Close):
                    if not value.ended:
                        aside.append(value)   # a Background flow, or a close left for later
                    value = None
                action = send(value)
        except StopIteration as stop:
            ended = True
            return stop.value
        finally:
            for task in aside:
                task.finish(ended)
            for conn in opened:
                conn.close()

    def parallel(self, action: Parallel) -> list:
        flows = action.flows
        if len(flows) == 1:
            return [self.run(flows[0])]
        with ThreadPoolExecutor(max_workers=min(len(flows), _MAX_PARALLEL)) as pool:
            return list(pool.map(self.run, flows))


class _SharedRuns:
    """The :class:`~pyslurmrpc.effects.Shared` flows under way in a blocking runner, by key: the
    calls of one client in several threads wait for one run."""

    def __init__(self):
        self._forget()
        _EVERY_SHARED_RUNS.add(self)

    def _forget(self) -> None:
        """Nothing under way (a forked child: the parent's runs and its lock's state are not its own)."""
        self._lock = threading.Lock()
        self._here = threading.local()     # .locking: this thread holds the lock
        self._under_way: dict = {}

    @contextlib.contextmanager
    def _locked(self):
        self._here.locking = True
        try:
            with self._lock:
                yield
        finally:
            self._here.locking = False

    def run(self, action: Shared, run, now):
        if getattr(self._here, "locking", False):   # a signal handler's call while its thread holds the lock
            action.flow.close()
            return None, None
        key, mine = action.key, None
        try:   # from before the entry is made: an interrupt anywhere after it still removes it
            with self._locked():
                waited = self._under_way.get(key)
                if waited is None:
                    mine = _SharedOutcome()
                    self._under_way[key] = mine
            if waited is not None:
                action.flow.close()
                if waited.thread == threading.get_ident():  # a signal handler's call: it would wait for itself
                    return None, None
                return waited.wait(action.deadline - now(NOW))
            value = run(action.flow)
            mine.value = (value,)
            return True, value
        finally:
            if mine is not None:
                with self._locked():
                    self._under_way.pop(key, None)
                mine.done.set()


#: every blocking runner's Shared runs, forgotten in a forked child
_EVERY_SHARED_RUNS: "weakref.WeakSet[_SharedRuns]" = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [runs._forget() for runs in list(_EVERY_SHARED_RUNS)])


class _SharedOutcome:
    """A Shared flow's end, for the threads waiting on it: ``value`` (its value,) or None (it failed);
    ``thread``: the one running it."""

    __slots__ = ("done", "value", "thread")

    def __init__(self):
        self.done, self.value, self.thread = threading.Event(), None, threading.get_ident()

    def wait(self, seconds: float) -> tuple:
        if seconds <= 0 or not self.done.wait(seconds):
            return None, None
        return (True, self.value[0]) if self.value is not None else (False, None)


class _Aside:
    """A Background flow of one blocking run, moved on only by steps that finish at once
    (a local connect, a small send, a read whose answer is there).  Its run gives it a
    turn before each of the run's own waits (for a premint call that took a stocked
    credential the first is the reply's, so the call's request is out before the mint
    begins) and finishes it when the run ends.  No thread: the munged round trip of a
    credential minted ahead overlaps the call's wait for its daemon, at the cost of a
    mint's own system calls plus a read that may find nothing yet."""

    __slots__ = ("flow", "done", "action", "opened", "ended", "table")

    def __init__(self, action: Background, table: dict):
        # its Transacts apart: a turn takes only the steps that finish at once
        self.flow, self.done, self.opened, self.ended = steps_apart(action.flow), action.done, [], False
        self.table = table    # the run's own handlers, for the steps that wait (at its end)
        self.action = _NOT_STARTED      # even its first step waits for the run's next wait

    def _resume(self, step, arg):
        """The flow's next action after ``step(arg)`` (send or throw); None once it has ended."""
        try:
            return step(arg)
        except StopIteration as stop:
            self._end(stop.value, None)
        except Exception as exc:
            self._end(None, exc)
        return None

    def _end(self, value, error) -> None:
        self.ended = True
        for conn in self.opened:
            conn.close()
        self.done(value, error)

    def turn(self) -> None:
        """Take every step that finishes at once; stop at the first that would wait."""
        self._steps(_ASIDE_STEPS, _later)

    def finish(self, call_ended: bool) -> None:
        """The run is ending: wait for what is left (each step within its own timeout), unless
        the call failed or the flow would pause; then it is given up (``done`` gets the error)."""
        if not call_ended:
            self._end(None, RuntimeError("background flow given up: its call failed"))
        else:
            self._steps(self.table, _unhandled)

    def _steps(self, table: dict, missing) -> None:
        while not self.ended:
            action = self.action
            if action is _NOT_STARTED:
                self.action = self._resume(self.flow.send, None)
                continue
            kind = type(action)
            if kind is Sleep and missing is _unhandled:
                self._end(None, RuntimeError("background flow given up: it would pause after its call ended"))
                return
            try:
                value = table.get(kind, missing)(action)
            except Exception as exc:
                self.action = self._resume(self.flow.throw, exc)
                continue
            if value is _AWAIT:
                return
            if kind is Connect:
                self.opened.append(value)
            elif value is not None and (kind is Background or kind is Close):
                value = value.finish(True)    # what it started or left for later ends with it
            self.action = self._resume(self.flow.send, value)


_NOT_STARTED = object()


class _LaterClose:
    """A ``Close(later=True)`` of the blocking runner: done at the run's next wait or its end."""

    __slots__ = ("conn", "ended")

    def __init__(self, conn):
        self.conn, self.ended = conn, False

    def turn(self) -> None:
        self.conn.close()
        self.ended = True

    def finish(self, call_ended: bool) -> None:
        self.turn()


def _sync_close(action: Close):
    if action.later:
        return _LaterClose(action.conn)
    action.conn.close()
    return None


def _later(action) -> object:
    return _AWAIT


def _unhandled(action):
    raise KeyError(type(action))    # as the run itself meets an action it has no handler for


def _turn(aside: list, action) -> None:
    """The Background flows' turn before ``action`` waits.  An Exchange on munged's socket sends
    its request first, so that the turn overlaps munged's work on it (the handler then only
    reads)."""
    if type(action) is Exchange and type(action.conn) is UnixStream:
        _send_rest(action.conn, action.data, action.timeout)
    for task in aside:
        task.turn()
    aside[:] = [task for task in aside if not task.ended]


def _apart(table: dict, aside: list, action: Transact):
    """``action`` as its steps apart, by ``table``'s handlers; ``aside``'s turn comes once the
    request is out (see :func:`_turn`)."""
    conn = table[Connect](Connect(action.path, action.timeout))
    try:
        exchange = Exchange(conn, action.data, action.header_size, action.body_size, action.timeout)
        if aside:
            _turn(aside, exchange)
        return table[Exchange](exchange)
    finally:
        table[Close](Close(conn))


def _sync_transact(action: Transact):
    """A whole munged transaction: connect, send, wait in poll() for the answer, close."""
    conn = _unix_connect(action.path)
    try:
        deadline = time.monotonic() + action.timeout
        answer = _first_answer(conn, action, deadline)
        return answer if answer is not None else _send_and_read(conn, action, deadline)
    finally:
        conn.sock.close()


def _first_answer(conn: UnixStream, action: Transact, deadline: float):
    """The usual transaction written out (every credential passes here twice per call): the
    request taken whole by one send, the whole answer in one read.  None otherwise, with what
    was sent and read kept in ``conn`` for the general steps to go on from."""
    sock = conn.sock
    if not _send_some(conn, action.data):
        return None
    try:
        wait_ready(sock, POLLIN, deadline)
        conn.pending = sock.recv(_RECV_CHUNK)
    except BlockingIOError:
        return None
    except OSError as err:            # a TimeoutError too
        raise ExchangeFailed("header", err) from None
    answer, header_size = conn.pending, action.header_size
    if len(answer) < header_size:
        return None
    try:
        size = action.body_size(answer[:header_size])
    except OSError as err:            # as _read_answer words a header refused so
        raise ExchangeFailed("header", err) from None
    if len(answer) != header_size + size:
        return None
    return size, answer[header_size:]


def _unix_connect(path: str) -> UnixStream:
    """A non-blocking connection to munged, as libmunge makes it (``_m_msg_client_connect``): it
    never waits - a full listen queue is EAGAIN at once - and every later wait is a poll()."""
    sock = _socket.socket(socket.AF_UNIX, NONBLOCKING_STREAM)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return UnixStream(sock)


def _sync_connect(action: Connect):
    target = action.target
    if isinstance(target, str):
        return _unix_connect(target)
    if ipv4_literal(target.host):
        return tcp_connect(target.host, target.port, action.timeout)
    deadline = time.monotonic() + action.timeout
    family, address = _resolve(target.host, target.port, action.timeout)
    if family == socket.AF_INET:
        return tcp_connect(address[0], address[1], seconds_left(deadline))
    sock = socket.create_connection(address[:2], timeout=seconds_left(deadline))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _resolve(host: str, port: int, timeout: float) -> tuple[int, tuple]:
    """The first address of ``host`` (as create_connection would try it), looked up within ``timeout``."""
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        family, _, _, _, address = lookup.result(timeout)[0]
    except FutureTimeout:
        raise TimeoutError(f"looking up {host} took longer than {timeout:g} s") from None
    except UnicodeError as err:
        raise _unresolvable(host, err) from None
    return family, address


def _unresolvable(host: str, err: UnicodeError) -> socket.gaierror:
    """A name the IDNA codec refuses (a label over 63 characters, an empty one) is a name no
    resolver knows: the failed lookup (an OSError, as a node's connect failure), not a UnicodeError."""
    why = err.args[0] if err.args else str(err)
    return socket.gaierror(socket.EAI_NONAME, f"{host!r} is not a host name ({why})")


def _sync_send(action: Send) -> None:
    conn = action.conn
    if type(conn) is UnixStream or type(conn) is TcpStream:
        send_within(conn.sock, action.data, action.timeout)
        return
    conn.settimeout(action.timeout)
    conn.sendall(action.data)


def _sync_exchange(action: Exchange):
    return _send_and_read(action.conn, action)


def _send_and_read(conn: UnixStream, action: Exchange | Transact, deadline: float | None = None):
    """``action``'s request sent (what a Post, a Background turn or :func:`_first_answer` left
    of it) and its answer read on ``conn``, the two within the action's timeout together
    (``deadline``: when that began elsewhere)."""
    if deadline is None:
        deadline = time.monotonic() + action.timeout
    _send_rest(conn, action.data, action.timeout)
    return _read_answer(conn, action, deadline)


def _sync_post(action: Post) -> None:
    _send_rest(action.conn, action.data, action.timeout)


def _send_rest(conn: UnixStream, data: bytes, timeout: float) -> None:
    """What is left of an Exchange's request to send on a non-blocking UNIX socket, within
    ``timeout``; a failure is the Exchange's (ExchangeFailed "send")."""
    if conn.sent < len(data):
        try:
            conn.sent = send_within(conn.sock, data, timeout, conn.sent)
        except OSError as err:            # a TimeoutError too
            raise ExchangeFailed("send", err) from None


def _read_answer(conn: UnixStream, action: Exchange, deadline: float | None):
    """An Exchange's answer from ``conn.pending`` and the non-blocking socket.  With a
    ``deadline`` (monotonic) each read waits in poll() for what is left of it; with None
    nothing waits: _AWAIT when more must come, what came kept for the next try."""
    data, sock, header_size = conn.pending, conn.sock, action.header_size
    need, size = header_size, None
    try:
        while True:
            if len(data) >= need:
                if size is not None:
                    break
                size = action.body_size(data[:header_size])
                need += size
                continue
            if deadline is not None:   # an answer not read yet is rarely there already: wait first
                wait_ready(sock, POLLIN, deadline)
            try:
                chunk = sock.recv(max(_RECV_CHUNK, need - len(data)))
            except BlockingIOError:
                if deadline is None:
                    conn.pending = data
                    return _AWAIT
                continue
            if not chunk:                                     # the peer closed: what came is all
                if size is None:
                    size = action.body_size(data)
                break
            data += chunk
    except OSError as err:
        raise ExchangeFailed("header" if size is None else "body", err) from None
    conn.pending = data[need:]
    return size, data[header_size:need]


def _sync_recv_frame(action: RecvFrame) -> bytes:
    conn = action.conn
    framer = Framer() if action.max_size is None else Framer(action.max_size)
    if type(conn) is TcpStream:
        return tcp_recv_frame(conn.sock, action.timeout, framer)
    sock = conn
    deadline = time.monotonic() + action.timeout
    while True:
        sock.settimeout(seconds_left(deadline))
        frame = next_frame(framer, sock.recv(TCP_RECV_CHUNK), time.monotonic, deadline)
        if frame is not None:
            return frame


def _sync_handlers(runner: SyncRunner) -> dict:
    return {**_sync_table_base(), Connect: _sync_connect, Send: _sync_send, Exchange: _sync_exchange,
            Transact: _sync_transact, Post: _sync_post, RecvFrame: _sync_recv_frame, Parallel: runner.parallel,
            Background: lambda a: _Aside(a, runner.table)}


#: the blocking run's actions that may wait: a Background flow gets a turn before each
_WAITS = frozenset({Exchange, Transact, RecvFrame, Sleep, Shared})


SYNC = SyncRunner()
run_sync = SYNC.run


# ---------------------------------------------------------------------------
# asyncio
# ---------------------------------------------------------------------------
class _AsyncTcp:
    """A non-blocking TCP socket to a daemon (asyncio runner): the reply is read when the
    flow asks for it, with the socket's own reads (no transport, no protocol object)."""

    __slots__ = ("sock", "sent")

    def __init__(self, sock):
        self.sock, self.sent = sock, 0

    def close(self) -> None:
        self.sock.close()


#: what a fast step returns when it cannot finish without the event loop
_AWAIT = object()


class AsyncRunner:
    """Runs flows on the running event loop.

    ``fast`` maps action types to plain functions tried first: a step that can
    finish at once (reading the clock, closing; a local UNIX socket usually
    connects, takes a small request and has the answer ready) costs no
    coroutine.  One that returns ``_AWAIT`` - or has no fast entry - is awaited
    through ``table`` (coroutine functions), with the step's timeout.  With no
    Transact handler in either, one is added to ``table`` that takes it apart.
    """

    def __init__(self, table: dict | None = None, fast: dict | None = None):
        if table is None:
            table, fast = self._handlers(), {**_FAST, Background: self._background, Post: self._post}
        self.table, self.fast = table, fast or {}
        if Transact not in self.fast:    # as the blocking runner: apart, by the tables' own steps
            self.table.setdefault(Transact, self._apart)
        self.table.setdefault(Shared, self._shared)
        self._under_way: dict = {}  # Shared flows being run, by (loop, key)
        self._tasks: set = set()  # Background tasks, kept alive until they end
        # runs under way, on any loop: a Post is taken only by a run on its own (the count is not
        # locked; across threads it may be off, which changes only whether a request is posted)
        self.running = 0

    async def run(self, flow):
        table, fast, send, throw, opened = self.table, self.fast, flow.send, flow.throw, []
        self.running += 1
        try:
            action = send(None)
            while True:
                kind = type(action)
                try:
                    step = fast.get(kind)
                    value = _AWAIT if step is None else step(action)
                    if value is _AWAIT:
                        value = await table[kind](action)
                except Exception as exc:  # handed back into the flow, which decides
                    action = throw(exc)
                    continue
                if kind is Connect:
                    opened.append(value)
                action = send(value)
        except StopIteration as stop:
            return stop.value
        finally:  # a cancelled call closes what its flow had open
            self.running -= 1
            for conn in opened:
                conn.close()

    def _handlers(self) -> dict:
        return {Sleep: lambda a: asyncio.sleep(a.seconds), Invoke: _invoke, Connect: _async_connect,
                Send: _async_send, Exchange: _async_exchange, Transact: _async_transact, Post: _async_post,
                RecvFrame: _async_recv_frame, Parallel: self._parallel}

    async def _step(self, action):
        step = self.fast.get(type(action))
        value = _AWAIT if step is None else step(action)
        return await self.table[type(action)](action) if value is _AWAIT else value

    async def _apart(self, action: Transact):
        """A Transact as its steps apart, by this runner's fast and awaited handlers."""
        conn = await self._step(Connect(action.path, action.timeout))
        try:
            return await self._step(Exchange(conn, action.data, action.header_size, action.body_size,
                                             action.timeout))
        finally:
            await self._step(Close(conn))

    def _post(self, action: Post):
        """A request sent ahead, for a run on its own.  With other runs under way it is declined
        (False): the flow then connects to its daemon after munged's answer, as before, so no
        connection waits idle at the daemon while munged's queue drains (with 64 calls in flight
        in 2 processes, posting cost 15% of the calls per second)."""
        if self.running > 1:
            return False
        return _try_post(action)

    def _background(self, action: Background) -> None:
        async def finish():
            try:
                value = await self.run(action.flow)
            except BaseException as exc:  # cancelled too (the loop closing): it still ended
                action.done(None, exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                action.done(value, None)
        task = asyncio.get_running_loop().create_task(finish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shared(self, action: Shared) -> tuple:
        """The Shared flow run here, or waited for when another run on this loop runs it."""
        loop = asyncio.get_running_loop()
        key = (loop, action.key)
        waited = self._under_way.get(key)
        if waited is not None:
            action.flow.close()
            return await _wait_shared(waited, action.deadline - await self._step(NOW))
        mine, outcome = loop.create_future(), None
        try:       # cancelled too: the waiters go on, each with a flow of its own
            self._under_way[key] = mine
            value = await self.run(action.flow)
            outcome = (value,)
            return True, value
        finally:
            self._under_way.pop(key, None)
            mine.set_result(outcome)

    async def _parallel(self, action: Parallel) -> list:
        return list(await asyncio.gather(*(self.run(f) for f in action.flows)))


async def _wait_shared(run, seconds: float) -> tuple:
    """A Shared flow's result, once the run of it that ``run`` (a future) will tell ends within
    ``seconds``: as :class:`~pyslurmrpc.effects.Shared` says."""
    if seconds <= 0:
        return None, None
    try:
        async with asyncio.timeout(seconds):
            outcome = await asyncio.shield(run)
    except TimeoutError:
        return None, None
    return (True, outcome[0]) if outcome is not None else (False, None)


async def _invoke(action: Invoke):
    value = action.fn(*action.args)
    return await value if inspect.isawaitable(value) else value


async def _bounded(awaitable, seconds: float):
    async with asyncio.timeout(seconds):
        return await awaitable


def _try_connect(action: Connect):
    target = action.target
    if not isinstance(target, str):
        return _try_tcp_connect(target.host, target.port)
    return _unix_connect(target)


def _try_tcp_connect(host: str, port: int):
    """A connection to a loopback address, whose handshake the kernel completes within connect():
    no await.  Anything else - another address, a refusal, a handshake still under way - is
    _AWAIT, and the awaited connect tries again on a new socket and reports what it meets."""
    if not (host.startswith("127.") and ipv4_literal(host)):
        return _AWAIT
    sock = _socket.socket(socket.AF_INET, NONBLOCKING_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if sock.connect_ex((host, port)) in (0, errno.EINPROGRESS):
            sock.getpeername()        # ENOTCONN while the handshake is under way
            return _AsyncTcp(sock)
    except OSError:
        pass
    sock.close()
    return _AWAIT


async def _tcp_connect(loop, host: str, port: int) -> _AsyncTcp:
    """Connect to the first address of ``host`` (as the blocking runner does); an IPv4
    address needs no lookup."""
    if ipv4_literal(host):
        family, address = socket.AF_INET, (host, port)
    else:
        try:
            family, _, _, _, address = (await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))[0]
        except UnicodeError as err:
            raise _unresolvable(host, err) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return _AsyncTcp(sock)


async def _async_connect(action: Connect):
    target, loop = action.target, asyncio.get_running_loop()
    if not isinstance(target, str):
        return await _bounded(_tcp_connect(loop, target.host, target.port), action.timeout)
    # not loop.sock_connect: after EAGAIN (a full listen queue) it waits for the socket to be
    # writable and takes the unconnected socket for a connected one
    return _unix_connect(target)


def _try_send(action: Send):
    conn = action.conn
    try:
        conn.sent = conn.sock.send(action.data)
    except BlockingIOError:
        conn.sent = 0
    return None if conn.sent == len(action.data) else _AWAIT


async def _async_send(action: Send) -> None:
    """The rest of a send the fast step began (``conn.sent`` bytes went out)."""
    conn = action.conn
    await _bounded(asyncio.get_running_loop().sock_sendall(conn.sock, action.data[conn.sent:]), action.timeout)


def _aside_exchange(action: Exchange):
    """A Background turn's step of an Exchange: the request sent, the answer read as far as it
    came (no wait); the rest at a later turn or the run's end."""
    _send_rest(action.conn, action.data, action.timeout)
    return _read_answer(action.conn, action, None)


def _try_post(action: Post | Exchange):
    """Send what the non-blocking socket takes of a request: None once all of it went out,
    else _AWAIT."""
    return None if _send_some(action.conn, action.data) else _AWAIT


def _send_some(conn: UnixStream, data: bytes) -> bool:
    """Send what the non-blocking socket takes of the rest of ``data`` (from ``conn.sent``);
    True once all of it went out.  A failure is an Exchange's (ExchangeFailed "send")."""
    if conn.sent < len(data):
        try:
            conn.sent += conn.sock.send(data[conn.sent:] if conn.sent else data)
        except BlockingIOError:
            return False
        except OSError as err:
            raise ExchangeFailed("send", err) from None
    return conn.sent >= len(data)


def _try_exchange(action: Exchange):
    """The fast step of an Exchange (non-blocking socket): send what the socket takes, read what
    is there; _AWAIT when the rest must be waited for."""
    if _try_post(action) is _AWAIT:
        return _AWAIT
    return _read_answer(action.conn, action, None)


async def _async_post(action: Post | Exchange) -> None:
    """The rest of a request the fast step began sending, within the action's timeout."""
    conn = action.conn
    if conn.sent < len(action.data):
        try:
            await _bounded(asyncio.get_running_loop().sock_sendall(conn.sock, action.data[conn.sent:]),
                           action.timeout)
        except OSError as err:
            raise ExchangeFailed("send", err) from None
        conn.sent = len(action.data)


async def _async_exchange(action: Exchange):
    """The rest of an Exchange the fast step began, all of it within the action's timeout."""
    loop, conn = asyncio.get_running_loop(), action.conn
    deadline = loop.time() + action.timeout
    await _async_post(action)
    await asyncio.sleep(0)          # one turn of the loop first (see _readable)
    while (answer := _read_answer(conn, action, None)) is _AWAIT:
        try:
            await _readable(loop, conn.sock, deadline)
        except TimeoutError as err:
            raise ExchangeFailed("body" if len(conn.pending) >= action.header_size else "header", err) from None
    return answer


async def _async_transact(action: Transact):
    """A whole munged transaction: connect and send at once, await the answer, close."""
    conn = _unix_connect(action.path)
    try:
        exchange = Exchange(conn, action.data, action.header_size, action.body_size, action.timeout)
        answer = _try_exchange(exchange)
        return await _async_exchange(exchange) if answer is _AWAIT else answer
    finally:
        conn.close()


async def _async_recv_frame(action: RecvFrame) -> bytes:
    """Read until one whole frame is in, within the timeout (a prefix over the limit raises as
    it arrives).  Slurm sends the length prefix on its own: the rest is read without a wait."""
    framer = Framer() if action.max_size is None else Framer(action.max_size)
    loop, sock = asyncio.get_running_loop(), action.conn.sock
    deadline = loop.time() + action.timeout
    await asyncio.sleep(0)          # a reply is never there at once: one turn of the loop first
    while True:
        try:
            data = sock.recv(TCP_RECV_CHUNK)
        except BlockingIOError:
            await _readable(loop, sock, deadline)
            continue
        frame = next_frame(framer, data, loop.time, deadline)
        if frame is not None:
            return frame


def _ready(future) -> None:
    if not future.done():
        future.set_result(None)


def _expired(future) -> None:
    if not future.done():
        future.set_exception(TimeoutError("timed out"))


async def _readable(loop, sock, deadline: float) -> None:
    """Wait until ``sock`` can be read, or raise TimeoutError at ``deadline`` (loop time): one
    future, one reader and one timer (asyncio.timeout plus sock_recv make twice the objects).

    A reader costs two epoll_ctl calls and a timer; a read not there yet is first given one turn
    of the loop (``sleep(0)``): with many calls in flight, munged has usually answered by then,
    and none of it is needed (64 in flight: 22% less CPU per ping, in an ABBA run)."""
    future, fd = loop.create_future(), sock.fileno()
    loop.add_reader(fd, _ready, future)
    timer = loop.call_at(deadline, _expired, future)
    try:
        await future
    finally:
        loop.remove_reader(fd)
        timer.cancel()


def _async_close(action: Close) -> None:
    if action.later:    # the loop's next turn: once this call awaits its next answer
        asyncio.get_running_loop().call_soon(action.conn.close)
    else:
        action.conn.close()


_FAST = {Stat: lambda a: os.stat(a.path).st_mode, Now: lambda a: time.monotonic(),
         WallClock: lambda a: time.time(), Close: _async_close,
         Connect: _try_connect, Send: _try_send, Exchange: _try_exchange}

#: a Background flow's steps in the blocking runner that finish at once (or return _AWAIT): munged's
#: socket is local, so its connect and a request's send do not wait; a read takes what is there
_ASIDE_STEPS = {**_sync_table_base(), Connect: lambda a: _sync_connect(a) if isinstance(a.target, str) else _AWAIT,
                Exchange: _aside_exchange, Post: _sync_post}
del _ASIDE_STEPS[Sleep], _ASIDE_STEPS[Invoke]

ASYNC = AsyncRunner()
run_async = ASYNC.run
