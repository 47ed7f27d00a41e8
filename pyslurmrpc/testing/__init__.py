"""Test helpers for pyslurmrpc (real daemons started in temporary directories).

The names below are imported on first use, so that ``python -m pyslurmrpc.testing.releases``
runs that module once, as ``__main__``, and not also as the package's import of it.
"""

from importlib import import_module

__all__ = ["MungedHarness", "SlurmctldHarness", "Release", "prepare", "MungedNotFound", "MungedStartError",
           "SlurmctldNotFound", "SlurmctldStartError", "ReleaseUnavailable"]
_HOME = {"MungedHarness": ".munged", "SlurmctldHarness": ".slurmctld", "Release": ".releases",
         "prepare": ".releases", "MungedNotFound": ".munged", "MungedStartError": ".munged",
         "SlurmctldNotFound": ".slurmctld", "SlurmctldStartError": ".slurmctld",
         "ReleaseUnavailable": ".releases"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_HOME[name], __name__), name)
    globals()[name] = value
    return value
