"""The one effect vocabulary: what a flow may ask of the world (no I/O here).

A *flow* is a generator that yields the actions below and gets each result
back through ``send``; a failed action is thrown into the flow as the
exception the runner met (an ``OSError``, ``TimeoutError`` or
:class:`PeerClosed`), so the flow decides what a failure means.  Flows reach
sub-flows with ``yield from``: the munged transaction (auth/munge_xfer.py),
Slurm's retry of MUNGE socket errors (auth/slurm_auth.py) and every client
operation (client/flows.py) are written once and run by either runner in
:mod:`pyslurmrpc.runners` (blocking or asyncio), or by a scripted runner in
tests.  Flows never read the clock themselves: they ask with :data:`NOW`.

Actions are slotted dataclasses, built and consumed at once and never changed;
not ``frozen``: a frozen one costs three times as much to build (0.4 against
0.14 us), which every call's hot path would feel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator

#: what a flow is: yields actions, receives their results, returns its value
Flow = Generator[Any, Any, Any]


@dataclass(slots=True)
class Connect:
    """Open a stream: ``target`` a path (UNIX socket) or an object with host and port (TCP).

    Result: a connection handle the other actions take.  ``timeout`` bounds the
    connect; for a UNIX socket it also bounds each later send and receive.
    """

    target: Any
    timeout: float


@dataclass(slots=True)
class Send:
    """Write all of ``data`` on ``conn``; result None."""

    conn: Any
    data: bytes = field(repr=False)
    timeout: float


@dataclass(slots=True)
class Exchange:
    """Send ``data`` on ``conn`` (a UNIX stream) and read the answer: ``header_size`` bytes, then
    ``body_size(header)`` more.  Result: ``(body_size(header), body)``.

    One action for a whole munged request and response (five when sent and read step by
    step, each passing through every flow above it).  ``timeout`` bounds the whole exchange:
    a peer that trickles still fails on time.  ``body_size`` may raise to refuse a header; it
    is given a shorter one, and the body is shorter, only when the peer closed first.  A socket
    failure is raised as :class:`ExchangeFailed`, naming the step it happened in.
    """

    conn: Any
    data: bytes = field(repr=False)
    header_size: int
    body_size: Callable[[bytes], int]
    timeout: float


@dataclass(slots=True)
class Transact:
    """Connect to the UNIX socket ``path``, :class:`Exchange` ``data`` on it, close it: a whole
    munged transaction as one action (its three steps apart each pass through every flow above
    it).  Result: the Exchange's.  A failed connect raises the ``OSError`` a :class:`Connect`
    would, with nothing left open; the exchange fails as an Exchange does.  ``timeout`` bounds
    each step, as it would bound the steps apart.  :func:`transact_steps` yields them apart,
    for a runner with no handler of its own for it (or a flow that must come between them).
    """

    path: str
    data: bytes = field(repr=False)
    header_size: int
    body_size: Callable[[bytes], int]
    timeout: float


@dataclass(slots=True)
class Post:
    """Send ``data`` on ``conn`` (a UNIX stream) and read nothing yet; result None.

    The :class:`Exchange` of the same ``data`` on ``conn`` that follows sends no byte again and
    only reads the answer, so the peer works on the request meanwhile (see :func:`overlapped`).
    A failure is raised as :class:`ExchangeFailed` ("send"), as that Exchange would raise it.
    A runner may decline (result False, nothing sent): the Exchange then sends it.
    """

    conn: Any
    data: bytes = field(repr=False)
    timeout: float


@dataclass(slots=True)
class RecvFrame:
    """Read one whole length-prefixed Slurm frame within ``timeout`` seconds.

    A peer that closes first makes the runner throw :class:`PeerClosed`; a length
    prefix over ``max_size`` (None: the framer's own limit) is refused as it arrives.
    """

    conn: Any
    timeout: float
    max_size: int | None = None


@dataclass(slots=True)
class Close:
    """Close ``conn`` (closing twice is harmless); result None.

    ``later``: the runner may close it just before the flow's next wait instead (or when
    the run ends), where the close costs the caller no time: a reply read whole, closed
    while munged decodes its credential.
    """

    conn: Any
    later: bool = False


@dataclass(slots=True)
class Stat:
    """``os.stat(path).st_mode``."""

    path: str


@dataclass(slots=True)
class Sleep:
    seconds: float


@dataclass(slots=True)
class Now:
    """The monotonic clock, in seconds (flows yield the one instance, :data:`NOW`)."""


#: the clock action: it has no fields, so one instance serves every flow (a ping reads the clock
#: about ten times; building each cost more than the runner's work on it)
NOW = Now()


@dataclass(slots=True)
class WallClock:
    """Seconds since the epoch (``time.time()``)."""


@dataclass(slots=True)
class Parallel:
    """Run several flows side by side; the result is the list of their results."""

    flows: tuple


@dataclass(slots=True)
class Shared:
    """Run ``flow`` once for every run that asks with an equal ``key`` while it runs (one version
    detection for many first calls at once).  The first to ask runs it, as a sub-flow; a run that
    asks meanwhile does not (``flow`` is closed unstarted) and waits for it until it ends or
    ``deadline`` (the runner's monotonic time) comes.  Result: ``(True, value)`` for the one that
    ran it and each waiter given its value; ``(False, None)`` for a waiter whose run ended without
    one (the flow failed or was cancelled); ``(None, None)`` for one whose deadline came first,
    or that cannot wait for it (its own thread runs it).  The one that ran it gets its failure
    raised."""

    key: Any
    flow: Any
    deadline: float


@dataclass(slots=True)
class Invoke:
    """Call ``fn(*args)`` (awaited when it returns an awaitable): for objects outside the flows,
    such as a user's own authenticator with plain ``create``/``verify`` methods."""

    fn: Callable
    args: tuple = ()


@dataclass(slots=True)
class Background:
    """Start ``flow`` and go on at once (result None); when it ends the runner calls
    ``done(value, error)`` - error None on success.  The asyncio runner runs it as a task
    on the same loop.  The blocking runner runs it in the same thread, taking its steps
    that finish at once and the rest before each of the call's own waits; what is left
    when the call ends is waited for then (a pause, or a failed call, gives it up)."""
    flow: Any
    done: Callable


class ExchangeFailed(Exception):
    """An :class:`Exchange` failed in ``step`` ("send", "header" or "body") with ``error``, the
    ``OSError`` (a ``TimeoutError`` when the exchange's time ran out)."""

    def __init__(self, step: str, error: OSError):
        super().__init__(f"{step}: {error}")
        self.step, self.error = step, error


class PeerClosed(ConnectionError):
    """The peer closed the stream before a whole frame arrived; ``pending``: part of one had."""

    def __init__(self, pending: bool):
        super().__init__("closed in the middle of a reply" if pending else "closed without a reply")
        self.pending = pending


def deadline_passed(now: float, deadline: float | None, wait: float = 0.0) -> bool:
    """True when ``wait`` more seconds from ``now`` would reach ``deadline`` (None: never)."""
    return deadline is not None and now + wait >= deadline


def transact_steps(action: Transact) -> Flow:
    """``action``'s three steps apart: Connect, Exchange, Close (after a failure too)."""
    conn = yield Connect(action.path, action.timeout)
    try:
        answer = yield Exchange(conn, action.data, action.header_size, action.body_size, action.timeout)
    except Exception:
        yield Close(conn)
        raise
    yield Close(conn)
    return answer


def steps_apart(flow: Flow) -> Flow:
    """``flow`` with each :class:`Transact` it yields taken as its steps apart (for a runner
    that must see every step, such as the blocking runner's Background turns)."""
    step, arg = flow.send, None
    while True:
        try:
            action = step(arg)
        except StopIteration as stop:
            return stop.value
        try:
            step, arg = flow.send, ((yield from transact_steps(action)) if type(action) is Transact
                                    else (yield action))
        except Exception as exc:
            step, arg = flow.throw, exc


def pure(fn: Callable, *args) -> Flow:
    """A flow that asks for nothing: the value of ``fn(*args)`` (for I/O-free steps)."""
    return fn(*args)
    yield  # pragma: no cover - makes this function a generator


#: the least time an answer already posted for is given once the flow run meanwhile has ended
_LAST_LOOK = 0.001
#: the actions whose request :func:`overlapped` posts
_POSTED = frozenset({Exchange, Transact})


def overlapped(first: Flow, other: Flow, undo: Callable[[Any], Flow]) -> Flow:
    """``(first's result, other's result)``, with ``other`` run whole while a daemon works on
    ``first``'s first :class:`Transact` or :class:`Exchange` (a munged request, posted at once
    and its answer read once ``other`` has ended), or after ``first`` when it asks none or the
    runner declines the :class:`Post`.

    The errors come as if ``other`` ran first (libslurm connects, then mints): ``other``'s
    failure is raised and ``first`` is given up (its posted answer is not waited for, a
    munged that cannot be reached is not tried again); when ``other`` succeeded, ``first``'s
    failure is raised and ``other``'s result goes to ``undo`` (a flow: close what it opened).
    The posted request's answer is given its own time less what ``other`` took, so that
    together they keep to ``first``'s limits.
    """
    step, arg, outcome, posting = first.send, None, None, True
    while True:
        try:
            action = step(arg)
        except StopIteration as stop:
            result = stop.value
            break
        except Exception:
            if outcome is None:      # other has not run: its failure would have come first
                outcome = yield from _outcome(other)
            if outcome[0]:
                yield from undo(outcome[1])
                raise
            raise outcome[1] from None
        if posting and outcome is None and type(action) in _POSTED:
            step, arg, outcome, posting = yield from _posted(first, action, other)
            if outcome is not None and not outcome[0]:
                _give_up(first)
                raise outcome[1]
            continue
        try:
            step, arg = first.send, (yield action)
        except Exception as exc:
            step, arg = first.throw, exc
    if outcome is None:
        outcome = yield from _outcome(other)
    ok, value = outcome
    if not ok:
        raise value
    return result, value


def _posted(first: Flow, action, other: Flow) -> Flow:
    """``action`` (an Exchange, or a Transact's steps apart) with ``other`` run between its
    request's Post and the read of its answer: (how ``first`` goes on, with what, ``other``'s
    outcome or None when it has not run, whether a later request may still be posted).  When
    ``other`` failed, nothing more is done: the caller raises its failure."""
    if type(action) is Transact:
        try:
            conn = yield Connect(action.path, action.timeout)
        except Exception as exc:         # munged not reached: the daemon is tried before any retry
            return first.throw, exc, (yield from _outcome(other)), True
    else:
        conn = action.conn
    outcome, posting, timeout = None, True, action.timeout
    try:
        if (yield Post(conn, action.data, timeout)) is False:
            posting = False              # the runner sends it with its Exchange: other comes after
        else:
            posted = yield NOW
            outcome = yield from _outcome(other)
            if not outcome[0]:
                if type(action) is Transact:
                    yield Close(conn)
                return None, None, outcome, False
            timeout = max(timeout - ((yield NOW) - posted), _LAST_LOOK)
        step, arg = first.send, (yield Exchange(conn, action.data, action.header_size, action.body_size,
                                                timeout))
        answered = True
    except Exception as exc:             # the exchange's own failure: first decides what it means
        step, arg, answered = first.throw, exc, False
    if type(action) is Transact:         # once answered, closed at the next wait: it costs no time
        yield Close(conn, later=answered)
    return step, arg, outcome, posting


def _give_up(flow: Flow) -> None:
    """Close ``flow``, which will not be resumed; one that yields in its ``finally`` (an
    authenticator of a caller's own) cannot run it here, and its RuntimeError would replace
    the error being raised: what it holds is closed with the run."""
    try:
        flow.close()
    except RuntimeError:
        pass


def _outcome(flow: Flow) -> Flow:
    """(True, the flow's value) or (False, the exception it raised)."""
    try:
        return True, (yield from flow)
    except Exception as exc:
        return False, exc
