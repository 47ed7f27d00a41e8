"""Clocks for the fake daemons: wall clock, or one a test sets.

The ompi plugin stores "now" in its step state and reports it later
(CHECK_ABLE's event_time), so reproducing a recorded reply byte for byte
needs the clock that was read at the recorded moment.
"""

from __future__ import annotations

import time


def system_clock() -> int:
    """Whole seconds of the wall clock, as slurmctld's ``time(NULL)``."""
    return int(time.time())


class SettableClock:
    """A clock that says what it is told: ``clock.now = t`` or ``clock.advance(s)``."""

    def __init__(self, now: int = 0):
        self.now = int(now)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int = 1) -> int:
        """Move forward and return the new time."""
        self.now += int(seconds)
        return self.now

    def __repr__(self) -> str:
        return f"SettableClock({self.now})"
