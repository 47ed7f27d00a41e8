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
from pyslurmrpc.client import validate
from pyslurmrpc.errors import ConfigError, InvalidArgumentError
from pyslurmrpc.hostlist import HostlistError
from pyslurmrpc.wire import SLURM_BATCH_SCRIPT

from . import cluster_checks as checks


#: the work dir of a fake job when none is given (a real sbatch job has the directory it was
#: submitted from); only a default image dir, nothing is written there by the rules themselves
DEFAULT_WORK_DIR = "/tmp"
#: the largest cluster file read: thousands of jobs take a few hundred KiB, and a device
#: such as /dev/zero given by mistake must not be read until memory runs out
CLUSTER_FILE_MAX = 16 * 1024 * 1024
#: what some Windows editors put at the start of a UTF-8 file; tomllib refuses it
UTF8_BOM = "\ufeff"
#: the keys of a cluster file: top level, a [[jobs]] table, a [[jobs.steps]] table
TOP_KEYS = ("slurm_user", "job_checkpoint_dir", "tree_width", "nodes", "jobs")
JOB_KEYS = ("job_id", "uid", "state", "batch", "nodes", "steps", "has_details", "ckpt_dir", "work_dir")
STEP_KEYS = ("step_id", "nodes", "srun", "tasks_started", "suspended", "ckpt_dir")


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

    def __post_init__(self) -> None:
        where = f"step {checks.step_id(self.step_id, 'step_id')}: "
        for name in ("srun", "tasks_started", "suspended"):
            checks.flag(getattr(self, name), where + name)
        self.nodes = checks.node_names(self.nodes, where + "nodes")
        self.ckpt_dir = checks.path(self.ckpt_dir, where + "ckpt_dir")

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

    def __post_init__(self) -> None:
        where = f"job {checks.job_id(self.job_id)}: "
        checks.uid(self.uid, where + "uid")
        self.state = checks.choice(self.state, where + "state", JobState)
        for name in ("batch", "has_details"):
            checks.flag(getattr(self, name), where + name)
        self.nodes = checks.node_names(self.nodes, where + "nodes")
        self.ckpt_dir = checks.path(self.ckpt_dir, where + "ckpt_dir")
        self.work_dir = checks.path(self.work_dir, where + "work_dir")

    @property
    def details_ckpt_dir(self) -> Optional[str]:
        """details->ckpt_dir: the submitted checkpoint dir, else the work dir
        (job_mgr.c _copy_job_desc_to_job_record), so a submitted job nearly always has one."""
        return self.ckpt_dir if self.ckpt_dir is not None else self.work_dir

    def add_step(self, step_id: int, **kw) -> Step:
        """Add (or replace) a step record; its nodes default to the job's (the batch and
        extern steps' ids are taken too; SLURM_PENDING_STEP, a step not created yet, is not)."""
        checks.step_id(step_id, f"job {self.job_id}: step_id")
        kw.setdefault("nodes", self.nodes)
        try:
            step = Step(step_id, **kw)
        except InvalidArgumentError as exc:  # a file has a step 0 in every job: name the job too
            raise InvalidArgumentError(f"job {self.job_id} {exc}") from None
        self.steps[step_id] = step
        return step

    def add_batch_step(self) -> Step:
        """The batch step record (runs on the first node, no srun behind it)."""
        step = Step(SLURM_BATCH_SCRIPT, nodes=self.nodes[:1], srun=False)
        self.steps[SLURM_BATCH_SCRIPT] = step
        return step


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

    def __post_init__(self) -> None:
        # checked here, not when a connection is served: a uid that cannot be encoded
        # would otherwise close every connection unanswered
        checks.uid(self.slurm_user, "slurm_user")
        validate.tree_width(self.tree_width)
        self.job_checkpoint_dir = checks.path(self.job_checkpoint_dir, "job_checkpoint_dir")

    def add_job(self, job_id: int, uid: int, state="running", batch: bool = False,
                steps=(), nodes=("localhost",), **kw) -> Job:
        """Add (or replace) a job; a running or suspended batch job also gets its batch step
        record.  ``nodes``: a hostlist ("n[1-4]") or node names.  A value Slurm's wire fields
        cannot hold (a uid that is not 0..UID_MAX, ...) raises InvalidArgumentError naming it."""
        job = Job(job_id, uid, state, batch, nodes, **kw)
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
        """Load a cluster description from TOML (UTF-8, a leading BOM is skipped)::

            slurm_user = 0                     # SlurmUser's uid
            job_checkpoint_dir = "/ckpt"       # JobCheckpointDir
            tree_width = 50                    # TreeWidth
            [nodes]                            # node name -> "HOST:PORT" or "[V6ADDR]:PORT" of its
                                               # fake slurmd (port 0: any free port)
            n1 = "127.0.0.1:7001"
            [[jobs]]
            job_id = 2                         # 1..4294967293, each job once
            uid = 1000                         # 0..4294967294 (a number, not a name)
            state = "running"                  # pending/running/suspended/completed/cancelled/failed
            batch = true                       # running batch jobs get the batch step record
            nodes = "n[1-2]"                   # hostlist expression
            ckpt_dir = "/home/u/ckpt"          # optional default image dir (else work_dir)
            work_dir = "/home/u"               # optional, default /tmp
            [[jobs.steps]]
            step_id = 0                        # a uint32 but 4294967293 (a pending step), each
                                               # step of a job once; other keys: nodes, srun,
                                               # tasks_started, suspended, ckpt_dir (see Step)

        Any other key, a value of the wrong type or range: :class:`ConfigError` naming it.
        """
        try:
            data = tomllib.loads(_read_text(path))
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not TOML: {exc}", path=str(path)) from None
        try:
            return cls.from_dict(data)
        except InvalidArgumentError as exc:  # names the key, the value and what it must be
            raise ConfigError(f"bad cluster description: {exc}", path=str(path)) from None
        except (TypeError, ValueError, AttributeError, HostlistError) as exc:
            # not expected after the checks, but a user's file never ends in a traceback
            raise ConfigError(f"bad cluster description: {type(exc).__name__}: {exc}", path=str(path)) from None

    @classmethod
    def from_dict(cls, data: dict) -> "Cluster":
        """Build from the parsed TOML structure (see :meth:`from_toml`); an unknown key, a bad
        value, a job or step given twice: InvalidArgumentError."""
        checks.known_keys(data, TOP_KEYS, "")
        nodes = checks.table(data.get("nodes", {}), "nodes")
        cluster = cls(slurm_user=data.get("slurm_user", 0),
                      job_checkpoint_dir=data.get("job_checkpoint_dir"),
                      tree_width=data.get("tree_width", defaults.TREE_WIDTH),
                      node_addrs={name: checks.node_addr(text, f"nodes.{name}") for name, text in nodes.items()})
        for number, spec in enumerate(checks.tables(data.get("jobs", []), "jobs", "[[jobs]]"), 1):
            _load_job(cluster, dict(spec), number)
        return cluster


def _read_text(path) -> str:
    """The file as text (OSError if unreadable); ConfigError if too large or not UTF-8."""
    with open(path, "rb") as fh:
        raw = fh.read(CLUSTER_FILE_MAX + 1)
    if len(raw) > CLUSTER_FILE_MAX:
        raise ConfigError(f"not a cluster description: larger than {CLUSTER_FILE_MAX} bytes", path=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # tomllib's own decode would end in a traceback
        raise ConfigError(f"not TOML: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                          path=str(path)) from None
    return text.removeprefix(UTF8_BOM)


def _required(spec: dict, key: str, where: str):
    if key not in spec:
        raise InvalidArgumentError(f"missing key {key!r} ({where})")
    return spec.pop(key)


def _load_job(cluster: Cluster, spec: dict, number: int) -> None:
    """The ``number``-th [[jobs]] table into ``cluster``."""
    job_id = checks.job_id(_required(spec, "job_id", f"[[jobs]] table {number}"))
    where = f"job {job_id}"
    checks.known_keys(spec, JOB_KEYS, where + ": ")
    if job_id in cluster.jobs:  # add_job replaces; in a file the second one is a mistake
        raise InvalidArgumentError(f"{where}: duplicate job_id (two [[jobs]] tables have it)")
    uid = _required(spec, "uid", where)
    steps = checks.tables(spec.pop("steps", []), where + ": steps", "[[jobs.steps]]")
    job = cluster.add_job(job_id, uid, **spec)
    for number, step in enumerate(steps, 1):
        _load_step(job, dict(step), number)


def _load_step(job: Job, spec: dict, number: int) -> None:
    """The ``number``-th [[jobs.steps]] table of ``job``."""
    step_id = _required(spec, "step_id", f"job {job.job_id}, [[jobs.steps]] table {number}")
    checks.step_id(step_id, f"job {job.job_id}: step_id")
    checks.known_keys(spec, STEP_KEYS, f"job {job.job_id} step {step_id}: ")
    if step_id in job.steps:
        raise InvalidArgumentError(f"job {job.job_id}: duplicate step_id {step_id}")
    job.add_step(step_id, **spec)


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
