"""slurmd 19.05's side of REQUEST_CHECKPOINT_TASKS, and its ping, as plain logic (no I/O).

:class:`NodeRules` is one node's slurmd plus the slurmstepds it would have:
the live steps come from the shared :class:`~pyslurmrpc.fake.cluster.Cluster`
(steps of running/suspended jobs placed on this node), and each stepd's
remembered checkpoint timestamp is kept here.  Spec: slurmctld_checkpoint.md §11.
"""

from __future__ import annotations

from pyslurmrpc.wire import MsgType
from pyslurmrpc.wire.bodies import Body, CheckpointTasksMsg, PingMsg

from . import codes
from .cluster import Cluster, JobState
from .plugins import NonePlugin
from .rules import Reply, rc_reply


class NodeRules:
    """Decision logic of the fake slurmd on ``node``."""

    def __init__(self, cluster: Cluster, node: str, plugin=None):
        self.cluster = cluster
        self.node = node
        self.plugin = plugin if plugin is not None else NonePlugin()
        #: (job_id, step_id) -> last checkpoint timestamp the stepd accepted
        self.timestamps: dict[tuple[int, int], int] = {}
        self._handlers = {
            MsgType.REQUEST_PING: self._ping,
            MsgType.REQUEST_CHECKPOINT_TASKS: self._checkpoint_tasks,
        }

    def handle(self, uid: int, msg_type: int, body: Body) -> Reply:
        """Answer one verified request; unknown types get RC(EINVAL) (slurmd_req default)."""
        handler = self._handlers.get(msg_type)
        return rc_reply(codes.EINVAL) if handler is None else handler(uid, body)

    def _authorized(self, uid: int) -> bool:
        """slurmd's _slurm_authorized_user: root or SlurmUser."""
        return self.cluster.privileged(uid)

    def _ping(self, uid: int, body: PingMsg) -> Reply:  # req.c _rpc_ping
        return rc_reply(codes.SUCCESS if self._authorized(uid) else codes.ESLURM_USER_ID_MISSING)

    def _find(self, job_id: int, step_id: int):
        job = self.cluster.jobs.get(job_id)
        if job is None or job.state not in (JobState.RUNNING, JobState.SUSPENDED):
            return None, None
        step = job.steps.get(step_id)
        if step is None or not step.runs_on(self.node):
            return None, None
        return job, step

    def _checkpoint_tasks(self, uid: int, body: CheckpointTasksMsg) -> Reply:
        job, step = self._find(body.job_id, body.job_step_id)
        if step is None:  # no slurmstepd socket for this step on this node
            return rc_reply(codes.ESLURM_INVALID_JOB_ID)
        if uid != job.uid and not self._authorized(uid):
            return rc_reply(codes.ESLURM_USER_ID_MISSING)
        return rc_reply(self._stepd(job, step, body))

    def _stepd(self, job, step, body: CheckpointTasksMsg) -> int:
        """slurmstepd's _handle_checkpoint_tasks (spec §11.2); its -1 becomes 4027 in slurmd."""
        key = (job.job_id, step.step_id)
        if body.timestamp and self.timestamps.get(key) == body.timestamp:
            return codes.ESLURM_ALREADY_DONE
        if not step.tasks_started:
            return codes.ESLURMD_JOB_NOTRUNNING
        if step.suspended or job.state is JobState.SUSPENDED:
            return codes.ESLURMD_STEP_SUSPENDED
        self.timestamps[key] = body.timestamp  # remembered even if the plugin fails
        rc = self.plugin.signal_tasks(job, step, body.timestamp, body.image_dir)
        return codes.SUCCESS if rc == codes.SUCCESS else codes.ESLURMD_JOB_NOTRUNNING
