"""A fake Slurm 19.05 slurmctld and slurmd for the checkpoint RPCs (issue 5).

* :class:`FakeSlurmctld` / :class:`FakeSlurmd` - asyncio servers (``await start()``,
  ``await stop()``, ``async with``, or a sync ``with`` running in a thread); the
  checkpoint plugin is chosen by name (``plugin="none" | "ompi" | "simulated"``);
* :class:`Cluster`, :class:`Job`, :class:`Step`, :class:`JobState` - the model,
  :func:`fixture_cluster` the recordings' cluster;
* :class:`SettableClock` - a clock tests move by hand (``clock=``);
* :class:`ReplayDaemon`, :class:`RecordingProxy` - replay and record.

Everything else (the sans-I/O rules in :mod:`.rules` and :mod:`.node_rules`,
the plugin classes, the server base, credential checks) is internal and
imported from its module.
"""

from .clock import SettableClock
from .cluster import Cluster, Job, JobState, Step, fixture_cluster
from .daemons import FakeSlurmctld, FakeSlurmd
from .replay import RecordingProxy, ReplayDaemon

__all__ = [
    "FakeSlurmctld", "FakeSlurmd", "Cluster", "Job", "JobState", "Step", "fixture_cluster",
    "SettableClock", "ReplayDaemon", "RecordingProxy",
]
