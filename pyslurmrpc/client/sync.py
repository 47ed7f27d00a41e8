"""The blocking client: a thin runner of the flows over plain sockets."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import (
    CONNECT_ERRNO, RECEIVE_ERRNO,
    ConnectionClosedError, ConnectionRefusedTransportError, TimeoutTransportError, TransportError,
)
from ..wire import Framer
from . import flows
from .core import create_cred
from .api import ClientApi

RECV_CHUNK = 65536


def drive(flow, perform):
    """Run a flow generator, performing each action it yields with ``perform``."""
    value, error = None, None
    while True:
        try:
            action = flow.throw(error) if error is not None else flow.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = perform(action)
        except Exception as exc:  # handed back into the flow, which decides
            error = exc


def _connect(action: flows.Connect):
    ep = action.endpoint
    try:
        sock = socket.create_connection((ep.host, ep.port), timeout=action.timeout)
    except ConnectionRefusedError:
        raise ConnectionRefusedTransportError(f"{ep}: connection refused", address=ep) from None
    except socket.timeout:
        raise TimeoutTransportError(f"{ep}: connect timed out", address=ep, slurm_errno=CONNECT_ERRNO) from None
    except OSError as exc:
        raise TransportError(f"{ep}: {exc.strerror or exc}", address=ep, slurm_errno=CONNECT_ERRNO) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _exchange(action: flows.Exchange) -> bytes:
    sock, ep = action.conn, action.endpoint
    deadline = time.monotonic() + action.timeout
    try:
        sock.settimeout(action.timeout)
        sock.sendall(action.frame)
        framer = Framer()
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data = sock.recv(RECV_CHUNK)
            if not data:
                raise ConnectionClosedError(
                    f"{ep} closed the connection without a reply" if not framer.pending
                    else f"{ep} closed the connection in the middle of a reply", address=ep)
            frames = framer.feed(data)
            if frames:
                return frames[0]
    except socket.timeout:
        raise TimeoutTransportError(f"{ep}: no reply within {action.timeout:g} s", address=ep) from None
    except (ConnectionResetError, BrokenPipeError):
        raise ConnectionClosedError(f"{ep} reset the connection", address=ep) from None
    except OSError as exc:
        raise TransportError(f"{ep}: {exc.strerror or exc}", address=ep, slurm_errno=RECEIVE_ERRNO) from None
    finally:
        sock.close()


class Client(ClientApi):
    """Blocking client for Slurm's checkpoint RPCs; safe to share between threads.

    >>> client = Client("ctl.example", 6817)                  # doctest: +SKIP
    >>> client.checkpoint_able(1234, 0)                       # doctest: +SKIP
    0
    """

    def _run(self, flow, convert=None):
        result = drive(flow, self._perform)
        return convert(result) if convert else result

    def _perform(self, action):
        return self._handlers[type(action)](action)

    def _make_handlers(self) -> dict:
        return {
            flows.Exchange: _exchange,
            flows.Connect: _connect,
            flows.CreateCred: lambda a: create_cred(self._auth, a),
            flows.VerifyCred: lambda a: self._auth.verify(a.auth, a.version),
            flows.Close: lambda a: a.conn.close(),
            flows.Sleep: lambda a: time.sleep(a.seconds),
            flows.Parallel: lambda a: self._parallel(a.flows),
        }

    def _parallel(self, subflows):
        if len(subflows) == 1:
            return [drive(subflows[0], self._perform)]
        with ThreadPoolExecutor(max_workers=min(len(subflows), 64)) as pool:
            return list(pool.map(lambda f: drive(f, self._perform), subflows))
