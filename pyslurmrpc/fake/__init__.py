"""A fake Slurm 19.05 slurmctld and slurmd for the checkpoint RPCs (issue 5).

* :class:`FakeSlurmctld` / :class:`FakeSlurmd` - asyncio servers (``await start()``,
  ``await stop()``, ``async with``, or a sync ``with`` running in a thread);
* :class:`Cluster`, :class:`Job`, :class:`Step`, :class:`JobState` - the model,
  :func:`fixture_cluster` the recordings' cluster;
* :class:`Controller`, :class:`NodeRules` - the sans-I/O rules;
* plugins :class:`NonePlugin`, :class:`OmpiPlugin`, :class:`SimulatedPlugin`;
* :class:`ReplayDaemon`, :class:`RecordingProxy` - record and replay.
"""

from .clock import SettableClock, system_clock
from .cluster import Cluster, Job, JobState, Step, fixture_cluster
from .daemon_auth import DaemonAuth
from .daemons import FakeSlurmctld, FakeSlurmd, make_plugin
from .node_rules import NodeRules
from .plugins import NonePlugin, OmpiPlugin
from .replay import RecordingProxy, Recordings, ReplayDaemon
from .rules import Controller, Reply
from .server import FakeDaemon
from .simulated import SimulatedPlugin

__all__ = [
    "FakeSlurmctld", "FakeSlurmd", "FakeDaemon", "Cluster", "Job", "JobState", "Step",
    "fixture_cluster", "Controller", "NodeRules", "Reply", "NonePlugin", "OmpiPlugin",
    "SimulatedPlugin", "make_plugin", "SettableClock", "system_clock", "DaemonAuth",
    "ReplayDaemon", "RecordingProxy", "Recordings",
]
