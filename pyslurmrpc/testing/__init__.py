"""Test helpers for pyslurmrpc (real daemons started in temporary directories)."""

from .munged import MungedHarness
from .releases import Release, prepare
from .slurmctld import SlurmctldHarness

__all__ = ["MungedHarness", "SlurmctldHarness", "Release", "prepare"]
