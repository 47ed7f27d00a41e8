"""The munged transaction flow (auth/munge_xfer.py): one Transact per attempt, libmunge's rules.

A scripted driver checks the steps a flow asks for (a refused connect tried again, then that
attempt's exchange and close apart; a body cut short tried again, whole); a stand-in munged on
a real socket checks what both clients raise for a body cut short.
"""

from __future__ import annotations

import errno
import socket
import stat

import pytest

from pyslurmrpc.auth import errors as E
from pyslurmrpc.auth.munge import AsyncMungeClient, MungeClient, RetryPolicy
from pyslurmrpc.auth.munge_constants import MsgType
from pyslurmrpc.auth.munge_proto import pack_header
from pyslurmrpc.auth.munge_xfer import transaction
from pyslurmrpc.effects import Close, Connect, Exchange, ExchangeFailed, Now, Sleep, Stat, Transact

from peers import ThreadedServer

FAST = RetryPolicy(connect_attempts=3, connect_backoff_ms=1, xfer_attempts=2, xfer_backoff_ms=1, timeout_ms=500)


def drive(flow, answer):
    """Run ``flow``: ``answer(action)`` gives each action's result or raises its failure; returns
    (the flow's value or the exception it raised, the actions in order)."""
    log, value, error = [], None, None
    while True:
        try:
            action = flow.throw(error) if error is not None else flow.send(value)
        except StopIteration as stop:
            return stop.value, log
        except Exception as exc:
            return exc, log
        log.append(action)
        try:
            value, error = answer(action), None
        except Exception as exc:
            value, error = None, exc


def test_a_refused_connect_is_tried_again_then_that_attempts_exchange_and_close_come_apart():
    def answer(action):
        if type(action) is Transact:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return {Stat: stat.S_IFSOCK, Connect: "conn", Exchange: (3, b"abc")}.get(type(action))
    value, log = drive(transaction("/run/m.sock", MsgType.ENC_REQ, b"body", FAST), answer)
    assert value == b"abc"
    assert [type(a) for a in log if type(a) is not Now] == [Transact, Stat, Sleep, Connect, Exchange, Close]
    steps = [a for a in log if type(a) is not Now]
    assert steps[4].conn == steps[5].conn == "conn" and steps[4].data == steps[0].data


def test_a_body_cut_short_is_tried_again_whole_then_raised():
    value, log = drive(transaction("/run/m.sock", MsgType.ENC_REQ, b"body", FAST),
                       lambda action: (10, b"abcd") if type(action) is Transact else None)
    assert isinstance(value, E.MungeSocketError)
    assert "Received incomplete message body: 4 of 10 bytes" in value.text
    assert [type(a) for a in log if type(a) is not Now] == [Transact, Sleep, Transact]
    assert log[-1].data[:11] != log[0].data[:11]            # the retry's header counts the attempt


class CutShort(ThreadedServer):
    """A munged stand-in whose answer's header claims 10 body bytes; 4 come, then it closes."""

    def _serve(self, conn: socket.socket):
        conn.recv(65536)
        conn.sendall(pack_header(MsgType.ENC_RSP, 10) + b"abcd")


@pytest.fixture
def cut_short(tmp_path):
    path = str(tmp_path / "munge.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    with CutShort(sock):
        yield path


def test_the_blocking_client_names_a_body_cut_short(cut_short):
    with pytest.raises(E.MungeSocketError, match="incomplete message body: 4 of 10 bytes"):
        MungeClient(cut_short, retry=FAST).encode()


async def test_the_asyncio_client_names_a_body_cut_short(cut_short):
    with pytest.raises(E.MungeSocketError, match="incomplete message body: 4 of 10 bytes"):
        await AsyncMungeClient(cut_short, retry=FAST).encode()


@pytest.mark.parametrize("first", ["reset", "refused"])
def test_time_that_runs_out_after_munged_failed_is_munged_s_failure(first):
    """A retry's pause that overran the deadline raised MungeOutOfTimeError ("the caller's time
    ran out before munged was asked"), so a probe was counted lost though munged had failed."""
    clock = [0.0]

    def answer(action):
        kind = type(action)
        if kind is Now:
            return clock[0]
        if kind is Sleep:                      # the pause overruns: the deadline has passed
            clock[0] += 5.0
            return None
        if kind is Transact and first == "reset":
            raise ExchangeFailed("header", ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))
        if kind is Transact:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return {Stat: stat.S_IFSOCK}.get(kind)
    value, _ = drive(transaction("/run/m.sock", MsgType.ENC_REQ, b"body", FAST, deadline=1.0), answer)
    assert isinstance(value, E.MungeSocketError) and not isinstance(value, E.MungeOutOfTimeError), value
    assert "no time left to try again" in value.text


def test_time_spent_before_munged_was_asked_is_the_callers():
    value, _ = drive(transaction("/run/m.sock", MsgType.ENC_REQ, b"body", FAST, deadline=1.0),
                     lambda action: 2.0 if type(action) is Now else None)
    assert isinstance(value, E.MungeOutOfTimeError) and "No time left for" in value.text
