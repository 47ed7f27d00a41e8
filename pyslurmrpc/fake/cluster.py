"""The cluster a fake daemon pretends to run: jobs, their steps, the nodes.

Only what the checkpoint rules look at is modelled (protocol_specs/
slurmctld_checkpoint.md §3-§11): owner uid, base state, batch flag, the
job's details record and checkpoint dir, step records keyed by exact id,
and per node the live step daemons.  The model is mutable on purpose: the
checkpoint plugins change step state, a vacate may end a step, a restart
brings a job back.  It is loaded from TOML (:meth:`Cluster.from_toml`) or
built in Python.
"""

from __future__ import annotations

import enum
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Optional

from pyslurmrpc import defaults
from pyslurmrpc.errors import ConfigError
from pyslurmrpc.hostlist import HostlistError, expand
from pyslurmrpc.wire import SLURM_BATCH_SCRIPT


#: the work dir of a fake job when none is given (a real sbatch job has the directory it was
#: submitted from); only a default image dir, nothing is written there by the rules themselves
DEFAULT_WORK_DIR = "/tmp"


class JobState(enum.Enum):
    """A job's base state.  Everything past RUNNING/SUSPENDED counts as finished."""

    PENDING = "pending"
    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self not in _LIVE_STATES


_LIVE_STATES = frozenset({JobState.PENDING, JobState.RUNNING, JobState.SUSPENDED})


@dataclass
class Step:
    """A step record.  ``srun`` says an srun listens for SRUN_EXEC (not the batch step);
    ``tasks_started`` is the slurmstepd's "process group exists" (pgid > 1)."""

    step_id: int
    nodes: tuple[str, ...] = ()
    srun: bool = True
    tasks_started: bool = True
    suspended: bool = False
    ckpt_dir: Optional[str] = None
    #: the checkpoint plugin's private per-step state (created lazily by the plugin)
    plugin_state: Any = field(default=None, repr=False)
    _members: tuple = field(default=((), frozenset()), init=False, repr=False, compare=False)

    def runs_on(self, node: str) -> bool:
        """Whether the step has ``node``: every slurmd of a fan-out asks, so the names are
        looked up in a set (kept for the current ``nodes``), not scanned."""
        nodes, members = self._members
        if nodes is not self.nodes:
            members = frozenset(self.nodes)
            self._members = (self.nodes, members)
        return node in members


@dataclass
class Job:
    """A job record as slurmctld holds it (finished jobs stay until purged)."""

    job_id: int
    uid: int
    state: JobState = JobState.RUNNING
    batch: bool = False
    nodes: tuple[str, ...] = ("localhost",)
    steps: dict[int, Step] = field(default_factory=dict)
    has_details: bool = True
    ckpt_dir: Optional[str] = None  # the --checkpoint-dir the job was submitted with
    #: the job's working directory (sbatch: where it was run); None only for a job submitted
    #: through the API without one
    work_dir: Optional[str] = DEFAULT_WORK_DIR

    @property
    def details_ckpt_dir(self) -> Optional[str]:
        """details->ckpt_dir: the submitted checkpoint dir, else the work dir
        (job_mgr.c _copy_job_desc_to_job_record), so a submitted job nearly always has one."""
        return self.ckpt_dir if self.ckpt_dir is not None else self.work_dir

    def add_step(self, step_id: int, **kw) -> Step:
        """Add (or replace) a step record; its nodes default to the job's."""
        kw.setdefault("nodes", self.nodes)
        step = Step(step_id, **kw)
        self.steps[step_id] = step
        return step

    def add_batch_step(self) -> Step:
        """The batch step record (runs on the first node, no srun behind it)."""
        return self.add_step(SLURM_BATCH_SCRIPT, nodes=self.nodes[:1], srun=False)


@dataclass
class Cluster:
    """All jobs, the privileged uid and the node address map of one fake cluster.

    ``node_addrs`` maps a node name to (host, port) of its fake slurmd; it is
    what forwarding uses to find peers (slurm.conf NodeAddr/Port).
    """

    jobs: dict[int, Job] = field(default_factory=dict)
    slurm_user: int = 0
    job_checkpoint_dir: Optional[str] = None
    node_addrs: dict[str, tuple[str, int]] = field(default_factory=dict)
    tree_width: int = defaults.TREE_WIDTH
    #: job checkpoint records written by route 2 (``<JobCheckpointDir>/<job>.ckpt``),
    #: kept in memory: job_id -> dict(uid, nodes, image_dir, steps)
    job_records: dict[int, dict] = field(default_factory=dict, repr=False)

    def add_job(self, job_id: int, uid: int, state="running", batch: bool = False,
                steps=(), nodes=("localhost",), **kw) -> Job:
        """Add a job; a running or suspended batch job also gets its batch step record."""
        job = Job(job_id, uid, JobState(state), batch, tuple(nodes), **kw)
        self.jobs[job_id] = job
        if batch and not job.state.finished and job.state is not JobState.PENDING:
            job.add_batch_step()
        for sid in steps:
            job.add_step(sid)
        return job

    def privileged(self, uid: int) -> bool:
        """slurmctld's validate_slurm_user: root or SlurmUser."""
        return uid == 0 or uid == self.slurm_user

    # ------------------------------------------------------------------
    # loading
    # ------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path) -> "Cluster":
        """Load a cluster description from TOML::

            slurm_user = 0                     # SlurmUser's uid
            job_checkpoint_dir = "/ckpt"       # JobCheckpointDir
            tree_width = 50                    # TreeWidth
            [nodes]                            # node name -> fake slurmd address
            n1 = "127.0.0.1:7001"
            [[jobs]]
            job_id = 2
            uid = 1000
            state = "running"                  # pending/running/suspended/completed/cancelled/failed
            batch = true                       # running batch jobs get the batch step record
            nodes = "n[1-2]"                   # hostlist expression
            ckpt_dir = "/home/u/ckpt"          # optional default image dir (else work_dir)
            work_dir = "/home/u"               # optional, default /tmp
            [[jobs.steps]]
            step_id = 0                        # other keys: nodes, srun, tasks_started,
                                               # suspended, ckpt_dir (see Step)
        """
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not TOML: {exc}", path=str(path)) from None
        try:
            return cls.from_dict(data)
        except KeyError as exc:        # a job or step without one of its required keys
            raise ConfigError(f"bad cluster description: missing key {exc.args[0]!r}", path=str(path)) from None
        except (TypeError, ValueError, AttributeError, HostlistError) as exc:
            # a string where a number belongs, a bad state name or node list
            raise ConfigError(f"bad cluster description: {type(exc).__name__}: {exc}", path=str(path)) from None

    @classmethod
    def from_dict(cls, data: dict) -> "Cluster":
        """Build from the parsed TOML structure (see :meth:`from_toml`)."""
        cluster = cls(slurm_user=data.get("slurm_user", 0),
                      job_checkpoint_dir=data.get("job_checkpoint_dir"),
                      tree_width=data.get("tree_width", defaults.TREE_WIDTH),
                      node_addrs={name: _addr(text) for name, text in data.get("nodes", {}).items()})
        for spec in data.get("jobs", []):
            _load_job(cluster, dict(spec))
        return cluster


def _addr(text: str) -> tuple[str, int]:
    host, _, port = str(text).rpartition(":")
    return host or "127.0.0.1", int(port)


def _load_job(cluster: Cluster, spec: dict) -> None:
    steps = spec.pop("steps", [])
    nodes = spec.pop("nodes", "localhost")
    job = cluster.add_job(spec.pop("job_id"), spec.pop("uid"), spec.pop("state", "running"),
                          spec.pop("batch", False), nodes=expand(nodes) if isinstance(nodes, str)
                          else nodes, **spec)
    for step in steps:
        step = dict(step)
        if "nodes" in step and isinstance(step["nodes"], str):
            step["nodes"] = tuple(expand(step["nodes"]))
        job.add_step(step.pop("step_id"), **step)


def fixture_cluster(owner: Optional[int] = None) -> Cluster:
    """The cluster of the recordings in fixtures/ (fixtures/README.md, notes/fake_rules.md).

    SlurmUser and owner of every job: ``owner``, by default whoever runs the
    fake (root in the recordings), so that a client run by the same user
    (auth/none sends the caller's uid) is allowed what root was; JobCheckpointDir
    /opt/s19/ckpt, one node ``localhost``; job 2 and 5 running batch jobs with
    step 0 (srun) and the batch step, job 3 cancelled, job 4 pending.
    """
    uid = os.geteuid() if owner is None else owner
    cluster = Cluster(slurm_user=uid, job_checkpoint_dir="/opt/s19/ckpt")
    cluster.add_job(2, uid, "running", batch=True, steps=[0])
    cluster.add_job(3, uid, "cancelled", batch=True)
    cluster.add_job(4, uid, "pending", batch=True)
    cluster.add_job(5, uid, "running", batch=True, steps=[0])
    return cluster
