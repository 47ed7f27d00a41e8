"""Checkpoint plugins the fake slurmctld/slurmd can load: none, ompi, simulated.

A plugin sees what Slurm's checkpoint plugin API sees (src/common/checkpoint.c):
an op on one step (or on no step: the batch-job route), a completion, a task
completion, and on the slurmstepd side a "signal the tasks".  State lives on
the :class:`~pyslurmrpc.fake.cluster.Step` (``plugin_state``).  Rules and
citations: protocol_specs/slurmctld_checkpoint.md §8 and §13.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from pyslurmrpc.wire import CheckOp

from . import codes
from .cluster import Job, JobState, Step

#: checkpoint/ompi keeps its counters in uint16 (wraps, spec §8.2 / Q3)
U16 = 0x10000
#: srun prints this as the pid it passes to ompi-checkpoint in the recordings
RECORDED_SRUN_PID = "14906"


@dataclass(frozen=True)
class OpResult:
    """A plugin op's rc and the response fields it wrote (absent = left untouched)."""

    rc: int
    outputs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OpCall:
    """One plugin op call: ``step`` is None on the batch-job route (spec §6 row 9)."""

    job: Job
    step: Optional[Step]
    op: int
    data: int
    image_dir: str
    now: int


UNSUPPORTED = OpResult(codes.ESLURM_NOT_SUPPORTED)
OK = OpResult(codes.SUCCESS)


class NonePlugin:
    """checkpoint/none (spec §8.7): nothing is supported, task completions are accepted."""

    name = "none"

    def op(self, call: OpCall) -> OpResult:
        return UNSUPPORTED

    def comp(self, job: Job, step: Step, error_code: int, error_msg: Optional[str], now: int) -> int:
        return codes.ESLURM_NOT_SUPPORTED

    def task_comp(self, job: Job, step: Step, error_code: int, error_msg: Optional[str], now: int) -> int:
        return codes.SUCCESS

    def signal_tasks(self, job: Job, step: Step, timestamp: int, image_dir: Optional[str]) -> int:
        """slurmstepd side of REQUEST_CHECKPOINT_TASKS (spec §8.6)."""
        return codes.ESLURM_NOT_SUPPORTED

    def restart_job(self, job: Job, record: dict, image_dir: str, stick: bool) -> int:
        """Route 1 resubmission: the batch script runs again from the start
        (on the old nodes; the fake has no scheduler to pick others)."""
        job.steps.clear()
        job.state = JobState.RUNNING
        job.add_batch_step()
        return codes.SUCCESS


class CounterOps:
    """DISABLE / ENABLE / ERROR as checkpoint/ompi does them (checkpoint_ompi.c
    slurm_ckpt_op): a 16-bit disable counter, and the error kept by completions.
    The state object needs ``disabled``, ``error_code`` and ``error_msg``."""

    @staticmethod
    def _disable(call: OpCall, st) -> OpResult:
        st.disabled = (st.disabled + 1) % U16
        return OK

    @staticmethod
    def _enable(call: OpCall, st) -> OpResult:
        st.disabled = (st.disabled - 1) % U16
        return OK

    @staticmethod
    def _error(call: OpCall, st) -> OpResult:
        return OpResult(codes.SUCCESS, {"error_code": st.error_code, "error_msg": st.error_msg})


@dataclass
class OmpiState:
    """checkpoint/ompi's per-step state, zero at step creation (spec §8.1)."""

    disabled: int = 0
    reply_cnt: int = 0
    wait_time: int = 0
    time_stamp: int = 0
    error_code: int = 0
    error_msg: Optional[str] = None


class OmpiPlugin(CounterOps, NonePlugin):
    """checkpoint/ompi of 19.05 (spec §8.2-§8.6).

    ``srun_completes``: model the srun of each step answering SRUN_EXEC with a
    REQUEST_CHECKPOINT_COMP (error 0, message ``srun_pid``) before the next
    request is served, as the recording cluster's srun did (spec §13,
    notes/fake_rules.md item 7).  Every SRUN_EXEC is noted in ``srun_execs``.
    """

    name = "ompi"

    def __init__(self, srun_completes: bool = True, srun_pid: str = RECORDED_SRUN_PID):
        self.srun_completes = srun_completes
        self.srun_pid = srun_pid
        self.srun_execs: list[tuple[int, int, tuple[str, ...]]] = []
        self._ops: dict[int, Callable[[OpCall, OmpiState], OpResult]] = {
            CheckOp.CHECK_ABLE: self._able,
            CheckOp.CHECK_DISABLE: self._disable,
            CheckOp.CHECK_ENABLE: self._enable,
            CheckOp.CHECK_CREATE: self._create,
            CheckOp.CHECK_VACATE: self._create,
            CheckOp.CHECK_RESTART: lambda call, st: UNSUPPORTED,
            CheckOp.CHECK_ERROR: self._error,
            CheckOp.CHECK_REQUEUE: lambda call, st: UNSUPPORTED,
        }

    @staticmethod
    def state(step: Step) -> OmpiState:
        """The step's ompi state (created zeroed on first use, as at step creation)."""
        if not isinstance(step.plugin_state, OmpiState):
            step.plugin_state = OmpiState()
        return step.plugin_state

    def op(self, call: OpCall) -> OpResult:
        if call.step is None:  # batch-job route: ompi refuses before looking at the op
            return UNSUPPORTED
        handler = self._ops.get(call.op)
        if handler is None:
            return OpResult(codes.EINVAL)
        return handler(call, self.state(call.step))

    @staticmethod
    def _able(call: OpCall, st: OmpiState) -> OpResult:
        if st.disabled:
            return OpResult(codes.ESLURM_DISABLED)
        # event_time is only written while no completion was accepted (Q2)
        return OpResult(codes.SUCCESS, {"event_time": st.time_stamp} if st.reply_cnt == 0 else {})

    def _create(self, call: OpCall, st: OmpiState) -> OpResult:
        # the reset happens before the disabled check, so a refused create
        # still moves time_stamp (Q1)
        st.time_stamp, st.reply_cnt, st.error_code, st.error_msg = call.now, 0, 0, None
        if call.job.state.finished:
            return OpResult(codes.ESLURM_ALREADY_DONE)
        if st.disabled:
            return OpResult(codes.ESLURM_DISABLED)
        self._srun_exec(call)
        st.time_stamp, st.wait_time = call.now, call.data
        if self.srun_completes and call.step.srun:
            self.comp(call.job, call.step, 0, self.srun_pid, call.now)
        return OK

    def _srun_exec(self, call: OpCall) -> None:
        argv = ("ompi-checkpoint", "--term") if call.op == CheckOp.CHECK_VACATE else ("ompi-checkpoint",)
        if call.step.srun:  # the batch step has no srun: Slurm only logs an error
            self.srun_execs.append((call.job.job_id, call.step.step_id, argv))

    def comp(self, job: Job, step: Step, error_code: int, error_msg: Optional[str], now: int) -> int:
        st = self.state(step)
        if st.reply_cnt:
            return codes.ESLURM_ALREADY_DONE
        if error_code > st.error_code:  # a worse result is kept but leaves the checkpoint open
            st.error_code, st.error_msg = error_code, error_msg
            return codes.SUCCESS
        st.error_code, st.error_msg = error_code, error_msg
        st.reply_cnt += 1
        st.time_stamp = now
        return codes.SUCCESS

    def task_comp(self, job: Job, step: Step, error_code: int, error_msg: Optional[str], now: int) -> int:
        return codes.SUCCESS
