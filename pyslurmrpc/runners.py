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
import inspect
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout

from .effects import (
    Background, Close, Connect, Invoke, Now, Parallel, PeerClosed, Recv, RecvFrame, Send, Sleep, Stat, WallClock,
)
from .tcp_blocking import (
    TCP_RECV_CHUNK, TcpStream, ipv4_literal, kernel_timeval, pack_timeval, tcp_connect, tcp_recv_frame,
    tcp_send_all,
)
from .wire import Framer

_RECV_CHUNK = 4096          # a whole munged response almost always fits in one read
_MAX_THREADS = 64           # name lookups in flight at most
#: Parallel in the blocking runner: one thread per flow (libslurm's forward.c has one per hop), so a
#: fan-out round takes one hop's time (client_behaviour.md F7a); more flows than this run in turns
_MAX_PARALLEL = 1024
#: name lookups of the blocking runner run here, so a call waits for one no longer than its connect
#: timeout (getaddrinfo cannot be interrupted: a late answer is dropped when it comes)
_RESOLVER = ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="pyslurmrpc-resolve")
_BACKGROUND_THREADS = 4     # Background in the blocking runner: worker threads


class _BackgroundPool:
    """Worker threads for the blocking runner's Background flows, made again in a forked child
    (a child inherits the pool but none of its threads)."""

    def __init__(self):
        self._pid, self._pool = None, None

    def submit(self, fn, *args) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._pool = ThreadPoolExecutor(max_workers=_BACKGROUND_THREADS,
                                            thread_name_prefix="pyslurmrpc-background")
        self._pool.submit(fn, *args)


_BACKGROUND = _BackgroundPool()


def _finish(done, run, flow) -> None:
    """Run a Background flow to its end and report how it ended (never raises)."""
    try:
        value = run(flow)
    except Exception as exc:
        done(None, exc)
    else:
        done(value, None)


class UnixStream:
    """A UNIX stream socket, the bytes read past the last exact-size read, and how much of the
    current send went out before it would have blocked (asyncio runner)."""

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
            Close: lambda a: a.conn.close(), Invoke: lambda a: a.fn(*a.args)}


# ---------------------------------------------------------------------------
# blocking
# ---------------------------------------------------------------------------
class SyncRunner:
    """Runs flows to completion, blocking; ``table`` maps action types to handlers."""

    def __init__(self, table: dict | None = None):
        self.table = table if table is not None else _sync_handlers(self)

    def run(self, flow):
        table, send, throw, opened = self.table, flow.send, flow.throw, []
        try:
            action = send(None)
            while True:
                kind = type(action)
                try:
                    value = table[kind](action)
                except Exception as exc:  # handed back into the flow, which decides
                    action = throw(exc)
                    continue
                if kind is Connect:
                    opened.append(value)
                action = send(value)
        except StopIteration as stop:
            return stop.value
        finally:
            for conn in opened:
                conn.close()

    def background(self, action: Background) -> None:
        _BACKGROUND.submit(_finish, action.done, self.run, action.flow)

    def parallel(self, action: Parallel) -> list:
        flows = action.flows
        if len(flows) == 1:
            return [self.run(flows[0])]
        with ThreadPoolExecutor(max_workers=min(len(flows), _MAX_PARALLEL)) as pool:
            return list(pool.map(self.run, flows))


def _sync_connect(action: Connect):
    target = action.target
    if isinstance(target, str):
        timeval = kernel_timeval(action.timeout)
        # kernel-side timeouts: no poll() before every send/recv as settimeout() would add
        sock = _socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        try:
            sock.connect(target)
        except BaseException:
            sock.close()
            raise
        return UnixStream(sock)
    if ipv4_literal(target.host):
        return tcp_connect(target.host, target.port, action.timeout)
    deadline = time.monotonic() + action.timeout
    family, address = _resolve(target.host, target.port, action.timeout)
    if family == socket.AF_INET:
        return tcp_connect(address[0], address[1], max(deadline - time.monotonic(), 0.001))
    sock = socket.create_connection(address[:2], timeout=max(deadline - time.monotonic(), 0.001))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _resolve(host: str, port: int, timeout: float) -> tuple[int, tuple]:
    """The first address of ``host`` (as create_connection would try it), looked up within ``timeout``."""
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        family, _, _, _, address = lookup.result(timeout)[0]
    except FutureTimeout:
        raise TimeoutError(f"looking up {host} took longer than {timeout:g} s") from None
    return family, address


def _sync_send(action: Send) -> None:
    conn = action.conn
    if type(conn) is UnixStream:
        try:
            conn.sock.sendall(action.data)
        except BlockingIOError:       # SO_SNDTIMEO expired
            raise TimeoutError("Timed-out") from None
        return
    if type(conn) is TcpStream:
        tcp_send_all(conn.sock, action.data, action.timeout)
        return
    conn.settimeout(action.timeout)
    conn.sendall(action.data)


def _sync_recv(action: Recv) -> bytes:
    conn, size = action.conn, action.size
    data, sock = conn.pending, conn.sock
    deadline = None
    try:
        while len(data) < size:
            if deadline is None:      # the first read: SO_RCVTIMEO (the connect's timeout) bounds it
                deadline = time.monotonic() + action.timeout
            else:                     # a peer that trickles: what is left of the action's timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BlockingIOError
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, pack_timeval(left))
            chunk = sock.recv(max(_RECV_CHUNK, size - len(data)))
            if not chunk:
                break
            data += chunk
    except BlockingIOError:           # SO_RCVTIMEO expired
        raise TimeoutError("Timed-out") from None
    conn.pending = data[size:]
    return data[:size]


def _sync_recv_frame(action: RecvFrame) -> bytes:
    conn = action.conn
    framer = Framer() if action.max_size is None else Framer(action.max_size)
    if type(conn) is TcpStream:
        return tcp_recv_frame(conn.sock, action.timeout, framer)
    sock = conn
    deadline = time.monotonic() + action.timeout
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        data = sock.recv(TCP_RECV_CHUNK)
        if not data:
            raise PeerClosed(bool(framer.pending))
        frames = framer.feed(data)
        if frames:
            return frames[0]


def _sync_handlers(runner: SyncRunner) -> dict:
    return {**_sync_table_base(), Connect: _sync_connect, Send: _sync_send, Recv: _sync_recv,
            RecvFrame: _sync_recv_frame, Parallel: runner.parallel, Background: runner.background}


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
    through ``table`` (coroutine functions), with the step's timeout.
    """

    def __init__(self, table: dict | None = None, fast: dict | None = None):
        if table is None:
            table, fast = self._handlers(), {**_FAST, Background: self._background}
        self.table, self.fast = table, fast or {}
        self._tasks: set = set()  # Background tasks, kept alive until they end

    async def run(self, flow):
        table, fast, send, throw, opened = self.table, self.fast, flow.send, flow.throw, []
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
            for conn in opened:
                conn.close()

    def _handlers(self) -> dict:
        return {Sleep: lambda a: asyncio.sleep(a.seconds), Invoke: _invoke, Connect: _async_connect,
                Send: _async_send, Recv: _async_recv, RecvFrame: _async_recv_frame, Parallel: self._parallel}

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

    async def _parallel(self, action: Parallel) -> list:
        return list(await asyncio.gather(*(self.run(f) for f in action.flows)))


async def _invoke(action: Invoke):
    value = action.fn(*action.args)
    return await value if inspect.isawaitable(value) else value


async def _bounded(awaitable, seconds: float):
    async with asyncio.timeout(seconds):
        return await awaitable


def _try_connect(action: Connect):
    target = action.target
    if not isinstance(target, str):
        return _AWAIT
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.connect(target)
    except BlockingIOError:      # listen queue full: the awaited connect tries again
        sock.close()
        return _AWAIT
    except BaseException:
        sock.close()
        raise
    return UnixStream(sock)


async def _tcp_connect(loop, host: str, port: int) -> _AsyncTcp:
    """Connect to the first address of ``host`` (as the blocking runner does); an IPv4
    address needs no lookup."""
    if ipv4_literal(host):
        family, address = socket.AF_INET, (host, port)
    else:
        family, _, _, _, address = (await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))[0]
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
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await _bounded(loop.sock_connect(sock, target), action.timeout)
    except BaseException:
        sock.close()
        raise
    return UnixStream(sock)


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


def _try_recv(action: Recv):
    conn, size = action.conn, action.size
    data, sock = conn.pending, conn.sock
    while len(data) < size:
        try:
            chunk = sock.recv(max(_RECV_CHUNK, size - len(data)))
        except BlockingIOError:
            conn.pending = data
            return _AWAIT
        if not chunk:
            break
        data += chunk
    conn.pending = data[size:]
    return data[:size]


async def _async_recv(action: Recv) -> bytes:
    return await _bounded(_async_recv_all(action), action.timeout)  # one bound for the whole read


async def _async_recv_all(action: Recv) -> bytes:
    conn, size, loop = action.conn, action.size, asyncio.get_running_loop()
    data = conn.pending
    while len(data) < size:
        chunk = await loop.sock_recv(conn.sock, max(_RECV_CHUNK, size - len(data)))
        if not chunk:
            break
        data += chunk
    conn.pending = data[size:]
    return data[:size]


async def _async_recv_frame(action: RecvFrame) -> bytes:
    framer = Framer() if action.max_size is None else Framer(action.max_size)
    return await _bounded(_read_frame(action.conn.sock, framer), action.timeout)


async def _read_frame(sock, framer: Framer) -> bytes:
    """Read until ``framer`` has one whole frame (a prefix over its limit raises as it arrives)."""
    loop = asyncio.get_running_loop()
    while True:
        data = await loop.sock_recv(sock, TCP_RECV_CHUNK)
        if not data:
            raise PeerClosed(bool(framer.pending))
        frames = framer.feed(data)
        if frames:
            return frames[0]


_FAST = {Stat: lambda a: os.stat(a.path).st_mode, Now: lambda a: time.monotonic(),
         WallClock: lambda a: time.time(), Close: lambda a: a.conn.close(),
         Connect: _try_connect, Send: _try_send, Recv: _try_recv}

ASYNC = AsyncRunner()
run_async = ASYNC.run
