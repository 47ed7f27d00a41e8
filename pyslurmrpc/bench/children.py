"""The benchmark's child processes (libslurm, asyncio bursts, fake servers, the fan-out farm).

Each starts in a session of its own: a Ctrl-C at the terminal signals the whole foreground
process group, and a child that got it printed its own KeyboardInterrupt traceback while the
bench was stopping cleanly.  Now only the bench gets it, and the bench stops its children:
:func:`reaped` kills whichever is still running on any way out of its block.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from contextlib import contextmanager


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(cmd, **kwargs)`` in a new session (out of the terminal's process group)."""
    return subprocess.Popen(cmd, start_new_session=True, **kwargs)


@contextmanager
def reaped(*procs: subprocess.Popen):
    """Yield ``procs``; on the way out kill and wait for any that has not ended (a bench stopped
    by Ctrl-C or SIGTERM leaves no child running its calls against a controller going away)."""
    try:
        yield procs
    finally:
        running = [proc for proc in procs if proc.poll() is None]
        for proc in running:
            proc.kill()
        for proc in running:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


def last_line(text: str) -> str:
    """The reason a child gave: its last line (a traceback ends in the error), at most 500
    characters, without the exception's module path."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else "(nothing on its stderr)"
    head, sep, rest = line.partition(": ")
    if sep and head.replace(".", "").isidentifier() and head.rsplit(".", 1)[-1][:1].isupper():
        line = rest        # "pyslurmrpc.bench.libslurm.LibslurmUnavailable: why" -> "why"
    return line[:500]


def stopped_or_killed(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM (a server's own clean stop), then SIGKILL after ``grace`` seconds; never raises
    over an exception already on its way out."""
    with reaped(proc):
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass


class Terminated(BaseException):
    """SIGTERM, raised where the bench is, so that every ``with`` it is in stops what it started."""


@contextmanager
def sigterm_raises():
    """In the block, SIGTERM raises :class:`Terminated` (main thread only: only it gets signals).
    A second SIGTERM while the block cleans up is ignored, so the cleanup finishes; on the way out
    the handler the caller had is back (SIG_DFL when it was not Python's to give back)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN):   # a caller that ignores it keeps that
        yield
        return

    def terminated(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
