"""What the daemon harnesses share: a child process in a private directory, stopped by pid.

The daemons run as root and listen: none may outlive the process that started it.  A harness
left running when the interpreter exits is stopped by an ``atexit`` hook (its directory
removed too), and a daemon started from the main thread is sent SIGTERM by the kernel when that
process dies in any other way (SIGTERM, SIGKILL: ``PR_SET_PDEATHSIG``; from another thread the
signal would come when that thread ends, so it is not asked for there).  A process killed so
runs no Python: the daemon dies, but its private directory (mode 0700, with munged's
throw-away key) stays in the temporary directory.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import stat
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

#: prctl(2) option: the signal the kernel sends a child when its parent dies
PR_SET_PDEATHSIG = 1
#: harnesses whose daemon runs, in start order, with the pid of the process that started each:
#: stopped at exit (newest first) if their owner did not stop them; strong references, so a
#: harness nobody keeps is still stopped
_LIVE: "dict[ChildHarness, int]" = {}


def _prctl():
    """libc's prctl, looked up here, in the parent: a dlopen between fork and exec could wait
    forever on a lock another thread held at the fork."""
    try:
        return ctypes.CDLL(None).prctl
    except (OSError, AttributeError):     # not Linux
        return None


_PRCTL = _prctl()


def _die_with(parent: int):
    """The child's step before exec: SIGTERM when ``parent`` dies (and no daemon at all when
    it died already, between the fork and this)."""
    def step() -> None:
        if _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM) != 0 or os.getppid() != parent:
            os._exit(1)
    return step


def find_program(name: str, candidates) -> Optional[str]:
    """``name`` on PATH, else the first of ``candidates`` that can run, else None."""
    return shutil.which(name) or next((p for p in candidates if os.access(p, os.X_OK)), None)


def is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def is_socket(path) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


@atexit.register
def _stop_all() -> None:
    """The harnesses this process started and did not stop (a forked child's exit leaves its
    parent's alone), newest first: a slurmctld before the munged it uses."""
    for harness, owner in reversed(list(_LIVE.items())):
        if owner == os.getpid():
            try:
                harness.stop()
            except Exception:      # the others are still stopped
                pass


class ChildHarness:
    """Base of :class:`MungedHarness` and :class:`SlurmctldHarness`.

    Subclasses set ``workdir`` and ``_proc`` in ``start()`` and implement ``stop()``;
    this class gives paths inside ``workdir``, ``pid``, ``running``, the stop
    sequence (SIGTERM, then SIGKILL after ``stop_timeout``) and the ``with`` form.
    """

    stop_timeout = 5.0
    workdir: Optional[Path] = None
    _proc: Optional[subprocess.Popen] = None
    _proc_rc: Optional[int] = None

    def _path(self, name: str) -> Optional[str]:
        return str(self.workdir / name) if self.workdir else None

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self, cmd: list, **kwargs) -> subprocess.Popen:
        """Start the daemon: a session of its own (a terminal's Ctrl-C is for the caller, which
        stops it), SIGTERM when this process dies, stopped at exit."""
        main = threading.current_thread() is threading.main_thread()
        self._proc = subprocess.Popen(cmd, start_new_session=True,
                                      preexec_fn=_die_with(os.getpid()) if main and _PRCTL else None, **kwargs)
        _LIVE[self] = os.getpid()
        return self._proc

    @contextmanager
    def _starting(self):
        """Around a start(): a harness already running is refused (a second daemon would be
        orphaned); any failure, Ctrl-C included, stops what was started and removes its files."""
        if self.running:
            raise RuntimeError(f"{type(self).__name__} already started (pid {self.pid}): stop() it first")
        self.stop()        # a daemon that died since: its directory goes before a new one is made
        try:
            yield
        except BaseException:
            self.stop()
            raise

    def _not_running_error(self) -> RuntimeError:
        return RuntimeError(f"{type(self).__name__} is not running: start() it, or use it in a with block")

    def _stop_process(self) -> None:
        _LIVE.pop(self, None)
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self._proc_rc = proc.returncode

    def __enter__(self):
        # h = X().start(); with h: ... stops it at the end, once (as a with on an open file
        # closes it): a harness shared beyond the block is not entered
        return self if self.running else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_or_skip(pytest, start, not_found: type, what: str):
    """``start()`` for a pytest fixture: skip when the program is missing, but fail under CI."""
    from .ci import skip_or_fail

    try:
        return start()
    except not_found as err:
        skip_or_fail(pytest, f"{err} ({what} tests)")
