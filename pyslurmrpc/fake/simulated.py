"""checkpoint/simulated: a checkpoint plugin that really works, for end-to-end tests.

Not a Slurm plugin; it follows the same entry points as checkpoint/ompi so the
rules around it are Slurm's (routing, access, states):

* CREATE writes an image record ``<image dir>/image.json`` (the image dir the
  rules pass in already ends in ``/<job>.<step>`` or ``/<job>``);
* VACATE does the same, then ends the step (or, on the batch-job route, the job);
* ABLE answers the time of the last image (0 before the first);
* ERROR answers the highest error code any completion reported, and its message;
* REQUEUE on the batch-job route is a CREATE (the job keeps running);
* a route-1 RESTART of a vacated batch job reads the job image back and
  restores its steps, on the old nodes when ``stick`` is set;
* on slurmd, signalling the tasks succeeds (rc 0).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pyslurmrpc.wire import CheckOp

from . import codes
from .cluster import Job, JobState, Step
from .plugins import OK, CounterOps, NonePlugin, OpCall, OpResult, UNSUPPORTED

#: file name of an image record inside its image directory
IMAGE_FILE = "image.json"


@dataclass
class SimState:
    """Per-step (or per-job, on the batch route) state of the simulated plugin."""

    disabled: int = 0
    time_stamp: int = 0
    error_code: int = 0
    error_msg: Optional[str] = None


def _state(holder) -> SimState:
    if not isinstance(getattr(holder, "plugin_state", None), SimState):
        holder.plugin_state = SimState()
    return holder.plugin_state


class SimulatedPlugin(CounterOps, NonePlugin):
    """A working checkpoint (see the module docstring).  ``nodes``: the cluster's node
    names (any iterable, read at restart time: pass ``cluster.node_addrs`` to follow
    it), from which a non-sticky restart picks new ones."""

    name = "simulated"

    def __init__(self, nodes=()):
        self.nodes = nodes
        self._ops = {
            CheckOp.CHECK_ABLE: self._able,
            CheckOp.CHECK_DISABLE: self._disable,
            CheckOp.CHECK_ENABLE: self._enable,
            CheckOp.CHECK_CREATE: self._create,
            CheckOp.CHECK_VACATE: self._vacate,
            CheckOp.CHECK_RESTART: lambda call, st: UNSUPPORTED,
            CheckOp.CHECK_ERROR: self._error,
            CheckOp.CHECK_REQUEUE: self._requeue,
        }

    def op(self, call: OpCall) -> OpResult:
        handler = self._ops.get(call.op)
        if handler is None:
            return OpResult(codes.EINVAL)
        return handler(call, _state(call.step if call.step is not None else call.job))

    @staticmethod
    def _able(call: OpCall, st: SimState) -> OpResult:
        if st.disabled:
            return OpResult(codes.ESLURM_DISABLED)
        return OpResult(codes.SUCCESS, {"event_time": st.time_stamp})

    def _create(self, call: OpCall, st: SimState) -> OpResult:
        if st.disabled:
            return OpResult(codes.ESLURM_DISABLED)
        try:
            write_image(call)
        except OSError as exc:  # Slurm reports file errors as the C errno
            return OpResult(exc.errno or codes.SLURM_ERROR)
        except ValueError:  # a path the OS cannot take (embedded NUL)
            return OpResult(codes.EINVAL)
        st.time_stamp = call.now
        return OK

    def _vacate(self, call: OpCall, st: SimState) -> OpResult:
        result = self._create(call, st)
        if result.rc == codes.SUCCESS:
            _end(call)
        return result

    def _requeue(self, call: OpCall, st: SimState) -> OpResult:
        return self._create(call, st) if call.step is None else UNSUPPORTED

    # completions: the highest error code wins, its message with it
    def comp(self, job: Job, step: Step, error_code: int, error_msg: Optional[str], now: int) -> int:
        st = _state(step)
        if error_code > st.error_code:
            st.error_code, st.error_msg = error_code, error_msg
        return codes.SUCCESS

    task_comp = comp

    def signal_tasks(self, job: Job, step: Step, timestamp: int, image_dir: Optional[str]) -> int:
        return codes.SUCCESS

    def restart_job(self, job: Job, record: dict, image_dir: str, stick: bool) -> int:
        """Bring a vacated job back from ``<image_dir>/image.json``."""
        try:
            image = json.loads((Path(image_dir) / IMAGE_FILE).read_text())
        except OSError as exc:
            return exc.errno or codes.ENOENT
        except ValueError:
            return codes.EINVAL
        nodes = tuple(image["nodes"]) if stick else self._pick_nodes(len(image["nodes"]), image["nodes"])
        job.nodes = nodes
        job.steps.clear()
        job.add_batch_step()
        for sid in image.get("steps", []):
            job.add_step(sid, nodes=nodes)
        job.state = JobState.RUNNING
        return codes.SUCCESS

    def _pick_nodes(self, count: int, old) -> tuple[str, ...]:
        """Any ``count`` nodes of the cluster (sorted), the old ones if it has too few."""
        pool = sorted(self.nodes)
        return tuple(pool[:count]) if len(pool) >= count else tuple(old)


def image_path(image_dir: str) -> Path:
    """Where the image record of a checkpoint into ``image_dir`` lives."""
    return Path(image_dir) / IMAGE_FILE


def write_image(call: OpCall) -> Path:
    """Write the image record of ``call`` (atomically: temp file, then rename)."""
    path = image_path(call.image_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    job, step = call.job, call.step
    record = {
        "job_id": job.job_id, "uid": job.uid, "time": call.now,
        "step_id": None if step is None else step.step_id,
        "nodes": list(job.nodes if step is None else step.nodes),
        # on the batch route the image holds every step (the batch step is rebuilt on restart)
        "steps": sorted(s for s in job.steps if s < 0xFFFFFFF0) if step is None else [],
    }
    tmp = path.with_suffix(".new")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return path


def _end(call: OpCall) -> None:
    """After a vacate: the step goes away; on the batch route the whole job completes."""
    if call.step is not None:
        call.job.steps.pop(call.step.step_id, None)
        return
    call.job.steps.clear()
    call.job.state = JobState.COMPLETED
