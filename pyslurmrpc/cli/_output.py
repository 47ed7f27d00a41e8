"""What the command line does when its output cannot be written, the user interrupts it, or it
reports a failure."""

from __future__ import annotations

import os
from typing import TextIO

#: the exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it)
EXIT_INTERRUPTED = 130
#: the exit status of a command ended by SIGTERM (128 + SIGTERM)
EXIT_TERMINATED = 143


def silence(stdout: TextIO) -> None:
    """After a broken pipe or a failed write, point the stream at /dev/null so the
    interpreter's final flush is quiet."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def error_text(exc: BaseException) -> str:
    """An error as one line for the user: a system error as "PATH: reason" or its reason,
    without Python's "[Errno 21]" prefix."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)
