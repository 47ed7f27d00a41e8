"""What the daemon harnesses share: a child process in a private directory, stopped by pid."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Optional


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

    def _stop_process(self) -> None:
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
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_or_skip(pytest, start, not_found: type, what: str):
    """``start()`` for a pytest fixture: skip when the program is missing, but fail under CI."""
    from .ci import skip_or_fail

    try:
        return start()
    except not_found as err:
        skip_or_fail(pytest, f"{err} ({what} tests)")
