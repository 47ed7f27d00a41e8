"""The benchmark's child processes (libslurm, asyncio bursts, fake servers, the fan-out farm).

Each starts in a session of its own: a Ctrl-C at the terminal signals the whole foreground
process group, and a child that got it printed its own KeyboardInterrupt traceback while the
bench was stopping cleanly.  Now only the bench gets it, and the bench stops its children:
:func:`reaped` kills whichever is still running on any way out of its block.
"""

from __future__ import annotations

import subprocess
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
