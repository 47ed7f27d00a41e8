"""libslurm's C checkpoint API, call for call, for code written against the man page.

Signatures follow slurm_checkpoint_error(3) (Slurm 19.05): every function
returns 0 on success, or -1 with the error left for :func:`slurm_get_errno`
(per thread, like C's errno).  Output parameters (``time_t *start_time``,
``uint32_t *error_code``, ``char **error_msg``) are :class:`Ref` objects
whose ``.value`` is set.

Where libslurm 19.05 itself differs from its man page (documented in
protocol_specs/client_behaviour.md): the real library returns the Slurm
error code itself from able, disable, enable, create, vacate, requeue,
restart, error and tasks (for example 2037), and -1 only from complete and
task_complete; able leaves ``*start_time`` untouched on an error reply.
This module keeps the man page's convention for every call so that
``if (rc != 0) slurm_perror(...)`` style code ports unchanged, and sets
errno in both cases, so callers of either convention get the code.

As in libslurm, errno is 0 after a call that succeeded (every reply libslurm reads
passes ``slurm_receive_msg``, which ends in ``slurm_seterrno(rc)``).  An argument the
request cannot carry, or an output that is not a :class:`Ref`, is -1 with errno
EINVAL before anything is sent.  :func:`last_error` (pyslurmrpc's own) returns the
exception behind this thread's last failure: what errno alone cannot say, such as
which argument was wrong.

The client used is the one given to :func:`slurm_init`, else one configured
from slurm.conf ($SLURM_CONF, /etc/slurm/slurm.conf) on first use; a slurm.conf
that cannot be read is a :class:`~pyslurmrpc.errors.ConfigError` raised from that
call (libslurm's ``slurm_init`` exits the process), never an errno.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Any

from .errors import (  # noqa: F401  (the constants are part of this module's C-like API)
    CONNECT_ERRNO, SLURM_PROTOCOL_VERSION_ERROR, SLURM_UNEXPECTED_MSG_ERROR, InvalidArgumentError, PyslurmrpcError,
    SlurmError, UnexpectedMessageError, slurm_errno_of,
)
from .client.validate import NODELIST
from .slurm_errno import SLURM_ERROR, SLURM_SUCCESS, text_of  # noqa: F401  (C-like API)
from .wire.constants import NO_VAL, SLURM_BATCH_SCRIPT  # noqa: F401  (re-exported for C-like code)
from .wire.constants import C_INT_MAX, C_INT_MIN

_local = threading.local()
_client_lock = threading.Lock()
_client = None


__all__ = [
    "Ref",
    "last_error",
    "slurm_init",
    "slurm_get_errno",
    "slurm_seterrno",
    "slurm_strerror",
    "slurm_perror",
    "slurm_checkpoint_able",
    "slurm_checkpoint_disable",
    "slurm_checkpoint_enable",
    "slurm_checkpoint_create",
    "slurm_checkpoint_vacate",
    "slurm_checkpoint_requeue",
    "slurm_checkpoint_restart",
    "slurm_checkpoint_complete",
    "slurm_checkpoint_task_complete",
    "slurm_checkpoint_error",
    "slurm_checkpoint_tasks",
    "slurm_ping",
]


@dataclass
class Ref:
    """An output parameter: what C passes as a pointer."""

    value: Any = None


def slurm_init(conf: str | None = None, client=None) -> None:
    """Use ``client`` (a blocking :class:`~pyslurmrpc.Client`), or a Client read from the
    slurm.conf ``conf`` (None: $SLURM_CONF, /etc/slurm/slurm.conf), for every call of this
    module.  Returns None; a file that cannot be read raises ConfigError, anything but a
    Client as ``client`` InvalidArgumentError (an AsyncClient's calls cannot run here)."""
    global _client
    from .client import Client

    if client is not None and not isinstance(client, Client):
        raise InvalidArgumentError(f"client must be a pyslurmrpc.Client (a blocking client), "
                                   f"not {type(client).__name__}")
    with _client_lock:
        _client = client if client is not None else Client.from_slurm_conf(conf)


def _get_client():
    global _client
    with _client_lock:
        if _client is None:
            from .client import Client

            _client = Client.from_slurm_conf()
        return _client


def slurm_get_errno() -> int:
    """This thread's errno: the error of its last failed call, 0 after a call that succeeded."""
    return getattr(_local, "errno", 0)


def slurm_seterrno(value: int) -> None:
    """Set this thread's errno (a C int); :func:`last_error` is left as it was."""
    _local.errno = _c_int(value, "errno", refuse_outside=True)


def last_error() -> PyslurmrpcError | None:
    """The exception behind this thread's last failed call (None after a call that
    succeeded): the argument that was wrong, each controller tried.  pyslurmrpc's own:
    libslurm has only errno."""
    return getattr(_local, "error", None)


def slurm_strerror(errnum: int) -> str:
    """Slurm's text for an error number (slurm_strerror), as libslurm 19.05's table has it
    (the release whose API this module is; :func:`pyslurmrpc.slurm_errno.text_of` takes
    another release's).

    A number past a C int is in no table: it gets the text other unknown numbers get
    (glibc's "Unknown error N", or "Unknown negative error number") instead of an
    OverflowError from os.strerror."""
    errnum = _c_int(errnum, "errnum")
    if errnum > C_INT_MAX:     # slurm_strerror takes a C int; os.strerror cannot be handed more
        return f"Unknown error {errnum}"
    return text_of(max(errnum, C_INT_MIN))


def slurm_perror(msg: str) -> None:
    """Print ``msg: <text of slurm_get_errno()>`` on stderr (slurm_perror)."""
    print(f"{msg}: {slurm_strerror(slurm_get_errno())}", file=sys.stderr)


def _c_int(value, name: str, refuse_outside: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if refuse_outside and not C_INT_MIN <= value <= C_INT_MAX:
        raise InvalidArgumentError(f"{name} must be a C int ({C_INT_MIN} to {C_INT_MAX}), not {value}")
    return value


def _failed(exc: PyslurmrpcError, errno: int | None = None) -> int:
    _local.errno = slurm_errno_of(exc) if errno is None else errno
    _local.error = exc
    return SLURM_ERROR


def _not_refs(**refs) -> InvalidArgumentError | None:
    """The error of an output that is not a Ref (checked before anything is sent)."""
    for name, ref in refs.items():
        if not isinstance(ref, Ref):
            return InvalidArgumentError(f"{name} must be a compat.Ref (an output parameter), "
                                        f"not {type(ref).__name__}")
    return None


def _call(method: str, *args, out=None, on_failure=None) -> int:
    client = _get_client()          # outside the try: no slurm.conf is raised, not an errno
    try:
        result = getattr(client, method)(*args)
    except PyslurmrpcError as exc:
        return _failed(exc, on_failure(exc) if on_failure else None)
    _local.errno, _local.error = SLURM_SUCCESS, None
    if out:
        out(result)
    return SLURM_SUCCESS


def slurm_checkpoint_able(job_id: int, step_id: int, start_time: Ref) -> int:
    """Can the step be checkpointed?  0 with ``start_time.value`` the time a checkpoint began
    (0: none begun); -1 with errno (2037: disabled), ``start_time`` untouched, but set to 0
    on a reply of another type, as libslurm does."""
    bad = _not_refs(start_time=start_time)
    if bad:
        return _failed(bad)

    def failed(exc):
        if isinstance(exc, UnexpectedMessageError) and exc.field == "header.msg_type":
            start_time.value = 0      # a reply of another type; another version fails the receive
    return _call("checkpoint_able", job_id, step_id, out=lambda r: setattr(start_time, "value", r),
                 on_failure=failed)


def slurm_checkpoint_disable(job_id: int, step_id: int) -> int:
    """Disable checkpoint requests for the step: 0, or -1 with errno."""
    return _call("checkpoint_disable", job_id, step_id)


def slurm_checkpoint_enable(job_id: int, step_id: int) -> int:
    """Enable checkpoint requests for the step: 0, or -1 with errno."""
    return _call("checkpoint_enable", job_id, step_id)


def slurm_checkpoint_create(job_id: int, step_id: int, max_wait: int, image_dir: str | None) -> int:
    """Checkpoint the step and let it go on (``max_wait`` seconds, 0..65535): 0, or -1 with errno."""
    return _call("checkpoint_create", job_id, step_id, max_wait, image_dir)


def slurm_checkpoint_vacate(job_id: int, step_id: int, max_wait: int, image_dir: str | None) -> int:
    """Checkpoint the step, then end it: 0, or -1 with errno."""
    return _call("checkpoint_vacate", job_id, step_id, max_wait, image_dir)


def slurm_checkpoint_requeue(job_id: int, max_wait: int, image_dir: str | None) -> int:
    """Checkpoint the batch job, then requeue it: 0, or -1 with errno."""
    return _call("checkpoint_requeue", job_id, max_wait, image_dir)


def slurm_checkpoint_restart(job_id: int, step_id: int, stick: int, image_dir: str | None) -> int:
    """Restart the job from its checkpoint; ``stick`` 1 keeps its nodes, 0 does not (any other
    value: -1, EINVAL, as Client refuses it: slurmctld 19.05 keeps the nodes only for 1).
    0, or -1 with errno."""
    return _call("checkpoint_restart", job_id, step_id, stick, image_dir)


def slurm_checkpoint_complete(job_id: int, step_id: int, begin_time: int, error_code: int,
                              error_msg: str | None) -> int:
    """Report the step's checkpoint begun at ``begin_time`` done: 0, or -1 with errno."""
    return _call("checkpoint_complete", job_id, step_id, begin_time, error_code, error_msg)


def slurm_checkpoint_task_complete(job_id: int, step_id: int, task_id: int, begin_time: int,
                                   error_code: int, error_msg: str | None) -> int:
    """Report one task's checkpoint done: 0, or -1 with errno."""
    return _call("checkpoint_task_complete", job_id, step_id, task_id, begin_time, error_code, error_msg)


def slurm_checkpoint_error(job_id: int, step_id: int, error_code: Ref, error_msg: Ref) -> int:
    """The error of the step's last checkpoint: 0 with ``error_code.value`` and
    ``error_msg.value`` ("" for none); -1 with errno, and the outputs (0, "") when the
    controller answered with an error code, as libslurm sets them."""
    bad = _not_refs(error_code=error_code, error_msg=error_msg)
    if bad:
        return _failed(bad)

    def store(result):
        error_code.value, error_msg.value = result

    def failed(exc):
        if isinstance(exc, SlurmError):
            store((0, ""))
    return _call("checkpoint_error", job_id, step_id, out=store, on_failure=failed)


def slurm_checkpoint_tasks(job_id: int, step_id: int, begin_time: int, image_dir: str | None,
                           max_wait: int, nodelist: str) -> int:
    """Ask the slurmds of ``nodelist`` to checkpoint the step's tasks: 0, or -1 with errno
    the highest code a node gave (1001: a node not reached; 1005 when the slurmds cannot
    checkpoint: Client.checkpoint_tasks's CheckpointUnsupported).  A node list that names no node
    or is no hostlist is -1 with errno SLURM_ERROR (-1), nothing sent, as libslurm's "no list
    was returned"; :func:`last_error` says what was wrong with it."""
    def failed(exc):
        if isinstance(exc, InvalidArgumentError) and exc.argument == NODELIST:
            return SLURM_ERROR
        return None
    return _call("checkpoint_tasks", job_id, step_id, begin_time, image_dir, max_wait, nodelist,
                 on_failure=failed)


def slurm_ping(dest: int = 0) -> int:
    """0 when controller ``dest`` (0 primary, 1 the first backup, ...) answers REQUEST_PING,
    else -1 with errno; an index slurm.conf has no controller for is errno 1800, as
    libslurm's (no address to connect to).  ``dest=None`` (pyslurmrpc's own) pings with
    failover, as the checkpoint calls reach a controller."""
    def failed(exc):
        if isinstance(exc, InvalidArgumentError) and isinstance(dest, int) and not isinstance(dest, bool):
            return CONNECT_ERRNO     # no address to connect to: libslurm's connect failure
        return None
    return _call("ping", dest, on_failure=failed)
