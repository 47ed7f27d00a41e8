"""What the command line does when its output cannot be written or the user interrupts it."""

from __future__ import annotations

import os
from typing import TextIO

#: the exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it)
EXIT_INTERRUPTED = 130


def silence(stdout: TextIO) -> None:
    """After a broken pipe or a failed write, point the stream at /dev/null so the
    interpreter's final flush is quiet."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
