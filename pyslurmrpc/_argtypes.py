"""argparse types shared by the command lines (pyslurmrpc, bench, decode, fake-slurmctld).

A value an option cannot take becomes argparse's usage line, "argument OPT: must be ...,
not 'TEXT'" with exit status 2, never a traceback or an error deep inside a command.
"""

from __future__ import annotations

import argparse
import math
import re

from .client.validate import PORT_MAX, TIMEOUT_MAX
from .wire.versions import VERSION_CODES, without_patch_level

_INTEGER = re.compile(r"-?[0-9]+")   # no sign of +, no blanks, no '_' (int() takes all three)
_DECIMAL = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")   # the same for float()


def whole(low: int, high: int | None = None, want: str | None = None):
    """An int from ``low`` (to ``high``); ``want`` names it in the error (default: the range)."""
    if want is None:
        want = ("a positive integer" if (low, high) == (1, None) else
                f"an integer of at least {low}" if high is None else f"an integer from {low} to {high}")

    def parse(text: str) -> int:
        value = int(text) if _INTEGER.fullmatch(text) else None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {want}, not {text!r}")
        return value
    return parse


def port(low: int = 1):
    """A TCP port from ``low`` (0: any free port, where a daemon binds one) to 65535."""
    return whole(low, PORT_MAX, f"a port from {low} to {PORT_MAX}")


def seconds(most: float | None = TIMEOUT_MAX, least: float | None = None):
    """A finite number of seconds above 0 (or at least ``least``), and at most ``most``: by
    default the client's TIMEOUT_MAX, so an option that becomes a timeout is refused here as
    Client would refuse it."""
    want = ("a number of seconds above 0" if least is None else f"a number of seconds of at least {least:g}") \
        + ("" if most is None else f" and at most {most}")

    def parse(text: str) -> float:
        value = float(text) if _DECIMAL.fullmatch(text) else math.nan
        if not (math.isfinite(value) and value > 0 and (least is None or value >= least)
                and (most is None or value <= most)):
            raise argparse.ArgumentTypeError(f"must be {want}, not {text!r}")
        return value
    return parse


def release(text: str) -> str:
    """A Slurm release this library knows, "22.05" or as slurmctld -V prints it, "22.05.8"."""
    name = without_patch_level(text)
    if name not in VERSION_CODES:
        raise argparse.ArgumentTypeError(f"must be a Slurm release from {min(VERSION_CODES)} to {max(VERSION_CODES)} "
                                         f"(22.05, or 22.05.8), not {text!r}")
    return name
