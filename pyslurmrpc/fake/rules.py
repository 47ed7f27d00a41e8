"""slurmctld 19.05's checkpoint RPC rules as plain functions (no I/O).

:class:`Controller` takes the verified caller uid and a decoded request
(message type and body) and returns the :class:`Reply` slurmctld would send.
Every rule cites protocol_specs/slurmctld_checkpoint.md (whose sections cite
Slurm's sources, tag slurm-19-05-8-1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from pyslurmrpc.wire import SLURM_BATCH_SCRIPT, CheckOp, MsgType
from pyslurmrpc.wire.bodies import (
    Body, CheckpointCompMsg, CheckpointMsg, CheckpointRespMsg, CheckpointTaskCompMsg, PingMsg, ReturnCodeMsg,
)

from . import codes
from .clock import system_clock
from .cluster import Cluster, Job, JobState
from .plugins import NonePlugin, OpCall

#: ops whose success is answered with RESPONSE_CHECKPOINT (spec §4.1)
CKPT_REPLY_OPS = frozenset({CheckOp.CHECK_ABLE, CheckOp.CHECK_ERROR})
#: ops for which the batch-job route saves the job record first (spec §6 rows 6-8)
JOB_RECORD_OPS = frozenset({CheckOp.CHECK_CREATE, CheckOp.CHECK_VACATE, CheckOp.CHECK_REQUEUE})
#: RESTART's ``data``: 1 pins the restarted job to its old nodes (spec §5 row 7)
STICK = 1

# job base state -> rc, per route (spec §6 rows 3-4, §7 rows 3-4, §9 rows 3-4; Q4)
ROUTE2_STATE_CODES = {JobState.PENDING: codes.ESLURM_JOB_PENDING,
                      JobState.SUSPENDED: codes.ESLURM_JOB_SUSPENDED}
ROUTE3_STATE_CODES = {JobState.PENDING: codes.ESLURM_JOB_PENDING,
                      JobState.SUSPENDED: codes.ESLURM_DISABLED}
COMP_STATE_CODES = {JobState.PENDING: codes.ESLURM_JOB_PENDING}  # suspended is accepted


@dataclass(frozen=True)
class Reply:
    """What a daemon answers: a message type and its body."""

    msg_type: int
    body: Body


def rc_reply(rc: int) -> Reply:
    """RESPONSE_SLURM_RC carrying ``rc``."""
    return Reply(MsgType.RESPONSE_SLURM_RC, ReturnCodeMsg(return_code=rc))


def ckpt_reply(outputs: dict) -> Reply:
    """RESPONSE_CHECKPOINT from the response fields a plugin wrote (zero / NULL when not)."""
    return Reply(MsgType.RESPONSE_CHECKPOINT, CheckpointRespMsg(event_time=outputs.get("event_time", 0),
                                                                error_code=outputs.get("error_code", 0),
                                                                error_msg=outputs.get("error_msg")))


def given(value, default):
    """``value`` unless it is NULL (None): an empty string is a given, if odd, directory."""
    return default if value is None else value


def job_state_rc(job: Optional[Job], uid: int, allowed: Callable[[Job, int], bool],
                 state_codes: dict) -> int:
    """The shared prologue: record exists, caller allowed, base state acceptable."""
    if job is None:
        return codes.ESLURM_INVALID_JOB_ID
    if not allowed(job, uid):
        return codes.ESLURM_ACCESS_DENIED
    rc = state_codes.get(job.state)
    if rc is not None:
        return rc
    if job.state.finished:
        return codes.ESLURM_ALREADY_DONE
    return codes.SUCCESS


class Controller:
    """The decision logic of a fake slurmctld: cluster state + plugin + clock.

    ``handle(uid, msg_type, body)`` returns the :class:`Reply`; unknown
    message types get RC(EINVAL) like slurmctld_req's default branch.
    """

    def __init__(self, cluster: Cluster, plugin=None, clock: Callable[[], int] = system_clock):
        self.cluster = cluster
        self.plugin = plugin if plugin is not None else NonePlugin()
        self.clock = clock
        self._handlers = {
            MsgType.REQUEST_PING: self._ping,
            MsgType.REQUEST_CHECKPOINT: self._checkpoint,
            MsgType.REQUEST_CHECKPOINT_COMP: self._comp,
            MsgType.REQUEST_CHECKPOINT_TASK_COMP: self._task_comp,
        }

    def handle(self, uid: int, msg_type: int, body: Body) -> Reply:
        """Answer one verified request from ``uid``."""
        handler = self._handlers.get(msg_type)
        if handler is None:
            return rc_reply(codes.EINVAL)
        return handler(uid, body)

    # --- access predicates (spec §3) -----------------------------------
    def _owner_or_privileged(self, job: Job, uid: int) -> bool:  # A4
        return uid == job.uid or self.cluster.privileged(uid)

    @staticmethod
    def _owner_or_root(job: Job, uid: int) -> bool:  # A5: SlurmUser does not count
        return uid == job.uid or uid == 0

    # --- REQUEST_PING (proc_req.c _slurm_rpc_ping) ------------------------
    @staticmethod
    def _ping(uid: int, body: PingMsg) -> Reply:
        return rc_reply(codes.SUCCESS)

    # --- REQUEST_CHECKPOINT: routing (spec §4) ----------------------------
    def _checkpoint(self, uid: int, body: CheckpointMsg) -> Reply:
        if body.op == CheckOp.CHECK_RESTART:
            return rc_reply(self._restart(uid, body))
        if body.step_id == SLURM_BATCH_SCRIPT:
            rc, outputs = self._whole_job(uid, body)
        else:
            rc, outputs = self._one_step(uid, body)
        if rc == codes.SUCCESS and body.op in CKPT_REPLY_OPS:
            return ckpt_reply(outputs)
        return rc_reply(rc)

    def _call(self, job: Job, step, body: CheckpointMsg, image_dir: str):
        return self.plugin.op(OpCall(job, step, body.op, body.data, image_dir, self.clock()))

    # --- route 1: job_restart (spec §5) ------------------------------------
    def _restart(self, uid: int, body: CheckpointMsg) -> int:
        if body.step_id != SLURM_BATCH_SCRIPT:
            return codes.ESLURM_NOT_SUPPORTED
        job = self.cluster.jobs.get(body.job_id)
        if job is not None and not job.state.finished:
            return codes.ESLURM_JOB_NOT_FINISHED
        record = self.cluster.job_records.get(body.job_id)
        if record is None:  # no <JobCheckpointDir>/<job>.ckpt: the failed open's errno (U3)
            return codes.ENOENT
        if not (self.cluster.privileged(uid) or uid == record["uid"]):
            return codes.EPERM
        if job is None:
            job = self.cluster.add_job(body.job_id, record["uid"], "completed", batch=True,
                                       nodes=record["nodes"])
        image_dir = f"{given(body.image_dir, record['image_dir'])}/{body.job_id}"
        return self.plugin.restart_job(job, record, image_dir, body.data == STICK)

    # --- route 2: job_checkpoint (spec §6) ----------------------------------
    def _whole_job(self, uid: int, body: CheckpointMsg):
        job = self.cluster.jobs.get(body.job_id)
        rc = job_state_rc(job, uid, self._owner_or_privileged, ROUTE2_STATE_CODES)
        if rc:
            return rc, {}
        if job.batch:
            return self._batch_job(job, body)
        return self._all_steps(job, body)

    def _batch_job(self, job: Job, body: CheckpointMsg):
        image_dir = body.image_dir
        if body.op in JOB_RECORD_OPS:
            if not job.has_details:
                return codes.ESLURM_DISABLED, {}
            image_dir = given(image_dir, job.details_ckpt_dir)  # spec §6 row 7
            if image_dir is None:
                return codes.ESLURM_DISABLED, {}
            # _checkpoint_job_record: kept in memory (a file error is not modelled)
            self.cluster.job_records[job.job_id] = {
                "uid": job.uid, "nodes": tuple(job.nodes), "image_dir": image_dir}
        # C formats a NULL dir as nothing: "/<job>" (only reachable for non-record ops)
        result = self._call(job, None, body, f"{given(image_dir, '')}/{job.job_id}")
        return result.rc, result.outputs

    def _all_steps(self, job: Job, body: CheckpointMsg):
        rc, outputs = codes.SUCCESS, {}
        for step in list(job.steps.values()):
            base = given(body.image_dir, given(step.ckpt_dir, ""))
            result = self._call(job, step, body, f"{base}/{job.job_id}.{step.step_id}")
            outputs.update(result.outputs)  # every step writes the same reply fields
            rc = max(rc, result.rc)
        return rc, outputs

    # --- route 3: job_step_checkpoint (spec §7) -------------------------------
    def _one_step(self, uid: int, body: CheckpointMsg):
        job = self.cluster.jobs.get(body.job_id)
        rc = job_state_rc(job, uid, self._owner_or_root, ROUTE3_STATE_CODES)
        if rc:
            return rc, {}
        step = job.steps.get(body.step_id)
        if step is None:
            return codes.ESLURM_INVALID_JOB_ID, {}
        base = given(body.image_dir, given(step.ckpt_dir, ""))
        result = self._call(job, step, body, f"{base}/{job.job_id}.{step.step_id}")
        return result.rc, result.outputs

    # --- REQUEST_CHECKPOINT_COMP / _TASK_COMP (spec §9, §10) -------------------
    def _step_for_comp(self, uid: int, body: CheckpointCompMsg | CheckpointTaskCompMsg):
        job = self.cluster.jobs.get(body.job_id)
        rc = job_state_rc(job, uid, self._owner_or_root, COMP_STATE_CODES)
        if rc:
            return rc, job, None
        step = job.steps.get(body.step_id)
        return (codes.ESLURM_INVALID_JOB_ID if step is None else codes.SUCCESS), job, step

    def _comp(self, uid: int, body: CheckpointCompMsg) -> Reply:
        rc, job, step = self._step_for_comp(uid, body)
        if rc == codes.SUCCESS:
            rc = self.plugin.comp(job, step, body.error_code, body.error_msg, self.clock())
        return rc_reply(rc)

    def _task_comp(self, uid: int, body: CheckpointTaskCompMsg) -> Reply:
        rc, job, step = self._step_for_comp(uid, body)
        if rc == codes.SUCCESS:
            rc = self.plugin.task_comp(job, step, body.error_code, body.error_msg, self.clock())
        return rc_reply(rc)
