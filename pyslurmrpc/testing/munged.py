"""Run a real, throw-away munged for tests and benchmarks.

>>> from pyslurmrpc.auth import MungeClient
>>> with MungedHarness() as m:
...     MungeClient(m.socket_path).encode()

The daemon gets a fresh random key, socket, pid, log and seed file in a
private temporary directory, runs in the foreground as our child, and is
stopped by its own pid.  Nothing outside the temporary directory is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from .process import ChildHarness, find_program, is_executable, is_socket, start_or_skip

#: where distributions install munged when it is not on PATH
MUNGED_CANDIDATES = ("/usr/sbin/munged", "/sbin/munged", "/usr/local/sbin/munged")
KEY_BYTES = 1024            # mungekey's default size
START_TIMEOUT = 10.0        # seconds to wait for the socket

POLL_INTERVAL = 0.01


class MungedNotFound(RuntimeError):
    """No munged executable on this machine."""


class MungedStartError(RuntimeError):
    """munged exited or did not create its socket in time (log attached)."""


def find_munged() -> str:
    """Path of the munged executable, or raise :class:`MungedNotFound`."""
    found = find_program("munged", MUNGED_CANDIDATES)
    if not found:
        raise MungedNotFound("munged not found (apt-get install munge)")
    return found


class MungedHarness(ChildHarness):
    """A munged child process with its own key, socket and files.

    Attributes once started: ``socket_path``, ``key_file``, ``pid_file``,
    ``log_file``, ``seed_file``, ``pid``, ``workdir``.  ``extra_args`` are
    passed on (e.g. ``["--benchmark"]`` or ``["--max-ttl=60"]``).
    """

    def __init__(self, munged: Optional[str] = None, *, key: Optional[bytes] = None,
                 extra_args: Sequence[str] = (), num_threads: Optional[int] = None):
        self.munged = munged or find_munged()
        if not is_executable(self.munged):
            raise MungedNotFound(f"munged {self.munged!r} is not an executable file")
        if key is not None and not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError(f"key must be bytes (the key file's content), not {type(key).__name__}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or num_threads < 1):
            raise ValueError(f"num_threads must be a positive int, not {num_threads!r}")
        self._key = key
        self.extra_args = list(extra_args)
        if num_threads:
            self.extra_args.append(f"--num-threads={num_threads}")
        self.workdir: Optional[Path] = None
        self._proc: Optional[subprocess.Popen] = None

    def __repr__(self) -> str:
        return f"MungedHarness(socket_path={self.socket_path!r}, pid={self.pid})"

    # paths -----------------------------------------------------------------
    socket_path = property(lambda self: self._path("munge.socket"))
    key_file = property(lambda self: self._path("munge.key"))
    pid_file = property(lambda self: self._path("munged.pid"))
    log_file = property(lambda self: self._path("munged.log"))
    seed_file = property(lambda self: self._path("munged.seed"))

    # lifecycle ---------------------------------------------------------------
    def start(self) -> "MungedHarness":
        """Write the key, launch munged and wait until its socket accepts."""
        with self._starting():
            self.workdir = Path(tempfile.mkdtemp(prefix="pyslurmrpc-munged-"))
            key = self._key if self._key is not None else os.urandom(KEY_BYTES)
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key)
            cmd = [self.munged, "--foreground", "--force", f"--key-file={self.key_file}",
                   f"--socket={self.socket_path}", f"--pid-file={self.pid_file}",
                   f"--log-file={self.log_file}", f"--seed-file={self.seed_file}", *self.extra_args]
            # --force: proceed despite "insecure" warnings (e.g. group-writable dirs).
            # stderr goes to a file: a pipe nobody reads could fill up and block munged
            with open(self._path("munged.stderr"), "wb") as err:
                self._spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            self._wait_for_socket()
        return self

    def _wait_for_socket(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise MungedStartError(self._failure("exited with %s" % self._proc.returncode))
            if is_socket(self.socket_path):
                return
            time.sleep(POLL_INTERVAL)
        raise MungedStartError(self._failure("did not create its socket in time"))

    def _failure(self, what: str) -> str:
        """The message of a failed start; its files are removed after (the paths would mislead)."""
        err = Path(self._path("munged.stderr")).read_text(errors="replace")
        log = Path(self.log_file).read_text(errors="replace") if os.path.exists(self.log_file) else ""
        return f"munged {what}\nstderr:\n{err}\nlog:\n{log}"

    def stop(self) -> None:
        """SIGTERM our munged (by pid), SIGKILL it if it lingers, remove the files."""
        self._stop_process()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def munged_or_skip(pytest) -> MungedHarness:
    """Start a harness for a pytest fixture: skip without munged, but fail under CI."""
    return start_or_skip(pytest, lambda: MungedHarness().start(), MungedNotFound, "MUNGE")
